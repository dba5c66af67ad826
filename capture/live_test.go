package capture

import (
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCounter64Wraps: libpcap's 32-bit counters are folded into 64 bits,
// right across a wrap.
func TestCounter64Wraps(t *testing.T) {
	var c counter64
	for _, s := range []struct {
		v    uint32
		want uint64
	}{
		{10, 10},
		{10, 10},
		{math.MaxUint32 - 5, math.MaxUint32 - 5},
		{4, math.MaxUint32 + 5}, // wrapped: 10 more
		{1000, math.MaxUint32 + 1001},
	} {
		c.update(s.v)
		require.Equal(t, s.want, c.total, "after %d", s.v)
	}
}

// TestOpenLiveNamesTheInterface: an interface that does not exist is an
// error naming it, and nothing is left open.
func TestOpenLiveNamesTheInterface(t *testing.T) {
	_, err := OpenLive(LiveOptions{Interfaces: []string{"nosuch0smtpcap"}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "nosuch0smtpcap")
	_, err = OpenLive(LiveOptions{})
	require.Error(t, err)
}

// TestDedupTwoMirrorPoints: the lab's captures at the server (s0) and at
// the firewall's client side (fwc), merged in time, are what a SPAN port
// mirroring both ports delivers: every packet that crossed the firewall
// twice, with another TTL and other MACs. Dedup drops exactly one copy of
// each packet seen at both points (counted here with tshark from the two
// files) except bare TCP segments without an IP ID, and in one capture
// alone it drops nothing, retransmissions included.
func TestDedupTwoMirrorPoints(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed")
	}
	retrans := 0
	for _, sc := range []string{"fw_idle_drop", "rst_mid_data", "quit_one", "fw_reject_content", "pipelining"} {
		dir := filepath.Join("..", "testdata", "lab", "captures", sc)
		srv, span := filepath.Join(dir, "server.pcap"), filepath.Join(dir, "span.pcap")
		a, b := packetKeys(t, srv), packetKeys(t, span)
		both := 0
		for k, n := range b {
			both += min(n, a[k])
		}
		retrans += countLines(t, "tshark", "-r", srv, "-Y", "tcp.analysis.retransmission", "-T", "fields", "-e", "frame.number")
		require.Equal(t, 0, dups(t, srv), "%s: one capture has no copies", sc)
		require.Equal(t, both, dups(t, srv, span), "%s: copies across the two mirror points", sc)
		require.Positive(t, both)
		t.Logf("%s: %d packets at the server, %d at the firewall, %d at both", sc, sum(a), sum(b), both)
	}
	require.Positive(t, retrans, "the scenarios include retransmissions, which are not copies")
}

func dups(t *testing.T, files ...string) int {
	src, err := Open(files, Options{})
	require.NoError(t, err)
	defer src.Close()
	d := NewDedup(0)
	for {
		f, ok := src.Next()
		if !ok {
			break
		}
		d.Duplicate(f.LinkType, f.CI.Timestamp, f.Data)
	}
	require.NoError(t, src.Err())
	return int(d.Dropped)
}

// packetKeys counts each IP packet of a file by its invariant fields, as
// tshark decodes them.
func packetKeys(t *testing.T, file string) map[string]int {
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-E", "separator=|", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.id",
		"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.flags", "-e", "tcp.len", "-e", "tcp.checksum").Output()
	require.NoError(t, err, "tshark -r %s", file)
	m := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Split(l, "|"); len(f) == 10 && f[2] == "0x0000" && f[8] == "0" {
			continue // no IP ID and no payload: never taken for a copy
		}
		m[l]++
	}
	return m
}

func countLines(t *testing.T, name string, args ...string) int {
	out, err := exec.Command(name, args...).Output()
	require.NoError(t, err, "%s %v", name, args)
	return strings.Count(string(out), "\n")
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}
