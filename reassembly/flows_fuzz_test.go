package reassembly

import (
	"encoding/json"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// FuzzFlows plays a program of segments on four 4-tuples (two of them the
// same client port towards two servers, with reuse, RSTs, FINs, gaps,
// retransmissions, reordering and pipelined SMTP lines) and checks what
// must hold whatever the order:
//   - every record comes out once, and exactly one record carries each
//     distinct (4-tuple, ISN) of the client SYNs sent: one record per
//     connection attempt, none merged, none lost;
//   - records come out in the order their sessions began;
//   - with 1 and 2 workers the records are the same;
//   - no credential sent after AUTH comes out, and the heap stays bounded.
func FuzzFlows(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0x02, 0x13, 0x24, 0x35, 0x46, 0x57, 0x08, 0x80, 0x91})
	f.Add([]byte{0x00, 0x10, 0x20, 0x30, 0x0c, 0x0d, 0x00, 0x1c, 0x10, 0x2f})
	f.Add([]byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x00, 0x0b, 0x00})
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 400 {
			prog = prog[:400]
		}
		frames, syns := flowProgram(prog)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		defer func() {
			runtime.ReadMemStats(&after)
			if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 64<<20 {
				t.Fatalf("heap grew by %d MB for %d frames", grown>>20, len(frames))
			}
		}()
		var recs [2][]*smtpstate.Record
		for wi, workers := range []int{1, 2} {
			a := NewPipeline(Options{Workers: workers}, nil, func(v any) { recs[wi] = append(recs[wi], v.(*smtpstate.Record)) })
			for i, fr := range frames {
				a.Frame(uint64(i+1), layers.LinkTypeEthernet, fr.ci, fr.data)
			}
			a.Close()
		}
		rs := recs[0]
		for _, r := range rs {
			b, _ := json.Marshal(r)
			if strings.Contains(strings.ToUpper(string(b)), strings.ToUpper(flowSecret)) || strings.Contains(string(b), "secret-secret") {
				t.Fatalf("a credential in the record: %s", b)
			}
		}
		seen := map[*smtpstate.Record]bool{}
		got := map[synKey]int{}
		for i, r := range rs {
			if seen[r] {
				t.Fatalf("record %s emitted twice", r.UID)
			}
			seen[r] = true
			if i > 0 && rs[i-1].FirstFrame >= r.FirstFrame {
				t.Fatalf("records out of order: frame %d after %d", r.FirstFrame, rs[i-1].FirstFrame)
			}
			if r.Client.SYNs > 0 && r.RoleBasis == "syn" {
				got[synKey{r.OrigH, r.OrigP, r.RespP, r.Client.ISN}]++
			}
		}
		for k := range syns {
			if got[k] != 1 {
				t.Fatalf("client SYN %+v: %d records (want 1); %d records in all", k, got[k], len(rs))
			}
		}
		for k, n := range got {
			if !syns[k] {
				t.Fatalf("record for %+v (x%d) that no SYN opened", k, n)
			}
		}
		if len(recs[1]) != len(rs) {
			t.Fatalf("%d records with 1 worker, %d with 2", len(rs), len(recs[1]))
		}
		for i := range rs {
			a, _ := json.Marshal(rs[i])
			b, _ := json.Marshal(recs[1][i])
			if string(a) != string(b) {
				t.Fatalf("record %d differs between 1 and 2 workers:\n%s\n%s", i, a, b)
			}
		}
	})
}

type synKey struct {
	cli         string
	cport, sprt uint16
	isn         uint32
}

type frame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// flowSecret is a credential the program may send (base64 of
// "secret-secret-1234"): it must never come out.
const flowSecret = "c2VjcmV0LXNlY3JldC0xMjM0"

var flowLines = []string{"220 mx ESMTP\r\n", "EHLO c\r\n", "250 ok\r\n", "MAIL FROM:<a@b>\r\n", "RCPT TO:<c@d>\r\n",
	"DATA\r\n", "354 go\r\n", "body line\r\n.\r\n", "QUIT\r\n", "221 bye\r\n", "xx", "",
	"AUTH PLAIN " + flowSecret + "\r\n", "AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n", flowSecret + "\r\n", "235 ok\r\n"}

// flowProgram turns bytes into frames: each byte picks a flow (2 bits), a
// direction, and an action; it also returns the client SYNs (4-tuple, ISN)
// it sent.
func flowProgram(prog []byte) ([]frame, map[synKey]bool) {
	type flow struct {
		cport, sport uint16
		cseq, sseq   uint32
		gen          uint32
	}
	flows := []*flow{{cport: 40000, sport: 25}, {cport: 40000, sport: 587}, {cport: 40001, sport: 25}, {cport: 40002, sport: 25}}
	ts := time.Unix(1700000000, 0)
	buf := gopacket.NewSerializeBuffer()
	var out []frame
	syns := map[synKey]bool{}
	cli, srv := net.IP{192, 0, 2, 10}, net.IP{198, 51, 100, 25}
	for _, op := range prog {
		fl := flows[op&3]
		fromClient := op&4 == 0
		act := op >> 3
		tcp := &layers.TCP{SrcPort: layers.TCPPort(fl.cport), DstPort: layers.TCPPort(fl.sport), Seq: fl.cseq, Ack: fl.sseq, ACK: true, Window: 500}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: cli, DstIP: srv}
		if !fromClient {
			ip.SrcIP, ip.DstIP, ip.TTL = srv, cli, 63
			tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = layers.TCPPort(fl.sport), layers.TCPPort(fl.cport), fl.sseq, fl.cseq
		}
		var payload string
		adv := 0
		switch {
		case act == 0: // a new connection attempt (new ISNs), or its retransmission
			if fromClient {
				fl.gen++
				fl.cseq, fl.sseq = 1000000*fl.gen+uint32(fl.cport), 2000000000+7777*fl.gen
				tcp.Seq, tcp.SYN, tcp.ACK, tcp.Ack = fl.cseq, true, false, 0
				adv = 1
				syns[synKey{cli.String(), fl.cport, fl.sport, fl.cseq}] = true
			} else {
				tcp.SYN, tcp.Seq, tcp.Ack = true, fl.sseq, fl.cseq
				adv = 1
			}
		case act == 1: // retransmit the client's last SYN
			if fl.gen == 0 {
				continue
			}
			tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.SYN, tcp.ACK, tcp.Ack = layers.TCPPort(fl.cport), layers.TCPPort(fl.sport), 1000000*fl.gen+uint32(fl.cport), true, false, 0
			ip.SrcIP, ip.DstIP = cli, srv
		case act == 2:
			tcp.RST = true
		case act == 3:
			tcp.FIN = true
			adv = 1
		case act == 4: // skip ahead: bytes the capture lost
			adv = 37
			payload = ""
		case act == 5: // a stale retransmission
			tcp.Seq -= 5
			payload = "stale"
		default:
			payload = flowLines[int(act)%len(flowLines)]
			adv = len(payload)
		}
		tcp.SetNetworkLayerForChecksum(ip)
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
			panic(err)
		}
		if act != 4 && act != 1 {
			d := append([]byte(nil), buf.Bytes()...)
			ts = ts.Add(time.Millisecond)
			out = append(out, frame{gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, d})
		}
		if act == 1 {
			d := append([]byte(nil), buf.Bytes()...)
			ts = ts.Add(time.Millisecond)
			out = append(out, frame{gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, d})
		}
		if fromClient {
			fl.cseq += uint32(adv)
		} else {
			fl.sseq += uint32(adv)
		}
	}
	return out, syns
}
