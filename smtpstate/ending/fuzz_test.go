package ending

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// FuzzEnding drives a connection with arbitrary bytes, close and timing,
// and checks that the verdict is in the catalogue, that a rule decided and
// tagged its evidence, and that the ending is a function of the record's
// JSON.
func FuzzEnding(f *testing.F) {
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"), []byte("220 x\r\n250 x\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n"), uint8(0), uint8(64))
	f.Add([]byte("EHLO x\r\n"), []byte("220 x\r\n421 4.4.2 timeout\r\n"), uint8(1), uint8(63))
	f.Add([]byte("STARTTLS\r\n\x16\x03\x01\x00\x02ab"), []byte("220 x\r\n220 go\r\n"), uint8(2), uint8(255))
	f.Add([]byte(""), []byte(""), uint8(3), uint8(64))
	f.Fuzz(func(t *testing.T, cli, srv []byte, end, ttl uint8) {
		c := smtpstate.NewConn(smtpstate.Endpoint{Addr: "192.0.2.1", Port: 4000}, smtpstate.Endpoint{Addr: "198.51.100.2", Port: 25}, "syn", smtpstate.Config{})
		now := time.Unix(1700000000, 0)
		c.Packet(&smtpstate.Packet{Frame: 1, Time: now, Dir: smtpstate.FromClient, Flags: smtpstate.FlagSYN, Seq: 1, TTL: 64})
		if end != 3 {
			c.Packet(&smtpstate.Packet{Frame: 2, Time: now, Dir: smtpstate.FromServer, Flags: smtpstate.FlagSYN | smtpstate.FlagACK, Seq: 9, Ack: 2, TTL: 63})
		}
		c.Packet(&smtpstate.Packet{Frame: 3, Time: now, Dir: smtpstate.FromServer, Flags: smtpstate.FlagACK | smtpstate.FlagPSH, Seq: 10, Ack: 2, TTL: 63, PayloadLen: len(srv)})
		c.Deliver(smtpstate.FromServer, srv, 3, now)
		now = now.Add(time.Duration(end) * time.Second)
		c.Packet(&smtpstate.Packet{Frame: 4, Time: now, Dir: smtpstate.FromClient, Flags: smtpstate.FlagACK | smtpstate.FlagPSH, Seq: 2, Ack: 10 + uint32(len(srv)), TTL: 64, PayloadLen: len(cli)})
		c.Deliver(smtpstate.FromClient, cli, 4, now)
		flags := []smtpstate.Flags{smtpstate.FlagFIN | smtpstate.FlagACK, smtpstate.FlagRST, smtpstate.FlagRST | smtpstate.FlagACK, 0}[end%4]
		if flags != 0 {
			c.Packet(&smtpstate.Packet{Frame: 5, Time: now, Dir: smtpstate.Dir(end / 4 % 2), Flags: flags, Seq: 2 + uint32(len(cli)), TTL: ttl})
		}
		r := c.Finish("end_of_input", now)
		e := Classify(r, DefaultParams)
		if _, ok := Lookup(e.Verdict); !ok || e.Rule == "" || e.Rule == "none" {
			t.Fatalf("verdict %q by rule %q", e.Verdict, e.Rule)
		}
		for _, ev := range e.Evidence {
			if ev.Rule == "" {
				t.Fatalf("untagged evidence %q", ev.Text)
			}
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back smtpstate.Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("decode: %v\n%s", err, b)
		}
		x, _ := json.Marshal(e)
		y, _ := json.Marshal(Classify(&back, DefaultParams))
		if string(x) != string(y) {
			t.Fatalf("ending differs after a JSON round trip:\n%s\n%s", x, y)
		}
	})
}
