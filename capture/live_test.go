package capture

import (
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
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

// TestDedupHandlesRunAhead: two mirror points read through separate handles
// reach the deduplicator in batches, one running 300 ms ahead of the other:
// each copy is still recognised by its stamp (within the window of its
// original), and a real retransmission 200 ms later is not a copy.
func TestDedupHandlesRunAhead(t *testing.T) {
	pkt := func(id byte) []byte {
		b := make([]byte, 14+20+20+4)
		b[12], b[13] = 0x08, 0x00
		ip := b[14:]
		ip[0], ip[3], ip[5], ip[9] = 0x45, 44, id, 6
		copy(ip[12:], []byte{192, 0, 2, 10, 198, 51, 100, 25})
		ip[20+12] = 5 << 4 // TCP data offset
		copy(ip[40:], "DATA")
		return b
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	d := NewDedup(30 * time.Millisecond)
	// Handle A: 30 packets 10 ms apart (300 ms), then handle B's copies of
	// them, each stamped 1 ms after its original.
	for i := 0; i < 30; i++ {
		require.False(t, d.Duplicate(layers.LinkTypeEthernet, t0.Add(time.Duration(i)*10*time.Millisecond), pkt(byte(i))))
	}
	for i := 0; i < 30; i++ {
		require.True(t, d.Duplicate(layers.LinkTypeEthernet, t0.Add(time.Duration(i)*10*time.Millisecond+time.Millisecond), pkt(byte(i))), "copy %d", i)
	}
	// The same bytes stamped 200 ms after the original: not a copy.
	require.False(t, d.Duplicate(layers.LinkTypeEthernet, t0.Add(500*time.Millisecond), pkt(29)))
	require.EqualValues(t, 30, d.Dropped)
}

// TestDedupInsideTunnels: a remote mirror's two copies of a packet differ
// in the outer IP ID and the GRE sequence number; Dedup compares what the
// tunnel carries (ERSPAN II, ERSPAN III with its subheader, GRE, VXLAN),
// and a retransmission inside the tunnel (new inner IP ID) is no copy.
func TestDedupInsideTunnels(t *testing.T) {
	ser := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...))
		return append([]byte(nil), buf.Bytes()...)
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	inner := func(id uint16) []byte {
		return ser(&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, IHL: 5, TTL: 63, Id: id, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{192, 0, 2, 10}, DstIP: net.IP{198, 51, 100, 25}},
			&layers.TCP{SrcPort: 40000, DstPort: 25, Seq: 1000, ACK: true, PSH: true, DataOffset: 5}, gopacket.Payload("DATA\r\n"))
	}
	outer := func(id uint16, p layers.IPProtocol, rest ...gopacket.SerializableLayer) []byte {
		ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Protocol: p, SrcIP: net.IP{203, 0, 113, 1}, DstIP: net.IP{203, 0, 113, 2}}}
		return ser(append(ls, rest...)...)
	}
	e3 := func(sub bool) []byte {
		h := []byte{0x20, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0}
		if sub {
			h[11] = 1
			h = append(h, make([]byte, 8)...)
		}
		return h
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for name, wrap := range map[string]func(id uint16, in []byte) []byte{
		"erspan2": func(id uint16, in []byte) []byte {
			return outer(id, layers.IPProtocolGRE, &layers.GRE{Protocol: layers.EthernetTypeERSPAN, SeqPresent: true, Seq: uint32(id)},
				&layers.ERSPANII{Version: 1, SessionID: 7, Index: uint32(id)}, gopacket.Payload(in))
		},
		"erspan3": func(id uint16, in []byte) []byte {
			return outer(id, layers.IPProtocolGRE, &layers.GRE{Protocol: 0x22eb, SeqPresent: true, Seq: uint32(id)}, gopacket.Payload(append(e3(true), in...)))
		},
		"gre-teb": func(id uint16, in []byte) []byte {
			return outer(id, layers.IPProtocolGRE, &layers.GRE{Protocol: layers.EthernetTypeTransparentEthernetBridging}, gopacket.Payload(in))
		},
		"vxlan": func(id uint16, in []byte) []byte {
			return outer(id, layers.IPProtocolUDP, &layers.UDP{SrcPort: layers.UDPPort(40000 + id), DstPort: 4789}, &layers.VXLAN{ValidIDFlag: true, VNI: 42}, gopacket.Payload(in))
		},
	} {
		d := NewDedup(30 * time.Millisecond)
		require.False(t, d.Duplicate(layers.LinkTypeEthernet, t0, wrap(1, inner(77))), name)
		require.True(t, d.Duplicate(layers.LinkTypeEthernet, t0.Add(time.Millisecond), wrap(2, inner(77))), "%s: the mirror's second copy", name)
		require.False(t, d.Duplicate(layers.LinkTypeEthernet, t0.Add(2*time.Millisecond), wrap(3, inner(78))), "%s: a new inner IP ID is no copy", name)
	}
}
