package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

type packet struct {
	ci   gopacket.CaptureInfo
	data []byte
}

func readPcap(t *testing.T, path string) ([]packet, layers.LinkType) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	require.NoError(t, err)
	var ps []packet
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		ps = append(ps, packet{ci, data})
	}
	return ps, r.LinkType()
}

func writePcap(t *testing.T, path string, lt layers.LinkType, ps []packet, nanos bool) {
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	var w *pcapgo.Writer
	if nanos {
		w = pcapgo.NewWriterNanos(f)
	} else {
		w = pcapgo.NewWriter(f)
	}
	require.NoError(t, w.WriteFileHeader(65536, lt))
	for _, p := range ps {
		ci := p.ci
		ci.CaptureLength, ci.Length = len(p.data), len(p.data)+ci.Length-ci.CaptureLength
		require.NoError(t, w.WritePacket(ci, p.data))
	}
}

func writePcapng(t *testing.T, path string, lt layers.LinkType, ps []packet) {
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	w, err := pcapgo.NewNgWriter(f, lt)
	require.NoError(t, err)
	for _, p := range ps {
		require.NoError(t, w.WritePacket(p.ci, p.data))
	}
	require.NoError(t, w.Flush())
}

func compress(t *testing.T, src, dst, kind string) {
	in, err := os.ReadFile(src)
	require.NoError(t, err)
	var b bytes.Buffer
	switch kind {
	case "gzip":
		w := gzip.NewWriter(&b)
		_, err = w.Write(in)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	case "zstd":
		w, err := zstd.NewWriter(&b)
		require.NoError(t, err)
		_, err = w.Write(in)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	require.NoError(t, os.WriteFile(dst, b.Bytes(), 0o644))
}

// vlan inserts 802.1Q tags (one, or QinQ with two) after the MAC addresses.
func vlan(ps []packet, qinq bool) []packet {
	out := make([]packet, len(ps))
	for i, p := range ps {
		tag := []byte{0x81, 0x00, 0x00, 0x7d}
		if qinq {
			tag = []byte{0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x7d}
		}
		d := append(append(append([]byte{}, p.data[:12]...), tag...), p.data[12:]...)
		ci := p.ci
		ci.Length += len(tag)
		out[i] = packet{ci, d}
	}
	return out
}

// normalized drops what legitimately differs between link types (source
// MACs exist on Ethernet only) and returns comparable JSON.
func normalized(t *testing.T, rs []record) []string {
	var out []string
	for _, r := range rs {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.raw), &m))
		for _, side := range []string{"client", "server"} {
			if d, ok := m[side].(map[string]any); ok {
				delete(d, "mac")
				delete(d, "mac_changed")
				if l, ok := d["rsts"].([]any); ok {
					for _, x := range l {
						delete(x.(map[string]any), "mac")
					}
				}
			}
		}
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	return out
}

