package ending

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// More cases than one per rule: the ones that exercise a parameter or a
// combination of factors.
func TestClassifyCases(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(r *smtpstate.Record)
		params  *Params
		verdict Verdict
		who     string
		conf    string
		flag    string
	}{
		{"F7 + TTL: RST faster than the server could answer, one hop off", func(r *smtpstate.Record) {
			r.Server.RSTs = []smtpstate.RST{{Frame: 30, TS: at(9.5), TTL: 60, HasACK: true, SeqKnown: true, IPID: 9001, TriggerDelay: 0.0001}}
		}, nil, MiddleboxRST, "middlebox", "high", ""},
		{"F4: the client keeps sending after its own RST", func(r *smtpstate.Record) {
			r.Client.RSTs = []smtpstate.RST{{Frame: 30, TS: at(9.5), TTL: 63, HasACK: true, SeqKnown: true, IPID: 501}}
			r.Client.DataAfterRST = 31
		}, nil, MiddleboxRST, "middlebox", "high", ""},
		{"silent server FIN after 45 s: no known timer", func(r *smtpstate.Record) {
			r.Client.LastDataTS = at(5)
			r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(50), TTL: 58}
		}, nil, ServerFINNoReply, "server", "high", ""},
		{"silent server FIN after 45 s with --server-timeout 45s", func(r *smtpstate.Record) {
			r.Client.LastDataTS = at(5)
			r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(50), TTL: 58}
		}, &Params{ServerTimeouts: []float64{45}, FirewallIdle: 5, CaptureEndSlack: 5}, ServerTimeout, "server", "medium", ""},
		{"no FIN or RST, idle 50 s at the end", func(r *smtpstate.Record) {}, nil, CaptureEnded, "unknown", "high", "idle_open_at_end"},
		// With capture loss the absence of a close proves nothing: a
		// session quiet well before the capture ended may have closed in
		// the lost packets; one active at the end is open only as far as
		// the capture shows (low). The boundary is CaptureEndSlack.
		{"no FIN or RST, capture loss, idle 50 s at the end", func(r *smtpstate.Record) {
			r.MissedBytes, r.Client.GapBytes, r.Client.AckedUnseen = 10, 10, 10
		}, nil, Undetermined, "unknown", "low", "idle_open_at_end"},
		{"no FIN or RST, capture loss, idle just over the slack", func(r *smtpstate.Record) {
			r.MissedBytes, r.Client.AckedUnseen = 10, 10
			r.CaptureEnd = at(15.1)
		}, nil, Undetermined, "unknown", "low", "capture_loss"},
		{"no FIN or RST, capture loss, idle at the slack", func(r *smtpstate.Record) {
			r.MissedBytes, r.Client.AckedUnseen = 10, 10
			r.CaptureEnd = at(15)
		}, nil, CaptureEnded, "unknown", "low", "capture_loss"},
		{"no FIN or RST, capture loss, the session's last packet ends the capture", func(r *smtpstate.Record) {
			r.MissedBytes, r.Server.AckedUnseen = 1347, 1347
			r.CaptureEnd = r.EndTS
		}, nil, CaptureEnded, "unknown", "low", "capture_loss"},
		{"4-tuple reused while open", func(r *smtpstate.Record) { r.EndReason = "reused" }, nil, Undetermined, "unknown", "low", "active_connection_reuse"},
		{"one direction only, client FIN", func(r *smtpstate.Record) {
			r.Server = smtpstate.DirFacts{}
			r.Client.FIN = &smtpstate.Segment{Frame: 12, TS: at(9), TTL: 63}
		}, nil, Undetermined, "unknown", "low", "one_direction_only"},
		{"client FIN in DATA loses the message", func(r *smtpstate.Record) {
			r.PhaseAtEnd = smtpstate.StateData
			r.Trans[0].DataCmd = "DATA"
			r.Client.FIN = &smtpstate.Segment{Frame: 12, TS: at(9), TTL: 63}
		}, nil, ClientFINNoQuit, "client", "high", "message_lost"},
		{"QUIT inside the transaction", func(r *smtpstate.Record) {
			quit221(r)
			r.Trans[0].Outcome = "quit"
			r.Server.FIN = &smtpstate.Segment{Frame: 22, TS: at(9.3), TTL: 58}
		}, nil, QuitMidTransaction, "client", "high", ""},
		// A no-state reply from the client's host mid-session without a FIN
		// before it: the connection was reset on the client's side of the
		// path (issue 11), the client's own reset is the runner-up.
		{"client RST, no ACK: a no-state reply", func(r *smtpstate.Record) {
			r.Client.RSTs = []smtpstate.RST{{Frame: 30, TS: at(20), TTL: 63, SeqKnown: true}}
		}, nil, MiddleboxRST, "middlebox", "medium", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			c.edit(r)
			p := DefaultParams
			if c.params != nil {
				p = *c.params
			}
			e := Classify(r, p)
			assert.Equal(t, string(c.verdict), e.Verdict, "rule %s reason: %s; origin: %+v", e.Rule, e.Reason, e.Origin)
			assert.Equal(t, c.who, e.Who)
			assert.Equal(t, c.conf, e.Confidence, e.Reason)
			if c.flag != "" {
				assert.Contains(t, e.Flags, c.flag)
			}
		})
	}
}

