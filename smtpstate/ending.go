package smtpstate

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Ending is the verdict on how a session ended, with its evidence. It is
// computed at close by Classify, a pure function of the Record.
//
// Verdicts (stable strings; compare Zeek's conn_state):
//
//	quit_after_message    QUIT/221 after the last transaction got its final 2xx
//	quit_after_rejection  QUIT/221 after the last transaction was refused
//	quit_no_transaction   QUIT/221 with no MAIL FROM in the session
//	quit_mid_transaction  QUIT while a transaction was open (ESA: "Receiving aborted by sender")
//	quit_then_rst         QUIT/221 and then a RST: a benign abortive close
//	quit_no_wait          QUIT sent, the client closed before the 221 came
//	client_fin_no_quit    the client closed (FIN) without QUIT
//	server_close_reply    the server replied 4xx/5xx (421 …) and closed
//	server_timeout        the server closed after an idle client (421 timeout text or timer-long gap)
//	server_fin_no_reply   the server closed with no reply while the client was active
//	client_rst            a RST from the real client
//	server_rst            a RST from the real server
//	middlebox_rst         a RST that the purported sender did not send
//	firewall_idle_expiry  an idle gap, then the firewall's RST (or silence) when traffic resumed
//	silent_drop           retransmissions never acknowledged while the peer is seen
//	handshake_failed      no established connection (no answer, or refused)
//	tls_end               a FIN inside TLS (QUIT, if any, is encrypted; TCP facts only)
//	capture_ended         the capture stops with the session open
//	undetermined          the evidence does not decide
type Ending struct {
	Verdict    string     `json:"verdict"`
	Who        string     `json:"who"`       // client, server, middlebox, unknown
	Mechanism  string     `json:"mechanism"` // quit, fin, rst, reply, none, timeout
	Phase      State      `json:"phase"`
	Confidence string     `json:"confidence"` // high, medium, low
	Reason     string     `json:"reason"`
	Evidence   []Evidence `json:"evidence"`
	RunnerUp   string     `json:"runner_up,omitempty"`
	Confirm    string     `json:"confirm,omitempty"`
	// MessageLost: the client had started a message (MAIL accepted and data
	// sent) and the session ended before its final reply.
	MessageLost bool `json:"message_lost"`
	// DuplicateRisk: end of data was sent but no final reply seen (RFC 5321
	// §4.5.3.2.6): the sender may retry a message the server kept.
	DuplicateRisk bool     `json:"duplicate_risk"`
	ESAExpect     []string `json:"esa_expect,omitempty"`
	Flags         []string `json:"flags,omitempty"`
	// CapturePoint is inferred from TTLs: "at_client", "at_server",
	// "between" or "unknown".
	CapturePoint string `json:"capture_point"`
	Origin       *Score `json:"rst_origin,omitempty"`
}

// Evidence is one fact a reader can check in the capture.
type Evidence struct {
	Frame uint64 `json:"frame,omitempty"`
	TS    Time   `json:"ts"`
	Text  string `json:"text"`
}

// Score is the additive origin score of a RST (classification.md §6.4).
type Score struct {
	Middlebox int      `json:"middlebox"`
	Endpoint  int      `json:"endpoint"`
	Items     []string `json:"items"`
}

// Params are the timers the classifier compares idle gaps with.
type Params struct {
	// ServerTimeouts are known server idle timers in seconds (RFC 5321
	// command timeouts, the ESA's 300 s, --server-timeout).
	ServerTimeouts []float64
	// FirewallIdle is the shortest idle gap taken as a firewall's idle
	// expiry when a foreign RST or silence follows it.
	FirewallIdle float64
	// CaptureEndSlack: a session whose last packet is this close to the
	// end of the capture is "open at the end".
	CaptureEndSlack float64
}

// DefaultParams are used by Classify.
var DefaultParams = Params{
	ServerTimeouts:  []float64{60, 120, 180, 300, 600, 900},
	FirewallIdle:    5,
	CaptureEndSlack: 5,
}

// Classify computes the ending with DefaultParams.
func Classify(r *Record) *Ending { return ClassifyWith(r, DefaultParams) }

type closeEvent struct {
	kind  string // "fin" or "rst"
	dir   Dir
	frame uint64
	ts    Time
	rst   *RST
}

