package reassembly

import (
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/smtpcap/smtpcap/smtpstate"
)

type frameMaker struct {
	buf        gopacket.SerializeBuffer
	cseq, sseq uint32
	ts         time.Time
}

func (m *frameMaker) frame(fromClient bool, syn, fin bool, payload string) ([]byte, gopacket.CaptureInfo) {
	return m.frameFrom(net.IP{192, 0, 2, 10}, 40000, fromClient, syn, fin, payload)
}

func (m *frameMaker) frameFrom(cli net.IP, cport uint16, fromClient bool, syn, fin bool, payload string) ([]byte, gopacket.CaptureInfo) {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: cli, DstIP: net.IP{198, 51, 100, 25}}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(cport), DstPort: 25, Seq: m.cseq, Ack: m.sseq, ACK: !(syn && fromClient), SYN: syn, FIN: fin, Window: 500}
	if !fromClient {
		ip.SrcIP, ip.DstIP = ip.DstIP, ip.SrcIP
		tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = 25, layers.TCPPort(cport), m.sseq, m.cseq
	}
	tcp.SetNetworkLayerForChecksum(ip)
	if err := gopacket.SerializeLayers(m.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		panic(err)
	}
	adv := uint32(len(payload))
	if syn || fin {
		adv++
	}
	if fromClient {
		m.cseq += adv
	} else {
		m.sseq += adv
	}
	m.ts = m.ts.Add(50 * time.Microsecond)
	d := append([]byte(nil), m.buf.Bytes()...)
	return d, gopacket.CaptureInfo{Timestamp: m.ts, CaptureLength: len(d), Length: len(d)}
}

// TestSteadyStateDoesNotAllocate: once a session is inside DATA, in-order
// body segments and their ACKs go through decoding, reassembly, TCP facts
// and the end-of-data scanner without a single allocation (compare
// gopacket's TestFullyOrderedAndCompleteStreamDoesNotAlloc).
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	a := New(Options{}, func(*smtpstate.Record) {})
	m := &frameMaker{buf: gopacket.NewSerializeBuffer(), cseq: 1000, sseq: 90000, ts: time.Unix(1700000000, 0)}
	n := uint64(0)
	feed := func(c bool, syn, fin bool, p string) {
		d, ci := m.frame(c, syn, fin, p)
		n++
		a.Frame(n, layers.LinkTypeEthernet, ci, d)
	}
	feed(true, true, false, "")
	feed(false, true, false, "")
	feed(true, false, false, "")
	for _, x := range []struct {
		c bool
		p string
	}{{false, "220 mx ESMTP\r\n"}, {true, "EHLO c\r\n"}, {false, "250 mx\r\n"}, {true, "MAIL FROM:<a@b>\r\n"}, {false, "250 ok\r\n"},
		{true, "RCPT TO:<c@d>\r\n"}, {false, "250 ok\r\n"}, {true, "DATA\r\n"}, {false, "354 go\r\n"}} {
		feed(x.c, false, false, x.p)
	}
	line := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n"
	body := ""
	for len(body) < 1400 {
		body += line
	}
	// Pre-build the frames so that only the analyzer is measured.
	const runs = 200
	var frames [][]byte
	var cis []gopacket.CaptureInfo
	for i := 0; i < 2*(runs+2); i++ { // AllocsPerRun adds a warm-up run
		d, ci := m.frame(i%2 == 0, false, false, map[bool]string{true: body, false: ""}[i%2 == 0])
		frames, cis = append(frames, d), append(cis, ci)
	}
	i := 0
	step := func() {
		n++
		a.Frame(n, layers.LinkTypeEthernet, cis[i], frames[i])
		i++
		n++
		a.Frame(n, layers.LinkTypeEthernet, cis[i], frames[i])
		i++
	}
	step() // warm up
	allocs := testing.AllocsPerRun(runs, step)
	if allocs != 0 {
		t.Fatalf("%.2f allocations per body segment + ACK in the steady state", allocs)
	}
}
