// Command gen writes a large synthetic SMTP capture for benchmarks: many
// ESMTP sessions interleaved, each a full dialogue with a multi-segment
// message body, clean handshakes and closes, 10 % IPv6.
//
// usage: go run ./testdata/bench/gen -o big.pcap [-sessions 6000] [-body 51200]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

type sess struct {
	cli, srv   net.IP
	cport      uint16
	v6         bool
	cseq, sseq uint32
	steps      [][2]string // direction ("C"/"S") and payload
	i          int
	body       []byte
	bodyOff    int
	fin        int
}

func main() {
	out := flag.String("o", "big.pcap", "output file")
	n := flag.Int("sessions", 6000, "sessions")
	bodyLen := flag.Int("body", 51200, "message body bytes")
	par := flag.Int("parallel", 64, "sessions interleaved at a time")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		log.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	line := make([]byte, 0, 78)
	for i := 0; i < 76; i++ {
		line = append(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rng.Intn(64)])
	}
	line = append(line, '\r', '\n')
	body := []byte("From: a@example.com\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n")
	for len(body) < *bodyLen {
		body = append(body, line...)
	}
	body = append(body, ".\r\n"...)
	ts := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	packets, bytes := 0, 0
	write := func(s *sess, fromClient bool, flags string, payload []byte) {
		ts = ts.Add(20 * time.Microsecond)
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(s.cport), DstPort: 25, Seq: s.cseq, Ack: s.sseq, Window: 502, ACK: true}
		src, dst := s.cli, s.srv
		if !fromClient {
			tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = 25, layers.TCPPort(s.cport), s.sseq, s.cseq
			src, dst = s.srv, s.cli
			eth.SrcMAC, eth.DstMAC = eth.DstMAC, eth.SrcMAC
		}
		for _, c := range flags {
			switch c {
			case 'S':
				tcp.SYN = true
			case 'F':
				tcp.FIN = true
			case 'P':
				tcp.PSH = true
			case '0':
				tcp.ACK = false
			}
		}
		var nl gopacket.SerializableLayer
		if s.v6 {
			eth.EthernetType = layers.EthernetTypeIPv6
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
			tcp.SetNetworkLayerForChecksum(ip)
			nl = ip
		} else {
			ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst, Flags: layers.IPv4DontFragment}
			tcp.SetNetworkLayerForChecksum(ip)
			nl = ip
		}
		if err := gopacket.SerializeLayers(buf, opts, eth, nl, tcp, gopacket.Payload(payload)); err != nil {
			log.Fatal(err)
		}
		d := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, d); err != nil {
			log.Fatal(err)
		}
		packets++
		bytes += len(d)
		adv := uint32(len(payload))
		if tcp.SYN || tcp.FIN {
			adv++
		}
		if fromClient {
			s.cseq += adv
		} else {
			s.sseq += adv
		}
	}
	newSess := func(k int) *sess {
		s := &sess{cport: uint16(1024 + k%60000), cseq: rng.Uint32(), sseq: rng.Uint32(), body: body}
		if k%10 == 9 {
			s.v6 = true
			s.cli = net.ParseIP(fmt.Sprintf("2001:db8:1::%x", k%65000+1))
			s.srv = net.ParseIP("2001:db8:2::25")
		} else {
			s.cli = net.IPv4(192, 0, 2, byte(1+k%250)).To4()
			s.srv = net.IPv4(198, 51, 100, 25).To4()
		}
		s.steps = [][2]string{{"S", "220 mx.example.org ESMTP\r\n"}, {"C", "EHLO client.example.com\r\n"},
			{"S", "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"},
			{"C", fmt.Sprintf("MAIL FROM:<a%d@example.com> SIZE=%d\r\n", k, len(body))}, {"S", "250 2.1.0 Ok\r\n"},
			{"C", "RCPT TO:<b@example.org>\r\n"}, {"S", "250 2.1.5 Ok\r\n"}, {"C", "DATA\r\n"},
			{"S", "354 End data with <CR><LF>.<CR><LF>\r\n"}, {"B", ""}, {"S", "250 2.0.0 Ok: queued as 4F2A1C0\r\n"},
			{"C", "QUIT\r\n"}, {"S", "221 2.0.0 Bye\r\n"}}
		return s
	}
	// advance one session by one packet; false when it is done
	step := func(s *sess) bool {
		switch {
		case s.i == 0:
			write(s, true, "S0", nil)
		case s.i == 1:
			write(s, false, "S", nil)
		case s.i == 2:
			write(s, true, "", nil)
		case s.i-3 < len(s.steps):
			st := s.steps[s.i-3]
			switch st[0] {
			case "C":
				write(s, true, "P", []byte(st[1]))
			case "S":
				write(s, false, "P", []byte(st[1]))
			case "B":
				n := min(1448, len(s.body)-s.bodyOff)
				write(s, true, "P", s.body[s.bodyOff:s.bodyOff+n])
				s.bodyOff += n
				if s.bodyOff%(2*1448) == 0 {
					write(s, false, "", nil) // delayed ACK
				}
				if s.bodyOff < len(s.body) {
					return true
				}
			}
		case s.fin == 0:
			write(s, false, "F", nil)
			s.fin++
			return true
		case s.fin == 1:
			write(s, true, "F", nil)
			s.fin++
			return true
		case s.fin == 2:
			write(s, false, "", nil)
			return false
		}
		s.i++
		return true
	}
	active := []*sess{}
	next := 0
	for next < *n || len(active) > 0 {
		for len(active) < *par && next < *n {
			active = append(active, newSess(next))
			next++
		}
		k := rng.Intn(len(active))
		if !step(active[k]) {
			active = append(active[:k], active[k+1:]...)
		}
	}
	if err := bw.Flush(); err != nil {
		log.Fatal(err)
	}
	f.Close()
	fmt.Fprintf(os.Stderr, "gen: %d sessions, %d packets, %d bytes of frames\n", *n, packets, bytes)
}
