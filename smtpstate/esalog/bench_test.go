package esalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// BenchmarkReader measures parse throughput (MB/s) on mail_logs lines of
// the lab's log repeated to 16 MB. Issue target: >= 200 MB/s on one core.
func BenchmarkReader(b *testing.B) {
	seed, err := os.ReadFile("../../testdata/lab/captures/mail.current")
	if err != nil {
		b.Skip("lab log not found")
	}
	var buf bytes.Buffer
	for buf.Len() < 16<<20 {
		buf.Write(seed)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := NewReader(bytes.NewReader(data), "bench", Options{Year: 2026})
		n := 0
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			n++
		}
		if n == 0 {
			b.Fatal("no lines")
		}
	}
}

// BenchmarkMatchOneBigSender: 3000 sessions from one address, 10 a second,
// identical envelopes and sizes, no Message-ID: the worst case for the
// assignment (every session ties with its neighbours).
func BenchmarkMatchOneBigSender(b *testing.B) {
	const n = 3000
	var lb strings.Builder
	lb.WriteString("Thu Nov 26 11:00:00 2026 Info: Time offset from UTC: 3600 seconds\n")
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		at := t0.Add(time.Hour + time.Duration(i)*100*time.Millisecond).Format("Mon Jan _2 15:04:05 2006")
		fmt.Fprintf(&lb, "%s Info: New SMTP ICID %d interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no\n", at, 1000+i)
		fmt.Fprintf(&lb, "%s Info: Start MID %d ICID %d\n%s Info: MID %d ICID %d From: <a@x>\n%s Info: MID %d ICID %d RID 0 To: <b@y>\n%s Info: MID %d ready 500 bytes from <a@x>\n%s Info: ICID %d close\n",
			at, 5000+i, 1000+i, at, 5000+i, 1000+i, at, 5000+i, 1000+i, at, 5000+i, at, 1000+i)
	}
	r := NewReader(strings.NewReader(lb.String()), "mail.current", Options{Year: 2026})
	lg := &Log{Offsets: map[string]int{"mail.current": 3600}, Files: []string{"mail.current"}}
	for {
		l, err := r.Next()
		if err != nil {
			break
		}
		lg.Lines = append(lg.Lines, l)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for k := 0; k < b.N; k++ {
		var rs []*smtpstate.Record
		for i := 0; i < n; i++ {
			st := t0.Add(time.Duration(i)*100*time.Millisecond + 20*time.Millisecond)
			rs = append(rs, &smtpstate.Record{OrigH: "192.0.2.10", OrigP: uint16(10000 + i), RespH: "198.51.100.25", RespP: 25,
				TS: smtpstate.Time{Time: st}, EndTS: smtpstate.Time{Time: st.Add(50 * time.Millisecond)}, Commands: 5,
				Trans: []smtpstate.Transaction{{MailFrom: "a@x", MailReply: "250 ok", Rcpts: []smtpstate.Rcpt{{Addr: "b@y", Reply: "250 ok"}}, BodyBytes: 350, Outcome: "accepted"}}})
		}
		res := Match(rs, lg, MatchOptions{})
		if res.Matched != n {
			b.Fatalf("matched %d of %d", res.Matched, n)
		}
		right := 0
		for i, r := range rs {
			if r.ESA.ICID == fmt.Sprint(1000+i) {
				right++
			} else if len(r.ESA.Ambiguous) == 0 {
				b.Fatalf("session %d: wrong ICID %s without a mark", i, r.ESA.ICID)
			}
		}
		b.ReportMetric(float64(right)/n, "right/session")
	}
}
