package ending

import (
	"fmt"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// The firewall seen from the server (the capture an appliance takes of
// itself): the firewall's connection entry expired while the client
// idled, so what the server sends after the idle gap meets a firewall that
// no longer knows the connection. It answers with a RST in the client's
// name (REJECT) or drops the packets (DROP). The server's own timeout
// notice is then not the end of the story: its timer is longer than the
// firewall's.

// idleExpiryAnswered: the server's closing reply after an idle client was
// answered by a RST in the client's name that the client did not send.
func idleExpiryAnswered(f *facts) bool {
	fc := f.firstClose
	return f.closingReply && firstRST(f) && fc.dir == fromClient && f.rstMargin >= marginMiddlebox &&
		f.idleBeforeClose >= f.p.FirewallIdle
}

func thenIdleExpiryAnswered(f *facts) Decision {
	fc := f.firstClose
	d := decision(FirewallIdleExpiry, "middlebox", "rst", middleboxConfidence(f),
		fmt.Sprintf("the client was idle %.0fs; the server's %d after that was answered by a RST in the client's name that the client did not send: the firewall had already forgotten the connection (its idle timeout for TCP/%d is shorter than %.0f s)",
			f.idleBeforeClose, f.lastCode, f.r.RespP, f.idleBeforeClose))
	if la := f.lastReply; la != nil {
		d.ev(la.ReplyFrame, la.ReplyTS, "server's closing reply %q after %.0fs of client silence", la.Reply, f.idleBeforeClose)
	}
	d.ev(fc.frame, fc.ts, "RST in the client's name answers it")
	d.RunnerUp = "server_timeout: the server's timer ended the session and the client's host reset what followed"
	d.Confirm = "the firewall's idle timeout for TCP/25 and its teardown log (e.g. ASA 302014 Conn-timeout) for this connection"
	return rstDecision(f, d)
}

// idleExpiryDropped: the server's closing reply or FIN after an idle
// client was retransmitted and never acknowledged, and nothing came from
// the client after it: the path dropped them.
func idleExpiryDropped(f *facts) bool {
	run := f.r.Server.RetransRun
	if run == nil || run.Acked || run.Count < silentDropRun || !serverEnds(f) || f.idleBeforeClose < f.p.FirewallIdle {
		return false
	}
	fc := f.firstClose
	return run.FirstFrame >= f.lastReplyFrame() && !f.r.Client.LastTS.After(fc.ts.Time)
}

func (f *facts) lastReplyFrame() uint64 {
	if f.lastReply == nil {
		return 0
	}
	return f.lastReply.ReplyFrame
}

func thenIdleExpiryDropped(f *facts) Decision {
	run := f.r.Server.RetransRun
	d := decision(FirewallIdleExpiry, "middlebox", "drop", "medium",
		fmt.Sprintf("the client was idle %.0fs; what the server sent after that was retransmitted %d times over %.1fs and never acknowledged, and the client sent nothing more: a firewall whose idle timeout for TCP/%d is shorter than %.0f s dropped it",
			f.idleBeforeClose, run.Count, run.Span, f.r.RespP, f.idleBeforeClose))
	if la := f.lastReply; la != nil {
		d.ev(la.ReplyFrame, la.ReplyTS, "server's reply %q after %.0fs of client silence", la.Reply, f.idleBeforeClose)
	}
	d.ev(run.FirstFrame, noTS, "server retransmitted seq %d %d times over %.1fs, never acknowledged", run.Seq, run.Count, run.Span)
	if !f.r.Client.LastTS.IsZero() {
		d.ev(0, f.r.Client.LastTS, "last packet from the client")
	}
	d.RunnerUp = "server_timeout, with the client's host gone (no RST because it is not there)"
	d.Confirm = "the firewall's idle timeout for TCP/25 and its drop log for this connection"
	return d
}

// Reading through capture loss: the close without QUIT is no proof when
// the client's own bytes (or its FIN) are missing from the capture: the
// QUIT may be among them.

// closeAfterClientLoss: no QUIT seen, and the capture lost bytes the client
// sent (a gap in its stream, or bytes the server acknowledged that the
// capture never saw, its FIN included).
func closeAfterClientLoss(f *facts) bool {
	c := &f.r.Client
	return f.firstClose != nil && f.r.Quit == nil && (c.GapBytes > 0 || c.AckedUnseen > 0)
}

func thenCloseAfterClientLoss(f *facts) Decision {
	r, fc, c := f.r, f.firstClose, &f.r.Client
	d := decision(Undetermined, "unknown", fc.kind, "low",
		fmt.Sprintf("the %s's %s ended the session, but %d bytes the client sent are missing from the capture before it: a QUIT (or the client's own close) may be among them", fc.dir, fc.kind, c.GapBytes+c.AckedUnseen))
	d.ev(fc.frame, fc.ts, "first close: %s from the %s, phase %s", fc.kind, fc.dir, r.PhaseAtEnd)
	if c.AckedUnseen > 0 {
		d.ev(0, noTS, "the server acknowledged %d bytes of the client's the capture does not have", c.AckedUnseen)
	}
	if c.GapBytes > 0 {
		d.ev(0, noTS, "%d bytes missing from the client's stream (%d gaps)", c.GapBytes, c.Gaps)
	}
	d.RunnerUp = "quit_* if the QUIT was in the lost bytes, else the verdict the close alone would give"
	d.Confirm = "a capture without loss, or the server's log for this connection"
	return d
}

// quitInferred: a 221 that answers no QUIT the capture holds; a 221 only
// ever answers QUIT, so the QUIT is in bytes the capture lost.
func quitInferred(f *facts) bool {
	return f.r.Quit == nil && f.lastCode == 221 && (f.firstClose == nil || f.lastReply.ReplyFrame <= f.firstClose.frame+1)
}

func thenQuitInferred(f *facts) Decision {
	la, fc := f.lastReply, f.firstClose
	v, who, why := f.quitKind, "client", quitReasons[f.quitKind]
	switch {
	case fc != nil && fc.dir == fromClient && fc.frame < la.ReplyFrame:
		v, why = QuitNoWait, "the client sent QUIT and closed without waiting for the 221"
	case clientNoStateRSTAfter(f, la.ReplyFrame):
		// The 221 met a socket the client had already closed: it did not
		// wait for the reply.
		v, why = QuitNoWait, "the client sent QUIT and closed without waiting for the 221 (its RST without ACK answers the 221: the socket was already closed)"
	case firstRSTAfter(f, la.ReplyFrame) != nil:
		x := firstRSTAfter(f, la.ReplyFrame)
		v, who, why = QuitThenRST, x.d.String(), "QUIT was exchanged, then the "+x.d.String()+" reset the connection: a normal abortive close, not a failure"
	case len(f.r.Trans) == 0 && f.r.Client.GapBytes+f.r.Client.AckedUnseen <= 6:
		// nothing but the QUIT itself can be in the lost bytes
	case fateSeen(f):
	default:
		d := decision(Undetermined, "client", "quit", "low", "the client quit (its QUIT was lost by the capture; the server's 221 answers it), but the lost bytes hide what became of its message")
		d.ev(la.ReplyFrame, la.ReplyTS, "server replied %q to a QUIT the capture does not hold", la.Reply)
		d.RunnerUp = string(f.quitKind)
		d.Confirm = "the server's log for this connection (queue id or MID)"
		return d
	}
	d := decision(v, who, "quit", "medium", why+" (QUIT inferred from the server's 221: the command itself is in bytes the capture lost)")
	d.ev(la.ReplyFrame, la.ReplyTS, "server replied %q to a QUIT the capture does not hold", la.Reply)
	if fc != nil {
		d.ev(fc.frame, fc.ts, "first close: %s from the %s", fc.kind, fc.dir)
	}
	d.Flags = []string{"inferred_from_reply"}
	d.RunnerUp = "a server that sent 221 without a QUIT (never seen in practice)"
	d.Confirm = "the server's log (quit=1 in Postfix's disconnect line)"
	return d
}

// firstRSTAfter is the first RST of either side after frame.
func firstRSTAfter(f *facts, frame uint64) *struct {
	d dir
	x smtpstate.RST
} {
	var best *struct {
		d dir
		x smtpstate.RST
	}
	for _, d := range []dir{fromClient, fromServer} {
		for _, x := range dirOf(f.r, d).RSTs {
			if x.Frame > frame && (best == nil || x.Frame < best.x.Frame) {
				best = &struct {
					d dir
					x smtpstate.RST
				}{d, x}
			}
		}
	}
	return best
}

// A reset that only the client received: mid-session the client's host
// answers the server with a no-state RST (no ACK: it has no connection any
// more), without ever having sent a FIN. A client whose process died sends
// FIN (its kernel closes the socket); a host that vanished sends nothing;
// a host that lost the connection this way was reset by something on its
// side of the path, a RST the server never saw.
func clientSideReset(f *facts) bool {
	fc, r := f.firstClose, f.r
	return firstRST(f) && fc.dir == fromClient && !fc.rst.HasACK && r.Client.FIN == nil &&
		r.Server.Packets > 0 && r.PhaseAtEnd != smtpstate.StateClosed && f.rstMargin < marginMiddlebox
}

func thenClientSideReset(f *facts) Decision {
	fc := f.firstClose
	d := decision(MiddleboxRST, "middlebox", "rst", "medium",
		fmt.Sprintf("reset on the client's side of the path; the server never saw it: in phase %s the client's host answered the server with a no-state RST (no ACK) although the client had never closed - its connection had been reset by a middlebox the server's packets do not cross", f.r.PhaseAtEnd))
	d.ev(fc.frame, fc.ts, "RST without ACK from the client's host (ttl %d): it no longer knows the connection", fc.rst.TTL)
	d.ev(0, noTS, "no FIN from the client before it (a client whose process dies sends FIN)")
	d.RunnerUp = string(ClientRST) + ": the client's host itself dropped the connection (a reboot, a socket closed with SO_LINGER 0 unseen)"
	d.Confirm = "a capture on the client's side of the firewall, or the firewall's log (an IPS or REJECT reset) for this 4-tuple"
	return rstDecision(f, d)
}

// clientNoStateRSTAfter: the first RST after frame is the client's, without
// ACK: its socket no longer existed.
func clientNoStateRSTAfter(f *facts, frame uint64) bool {
	x := firstRSTAfter(f, frame)
	return x != nil && x.d == fromClient && !x.x.HasACK
}
