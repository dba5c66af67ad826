package smtpstate

import (
	"encoding/json"
	"flag"
	"testing"
	"time"
)

// FuzzConn feeds arbitrary client and server bytes, split arbitrarily, and
// checks invariants: no panic, the record is the same however the bytes
// are cut, bounded lists stay bounded, and every transaction has an
// outcome. (FuzzEnding in package ending checks the verdicts.)
func FuzzConn(f *testing.F) {
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"), []byte("220 x\r\n250 x\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok: Message 12 accepted\r\n221 bye\r\n"), uint8(3))
	f.Add([]byte("EHLO x\r\nBDAT 5 LAST\r\nabcdeQUIT\r\n"), []byte("220 x\r\n250-x\r\n250 CHUNKING\r\n250 ok\r\n221 bye\r\n"), uint8(1))
	f.Add([]byte("STARTTLS\r\n\x16\x03\x01\x00\x02ab"), []byte("220 x\r\n220 go\r\n\x16\x03\x03\x00\x01z"), uint8(7))
	f.Add([]byte("AUTH PLAIN AGEAYg==\r\n"), []byte("220 x\r\n235 ok\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, cli, srv []byte, cut uint8) {
		run := func(k int) *Record {
			c := NewConn(Endpoint{"192.0.2.1", 4000}, Endpoint{"198.51.100.2", 25}, "syn", Config{})
			now := time.Unix(1700000000, 0)
			feed := func(d Dir, b []byte, frame uint64) {
				for len(b) > 0 {
					n := len(b)
					if k > 0 && k < n {
						n = k
					}
					c.Deliver(d, b[:n], frame, now)
					b = b[n:]
				}
			}
			c.Packet(&Packet{Frame: 1, Time: now, Dir: FromClient, Flags: FlagSYN, Seq: 1, TTL: 64})
			c.Packet(&Packet{Frame: 2, Time: now, Dir: FromServer, Flags: FlagSYN | FlagACK, Seq: 9, Ack: 2, TTL: 63})
			half := len(srv) / 2
			feed(FromServer, srv[:half], 3)
			feed(FromClient, cli, 4)
			feed(FromServer, srv[half:], 5)
			c.Packet(&Packet{Frame: 6, Time: now, Dir: FromClient, Flags: FlagFIN | FlagACK, Seq: 2, TTL: 64})
			return c.Finish("end_of_input", now)
		}
		a, b := run(0), run(int(cut%16)+1)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("record depends on segmentation:\n%s\n%s", ja, jb)
		}
		if len(a.Trans) > maxTrans || len(a.Anomalies) > maxAnomalies || len(a.Unsolicited) > maxUnsolic {
			t.Fatalf("unbounded lists: %d trans, %d anomalies", len(a.Trans), len(a.Anomalies))
		}
		for _, tr := range a.Trans {
			if tr.Outcome == "" || len(tr.Rcpts) > maxRcpts {
				t.Fatalf("transaction without outcome or unbounded: %+v", tr)
			}
		}
		if a.Auth != nil && len(a.Auth.Mechanism) > 32 {
			t.Fatalf("mechanism not bounded")
		}
	})
}

// update is accepted so that go test ./... -update works; the golden
// files live in cmd/smtpcap.
var _ = flag.Bool("update", false, "rewrite golden files (cmd/smtpcap)")
