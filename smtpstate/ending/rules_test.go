package ending

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smtpcap/smtpcap/smtpstate"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func at(s float64) smtpstate.Time {
	return smtpstate.Time{Time: t0.Add(time.Duration(s * float64(time.Second)))}
}

// base is an established session seen from between the hosts: client TTL
// 63, server TTL 58, both constant over 10 packets, handshake captured, one
// transaction open after RCPT.
func base() *smtpstate.Record {
	return &smtpstate.Record{
		TS: at(0), EndTS: at(10), CaptureEnd: at(60), PhaseAtEnd: smtpstate.StateRcpt, SMTP: true,
		RTTServer: 0.020, RTTClient: 0.030,
		Client: smtpstate.DirFacts{Packets: 10, SYNFrame: 1, SYNs: 1, TTLs: []smtpstate.TTLCount{{TTL: 63, Count: 10}}, LastIPID: 500, FirstTS: at(0), LastTS: at(9), LastDataTS: at(9)},
		Server: smtpstate.DirFacts{Packets: 10, SYNFrame: 2, SYNs: 1, TTLs: []smtpstate.TTLCount{{TTL: 58, Count: 10}}, LastIPID: 9000, FirstTS: at(0), LastTS: at(9), LastDataTS: at(8)},
		Trans:  []smtpstate.Transaction{{MailFrom: "a@x", Rcpts: []smtpstate.Rcpt{{Addr: "b@y", Reply: "250 ok"}}, Outcome: "open"}},
	}
}

type row struct {
	rule    string
	edit    func(r *smtpstate.Record)
	verdict Verdict
	who     string
	conf    string
}

func quit221(r *smtpstate.Record) {
	r.Quit = &smtpstate.Exchange{Cmd: "QUIT", CmdFrame: 20, CmdTS: at(9.1), Reply: "221 bye", ReplyFrame: 21, ReplyTS: at(9.2)}
}

func unsolicited(r *smtpstate.Record, reply string) {
	r.LastReplyAt = &smtpstate.Exchange{Reply: reply, ReplyFrame: 28, ReplyTS: at(9.4)}
	r.Unsolicited = []smtpstate.Exchange{*r.LastReplyAt}
}