// TestClientOnlyQuitAfterData: only the client's packets, a message whose
// end of data was sent, then QUIT (zeek smtp-one-side-only.pcap). The
// client did not abandon the message and quit: quit_fate_unseen, the
// message's fate being in the reply that is not captured (runner-up
// accepted or refused, never abandoned).
func TestClientOnlyQuitAfterData(t *testing.T) {
	r := base()
	r.Server = smtpstate.DirFacts{}
	r.PhaseAtEnd = smtpstate.StateQuit
	r.Trans[0].Rcpts[0].Reply = ""
	r.Trans[0].DataCmd, r.Trans[0].EndFrame, r.Trans[0].EndTS = "DATA", 9, at(8)
	r.Quit = &smtpstate.Exchange{Cmd: "QUIT", CmdFrame: 17, CmdTS: at(9)}
	r.Client.FIN = &smtpstate.Segment{Frame: 18, TS: at(9.01), TTL: 63}
	e := Classify(r, DefaultParams)
	assert.Equal(t, "client_only_quit", e.Rule)
	assert.Equal(t, string(QuitFateUnseen), e.Verdict)
	assert.Equal(t, "client", e.Who)
	assert.Equal(t, "medium", e.Confidence)
	assert.True(t, strings.HasPrefix(e.RunnerUp, string(QuitAfterMessage)+" (or "+string(QuitAfterRejection)+")"), e.RunnerUp)
	assert.Contains(t, e.Reason, "end of data of 1 message(s)")
	assert.False(t, e.MessageLost)

	// Without the end of data the client quit inside the transaction.
	r.Trans[0].DataCmd, r.Trans[0].EndFrame = "", 0
	e = Classify(r, DefaultParams)
	assert.Equal(t, string(QuitMidTransaction), e.RunnerUp)
}

// TestMarginBoundaries: the named margins decide at their boundary.
func TestMarginBoundaries(t *testing.T) {
	rstRecord := func() *smtpstate.Record {
		r := base()
		r.Server.RSTs = []smtpstate.RST{{Frame: 30, TS: at(9.5), TTL: 58, HasACK: true, SeqKnown: true}}
		return r
	}
	for _, c := range []struct {
		mb, ep int
		rule   string
		conf   string
	}{
		{marginHigh, 0, "middlebox_rst", "high"},
		{marginHigh - 1, 0, "middlebox_rst", "medium"},
		{marginMiddlebox, 0, "middlebox_rst", "medium"},
		{marginMiddlebox - 1, 0, "rst_inconclusive", "low"},
		{marginInconclusive, 0, "rst_inconclusive", "low"},
		{0, 0, "endpoint_rst", "medium"},
		{strongMiddlebox, strongMiddlebox - conflictFloor, "rst_inconclusive", "low"},
		{strongMiddlebox, strongMiddlebox - conflictFloor + 1, "endpoint_rst", "high"},
		{strongMiddlebox - 1, strongMiddlebox - 1 - conflictFloor, "endpoint_rst", "medium"},
		{0, marginEndpointHigh, "endpoint_rst", "high"},
		{0, marginEndpointHigh - 1, "endpoint_rst", "medium"},
	} {
		f := derive(rstRecord(), DefaultParams)
		f.rstOrigin = &smtpstate.Score{Middlebox: c.mb, Endpoint: c.ep}
		f.rstMargin = c.mb - c.ep
		d := decide(f)
		assert.Equal(t, c.rule, d.Rule, "middlebox %d endpoint %d", c.mb, c.ep)
		assert.Equal(t, c.conf, d.Confidence, "middlebox %d endpoint %d", c.mb, c.ep)
	}
}