// ClassifyWith computes the ending of a finished record.
func ClassifyWith(r *Record, p Params) *Ending {
	e := &Ending{Phase: r.PhaseAtEnd, CapturePoint: capturePoint(r)}
	k := classifier{r: r, p: p, e: e}
	k.flags()
	k.decide()
	k.consequences()
	sort.SliceStable(e.Evidence, func(i, j int) bool {
		a, b := e.Evidence[i].Frame, e.Evidence[j].Frame
		return a != 0 && (b == 0 || a < b)
	})
	return e
}

type classifier struct {
	r *Record
	p Params
	e *Ending
}

func (k *classifier) ev(frame uint64, ts Time, format string, a ...any) {
	k.e.Evidence = append(k.e.Evidence, Evidence{Frame: frame, TS: ts, Text: fmt.Sprintf(format, a...)})
}

func (k *classifier) set(verdict, who, mech, conf, reason string) {
	k.e.Verdict, k.e.Who, k.e.Mechanism, k.e.Confidence, k.e.Reason = verdict, who, mech, conf, reason
}

// firstClose is the earliest FIN or RST of the connection.
func firstClose(r *Record) *closeEvent {
	var best *closeEvent
	consider := func(c closeEvent) {
		if best == nil || c.frame < best.frame {
			cc := c
			best = &cc
		}
	}
	for _, d := range []Dir{FromClient, FromServer} {
		f := dirOf(r, d)
		if f.FIN != nil {
			consider(closeEvent{kind: "fin", dir: d, frame: f.FIN.Frame, ts: f.FIN.TS})
		}
		if len(f.RSTs) > 0 {
			x := &f.RSTs[0]
			consider(closeEvent{kind: "rst", dir: d, frame: x.Frame, ts: x.TS, rst: x})
		}
	}
	return best
}

func dirOf(r *Record, d Dir) *DirFacts {
	if d == FromClient {
		return &r.Client
	}
	return &r.Server
}

func (k *classifier) decide() {
	r := k.r
	fc := firstClose(r)
	if k.handshake(fc) {
		return
	}
	if k.oneSided(fc) {
		return
	}
	if k.silentDrop(fc) {
		return
	}
	if r.Quit != nil && (fc == nil || fc.frame >= r.Quit.CmdFrame) {
		k.quit(fc)
		return
	}
	if fc == nil {
		k.open()
		return
	}
	if k.serverClosingReply(fc) {
		k.serverFIN(fc)
		return
	}
	if fc.kind == "rst" {
		k.rst(fc)
		return
	}
	if r.PhaseAtEnd == StateTLS {
		k.tlsEnd(fc)
		return
	}
	if fc.dir == FromClient {
		k.clientFIN(fc)
		return
	}
	k.serverFIN(fc)
}

// oneSided decides what can honestly be decided when only one direction
// was captured: the other side's replies (or commands) are unknown, so
// verdicts that depend on them become undetermined.
func (k *classifier) oneSided(fc *closeEvent) bool {
	r := k.r
	cliOnly, srvOnly := r.Server.Packets == 0 && r.Client.Packets > 0, r.Client.Packets == 0 && r.Server.Packets > 0
	if !cliOnly && !srvOnly {
		return false
	}
	seen, unseen := FromClient, FromServer
	if srvOnly {
		seen, unseen = FromServer, FromClient
	}
	k.ev(0, Time{}, "only the %s's packets are in the capture; the %s's are missing", seen, unseen)
	k.e.Confirm = "a capture that sees both directions (asymmetric routing or a one-way SPAN)"
	undetermined := func(why, runnerUp string) bool {
		k.set("undetermined", "unknown", "none", "low", why)
		k.e.RunnerUp = runnerUp
		return true
	}
	if cliOnly {
		if r.Quit != nil && (fc == nil || fc.frame >= r.Quit.CmdFrame) {
			k.ev(r.Quit.CmdFrame, r.Quit.CmdTS, "client QUIT")
			if len(r.Trans) == 0 {
				k.set("quit_no_transaction", "client", "quit", "medium", "the client quit without sending a message (the server's replies are not captured)")
				return true
			}
			return undetermined("the client sent QUIT; whether its message was accepted is in the server's replies, which are not captured", k.quitKind())
		}
		if fc != nil {
			k.ev(fc.frame, fc.ts, "client %s without QUIT, phase %s", strings.ToUpper(fc.kind), r.PhaseAtEnd)
			return undetermined("the client closed ("+fc.kind+") in phase "+r.PhaseAtEnd.String()+"; whether the server had closed or replied first is not captured",
				"client_"+map[string]string{"fin": "fin_no_quit", "rst": "rst"}[fc.kind])
		}
		return undetermined("no FIN or RST in the captured direction; the other direction is not captured", "capture_ended")
	}
	la := r.LastReplyAt
	switch {
	case la != nil && replyCode(la.Reply) == 421 && isTimeoutText(la.Reply):
		k.ev(la.ReplyFrame, la.ReplyTS, "server replied %q", la.Reply)
		k.set("server_timeout", "server", "timeout", "medium", "the server announced a timeout and closed (one direction captured)")
		return true
	case la != nil && replyCode(la.Reply) == 221:
		k.ev(la.ReplyFrame, la.ReplyTS, "server replied %q", la.Reply)
		return undetermined("the server said 221 (a QUIT was answered); the client's commands are not captured", "quit_after_message")
	case fc != nil:
		k.ev(fc.frame, fc.ts, "server %s", strings.ToUpper(fc.kind))
		return undetermined("the server closed ("+fc.kind+"); whether the client closed or quit first is not captured", "server_"+fc.kind)
	}
	return undetermined("no FIN or RST in the captured direction; the other direction is not captured", "capture_ended")
}

