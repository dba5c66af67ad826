package reassembly

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// BenchmarkOpenConnections measures the cost of one in-order DATA segment
// with 10 to 100,000 connections open at once (round robin over them): it
// must stay flat, as nothing on the per-packet path walks the connections.
func BenchmarkOpenConnections(b *testing.B) {
	for _, n := range []int{10, 1000, 10000, 100000} {
		b.Run(fmt.Sprintf("open=%d", n), func(b *testing.B) {
			a := New(Options{}, func(*smtpstate.Record) {})
			f, seqs := openConnections(a, n)
			ts := time.Unix(1700000000, 0)
			num := uint64(1 << 32)
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// One frame buffer, as the reader's: the connection's
				// address, port and sequence number are written into it.
				c := i % n
				f[29] = byte(1 + c/60000)
				binary.BigEndian.PutUint16(f[34:], uint16(1024+c%60000))
				binary.BigEndian.PutUint32(f[38:], seqs[c])
				seqs[c] += uint32(len(f) - 54)
				ts = ts.Add(time.Microsecond)
				num++
				a.Frame(num, layers.LinkTypeEthernet, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(f), Length: len(f)}, f)
			}
		})
	}
}

// openConnections opens n SMTP sessions up to DATA and returns a client
// body segment to replay and each session's next sequence number.
func openConnections(a *Analyzer, n int) ([]byte, []uint32) {
	var frame []byte
	seqs := make([]uint32, n)
	num := uint64(0)
	body := make([]byte, 0, 200)
	for len(body) < 198 {
		body = append(body, 'x')
	}
	body = append(body, '\r', '\n')
	for c := 0; c < n; c++ {
		m := &frameMaker{buf: gopacket.NewSerializeBuffer(), cseq: 1000, sseq: 90000, ts: time.Unix(1700000000, 0)}
		port := uint16(1024 + c%60000)
		cli := net.IP{192, 0, 2, byte(1 + c/60000)}
		feed := func(fromClient, syn bool, p string) {
			d, ci := m.frameFrom(cli, port, fromClient, syn, false, p)
			num++
			a.Frame(num, layers.LinkTypeEthernet, ci, d)
		}
		feed(true, true, "")
		feed(false, true, "")
		feed(true, false, "")
		for _, x := range []struct {
			c bool
			p string
		}{{false, "220 mx ESMTP\r\n"}, {true, "EHLO c\r\n"}, {false, "250 mx\r\n"}, {true, "MAIL FROM:<a@b>\r\n"}, {false, "250 ok\r\n"},
			{true, "RCPT TO:<c@d>\r\n"}, {false, "250 ok\r\n"}, {true, "DATA\r\n"}, {false, "354 go\r\n"}} {
			feed(x.c, false, x.p)
		}
		seqs[c] = m.cseq
		if frame == nil {
			frame, _ = m.frameFrom(cli, port, true, false, false, string(body))
		}
	}
	return frame, seqs
}
