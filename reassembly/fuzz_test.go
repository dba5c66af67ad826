package reassembly

import (
	"flag"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// FuzzFrame: arbitrary frames of any supported link type never panic the
// decoder, reassembly or dialogue, and every session on an SMTP port that
// was opened is emitted exactly once at Close.
func FuzzFrame(f *testing.F) {
	if fh, err := os.Open("../testdata/lab/captures/quit_one/server.pcap"); err == nil {
		r, err := pcapgo.NewReader(fh)
		if err == nil {
			for i := 0; i < 30; i++ {
				d, _, err := r.ReadPacketData()
				if err != nil {
					break
				}
				f.Add(d, uint8(1))
			}
		}
		fh.Close()
	}
	// The first of them in ERSPAN III (with its subheader) and in VXLAN.
	if fh, err := os.Open("../testdata/lab/captures/quit_one/server.pcap"); err == nil {
		if r, err := pcapgo.NewReader(fh); err == nil {
			if d, _, err := r.ReadPacketData(); err == nil {
				mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
				for _, ls := range [][]gopacket.SerializableLayer{
					{&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}, &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: net.IP{203, 0, 113, 1}, DstIP: net.IP{203, 0, 113, 2}},
						&layers.GRE{Protocol: 0x22eb, SeqPresent: true, Seq: 1}, gopacket.Payload(append([]byte{0x20, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0}, d...))},
					{&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}, &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{203, 0, 113, 1}, DstIP: net.IP{203, 0, 113, 2}},
						&layers.UDP{SrcPort: 40000, DstPort: 4789}, &layers.VXLAN{ValidIDFlag: true, VNI: 42}, gopacket.Payload(d)},
				} {
					buf := gopacket.NewSerializeBuffer()
					if gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...) == nil {
						f.Add(append([]byte(nil), buf.Bytes()...), uint8(0))
					}
				}
			}
		}
		fh.Close()
	}
	f.Add([]byte{0x45, 0, 0, 40, 0, 1, 0x20, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2, 0x9c, 0x40, 0, 25, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0}, uint8(101))
	lts := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2, layers.LinkTypeRaw, layers.LinkTypeNull, layers.LinkTypeIPv4, layers.LinkTypeIPv6}
	f.Fuzz(func(t *testing.T, data []byte, ltSel uint8) {
		emitted := map[string]int{}
		a := New(Options{}, func(r *smtpstate.Record) { emitted[r.UID]++ })
		lt := lts[int(ltSel)%len(lts)]
		ts := time.Unix(1700000000, 0)
		for i := 0; i < 3; i++ {
			ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(data)}
			a.Frame(uint64(i+1), lt, ci, data)
		}
		a.Close()
		for uid, n := range emitted {
			if n != 1 {
				t.Fatalf("session %s emitted %d times", uid, n)
			}
		}
		st := a.Stats()
		if st.Frames != 3 {
			t.Fatalf("frames %d", st.Frames)
		}
	})
}

// update is accepted so that go test ./... -update works; the golden
// files live in cmd/smtpcap.
var _ = flag.Bool("update", false, "rewrite golden files (cmd/smtpcap)")