func (k *classifier) handshake(fc *closeEvent) bool {
	r := k.r
	if r.Client.SYNFrame == 0 || r.Server.SYNFrame != 0 {
		return false
	}
	if len(r.Server.RSTs) > 0 {
		x := r.Server.RSTs[0]
		k.ev(r.Client.SYNFrame, r.Client.FirstTS, "client SYN")
		k.ev(x.Frame, x.TS, "RST from the server's address (ttl %d): connection refused", x.TTL)
		k.set("handshake_failed", "server", "rst", "high", "connection refused: the SYN was answered with RST")
		k.e.Confirm = "whether anything listens on the server port; a firewall's deny log"
		return true
	}
	if r.Server.Packets == 0 && r.Client.Packets == int64(r.Client.SYNs) {
		k.ev(r.Client.SYNFrame, r.Client.FirstTS, "client SYN, %d packet(s), never answered", r.Client.Packets)
		conf := "high"
		if r.Client.Packets < 2 {
			conf = "medium"
		}
		k.set("handshake_failed", "unknown", "none", conf, "SYN never answered (no SYN-ACK captured)")
		k.e.RunnerUp = "capture_ended: the capture may have stopped before the answer"
		k.e.Confirm = "a capture on the server side; the firewall's log for this 4-tuple"
		return true
	}
	return false
}

// silentDrop: a retransmission run of ≥3 never acknowledged, before any
// close, while the other direction was seen earlier.
func (k *classifier) silentDrop(fc *closeEvent) bool {
	r := k.r
	for _, d := range []Dir{FromClient, FromServer} {
		f, peer := dirOf(r, d), dirOf(r, d.Other())
		run := f.RetransRun
		if run == nil || run.Count < 3 || run.Acked || peer.Packets == 0 {
			continue
		}
		if fc != nil && fc.frame < run.FirstFrame {
			continue
		}
		who := d.String()
		k.ev(run.FirstFrame, Time{}, "%s retransmitted seq %d %d times over %.1fs, never acknowledged", who, run.Seq, run.Count, run.Span)
		if !peer.LastTS.IsZero() {
			k.ev(0, peer.LastTS, "last packet from the %s", d.Other())
		}
		if r.MaxIdle >= k.p.FirewallIdle && r.MaxIdleFrame > 0 && r.MaxIdleFrame <= run.FirstFrame+1 {
			k.ev(r.MaxIdleFrame, Time{}, "traffic resumed after %.0fs idle", r.MaxIdle)
			k.set("firewall_idle_expiry", "middlebox", "none", "medium",
				fmt.Sprintf("after %.0fs idle the %s's packets were dropped: a firewall's idle timer expired the connection (DROP)", r.MaxIdle, who))
			k.e.RunnerUp = "silent_drop: a path failure unrelated to the idle gap"
			k.e.Confirm = "the firewall's idle timeout and its teardown log for this connection"
			return true
		}
		k.set("silent_drop", "middlebox", "none", "medium",
			fmt.Sprintf("the %s's segments were never acknowledged: dropped on the path", who))
		if len(r.Anomalies) > 0 && (hasAnomaly(r, "banner_masked") || hasAnomaly(r, "command_masked")) {
			k.e.Reason += " after an ESMTP-inspection trigger"
		}
		k.e.RunnerUp = "the peer host died (no RST because it is gone)"
		k.e.Confirm = "a capture on the other side of the firewall; its drop log"
		return true
	}
	return false
}