// ruleRows: one row per rule, in the order of Rules.
var ruleRows = []row{
	{"refused", func(r *smtpstate.Record) {
		r.Server = smtpstate.DirFacts{Packets: 1, RSTs: []smtpstate.RST{{Frame: 2, TS: at(0.001), TTL: 58}}}
		r.Client.Packets, r.Trans = 1, nil
	}, HandshakeFailed, "server", "high"},
	{"syn_unanswered", func(r *smtpstate.Record) {
		r.Server = smtpstate.DirFacts{}
		r.Client = smtpstate.DirFacts{Packets: 3, SYNs: 3, SYNFrame: 1, FirstTS: at(0)}
		r.Trans = nil
	}, HandshakeFailed, "unknown", "medium"}, // high, downgraded: one direction
	{"client_only_quit_no_txn", func(r *smtpstate.Record) {
		r.Server, r.Trans = smtpstate.DirFacts{}, nil
		r.Quit = &smtpstate.Exchange{Cmd: "QUIT", CmdFrame: 20}
	}, QuitNoTransaction, "client", "medium"},
	{"client_only_quit", func(r *smtpstate.Record) {
		r.Server = smtpstate.DirFacts{}
		r.Quit = &smtpstate.Exchange{Cmd: "QUIT", CmdFrame: 20}
	}, Undetermined, "unknown", "low"},
	{"client_only_close", func(r *smtpstate.Record) {
		r.Server = smtpstate.DirFacts{}
		r.Client.FIN = &smtpstate.Segment{Frame: 12, TS: at(9), TTL: 63}
	}, Undetermined, "unknown", "low"},
	{"client_only_open", func(r *smtpstate.Record) { r.Server = smtpstate.DirFacts{} }, Undetermined, "unknown", "low"},
	{"server_only_timeout", func(r *smtpstate.Record) {
		r.Client = smtpstate.DirFacts{}
		unsolicited(r, "421 4.4.2 mx Error: timeout exceeded")
	}, ServerTimeout, "server", "low"},
	{"server_only_221", func(r *smtpstate.Record) {
		r.Client = smtpstate.DirFacts{}
		r.LastReplyAt = &smtpstate.Exchange{Reply: "221 bye", ReplyFrame: 21}
	}, Undetermined, "unknown", "low"},
	{"server_only_close", func(r *smtpstate.Record) {
		r.Client = smtpstate.DirFacts{}
		r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5), TTL: 58}
	}, Undetermined, "unknown", "low"},
	{"server_only_open", func(r *smtpstate.Record) { r.Client = smtpstate.DirFacts{} }, Undetermined, "unknown", "low"},
	{"idle_then_drop", func(r *smtpstate.Record) {
		r.MaxIdle, r.MaxIdleFrame = 3650, 19
		r.Client.RetransRun = &smtpstate.Run{Seq: 7, Count: 5, FirstFrame: 20, Span: 6.3}
	}, FirewallIdleExpiry, "middlebox", "medium"},
	{"silent_drop", func(r *smtpstate.Record) {
		r.Client.RetransRun = &smtpstate.Run{Seq: 7, Count: 5, FirstFrame: 20, Span: 6.3}
	}, SilentDrop, "middlebox", "medium"},
	{"quit_gap", func(r *smtpstate.Record) { // QUIT, 221 and the final reply seen after the gap: known
		quit221(r)
		r.Anomalies = []string{"gap_in_commands"}
		r.Trans[0].Outcome, r.Trans[0].FinalReply = "accepted", "250 ok"
		r.Client.FIN = &smtpstate.Segment{Frame: 22, TS: at(9.3), TTL: 63}
	}, QuitAfterMessage, "client", "high"},
	{"quit_no_wait", func(r *smtpstate.Record) {
		r.Quit = &smtpstate.Exchange{Cmd: "QUIT", CmdFrame: 20, CmdTS: at(9.1)}
		r.Client.FIN = &smtpstate.Segment{Frame: 21, TS: at(9.2), TTL: 63}
	}, QuitNoWait, "client", "high"},
	{"quit_then_rst", func(r *smtpstate.Record) {
		quit221(r)
		r.Client.RSTs = []smtpstate.RST{{Frame: 22, TS: at(9.3), TTL: 63, HasACK: true, SeqKnown: true}}
	}, QuitThenRST, "client", "high"},
	{"quit", func(r *smtpstate.Record) {
		quit221(r)
		r.Trans[0].Outcome = "accepted"
		r.Server.FIN = &smtpstate.Segment{Frame: 22, TS: at(9.3), TTL: 58}
	}, QuitAfterMessage, "client", "high"},
	{"evicted", func(r *smtpstate.Record) { r.EndReason = "evicted" }, Undetermined, "unknown", "low"},
	{"reused", func(r *smtpstate.Record) { r.EndReason = "reused" }, Undetermined, "unknown", "low"},
	{"open_after_loss", func(r *smtpstate.Record) {
		r.MissedBytes, r.Server.GapBytes, r.Server.AckedUnseen = 40, 40, 40
		r.CaptureEnd = at(12) // active until 2 s before the capture stopped
	}, CaptureEnded, "unknown", "low"},
	{"open_at_end", func(r *smtpstate.Record) {}, CaptureEnded, "unknown", "high"},
	{"quit_inferred", func(r *smtpstate.Record) {
		r.Client.AckedUnseen = 6 // "QUIT\r\n", lost by the capture
		r.Trans[0].Outcome, r.Trans[0].FinalReply = "accepted", "250 ok"
		r.LastReplyAt = &smtpstate.Exchange{Reply: "221 2.0.0 Bye", ReplyFrame: 28, ReplyTS: at(9.4)}
		r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5), TTL: 58}
	}, QuitAfterMessage, "client", "medium"},
	{"close_after_client_loss", func(r *smtpstate.Record) {
		r.Client.AckedUnseen = 10 // the client's QUIT, say, lost by the capture
		r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5), TTL: 58}
	}, Undetermined, "unknown", "low"},
	{"idle_expiry_answered", func(r *smtpstate.Record) {
		r.Client.LastDataTS = at(1) // idle 8 s
		unsolicited(r, "421 4.4.2 mx Error: timeout exceeded")
		r.Client.RSTs = []smtpstate.RST{{Frame: 30, TS: at(9.45), TTL: 255, SeqKnown: true, IPIDKnown: true, IPIDStep: 30000}}
		r.RespP = 25
	}, FirewallIdleExpiry, "middlebox", "medium"},
	{"idle_expiry_dropped", func(r *smtpstate.Record) {
		r.Client.LastDataTS = at(1)
		unsolicited(r, "421 4.4.2 mx Error: timeout exceeded")
		r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5), TTL: 58}
		r.Server.RetransRun = &smtpstate.Run{Seq: 900, Count: 6, FirstFrame: 31, Span: 13.4}
	}, FirewallIdleExpiry, "middlebox", "medium"},
	{"server_timeout", func(r *smtpstate.Record) {
		unsolicited(r, "421 4.4.2 mx Error: timeout exceeded")
		r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5), TTL: 58}
	}, ServerTimeout, "server", "high"},
	{"server_close_reply", func(r *smtpstate.Record) {
		unsolicited(r, "554 5.7.1 go away")
		r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5), TTL: 58}
	}, ServerCloseReply, "server", "high"},
	{"server_close_after_loss", func(r *smtpstate.Record) {
		r.Server.GapBytes = 100
		r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5), TTL: 58}
	}, Undetermined, "server", "low"},
	{"server_fin", func(r *smtpstate.Record) {
		r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5), TTL: 58}
	}, ServerFINNoReply, "server", "high"},
	{"idle_then_rst", func(r *smtpstate.Record) {
		r.Server.RSTs = []smtpstate.RST{{Frame: 30, TS: at(3700), TTL: 255, SeqKnown: true, ResumeGap: 3690, IPIDKnown: true, IPIDStep: 65536 - 9000}}
	}, FirewallIdleExpiry, "middlebox", "medium"},
	{"middlebox_rst", func(r *smtpstate.Record) { // F1 + F9: RSTs to both ends from the firewall
		r.Server.RSTs = []smtpstate.RST{{Frame: 30, TS: at(9.5), TTL: 64, SeqKnown: true}}
		r.Client.RSTs = []smtpstate.RST{{Frame: 31, TS: at(9.5001), TTL: 64, SeqKnown: true}}
	}, MiddleboxRST, "middlebox", "high"},
	{"rst_inconclusive", func(r *smtpstate.Record) { // F7 against an equal TTL
		r.Server.RSTs = []smtpstate.RST{{Frame: 30, TS: at(9.5), TTL: 58, HasACK: true, SeqKnown: true, IPID: 9001, TriggerDelay: 0.0001}}
	}, Undetermined, "unknown", "low"},
	{"client_side_reset", func(r *smtpstate.Record) { // the lab's fw_reject_content at the server
		r.Client.RSTs = []smtpstate.RST{{Frame: 30, TS: at(20), TTL: 63, SeqKnown: true}}
	}, MiddleboxRST, "middlebox", "medium"},
	{"endpoint_rst", func(r *smtpstate.Record) {
		r.Server.RSTs = []smtpstate.RST{{Frame: 30, TS: at(9.5), TTL: 58, HasACK: true, SeqKnown: true, IPID: 9001, TriggerDelay: 0.5}}
	}, ServerRST, "server", "high"},
	{"tls_quit", func(r *smtpstate.Record) { // the lab's starttls_quit record sizes (TLS 1.3, overhead 17)
		r.PhaseAtEnd, r.TLS, r.Trans = smtpstate.StateTLS, true, nil
		r.TLSInfo = &smtpstate.TLSFacts{ClientRecords: 9, ServerRecords: 14, ClientMinApp: 23, ServerMinApp: 19,
			ClientTail: []smtpstate.TLSRecord{{Type: 23, Len: 23, Frame: 23, TS: at(9.0)}, {Type: 23, Len: 287, Frame: 25, TS: at(9.01)}, {Type: 23, Len: 23, Frame: 27, TS: at(9.2)}},
			ServerTail: []smtpstate.TLSRecord{{Type: 23, Len: 54, Frame: 26, TS: at(9.1)}, {Type: 23, Len: 32, Frame: 28, TS: at(9.21)}, {Type: 23, Len: 19, Frame: 29, TS: at(9.22)}}}
		r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.22), TTL: 58}
	}, QuitAfterMessage, "client", "medium"},
	{"tls_end", func(r *smtpstate.Record) { // a FIN after large client records: no QUIT shape
		r.PhaseAtEnd, r.TLS = smtpstate.StateTLS, true
		r.TLSInfo = &smtpstate.TLSFacts{ClientRecords: 9, ServerRecords: 6, ClientMinApp: 23,
			ClientTail: []smtpstate.TLSRecord{{Type: 23, Len: 23, Frame: 10, TS: at(8)}, {Type: 23, Len: 16401, Frame: 11, TS: at(8.5)}}}
		r.Client.FIN = &smtpstate.Segment{Frame: 12, TS: at(9), TTL: 63}
	}, TLSEnd, "client", "medium"},
	{"client_fin", func(r *smtpstate.Record) {
		r.Client.FIN = &smtpstate.Segment{Frame: 12, TS: at(9), TTL: 63}
	}, ClientFINNoQuit, "client", "high"},
}