// TestFactors: each factor row fires where it should, and not one step
// past its threshold.
func TestFactors(t *testing.T) {
	type fc struct {
		name string
		edit func(r *smtpstate.Record, x *smtpstate.RST)
		want string // factor Name expected among the items ("" none of want/not)
		not  string
	}
	rows := []fc{
		{"other initial ttl", func(r *smtpstate.Record, x *smtpstate.RST) { x.TTL = 250 }, "ttl_other_initial", ""},
		{"ttl off by 2, same initial", func(r *smtpstate.Record, x *smtpstate.RST) { x.TTL = 60 }, "ttl_differs", ""},
		{"ttl off by 1, 10 packets", func(r *smtpstate.Record, x *smtpstate.RST) { x.TTL = 59 }, "ttl_one_hop_many", ""},
		{"ttl off by 1, 4 packets", func(r *smtpstate.Record, x *smtpstate.RST) {
			x.TTL = 59
			r.Server.TTLs[0].Count = 4
		}, "ttl_one_hop", "ttl_one_hop_many"},
		{"ttl off by 1, 2 packets: nothing", func(r *smtpstate.Record, x *smtpstate.RST) {
			x.TTL = 59
			r.Server.TTLs[0].Count = 2
		}, "", "ttl_one_hop"},
		{"initial ttl on the segment", func(r *smtpstate.Record, x *smtpstate.RST) {
			r.Server.TTLs = []smtpstate.TTLCount{{TTL: 63, Count: 3}}
			x.TTL = 64
		}, "ttl_initial_on_segment", ""},
		{"one packet: no ttl test", func(r *smtpstate.Record, x *smtpstate.RST) {
			r.Server.TTLs[0].Count = 1
			x.TTL = 250
		}, "", "ttl_other_initial"},
		{"ip id step 65", func(r *smtpstate.Record, x *smtpstate.RST) { x.IPIDKnown, x.IPIDStep = true, ipidJump+1 }, "ipid_jump", ""},
		{"ip id step 64", func(r *smtpstate.Record, x *smtpstate.RST) { x.IPIDKnown, x.IPIDStep = true, ipidJump }, "", "ipid_jump"},
		{"seq off", func(r *smtpstate.Record, x *smtpstate.RST) { x.SeqDelta = 100 }, "seq_off", "seq_exact"},
		{"seq from the peer's ack", func(r *smtpstate.Record, x *smtpstate.RST) {
			x.SeqDelta, x.HasACK, x.SeqIsPeerAck = 100, false, true
		}, "seq_from_peer_ack", "seq_off"},
		{"data after rst", func(r *smtpstate.Record, x *smtpstate.RST) { r.Server.DataAfterRST = 40 }, "data_after_rst", ""},
		{"rsts both ways within 10 ms", func(r *smtpstate.Record, x *smtpstate.RST) {
			r.Client.RSTs = []smtpstate.RST{{Frame: 31, TS: at(9.5 + bothWaysWindow)}}
		}, "rsts_both_ways", ""},
		{"rsts both ways 11 ms apart", func(r *smtpstate.Record, x *smtpstate.RST) {
			r.Client.RSTs = []smtpstate.RST{{Frame: 31, TS: at(9.5 + bothWaysWindow + 0.001)}}
		}, "", "rsts_both_ways"},
		{"faster than half the rtt", func(r *smtpstate.Record, x *smtpstate.RST) { x.TriggerDelay = 0.0099 }, "faster_than_rtt", ""},
		{"exactly half the rtt", func(r *smtpstate.Record, x *smtpstate.RST) { x.TriggerDelay = 0.010 }, "", "faster_than_rtt"},
		{"challenge ack", func(r *smtpstate.Record, x *smtpstate.RST) { x.ChallengeACK = 31 }, "challenge_ack", ""},
		{"payload", func(r *smtpstate.Record, x *smtpstate.RST) { x.Payload = "reset by IPS" }, "payload_text", ""},
		{"other mac", func(r *smtpstate.Record, x *smtpstate.RST) { x.MAC = "02:00:00:00:00:01" }, "other_mac", ""},
		{"no ack while active", func(r *smtpstate.Record, x *smtpstate.RST) { x.HasACK = false }, "no_ack_while_active", ""},
	}
	covered := map[string]bool{}
	for _, c := range rows {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			x := smtpstate.RST{Frame: 30, TS: at(9.5), TTL: 58, HasACK: true, SeqKnown: true, TriggerDelay: 0.5}
			c.edit(r, &x)
			r.Server.RSTs = []smtpstate.RST{x}
			s, names := score(newRSTCase(r, fromServer, &r.Server.RSTs[0]))
			has := func(name string) bool {
				for _, n := range names {
					if n == name {
						return true
					}
				}
				return false
			}
			if c.want != "" {
				covered[c.want] = true
				assert.True(t, has(c.want), "%s missing from %v", c.want, s.Items)
				assert.Len(t, s.Items, len(names))
			}
			if c.not != "" {
				assert.False(t, has(c.not), "%s unexpected in %v", c.not, s.Items)
			}
		})
	}
	for _, f := range Factors {
		if f.Name != "ttl_equal" && f.Name != "seq_exact" { // in every baseline row
			assert.True(t, covered[f.Name], "factor %s has no test row", f.Name)
		}
	}
}