func (k *classifier) quit(fc *closeEvent) {
	r := k.r
	q := r.Quit
	k.ev(q.CmdFrame, q.CmdTS, "client QUIT")
	got221 := replyCode(q.Reply) == 221
	if q.Reply != "" {
		k.ev(q.ReplyFrame, q.ReplyTS, "server replied %q", q.Reply)
	}
	conf := "high"
	if fc == nil {
		conf = "medium"
		k.e.Flags = appendFlag(k.e.Flags, "close_not_captured")
	} else {
		k.ev(fc.frame, fc.ts, "first close: %s from the %s", strings.ToUpper(fc.kind), fc.dir)
	}
	if r.Client.Packets == 0 || r.Server.Packets == 0 {
		conf = "medium"
	}
	verdict := k.quitKind()
	if hasAnomaly(r, "gap_in_commands") || hasAnomaly(r, "gap_in_replies") {
		k.ev(0, Time{}, "%d bytes missing from the capture broke the command/reply sequence", r.MissedBytes)
		k.set("undetermined", "client", "quit", "low", "the client quit, but bytes missing from the capture hide whether its transaction was completed")
		k.e.RunnerUp = verdict
		k.e.Confirm = "the server's log for this connection (queue id or MID)"
		return
	}
	if fc != nil && fc.dir == FromClient && (q.Reply == "" || fc.frame < q.ReplyFrame) {
		k.set("quit_no_wait", "client", "quit", conf, "the client sent QUIT and closed without waiting for the 221")
		k.e.RunnerUp = verdict
		return
	}
	if !got221 && conf == "high" {
		conf = "medium"
	}
	// QUIT/221 followed by a RST: benign abortive close (RFC 1122 4.2.2.13).
	for _, d := range []Dir{FromClient, FromServer} {
		f := dirOf(r, d)
		if len(f.RSTs) > 0 && f.RSTs[0].Frame > q.CmdFrame {
			x := f.RSTs[0]
			k.ev(x.Frame, x.TS, "RST from the %s after QUIT (ttl %d)", d, x.TTL)
			k.set("quit_then_rst", d.String(), "quit", conf, "QUIT was exchanged, then the "+d.String()+" reset the connection: a normal abortive close, not a failure")
			k.e.RunnerUp = verdict
			return
		}
	}
	reason := map[string]string{
		"quit_after_message":   "the client quit after its last message was accepted",
		"quit_after_rejection": "the client quit after its transaction was refused",
		"quit_no_transaction":  "the client quit without sending a message",
		"quit_mid_transaction": "the client quit in the middle of a transaction (the message was abandoned by the sender)",
	}[verdict]
	k.set(verdict, "client", "quit", conf, reason)
}

func (k *classifier) quitKind() string {
	r := k.r
	if len(r.Trans) == 0 {
		return "quit_no_transaction"
	}
	t := r.Trans[len(r.Trans)-1]
	switch t.Outcome {
	case "quit", "open":
		return "quit_mid_transaction"
	case "accepted":
		return "quit_after_message"
	case "reset":
		for i := len(r.Trans) - 1; i >= 0; i-- {
			if r.Trans[i].Outcome == "accepted" {
				return "quit_after_message"
			}
		}
		return "quit_no_transaction"
	}
	return "quit_after_rejection"
}

