package ending

import (
	"fmt"
	"strings"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// QUIT rules.

func quitNoWait(f *facts) bool {
	fc, q := f.firstClose, f.r.Quit
	return fc != nil && fc.dir == fromClient && (q.Reply == "" || fc.frame < q.ReplyFrame)
}

// rstAfterQuit is the first RST after the QUIT (client's, then server's).
func rstAfterQuit(f *facts) *struct {
	d dir
	x smtpstate.RST
} {
	for _, d := range []dir{fromClient, fromServer} {
		if rs := dirOf(f.r, d).RSTs; len(rs) > 0 && rs[0].Frame > f.r.Quit.CmdFrame {
			return &struct {
				d dir
				x smtpstate.RST
			}{d, rs[0]}
		}
	}
	return nil
}

// quitEvidence is the QUIT, its reply and the first close, with the
// confidence the capture allows before the reply is judged.
func quitEvidence(f *facts) (evs, string, []string) {
	q, fc := f.r.Quit, f.firstClose
	var e evs
	var flags []string
	e.add(q.CmdFrame, q.CmdTS, "client QUIT")
	if q.Reply != "" {
		e.add(q.ReplyFrame, q.ReplyTS, "server replied %q", q.Reply)
	}
	conf := "high"
	if fc == nil {
		conf = "medium"
		flags = append(flags, "close_not_captured")
	} else {
		e.add(fc.frame, fc.ts, "first close: %s from the %s", strings.ToUpper(fc.kind), fc.dir)
	}
	if f.r.Client.Packets == 0 || f.r.Server.Packets == 0 {
		conf = "medium"
	}
	return e, conf, flags
}

// quitConfidence: without a 221 the close after QUIT is only medium.
func quitConfidence(f *facts, conf string) string {
	if replyCode(f.r.Quit.Reply) != 221 && conf == "high" {
		return "medium"
	}
	return conf
}

func thenQuitGap(f *facts) Decision {
	e, _, flags := quitEvidence(f)
	e.add(0, noTS, "%d bytes missing from the capture broke the command/reply sequence", f.r.MissedBytes)
	if replyCode(f.r.Quit.Reply) == 221 {
		// A gap earlier in the session does not hide a QUIT and its 221
		// seen after it: the ending is known. The verdicts that say
		// nothing of the message hold; one that names the message's fate
		// holds only when the last transaction's final reply was seen.
		switch {
		case quitNoWait(f):
			return thenQuitNoWait(f)
		case rstAfterQuit(f) != nil:
			return thenQuitThenRST(f)
		case fateSeen(f):
			d := decision(f.quitKind, "client", "quit", "high", quitReasons[f.quitKind]+" (its final reply is in the capture; bytes were lost earlier in the session)")
			d.Confirm = "the server's log for this connection (queue id or MID)"
			d.Flags = flags
			return d.with(e)
		}
	}
	d := decision(Undetermined, "client", "quit", "low", "the client quit, but bytes missing from the capture hide whether its transaction was completed")
	d.RunnerUp = string(f.quitKind)
	d.Confirm = "the server's log for this connection (queue id or MID)"
	d.Flags = flags
	return d.with(e)
}

func thenQuitNoWait(f *facts) Decision {
	e, conf, flags := quitEvidence(f)
	d := decision(QuitNoWait, "client", "quit", conf, "the client sent QUIT and closed without waiting for the 221")
	d.RunnerUp = string(f.quitKind)
	d.Flags = flags
	return d.with(e)
}

func thenQuitThenRST(f *facts) Decision {
	e, conf, flags := quitEvidence(f)
	a := rstAfterQuit(f)
	e.add(a.x.Frame, a.x.TS, "RST from the %s after QUIT (ttl %d)", a.d, a.x.TTL)
	// RFC 1122 4.2.2.13: an abortive close after QUIT is benign.
	d := decision(QuitThenRST, a.d.String(), "quit", quitConfidence(f, conf), "QUIT was exchanged, then the "+a.d.String()+" reset the connection: a normal abortive close, not a failure")
	d.RunnerUp = string(f.quitKind)
	d.Flags = flags
	return d.with(e)
}

var quitReasons = map[Verdict]string{
	QuitAfterMessage:   "the client quit after its last message was accepted",
	QuitAfterRejection: "the client quit after its transaction was refused",
	QuitNoTransaction:  "the client quit without sending a message",
	QuitMidTransaction: "the client quit in the middle of a transaction (the message was abandoned by the sender)",
}

func thenQuit(f *facts) Decision {
	e, conf, flags := quitEvidence(f)
	d := decision(f.quitKind, "client", "quit", quitConfidence(f, conf), quitReasons[f.quitKind])
	d.Flags = flags
	return d.with(e)
}

// Server rules: the server announced the end, or closed first.

// serverTimedOut: timeout text in a 4xx, an unsolicited reply and a matched
// timer, or a matched timer with no error reply before a close outside
// the closed phase.
func serverTimedOut(f *facts) bool {
	timer := f.matchedTimer > 0
	return f.lastCode >= 400 && f.timeoutText || f.lastUnsolicited && timer ||
		(f.lastReply == nil || f.lastCode < 400) && timer && f.r.PhaseAtEnd != smtpstate.StateClosed
}

// serverRefused: a 4xx/5xx before the close that ends the session.
func serverRefused(f *facts) bool {
	c := f.lastCode
	return c >= 400 && f.lastReply.ReplyFrame <= f.firstClose.frame &&
		(f.lastUnsolicited || f.r.PhaseAtEnd == smtpstate.StateClosed || c == 421 || c == 554 || c == 521)
}

func serverEvidence(f *facts) (evs, []string) {
	fc, r := f.firstClose, f.r
	var flags []string
	what := "server FIN"
	if fc.kind == "rst" {
		what = "RST from the " + fc.dir.String() + "'s address"
		if f.rstMargin >= marginMiddlebox {
			what += " (a middlebox's, see its TTL)"
			flags = append(flags, "middlebox_rst_after_close")
		}
	}
	if fc.kind == "fin" && fc.dir == fromClient {
		what = "client FIN"
	}
	var e evs
	e.add(fc.frame, fc.ts, "%s after the server's closing reply, phase %s", what, r.PhaseAtEnd)
	if la := f.lastReply; la != nil {
		e.add(la.ReplyFrame, la.ReplyTS, "last server reply %q", la.Reply)
	}
	if f.idleBeforeClose > 0 {
		e.add(0, noTS, "the client had been silent %.1fs before the server closed", f.idleBeforeClose)
	}
	return e, flags
}

func thenServerTimeout(f *facts) Decision {
	e, flags := serverEvidence(f)
	timer := f.matchedTimer > 0
	conf := "medium"
	if f.timeoutText && timer || f.lastUnsolicited && f.timeoutText {
		conf = "high"
	}
	why := "the server timed out waiting for the client"
	if timer {
		why += fmt.Sprintf(" (idle %.0fs matches a %.0fs timer)", f.idleBeforeClose, f.matchedTimer)
	}
	d := decision(ServerTimeout, "server", "timeout", conf, why)
	d.RunnerUp = "server_close_reply: the server ended the session for another reason"
	d.Confirm = "the server's log (timeout after " + strings.ToUpper(f.r.PhaseAtEnd.String()) + ")"
	d.Flags = flags
	return d.with(e)
}

func thenServerCloseReply(f *facts) Decision {
	e, flags := serverEvidence(f)
	d := decision(ServerCloseReply, "server", "reply", "high", fmt.Sprintf("the server refused with %d and closed", f.lastCode))
	d.Confirm = "the server's log for this connection"
	d.Flags = flags
	return d.with(e)
}

func thenServerCloseAfterLoss(f *facts) Decision {
	e, flags := serverEvidence(f)
	e.add(0, noTS, "the server sent %d bytes the capture lost before it closed", f.r.Server.AckedUnseen+f.r.Server.GapBytes)
	d := decision(Undetermined, "server", "fin", "low", "the server closed after bytes the capture lost (a reply such as a 421 may be among them)")
	d.RunnerUp = "server_timeout or server_close_reply"
	d.Confirm = "the server's log for this connection"
	d.Flags = flags
	return d.with(e)
}

func thenServerFIN(f *facts) Decision {
	r := f.r
	e, flags := serverEvidence(f)
	conf := "high"
	if r.Client.Packets == 0 || r.MissedBytes > 0 {
		conf = "medium"
	}
	d := decision(ServerFINNoReply, "server", "fin", conf, "the server closed without a reply (no 221 or 421) while the client was active")
	d.RunnerUp = "a proxy or firewall closing in the server's name"
	d.Confirm = "the server's log for this connection"
	d.Flags = flags
	if r.Server.FIN != nil {
		d.closeTTL = &ttlProbe{dir: fromServer, ttl: r.Server.FIN.TTL, what: "FIN"}
	}
	return d.with(e)
}

// The last rules: a FIN inside TLS, the client's FIN.

func thenTLSEnd(f *facts) Decision {
	r, fc := f.r, f.firstClose
	var e evs
	e.add(fc.frame, fc.ts, "%s FIN inside TLS", fc.dir)
	if r.LastReplyAt != nil {
		e.add(r.LastReplyAt.ReplyFrame, r.LastReplyAt.ReplyTS, "last plaintext reply %q", r.LastReplyAt.Reply)
	}
	why := fmt.Sprintf("the session ended inside TLS; the %s closed first", fc.dir)
	if t := r.TLSInfo; t != nil {
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
	if r.MissedBytes > 0 || r.TLSInfo != nil && r.TLSInfo.Garbled {
		// Bytes lost inside TLS break the record sizes that could have
		// shown a QUIT.
		conf = "low"
		why += "; bytes lost inside TLS hide the records' sizes"
	}
	d := decision(TLSEnd, fc.dir.String(), "fin", conf, why)
	// "client_fin"/"server_fin" name the mechanism, not a verdict.
	d.RunnerUp = fc.dir.String() + "_fin without QUIT: the QUIT/221 exchange cannot be seen inside TLS"
	d.Confirm = "the server's log (a QUIT in the TLS session), or a capture with TLS keys"
	return d.with(e)
}

func thenClientFIN(f *facts) Decision {
	r, fc := f.r, f.firstClose
	var e evs
	e.add(fc.frame, fc.ts, "client FIN without QUIT, phase %s", r.PhaseAtEnd)
	if la := r.LastReplyAt; la != nil {
		e.add(la.ReplyFrame, la.ReplyTS, "last server reply %q", la.Reply)
	}
	conf := "high"
	if r.Server.Packets == 0 || r.MissedBytes > 0 {
		conf = "medium"
	}
	d := decision(ClientFINNoQuit, "client", "fin", conf, "the client closed the connection without QUIT in phase "+r.PhaseAtEnd.String())
	if f.lastReply != nil && f.lastCode >= 400 {
		d.Reason += fmt.Sprintf(" after the server's %d reply", f.lastCode)
	}
	d.RunnerUp = "a proxy or firewall closing in the client's name (FIN TTL " + ttlNote(&r.Client, r.Client.FIN.TTL) + ")"
	d.Confirm = "the client's (MTA's) log for this delivery attempt"
	d.closeTTL = &ttlProbe{dir: fromClient, ttl: r.Client.FIN.TTL, what: "FIN"}
	return d.with(e)
}

// fateSeen: the quit verdict names the message's fate (accepted, refused)
// and the last transaction's final reply that decides it is in the capture.
func fateSeen(f *facts) bool {
	n := len(f.r.Trans)
	return (f.quitKind == QuitAfterMessage || f.quitKind == QuitAfterRejection) && n > 0 && f.r.Trans[n-1].FinalReply != ""
}
