package smtpstate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func at(s float64) Time { return Time{t0.Add(time.Duration(s * float64(time.Second)))} }

// base is an established session seen from between the hosts: client TTL
// 63, server TTL 58, both constant over 10 packets, handshake captured.
func base() *Record {
	return &Record{
		TS: at(0), EndTS: at(10), CaptureEnd: at(60), PhaseAtEnd: StateRcpt, SMTP: true,
		RTTServer: 0.020, RTTClient: 0.030,
		Client: DirFacts{Packets: 10, SYNFrame: 1, SYNs: 1, TTLs: []TTLCount{{63, 10}}, LastIPID: 500, FirstTS: at(0), LastTS: at(9), LastDataTS: at(9)},
		Server: DirFacts{Packets: 10, SYNFrame: 2, SYNs: 1, TTLs: []TTLCount{{58, 10}}, LastIPID: 9000, FirstTS: at(0), LastTS: at(9), LastDataTS: at(8)},
		Trans:  []Transaction{{MailFrom: "a@x", Rcpts: []Rcpt{{Addr: "b@y", Reply: "250 ok"}}, Outcome: "open"}},
	}
}

func TestClassifyTable(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(r *Record)
		params  *Params
		verdict string
		who     string
		conf    string
		flag    string
	}{
		{"endpoint RST: same TTL, exact seq, ACK", func(r *Record) {
			r.Server.RSTs = []RST{{Frame: 30, TS: at(9.5), TTL: 58, HasACK: true, SeqKnown: true, IPID: 9001, TriggerDelay: 0.5}}
		}, nil, "server_rst", "server", "high", ""},
		{"F7 + TTL: RST faster than the server could answer, one hop off", func(r *Record) {
			r.Server.RSTs = []RST{{Frame: 30, TS: at(9.5), TTL: 60, HasACK: true, SeqKnown: true, IPID: 9001, TriggerDelay: 0.0001}}
		}, nil, "middlebox_rst", "middlebox", "high", ""},
		{"F7 against an equal TTL: conflicting strong evidence", func(r *Record) {
			r.Server.RSTs = []RST{{Frame: 30, TS: at(9.5), TTL: 58, HasACK: true, SeqKnown: true, IPID: 9001, TriggerDelay: 0.0001}}
		}, nil, "undetermined", "unknown", "low", ""},
		{"F4: the client keeps sending after its own RST", func(r *Record) {
			r.Client.RSTs = []RST{{Frame: 30, TS: at(9.5), TTL: 63, HasACK: true, SeqKnown: true, IPID: 501}}
			r.Client.DataAfterRST = 31
		}, nil, "middlebox_rst", "middlebox", "high", ""},
		{"F9 + TTL: RSTs to both ends from the firewall", func(r *Record) {
			r.Server.RSTs = []RST{{Frame: 30, TS: at(9.5), TTL: 64, SeqKnown: true}}
			r.Client.RSTs = []RST{{Frame: 31, TS: at(9.5001), TTL: 64, SeqKnown: true}}
		}, nil, "middlebox_rst", "middlebox", "high", ""},
		{"idle gap then a foreign RST: firewall expiry", func(r *Record) {
			r.Server.RSTs = []RST{{Frame: 30, TS: at(3700), TTL: 255, SeqKnown: true, ResumeGap: 3690, IPIDKnown: true, IPIDStep: 65536 - 9000}}
		}, nil, "firewall_idle_expiry", "middlebox", "medium", ""},
		{"retransmissions never acknowledged: silent drop", func(r *Record) {
			r.Client.RetransRun = &Run{Seq: 7, Count: 5, FirstFrame: 20, Span: 6.3}
		}, nil, "silent_drop", "middlebox", "medium", ""},
		{"idle gap then unacknowledged retransmissions: firewall expiry (DROP)", func(r *Record) {
			r.MaxIdle, r.MaxIdleFrame = 3650, 19
			r.Client.RetransRun = &Run{Seq: 7, Count: 5, FirstFrame: 20, Span: 6.3}
		}, nil, "firewall_idle_expiry", "middlebox", "medium", ""},
		{"unsolicited 421 with timeout text, then server FIN", func(r *Record) {
			r.LastReplyAt = &Exchange{Reply: "421 4.4.2 mx Error: timeout exceeded", ReplyFrame: 28, ReplyTS: at(309)}
			r.Unsolicited = []Exchange{*r.LastReplyAt}
			r.Server.FIN = &Segment{Frame: 29, TS: at(309), TTL: 58}
		}, nil, "server_timeout", "server", "high", ""},
		{"silent server FIN after 45 s: no known timer", func(r *Record) {
			r.Client.LastDataTS = at(5)
			r.Server.FIN = &Segment{Frame: 29, TS: at(50), TTL: 58}
		}, nil, "server_fin_no_reply", "server", "high", ""},
		{"silent server FIN after 45 s with --server-timeout 45s", func(r *Record) {
			r.Client.LastDataTS = at(5)
			r.Server.FIN = &Segment{Frame: 29, TS: at(50), TTL: 58}
		}, &Params{ServerTimeouts: []float64{45}, FirewallIdle: 5, CaptureEndSlack: 5}, "server_timeout", "server", "medium", ""},
		{"no FIN or RST: capture ended", func(r *Record) {}, nil, "capture_ended", "unknown", "high", "idle_open_at_end"},
		{"SYN answered by RST: refused", func(r *Record) {
			r.Server = DirFacts{Packets: 1, RSTs: []RST{{Frame: 2, TS: at(0.001), TTL: 58}}}
			r.Client.Packets, r.Trans = 1, nil
		}, nil, "handshake_failed", "server", "high", ""},
		{"one direction only, client FIN: undetermined", func(r *Record) {
			r.Server = DirFacts{}
			r.Client.FIN = &Segment{Frame: 12, TS: at(9), TTL: 63}
		}, nil, "undetermined", "unknown", "low", "one_direction_only"},
		{"client FIN in DATA loses the message", func(r *Record) {
			r.PhaseAtEnd = StateData
			r.Trans[0].DataCmd = "DATA"
			r.Client.FIN = &Segment{Frame: 12, TS: at(9), TTL: 63}
		}, nil, "client_fin_no_quit", "client", "high", "message_lost"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			c.edit(r)
			p := DefaultParams
			if c.params != nil {
				p = *c.params
			}
			e := ClassifyWith(r, p)
			assert.Equal(t, c.verdict, e.Verdict, "reason: %s; origin: %+v", e.Reason, e.Origin)
			assert.Equal(t, c.who, e.Who)
			assert.Equal(t, c.conf, e.Confidence, e.Reason)
			if c.flag != "" {
				assert.Contains(t, e.Flags, c.flag)
			}
			assert.NotEmpty(t, e.Reason)
		})
	}
}