func (k *classifier) open() {
	r := k.r
	idleEnd := r.CaptureEnd.Sub(r.EndTS.Time).Seconds()
	k.ev(r.LastFrame, r.EndTS, "last packet of the session; the capture ends %.1fs later", idleEnd)
	reason := "the capture ends while the session is open"
	switch {
	case r.EndReason == "evicted":
		k.set("undetermined", "unknown", "none", "low", fmt.Sprintf("the session table was full: this session, quiet for %.0fs, was evicted while the capture went on", idleEnd))
		k.e.Confirm = "a run with a larger session table, or a capture filtered to fewer hosts"
		return
	case r.EndReason == "reused":
		k.set("undetermined", "unknown", "none", "low", fmt.Sprintf("a new connection (a SYN with a new ISN) reused this 4-tuple %.1fs after its last packet, while it was still open: how it ended was not captured", r.CaptureEnd.Sub(r.EndTS.Time).Seconds()))
		k.e.Flags = appendFlag(k.e.Flags, "active_connection_reuse")
		k.e.Confirm = "a capture that holds the end of the first connection, or the ESA mail log for it"
		return
	case r.EndReason == "idle":
		reason = fmt.Sprintf("no FIN or RST, and no packet for %.0fs: finalized as idle while the capture went on (a timeout may have happened unseen)", idleEnd)
		k.e.Flags = appendFlag(k.e.Flags, "idle_open_at_end")
	case idleEnd > k.p.CaptureEndSlack:
		reason = fmt.Sprintf("no FIN or RST; the session was idle %.0fs at the end of the capture (a timeout may have followed)", idleEnd)
		k.e.Flags = appendFlag(k.e.Flags, "idle_open_at_end")
	}
	k.set("capture_ended", "unknown", "none", "high", reason)
	k.e.Confirm = "a longer capture, or the ESA mail log for this connection"
}

// tlsEnd judges a FIN inside TLS from TCP and record-header facts only: the
// QUIT and 221 (if any) are encrypted.
func (k *classifier) tlsEnd(fc *closeEvent) {
	r := k.r
	k.ev(fc.frame, fc.ts, "%s FIN inside TLS", fc.dir)
	if r.LastReplyAt != nil {
		k.ev(r.LastReplyAt.ReplyFrame, r.LastReplyAt.ReplyTS, "last plaintext reply %q", r.LastReplyAt.Reply)
	}
	why := fmt.Sprintf("the session ended inside TLS; the %s closed first", fc.dir)
	t := r.TLSInfo
	if t != nil {
		if t.ClientAlerts+t.ServerAlerts > 0 {
			why += fmt.Sprintf(" after TLS alert records (client %d, server %d): a graceful TLS shutdown", t.ClientAlerts, t.ServerAlerts)
		}
		if t.LastRecordFrom != "" {
			why += "; the last TLS record came from the " + t.LastRecordFrom
		}
	}
	conf := "medium"
	if r.Client.Packets == 0 || r.Server.Packets == 0 {
		conf = "low"
	}
	k.set("tls_end", fc.dir.String(), "fin", conf, why)
	k.e.RunnerUp = fc.dir.String() + "_fin without QUIT: the QUIT/221 exchange cannot be seen inside TLS"
	k.e.Confirm = "the server's log (a QUIT in the TLS session), or a capture with TLS keys"
}

func (k *classifier) clientFIN(fc *closeEvent) {
	r := k.r
	k.ev(fc.frame, fc.ts, "client FIN without QUIT, phase %s", r.PhaseAtEnd)
	if r.LastReplyAt != nil {
		k.ev(r.LastReplyAt.ReplyFrame, r.LastReplyAt.ReplyTS, "last server reply %q", r.LastReplyAt.Reply)
	}
	conf := "high"
	if r.Server.Packets == 0 || r.MissedBytes > 0 {
		conf = "medium"
	}
	k.set("client_fin_no_quit", "client", "fin", conf, "the client closed the connection without QUIT in phase "+r.PhaseAtEnd.String())
	if la := r.LastReplyAt; la != nil && replyCode(la.Reply) >= 400 {
		k.e.Reason += fmt.Sprintf(" after the server's %d reply", replyCode(la.Reply))
	}
	k.e.RunnerUp = "a proxy or firewall closing in the client's name (FIN TTL " + ttlNote(&r.Client, r.Client.FIN.TTL) + ")"
	k.e.Confirm = "the client's (MTA's) log for this delivery attempt"
	k.ttlCheck(FromClient, r.Client.FIN.TTL, "FIN")
}

// serverClosingReply: the server announced the end (a 421, or an
// unsolicited reply such as a timeout notice) before the first FIN or RST;
// whatever closes the connection afterwards is a consequence.
func (k *classifier) serverClosingReply(fc *closeEvent) bool {
	la := k.r.LastReplyAt
	if la == nil || la.ReplyFrame > fc.frame {
		return false
	}
	code := replyCode(la.Reply)
	unsolicited := len(k.r.Unsolicited) > 0 && k.r.Unsolicited[len(k.r.Unsolicited)-1].ReplyFrame == la.ReplyFrame
	return code == 421 || unsolicited && code >= 400
}