// TestRules prints the rule table in precedence order and runs its row for
// each rule: the row must be decided by that rule, with its verdict.
func TestRules(t *testing.T) {
	rows := map[string]row{}
	for _, rw := range ruleRows {
		require.NotContains(t, rows, rw.rule, "two rows for rule %s", rw.rule)
		rows[rw.rule] = rw
	}
	require.Len(t, rows, len(Rules), "one row per rule")
	for i, rl := range Rules {
		rw, ok := rows[rl.ID]
		require.True(t, ok, "rule %s has no test row", rl.ID)
		t.Run(fmt.Sprintf("%02d_%s", i+1, rl.ID), func(t *testing.T) {
			r := base()
			rw.edit(r)
			e := Classify(r, DefaultParams)
			t.Logf("%-24s %-22s %-9s %-6s %s", rl.ID, e.Verdict, e.Who, e.Confidence, rl.Doc)
			assert.Equal(t, rl.ID, e.Rule, "reason: %s", e.Reason)
			assert.Equal(t, string(rw.verdict), e.Verdict, "reason: %s; origin: %+v", e.Reason, e.Origin)
			assert.Equal(t, rw.who, e.Who)
			assert.Equal(t, rw.conf, e.Confidence, "%s %v", e.Reason, e.Downgrades)
			assert.NotEmpty(t, e.Reason)
			for _, ev := range e.Evidence {
				assert.NotEmpty(t, ev.Rule, "evidence %q not tagged", ev.Text)
			}
			_, known := Lookup(e.Verdict)
			assert.True(t, known, "verdict %s not in the catalogue", e.Verdict)
		})
	}
}

// TestRuleVerdictsCovered: every verdict of the catalogue is reached by a
// rule row, except quit_* variants named by the transactions (TestQuitKind)
// and by the client's side alone (TestClientOnlyQuitAfterData).
func TestRuleVerdictsCovered(t *testing.T) {
	seen := map[Verdict]bool{ClientRST: true, QuitAfterRejection: true, QuitMidTransaction: true, QuitFateUnseen: true}
	for _, rw := range ruleRows {
		seen[rw.verdict] = true
	}
	for _, c := range Catalogue {
		assert.True(t, seen[c.Verdict], "no rule row reaches %s", c.Verdict)
	}
}