// TestFacts: each derived fact on a record that has it and one that does
// not.
func TestFacts(t *testing.T) {
	r := base()
	r.Client.FIN = &smtpstate.Segment{Frame: 12, TS: at(9.5)}
	r.Server.RSTs = []smtpstate.RST{{Frame: 11, TS: at(9.4)}}
	f := derive(r, DefaultParams)
	require.NotNil(t, f.firstClose)
	assert.Equal(t, "rst", f.firstClose.kind, "firstClose: the earlier frame")
	assert.Equal(t, uint64(11), f.firstClose.frame)
	assert.NotNil(t, f.rstOrigin, "rstOrigin for a RST first close")

	r = base()
	quit221(r)
	r.Client.FIN = &smtpstate.Segment{Frame: 19, TS: at(9)}
	assert.False(t, derive(r, DefaultParams).quitCovers, "quitCovers: a close before QUIT")
	r.Client.FIN.Frame = 22
	assert.True(t, derive(r, DefaultParams).quitCovers)

	for outcome, want := range map[string]Verdict{"accepted": QuitAfterMessage, "rejected": QuitAfterRejection, "open": QuitMidTransaction, "quit": QuitMidTransaction, "reset": QuitNoTransaction} {
		r = base()
		r.Trans[0].Outcome = outcome
		assert.Equal(t, want, derive(r, DefaultParams).quitKind, "quitKind for %s", outcome)
	}

	r = base()
	unsolicited(r, "421 4.4.2 timeout")
	r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5)}
	f = derive(r, DefaultParams)
	assert.True(t, f.lastUnsolicited && f.timeoutText && f.closingReply, "closing reply: %+v", f)
	r.Server.FIN.Frame = 27
	assert.False(t, derive(r, DefaultParams).closingReply, "closingReply: the reply came after the close")

	r = base()
	r.Client.LastDataTS = at(0)
	r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(300)}
	f = derive(r, DefaultParams)
	assert.InDelta(t, 300, f.idleBeforeClose, 1e-9, "idleBeforeClose")
	assert.Equal(t, 300.0, f.matchedTimer)
	for idle, want := range map[float64]float64{60 * timerLow: 60, 60*timerLow - 0.01: 0, 60 * timerHigh: 60, 60*timerHigh + 0.01: 0} {
		assert.Equal(t, want, matchTimer(Params{ServerTimeouts: []float64{60}}, idle), "matchTimer(%v)", idle)
	}

	r = base()
	r.Server = smtpstate.DirFacts{}
	f = derive(r, DefaultParams)
	assert.True(t, f.clientOnly && !f.serverOnly && f.degraded, "one-sided")

	r = base()
	r.Client.RetransRun = &smtpstate.Run{Count: silentDropRun - 1, FirstFrame: 20}
	assert.Nil(t, derive(r, DefaultParams).silentDrop, "silentDrop below the run length")
	r.Client.RetransRun.Count = silentDropRun
	assert.NotNil(t, derive(r, DefaultParams).silentDrop)

	assert.Equal(t, "between", derive(base(), DefaultParams).capturePoint)
	r = base()
	r.Server.TTLs = []smtpstate.TTLCount{{TTL: 64, Count: 10}}
	assert.Equal(t, "at_server", derive(r, DefaultParams).capturePoint)

	r = base()
	assert.True(t, derive(r, DefaultParams).messageOpen, "messageOpen")
	r.Trans[0].Outcome = "quit"
	f = derive(r, DefaultParams)
	assert.True(t, f.openTx != nil && !f.messageOpen, "openTx includes a transaction abandoned by QUIT")
	assert.InDelta(t, 50, f.idleAtEnd, 1e-9, "idleAtEnd")
}