func (k *classifier) serverFIN(fc *closeEvent) {
	r := k.r
	what := "server FIN"
	if fc.kind == "rst" {
		what = "RST from the " + fc.dir.String() + "'s address"
		if s := k.origin(fc.dir, fc.rst); s.Middlebox-s.Endpoint >= 3 {
			what += " (a middlebox's, see its TTL)"
			k.e.Flags = appendFlag(k.e.Flags, "middlebox_rst_after_close")
		}
	}
	if fc.kind == "fin" && fc.dir == FromClient {
		what = "client FIN"
	}
	k.ev(fc.frame, fc.ts, "%s after the server's closing reply, phase %s", what, r.PhaseAtEnd)
	la := r.LastReplyAt
	code := 0
	if la != nil {
		code = replyCode(la.Reply)
		k.ev(la.ReplyFrame, la.ReplyTS, "last server reply %q", la.Reply)
	}
	idle := k.clientIdleBefore(fc.ts)
	timer := k.matchTimer(idle)
	timeoutText := la != nil && isTimeoutText(la.Reply)
	unsolicited := len(r.Unsolicited) > 0 && la != nil && r.Unsolicited[len(r.Unsolicited)-1].ReplyFrame == la.ReplyFrame
	if idle > 0 {
		k.ev(0, Time{}, "the client had been silent %.1fs before the server closed", idle)
	}
	switch {
	case (code >= 400 && timeoutText) || (unsolicited && timer > 0) || (la == nil || code < 400) && timer > 0 && r.PhaseAtEnd != StateClosed:
		conf := "medium"
		if timeoutText && timer > 0 || unsolicited && timeoutText {
			conf = "high"
		}
		why := "the server timed out waiting for the client"
		if timer > 0 {
			why += fmt.Sprintf(" (idle %.0fs matches a %.0fs timer)", idle, timer)
		}
		k.set("server_timeout", "server", "timeout", conf, why)
		k.e.RunnerUp = "server_close_reply: the server ended the session for another reason"
		k.e.Confirm = "the server's log (timeout after " + strings.ToUpper(r.PhaseAtEnd.String()) + ")"
	case code >= 400 && la.ReplyFrame <= fc.frame && (unsolicited || r.PhaseAtEnd == StateClosed || code == 421 || code == 554 || code == 521):
		k.set("server_close_reply", "server", "reply", "high", fmt.Sprintf("the server refused with %d and closed", code))
		k.e.Confirm = "the server's log for this connection"
	case r.Server.AckedUnseen > 0 || r.Server.GapBytes > 0:
		k.ev(0, Time{}, "the server sent %d bytes the capture lost before it closed", r.Server.AckedUnseen+r.Server.GapBytes)
		k.set("undetermined", "server", "fin", "low", "the server closed after bytes the capture lost (a reply such as a 421 may be among them)")
		k.e.RunnerUp = "server_timeout or server_close_reply"
		k.e.Confirm = "the server's log for this connection"
	default:
		conf := "high"
		if r.Client.Packets == 0 || r.MissedBytes > 0 {
			conf = "medium"
		}
		k.set("server_fin_no_reply", "server", "fin", conf, "the server closed without a reply (no 221 or 421) while the client was active")
		k.e.RunnerUp = "a proxy or firewall closing in the server's name"
		k.e.Confirm = "the server's log for this connection"
		if r.Server.FIN != nil {
			k.ttlCheck(FromServer, r.Server.FIN.TTL, "FIN")
		}
	}
}

// clientIdleBefore is how long the client had sent no payload before t.
func (k *classifier) clientIdleBefore(t Time) float64 {
	r := k.r
	last := r.Client.LastDataTS
	if last.IsZero() || last.After(t.Time) {
		last = r.Client.FirstTS
		if r.Client.LastDataTS.After(t.Time) {
			return 0
		}
	}
	if last.IsZero() {
		return 0
	}
	// The last server reply counts too: the server waits for the client
	// after it has answered.
	if la := r.LastReplyAt; la != nil && la.ReplyTS.After(last.Time) && !la.ReplyTS.After(t.Time) && !isTimeoutText(la.Reply) && len(r.Unsolicited) == 0 {
		last = la.ReplyTS
	}
	return t.Sub(last.Time).Seconds()
}