// TestSameRecordsAcrossFormats: the same capture as pcap (µs and ns),
// pcapng, gzip, zstd, via stdin, split in two files, through a VLAN and QinQ,
// and recorded with tcpdump -i any (SLL2) gives the same records.
func TestSameRecordsAcrossFormats(t *testing.T) {
	dir := t.TempDir()
	for _, sc := range []string{"quit_one", "fw_inject_both", "starttls_quit", "ipv6"} {
		base := filepath.Join("../../testdata/lab/captures", sc)
		src := filepath.Join(base, "server.pcap")
		want := normalized(t, analyze(t, "-r", src))
		require.NotEmpty(t, want, sc)
		ps, lt := readPcap(t, src)
		require.Equal(t, layers.LinkTypeEthernet, lt)

		variants := map[string][]string{}
		p := func(name string) string { return filepath.Join(dir, sc+"-"+name) }
		writePcap(t, p("ns.pcap"), lt, ps, true)
		variants["pcap-ns"] = []string{"-r", p("ns.pcap")}
		writePcapng(t, p("go.pcapng"), lt, ps)
		variants["pcapng"] = []string{"-r", p("go.pcapng")}
		if _, err := exec.LookPath("editcap"); err == nil {
			require.NoError(t, exec.Command("editcap", "-F", "pcapng", src, p("editcap.pcapng")).Run())
			variants["pcapng-editcap"] = []string{"-r", p("editcap.pcapng")}
		}
		compress(t, src, p("pcap.gz"), "gzip")
		variants["gzip"] = []string{"-r", p("pcap.gz")}
		compress(t, p("go.pcapng"), p("pcapng.zst"), "zstd")
		variants["zstd-pcapng"] = []string{"-r", p("pcapng.zst")}
		var even, odd []packet
		for i, x := range ps {
			if i%2 == 0 {
				even = append(even, x)
			} else {
				odd = append(odd, x)
			}
		}
		writePcap(t, p("a.pcap"), lt, even, false)
		writePcap(t, p("b.pcap"), lt, odd, false)
		variants["two-files"] = []string{"-r", p("a.pcap"), "-r", p("b.pcap")}
		writePcap(t, p("vlan.pcap"), lt, vlan(ps, false), false)
		variants["vlan"] = []string{"-r", p("vlan.pcap")}
		writePcap(t, p("qinq.pcap"), lt, vlan(ps, true), false)
		variants["qinq"] = []string{"-r", p("qinq.pcap")}
		writePcap(t, p("sll2.pcap"), layers.LinkTypeLinuxSLL2, toSLL2(ps), false)
		variants["sll2"] = []string{"-r", p("sll2.pcap")}

		for name, args := range variants {
			require.Equal(t, want, normalized(t, analyze(t, args...)), "%s: %s differs from the pcap", sc, name)
		}
		// The lab's own tcpdump -i any capture (SLL2) was taken by another
		// socket: same packets, timestamps a few µs apart.
		require.Equal(t, withoutTimes(t, want), withoutTimes(t, normalized(t, analyze(t, "-r", filepath.Join(base, "any.pcap")))), "%s: tcpdump -i any differs", sc)
		f, err := os.Open(src)
		require.NoError(t, err)
		stdin = f
		require.Equal(t, want, normalized(t, analyze(t, "-r", "-")), "%s: stdin differs", sc)
		stdin = os.Stdin
		f.Close()
	}
}

func TestSLL2LinkType(t *testing.T) {
	_, lt := readPcap(t, "../../testdata/lab/captures/quit_one/any.pcap")
	require.Equal(t, layers.LinkTypeLinuxSLL2, lt, "the lab's -i any capture must be SLL2")
}

// toSLL2 rewrites Ethernet frames as Linux cooked v2 (tcpdump -i any).
func toSLL2(ps []packet) []packet {
	out := make([]packet, len(ps))
	for i, p := range ps {
		h := make([]byte, 20)
		copy(h[0:2], p.data[12:14])         // protocol type
		h[4], h[5], h[6], h[7] = 0, 0, 0, 2 // interface index
		h[8], h[9] = 0, 1                   // ARPHRD_ETHER
		h[10] = 0                           // packet type: to us
		h[11] = 6                           // address length
		copy(h[12:18], p.data[6:12])        // source MAC
		d := append(h, p.data[14:]...)
		ci := p.ci
		ci.Length += 6
		out[i] = packet{ci, d}
	}
	return out
}

// withoutTimes drops every time-derived field (and the uid, a hash of the
// first timestamp) from normalized records.
func withoutTimes(t *testing.T, rs []string) []string {
	var out []string
	for _, s := range rs {
		var m any
		require.NoError(t, json.Unmarshal([]byte(s), &m))
		stripTimes(m)
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	return out
}

func stripTimes(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if k == "ts" || k == "uid" || k == "duration" || k == "capture_end" || strings.HasSuffix(k, "_ts") || strings.HasSuffix(k, "_s") {
				delete(x, k)
				continue
			}
			stripTimes(val)
		}
	case []any:
		for _, e := range x {
			stripTimes(e)
		}
	}
}
