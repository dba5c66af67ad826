package reassembly

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// TestFragmentFloodIsBounded: 200,000 IPv4 first fragments of TCP segments
// whose datagrams never complete hold at most the fragment cap, and the
// ones given up are counted.
func TestFragmentFloodIsBounded(t *testing.T) {
	a := New(Options{}, func(*smtpstate.Record) {})
	buf := gopacket.NewSerializeBuffer()
	payload := make([]byte, 1400)
	ts := time.Unix(1700000000, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 200000; i++ {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, Id: uint16(i), Flags: layers.IPv4MoreFragments,
			SrcIP: net.IP{192, 0, 2, byte(1 + i>>16)}, DstIP: net.IP{198, 51, 100, 25}}
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ip, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		d := buf.Bytes()
		ts = ts.Add(10 * time.Microsecond)
		a.Frame(uint64(i+1), layers.LinkTypeRaw, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, d)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := a.Stats()
	if st.Fragments != 200000 {
		t.Fatalf("fragments counted: %d", st.Fragments)
	}
	if st.FragmentsDropped == 0 {
		t.Fatal("no unfinished datagram was given up")
	}
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 96<<20 {
		t.Fatalf("heap grew by %d MB holding fragments that never complete", grown>>20)
	}
	t.Logf("200,000 fragments: %d datagrams given up, heap +%d MB", st.FragmentsDropped, (int64(after.HeapInuse)-int64(before.HeapInuse))>>20)
	a.Close()
}

// TestSYNScanIsLight: 200,000 bare SYNs that are never answered (a scan)
// are held as light half-open sessions, and every one of them still comes
// out as its own record.
func TestSYNScanIsLight(t *testing.T) {
	n := 0
	a := New(Options{}, func(r *smtpstate.Record) { n++ })
	buf := gopacket.NewSerializeBuffer()
	ts := time.Unix(1700000000, 0)
	var before, mid runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const scans = 200000
	for i := 0; i < scans; i++ {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IP{203, 0, 113, byte(i >> 16)}, DstIP: net.IP{198, 51, 100, 25}}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(1024 + i&0xffff>>1), DstPort: 25, Seq: uint32(i) * 7919, SYN: true, Window: 1024}
		if i&1 == 1 {
			tcp.DstPort = 587
		}
		tcp.SetNetworkLayerForChecksum(ip)
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ip, tcp); err != nil {
			t.Fatal(err)
		}
		d := buf.Bytes()
		ts = ts.Add(5 * time.Microsecond)
		a.Frame(uint64(i+1), layers.LinkTypeRaw, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, d)
	}
	runtime.GC()
	runtime.ReadMemStats(&mid)
	held := int64(mid.HeapInuse) - int64(before.HeapInuse)
	a.Close()
	if n != scans {
		t.Fatalf("%d records for %d SYNs", n, scans)
	}
	if per := held / scans; per > 1024 {
		t.Fatalf("a half-open session holds %d bytes", per)
	}
	t.Logf("%d SYNs held in %d MB (%d bytes each), %d records", scans, held>>20, held/scans, n)
}