// matchTimer returns the known server timer an idle gap matches (−10 %/+25 %).
func (k *classifier) matchTimer(idle float64) float64 {
	for _, t := range k.p.ServerTimeouts {
		if idle >= t*0.9 && idle <= t*1.25 {
			return t
		}
	}
	return 0
}

func isTimeoutText(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "timeout") || strings.Contains(l, "timed out") || strings.Contains(l, "time limit") ||
		strings.Contains(l, "connection time exceeded") || strings.Contains(l, "lost input channel")
}

func (k *classifier) rst(fc *closeEvent) {
	r := k.r
	x := fc.rst
	s := k.origin(fc.dir, x)
	k.e.Origin = s
	k.ev(x.Frame, x.TS, "RST from the %s's address: ttl %d, seq delta %s, ack flag %v, window %d", fc.dir, x.TTL, seqNote(x), x.HasACK, x.Window)
	for _, it := range s.Items {
		k.ev(0, Time{}, "%s", it)
	}
	margin := s.Middlebox - s.Endpoint
	phase := r.PhaseAtEnd.String()
	switch {
	case margin >= 3:
		conf := "medium"
		if margin >= 5 {
			conf = "high"
		}
		if fc.dir == FromServer && k.e.CapturePoint == "at_server" || fc.dir == FromClient && k.e.CapturePoint == "at_client" {
			conf = "low" // at that host its own packets cannot be forged; TTL tests are unreliable there
		}
		if x.ResumeGap >= k.p.FirewallIdle {
			k.ev(0, Time{}, "the connection had been idle %.0fs before the traffic that drew this RST", x.ResumeGap)
			k.set("firewall_idle_expiry", "middlebox", "rst", conf,
				fmt.Sprintf("after %.0fs idle a middlebox reset the connection in the %s's name: its state had expired", x.ResumeGap, fc.dir))
			k.e.RunnerUp = fc.dir.String() + "_rst: the " + fc.dir.String() + " itself reset the connection"
			k.e.Confirm = "the firewall's idle timeout and its teardown log (e.g. ASA 302014 Conn-timeout) for this connection"
			return
		}
		k.set("middlebox_rst", "middlebox", "rst", conf,
			fmt.Sprintf("a middlebox reset the connection in the %s's name in phase %s", fc.dir, phase))
		k.e.RunnerUp = fc.dir.String() + "_rst: the " + fc.dir.String() + " itself reset the connection"
		k.e.Confirm = "the firewall's log for this 4-tuple (e.g. ASA 302014 reason, IPS reset event)"
	case margin >= 1 || s.Middlebox >= 4 && margin >= -2:
		// weak middlebox evidence, or strong evidence on both sides
		k.set("undetermined", "unknown", "rst", "low",
			fmt.Sprintf("a RST in the %s's name in phase %s; the evidence of a middlebox is not conclusive", fc.dir, phase))
		k.e.RunnerUp = "middlebox_rst or " + fc.dir.String() + "_rst"
		k.e.Confirm = "a capture on the " + fc.dir.String() + "'s side of the firewall"
	default:
		conf := "medium"
		if s.Endpoint-s.Middlebox >= 3 && r.Client.Packets > 0 && r.Server.Packets > 0 {
			conf = "high"
		}
		verdict := fc.dir.String() + "_rst"
		k.set(verdict, fc.dir.String(), "rst", conf, fmt.Sprintf("the %s reset the connection in phase %s", fc.dir, phase))
		k.e.RunnerUp = "middlebox_rst: an in-path device with exact sequence numbers and the same TTL"
		k.e.Confirm = "the " + fc.dir.String() + "'s application log"
		if !x.HasACK {
			k.e.Reason += fmt.Sprintf(": a no-state reply (RST without ACK) - the %s's host had no connection any more (its process died, or a middlebox had reset it on the other side)", fc.dir)
			k.e.RunnerUp = "middlebox_rst towards the " + fc.dir.String() + ", invisible from this capture point"
		}
	}
}

