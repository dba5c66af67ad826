package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A capture killed while writing: the last record is cut. That is a
// warning, the sessions are kept, the exit code is 0.
func TestTruncatedLastRecord(t *testing.T) {
	src, err := os.ReadFile("../../testdata/lab/captures/quit_one/server.pcap")
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "cut.pcap")
	require.NoError(t, os.WriteFile(p, src[:len(src)-20], 0o644))
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"analyze", "-q", "--json", "-r", p}, &out, &errb)
	assert.Equal(t, 0, code)
	assert.Contains(t, errb.String(), "last record truncated at byte offset")
	assert.Len(t, parseRecords(t, out.String()), 1)
}

// A damaged record in the middle: a clear error with file and offset,
// exit 1, and the sessions read before it are still reported.
func TestDamagedRecord(t *testing.T) {
	src, err := os.ReadFile("../../testdata/lab/captures/quit_multi/server.pcap")
	require.NoError(t, err)
	b := append([]byte(nil), src...)
	// The 20th record's header: make its captured length absurd.
	off := 24
	for i := 0; i < 20; i++ {
		caplen := int(b[off+8]) | int(b[off+9])<<8 | int(b[off+10])<<16 | int(b[off+11])<<24
		off += 16 + caplen
	}
	b[off+8], b[off+9], b[off+10], b[off+11] = 0xff, 0xff, 0xff, 0x7f
	p := filepath.Join(t.TempDir(), "damaged.pcap")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"analyze", "-q", "--json", "-r", p}, &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "damaged.pcap: record 21 at byte offset")
	assert.Len(t, parseRecords(t, out.String()), 1, "the session seen before the damage is reported")
}

// Unknown input is refused with its magic; usage errors exit 2.
func TestBadInputAndUsage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(p, []byte("hello world, not a capture"), 0o644))
	var out, errb bytes.Buffer
	assert.Equal(t, 1, run(context.Background(), []string{"analyze", "-r", p}, &out, &errb))
	assert.Contains(t, errb.String(), "unknown magic 68 65 6c 6c")
	errb.Reset()
	assert.Equal(t, 2, run(context.Background(), []string{"analyze"}, &out, &errb))
	assert.Equal(t, 2, run(context.Background(), []string{"analyze", "--bogus"}, &out, &errb))
	assert.Equal(t, 0, run(context.Background(), []string{"analyze", "--help"}, &out, &errb))
	assert.Equal(t, 1, run(context.Background(), []string{"analyze", "-r", p, "not a (filter"}, &out, &errb))
}

// IPv4 fragments of a TCP segment are reassembled before TCP.
func TestIPv4Fragments(t *testing.T) {
	ps, lt := readPcap(t, "../../testdata/lab/captures/quit_one/server.pcap")
	var frag []packet
	split := 0
	for _, p := range ps {
		pk := gopacket.NewPacket(p.data, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pk.NetworkLayer().(*layers.IPv4)
		tcp, _ := pk.TransportLayer().(*layers.TCP)
		if ip == nil || tcp == nil || len(tcp.Payload) < 40 {
			frag = append(frag, p)
			continue
		}
		// Split the IP payload (TCP header + data) at a multiple of 8.
		body := ip.Payload
		cut := 24
		for i, part := range [][]byte{body[:cut], body[cut:]} {
			h := *ip
			h.Flags, h.FragOffset = 0, uint16(i*cut/8)
			if i == 0 {
				h.Flags = layers.IPv4MoreFragments
			}
			buf := gopacket.NewSerializeBuffer()
			eth := pk.LinkLayer().(*layers.Ethernet)
			require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
				&layers.Ethernet{SrcMAC: eth.SrcMAC, DstMAC: eth.DstMAC, EthernetType: layers.EthernetTypeIPv4},
				&layers.IPv4{Version: 4, IHL: 5, TTL: h.TTL, Id: h.Id, Flags: h.Flags, FragOffset: h.FragOffset, Protocol: layers.IPProtocolTCP, SrcIP: net.IP(h.SrcIP), DstIP: net.IP(h.DstIP)},
				gopacket.Payload(part)))
			d := append([]byte(nil), buf.Bytes()...)
			ci := p.ci
			ci.CaptureLength, ci.Length = len(d), len(d)
			frag = append(frag, packet{ci, d})
		}
		split++
	}
	require.NotZero(t, split)
	p := filepath.Join(t.TempDir(), "frag.pcap")
	writePcap(t, p, lt, frag, false)
	want := analyze(t, "-r", "../../testdata/lab/captures/quit_one/server.pcap")
	got := analyze(t, "-r", p)
	require.Len(t, got, 1)
	assert.Equal(t, want[0].Ending.Verdict, got[0].Ending.Verdict)
	assert.Contains(t, got[0].raw, `"transactions":[{"mailfrom":"alice@client.lab.example"`, "the dialogue survives fragmentation")
}

// --stream writes the same records, in the order sessions end.
func TestStreamSameRecords(t *testing.T) {
	sorted := analyze(t, "-r", "../../testdata/lab/captures/all-server.pcapng")
	streamed := analyze(t, "--stream", "-r", "../../testdata/lab/captures/all-server.pcapng")
	require.Len(t, streamed, len(sorted))
	seen := map[string]bool{}
	for _, r := range sorted {
		seen[r.raw] = true
	}
	for _, r := range streamed {
		assert.True(t, seen[r.raw], "streamed record not in the sorted output: %.120s", r.raw)
	}
	// A selection by ICID is decided once every session is matched: not
	// with --stream (--stream with --esa-log is TestESAStreamedTruth).
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run(context.Background(), []string{"analyze", "--stream", "-r", "x", "--esa-log", "y", "--icid", "7"}, &out, &errb))
	assert.Contains(t, errb.String(), "--stream cannot be combined with --icid or --mid")
}

// The CLI's conveniences: --version, 'smtpcap -r' as analyze, and a hint
// for a mistyped command or flag.
func TestVersionShorthandAndHints(t *testing.T) {
	out, _, code := runRaw(t, "--version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "smtpcap "), out)
	require.Contains(t, out, "go1.")
	rs := analyze(t, "-r", "../../testdata/lab/captures/quit_one/server.pcap")
	out2, _, code := runRaw(t, "-q", "--json", "-r", "../../testdata/lab/captures/quit_one/server.pcap")
	require.Equal(t, 0, code)
	require.Equal(t, rs[0].raw+"\n", out2, "smtpcap -r … is smtpcap analyze -r …")
	_, errb, code := runRaw(t, "analyse", "-r", "x")
	require.Equal(t, 2, code)
	require.Contains(t, errb, `did you mean "analyze"?`)
	_, errb, code = runRaw(t, "analyze", "-r", "x", "--jsn")
	require.Equal(t, 2, code)
	require.Contains(t, errb, `did you mean "--json"?`)
}

// An identifier that is not one is a usage error, not a search.
func TestIdentifierFlags(t *testing.T) {
	for _, id := range []string{strings.Repeat("9", 400), "12a", "-5"} {
		_, errb, code := runRaw(t, "analyze", "-r", "x.pcap", "--esa-log", "y", "--icid", id)
		require.Equal(t, 2, code, errb)
		require.Contains(t, errb, "at most 18 digits")
	}
}
