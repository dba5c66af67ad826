package main

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// reuseCapture builds three connections on one 4-tuple (the same client
// port), each a short SMTP dialogue ended by close, the next one starting
// gap after the previous one's last packet, each with its own ISNs. It
// returns the packets and the frame number of each connection's SYN.
func reuseCapture(close string, gap time.Duration) ([]packet, []int) {
	cli, srv := net.IP{192, 0, 2, 10}, net.IP{198, 51, 100, 25}
	ts := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
	var ps []packet
	var syns []int
	buf := gopacket.NewSerializeBuffer()
	var cseq, sseq uint32
	emit := func(fromClient bool, flags string, payload string) {
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(len(ps)), Protocol: layers.IPProtocolTCP, SrcIP: cli, DstIP: srv}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 25, Seq: cseq, Ack: sseq, Window: 500}
		if !fromClient {
			ip.SrcIP, ip.DstIP, ip.TTL = srv, cli, 63
			tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = 25, 40000, sseq, cseq
		}
		for _, f := range flags {
			switch f {
			case 'S':
				tcp.SYN = true
			case 'A':
				tcp.ACK = true
			case 'F':
				tcp.FIN = true
			case 'R':
				tcp.RST = true
			case 'P':
				tcp.PSH = true
			}
		}
		if !tcp.ACK {
			tcp.Ack = 0
		}
		tcp.SetNetworkLayerForChecksum(ip)
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
			panic(err)
		}
		adv := uint32(len(payload))
		if tcp.SYN || tcp.FIN {
			adv++
		}
		if fromClient {
			cseq += adv
		} else {
			sseq += adv
		}
		ts = ts.Add(2 * time.Millisecond)
		d := append([]byte(nil), buf.Bytes()...)
		ps = append(ps, packet{gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, d})
	}
	for i := 0; i < 3; i++ {
		cseq, sseq = 4000000*uint32(i+1)+7, 3000000000+4000000*uint32(i+1)
		syns = append(syns, len(ps)+1)
		emit(true, "S", "")
		emit(false, "SA", "")
		emit(true, "A", "")
		emit(false, "PA", "220 mx.example ESMTP\r\n")
		emit(true, "PA", "EHLO c.example\r\n")
		emit(false, "PA", "250 mx.example\r\n")
		emit(true, "PA", "QUIT\r\n")
		emit(false, "PA", "221 Bye\r\n")
		switch close {
		case "fin_fin":
			emit(false, "FA", "")
			emit(true, "FA", "")
			emit(false, "A", "")
		case "client_rst":
			emit(true, "RA", "")
		case "server_rst":
			emit(false, "RA", "")
		case "client_fin":
			emit(true, "FA", "")
			emit(false, "A", "")
		case "open":
			emit(true, "A", "")
		}
		ts = ts.Add(gap)
	}
	return ps, syns
}

// TestPortReuse: every close kind x reuse gap gives one record per TCP
// connection — the count tshark gives, each starting at its own SYN.
func TestPortReuse(t *testing.T) {
	needTool(t, "tshark")
	dir := t.TempDir()
	for _, close := range []string{"fin_fin", "client_rst", "server_rst", "client_fin", "open"} {
		for _, gap := range []time.Duration{time.Second, 30 * time.Second, 3 * time.Hour} {
			t.Run(fmt.Sprintf("%s/%s", close, gap), func(t *testing.T) {
				ps, syns := reuseCapture(close, gap)
				f := filepath.Join(dir, fmt.Sprintf("%s-%d.pcap", close, gap/time.Second))
				writePcap(t, f, layers.LinkTypeEthernet, ps, false)
				require.Equal(t, 3, tsharkConversations(t, f), "tshark's count")
				for _, w := range []string{"1", "2"} {
					rs := analyze(t, "-r", f, "--workers", w)
					require.Len(t, rs, 3, "one record per connection (workers %s)", w)
					for i, r := range rs {
						var first struct {
							FirstFrame int    `json:"first_frame"`
							RoleBasis  string `json:"role_basis"`
							EndReason  string `json:"end_reason"`
						}
						require.NoError(t, jsonUnmarshal(r.raw, &first))
						require.Equal(t, syns[i], first.FirstFrame, "connection %d starts at its SYN", i+1)
						require.Equal(t, "syn", first.RoleBasis)
						require.NotContains(t, r.Ending.Flags, "capture_loss", "no false capture loss from reuse")
						if close == "open" && gap < 2*time.Hour && i < 2 {
							require.Equal(t, "reused", first.EndReason, "an open connection ended by a new SYN says so")
						}
					}
				}
			})
		}
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestPortReuseHandshakeLost: the capture lost the SYN and SYN-ACK of the
// second and third connection on the 4-tuple (their ISNs are new: seq and
// ack both far from where the old connection stood). Each is still a
// session of its own, from its first captured packet, once the previous
// one has ended - not strays, not merged into the old record. (An old
// connection never closed is left out: nothing tells its end.)
func TestPortReuseHandshakeLost(t *testing.T) {
	dir := t.TempDir()
	for _, close := range []string{"fin_fin", "client_rst", "server_rst", "client_fin"} {
		for _, gap := range []time.Duration{time.Second, 30 * time.Second, 3 * time.Hour} {
			t.Run(fmt.Sprintf("%s/%s", close, gap), func(t *testing.T) {
				ps, syns := reuseCapture(close, gap)
				var kept []packet
				var firsts []int
				for i, p := range ps {
					frame := i + 1
					if frame == syns[1] || frame == syns[1]+1 || frame == syns[2] || frame == syns[2]+1 {
						continue // the lost handshake
					}
					if frame == syns[0] || frame == syns[1]+2 || frame == syns[2]+2 {
						firsts = append(firsts, len(kept)+1)
					}
					kept = append(kept, p)
				}
				f := filepath.Join(dir, fmt.Sprintf("%s-%d.pcap", close, gap/time.Second))
				writePcap(t, f, layers.LinkTypeEthernet, kept, false)
				for _, w := range []string{"1", "2"} {
					rs := analyze(t, "-r", f, "--workers", w)
					require.Len(t, rs, 3, "one record per connection (workers %s)", w)
					for i, r := range rs {
						var first struct {
							FirstFrame int `json:"first_frame"`
						}
						require.NoError(t, jsonUnmarshal(r.raw, &first))
						require.Equal(t, firsts[i], first.FirstFrame, "connection %d starts at its first captured packet", i+1)
					}
				}
			})
		}
	}
}