func (k *classifier) flags() {
	r, e := k.r, k.e
	add := func(f string) { e.Flags = appendFlag(e.Flags, f) }
	if r.Client.Packets == 0 || r.Server.Packets == 0 {
		add("one_direction_only")
	}
	if r.Client.SYNFrame == 0 && r.Server.SYNFrame == 0 {
		add("midstream_start")
	}
	if r.MissedBytes > 0 || r.Client.AckedUnseen > 0 || r.Server.AckedUnseen > 0 {
		add("capture_loss")
	}
	if r.Client.FINRetrans > 0 || r.Server.FINRetrans > 0 {
		add("fin_retransmitted")
	}
	if c, s := r.Client.FIN, r.Server.FIN; c != nil && s != nil && math.Abs(c.TS.Sub(s.TS.Time).Seconds()) < 0.001 {
		add("simultaneous_close")
	}
	for _, d := range []Dir{FromClient, FromServer} {
		f := dirOf(r, d)
		if f.FIN != nil && len(f.RSTs) > 0 && f.RSTs[0].Frame > f.FIN.Frame {
			add("rst_after_fin")
		}
		if f.ZeroWindows > 0 {
			add("zero_window")
		}
		if f.KeepAlives > 0 {
			add("keepalives")
		}
	}
	if hasAnomaly(r, "banner_masked") || hasAnomaly(r, "ehlo_keyword_masked") || hasAnomaly(r, "command_masked") || hasAnomaly(r, "masked_command_rejected") {
		add("esmtp_inspection_suspected")
	}
	if hasAnomaly(r, "ehlo_keyword_masked") || (hasAnomaly(r, "starttls_refused") && !hasExt(r, "STARTTLS")) {
		add("starttls_stripped")
	}
	if hasAnomaly(r, "bare_lf_terminator") || hasAnomaly(r, "bare_lf_in_body") || hasAnomaly(r, "bare_lf_command") {
		add("bare_lf")
	}
	if r.Pipelined {
		add("pipelining")
	}
	if r.Auth != nil && !r.TLS {
		add("auth_cleartext")
	}
	if r.TLS {
		add("tls_opaque")
	}
}

// consequences fills message_lost, duplicate_risk, the ESA expectation and
// the degradation caps.
func (k *classifier) consequences() {
	r, e := k.r, k.e
	var open *Transaction
	if n := len(r.Trans); n > 0 && (r.Trans[n-1].Outcome == "open" || r.Trans[n-1].Outcome == "quit") {
		open = &r.Trans[n-1]
	}
	if open != nil && e.Verdict != "capture_ended" {
		if open.DataCmd != "" && open.Outcome == "open" {
			e.MessageLost = true
		}
		if open.EndFrame != 0 && open.FinalReply == "" && open.Outcome == "open" {
			e.DuplicateRisk = true
		}
	}
	if e.MessageLost {
		e.Flags = appendFlag(e.Flags, "message_lost")
	}
	switch {
	case strings.HasPrefix(e.Verdict, "quit_mid"):
		e.ESAExpect = []string{"Message aborted MID <m> Receiving aborted by sender", "ICID <n> close"}
	case strings.HasPrefix(e.Verdict, "quit"):
		e.ESAExpect = []string{"ICID <n> close"}
	case e.Verdict == "capture_ended" || e.Verdict == "handshake_failed":
	case open != nil && open.Outcome == "open":
		e.ESAExpect = []string{"ICID <n> lost", "Message aborted MID <m> Receiving aborted", "Message finished MID <m> aborted", "ICID <n> close"}
	default:
		e.ESAExpect = []string{"ICID <n> lost", "ICID <n> close"}
	}
	if e.Verdict == "server_close_reply" || e.Verdict == "server_timeout" {
		if open != nil {
			e.ESAExpect = []string{"Message aborted MID <m> Receiving aborted", "ICID <n> close"}
		} else {
			e.ESAExpect = []string{"ICID <n> close"}
		}
	}
	degraded := hasFlag(e.Flags, "one_direction_only") || hasFlag(e.Flags, "capture_loss")
	if degraded && e.Confidence == "high" && e.Verdict != "capture_ended" {
		e.Confidence = "medium"
	}
	if r.TLS && e.Confidence == "high" && !strings.HasPrefix(e.Verdict, "handshake") && e.Verdict != "capture_ended" {
		e.Confidence = "medium"
		e.Reason += " (inside TLS: judged from TCP facts only)"
	}
}

func appendFlag(fs []string, f string) []string {
	for _, x := range fs {
		if x == f {
			return fs
		}
	}
	return append(fs, f)
}

func hasFlag(fs []string, f string) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

func hasAnomaly(r *Record, a string) bool { return hasFlag(r.Anomalies, a) }

func hasExt(r *Record, x string) bool { return hasFlag(r.Extensions, x) }