// TestDowngrades: each downgrade lowers a high verdict and says why.
func TestDowngrades(t *testing.T) {
	for _, c := range []struct {
		flag string
		edit func(r *smtpstate.Record)
	}{
		{"ttl_anomaly", func(r *smtpstate.Record) { r.Client.FIN = &smtpstate.Segment{Frame: 12, TS: at(9), TTL: 64} }},
		{"one_direction_only", func(r *smtpstate.Record) {
			r.Server, r.Trans = smtpstate.DirFacts{}, nil
			r.Client = smtpstate.DirFacts{Packets: 3, SYNs: 3, SYNFrame: 1, FirstTS: at(0)}
		}},
		{"capture_loss", func(r *smtpstate.Record) {
			// A QUIT and its 221 seen: the ending is known, but bytes are
			// missing from the capture.
			r.Client.AckedUnseen = 10
			r.Quit = &smtpstate.Exchange{Cmd: "QUIT", CmdFrame: 20, CmdTS: at(9.1), Reply: "221 bye", ReplyFrame: 21, ReplyTS: at(9.2)}
			r.Server.FIN = &smtpstate.Segment{Frame: 29, TS: at(9.5), TTL: 58}
		}},
		{"tls_opaque", func(r *smtpstate.Record) {
			r.TLS = true
			r.Server.RSTs = []smtpstate.RST{{Frame: 30, TS: at(9.5), TTL: 58, HasACK: true, SeqKnown: true, TriggerDelay: 0.5}}
		}},
	} {
		t.Run(c.flag, func(t *testing.T) {
			r := base()
			c.edit(r)
			e := Classify(r, DefaultParams)
			assert.Equal(t, "medium", e.Confidence, "%s: %s", e.Rule, e.Reason)
			assert.Contains(t, e.Flags, c.flag)
			require.Len(t, e.Downgrades, 1, "%v", e.Downgrades)
			assert.True(t, strings.HasPrefix(e.Downgrades[0], c.flag+": "), e.Downgrades[0])
		})
	}
	for _, g := range Downgrades {
		assert.NotEmpty(t, g.Doc, g.Flag)
	}
}

// TestClassifyJSON: the ending of a decoded record is the ending of the
// record.
func TestClassifyJSON(t *testing.T) {
	for _, rw := range ruleRows {
		r := base()
		rw.edit(r)
		want := Classify(r, DefaultParams)
		b, err := json.Marshal(r)
		require.NoError(t, err)
		var back smtpstate.Record
		require.NoError(t, json.Unmarshal(b, &back))
		got := Classify(&back, DefaultParams)
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		assert.JSONEq(t, string(wj), string(gj), rw.rule)
	}
}

// TestQuitGapWithout221: a QUIT without its 221 after a gap decides nothing;
// with its 221 but an open transaction, the message's fate is unknown.
func TestQuitGapWithout221(t *testing.T) {
	r0 := base()
	r0.Quit = &smtpstate.Exchange{Cmd: "QUIT", CmdFrame: 20, CmdTS: at(9.1), Reply: "221 bye", ReplyFrame: 21, ReplyTS: at(9.2)}
	r0.Anomalies = []string{"gap_in_commands"}
	r0.Client.FIN = &smtpstate.Segment{Frame: 22, TS: at(9.3), TTL: 63}
	assert.Equal(t, "undetermined", Classify(r0, DefaultParams).Verdict, "quit_mid_transaction would claim the message's fate")
	r := base()
	r.Quit = &smtpstate.Exchange{Cmd: "QUIT", CmdFrame: 20, CmdTS: at(9.1)}
	r.Anomalies = []string{"gap_in_commands"}
	r.Client.FIN = &smtpstate.Segment{Frame: 22, TS: at(9.3), TTL: 63}
	e := Classify(r, DefaultParams)
	assert.Equal(t, "undetermined", e.Verdict, e.Reason)
	assert.False(t, e.MessageLost, "no MESSAGE LOST on an undetermined session")
}

// TestQuitInferredNoWait: the QUIT and the client's FIN were lost; the
// 221 met a socket already closed (the client's RST has no ACK): the client
// did not wait for the reply.
func TestQuitInferredNoWait(t *testing.T) {
	r := base()
	r.Client.AckedUnseen = 7 // "QUIT\r\n" and the FIN
	r.Trans[0].Outcome, r.Trans[0].FinalReply = "accepted", "250 ok"
	r.LastReplyAt = &smtpstate.Exchange{Reply: "221 2.0.0 Bye", ReplyFrame: 28, ReplyTS: at(9.4)}
	r.Client.RSTs = []smtpstate.RST{{Frame: 29, TS: at(9.41), TTL: 63, SeqKnown: true}}
	e := Classify(r, DefaultParams)
	assert.Equal(t, string(QuitNoWait), e.Verdict, e.Reason)
	r.Client.RSTs[0].HasACK = true // an abortive close after reading the 221
	e = Classify(r, DefaultParams)
	assert.Equal(t, string(QuitThenRST), e.Verdict, e.Reason)
}
