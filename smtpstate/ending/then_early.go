package ending

import (
	"fmt"
	"strings"

	"github.com/smtpcap/smtpcap/smtpstate"
)

const stateTLS = smtpstate.StateTLS

var noTS smtpstate.Time

// Handshake rules.

func thenRefused(f *facts) Decision {
	r, x := f.r, f.r.Server.RSTs[0]
	d := decision(HandshakeFailed, "server", "rst", "high", "connection refused: the SYN was answered with RST")
	d.ev(r.Client.SYNFrame, r.Client.FirstTS, "client SYN")
	d.ev(x.Frame, x.TS, "RST from the server's address (ttl %d): connection refused", x.TTL)
	d.Confirm = "whether anything listens on the server port; a firewall's deny log"
	return d
}

func thenSYNUnanswered(f *facts) Decision {
	r := f.r
	conf := "high"
	if r.Client.Packets < 2 {
		conf = "medium" // one SYN: the capture may have stopped before a retry
	}
	d := decision(HandshakeFailed, "unknown", "none", conf, "SYN never answered (no SYN-ACK captured)")
	d.ev(r.Client.SYNFrame, r.Client.FirstTS, "client SYN, %d packet(s), never answered", r.Client.Packets)
	d.RunnerUp = "capture_ended: the capture may have stopped before the answer"
	d.Confirm = "a capture on the server side; the firewall's log for this 4-tuple"
	return d
}

// One-sided rules: the other side's replies (or commands) are unknown, so
// verdicts that depend on them are undetermined.

func oneSidedEvidence(f *facts) evs {
	seen, unseen := fromClient, fromServer
	if f.serverOnly {
		seen, unseen = fromServer, fromClient
	}
	var e evs
	e.add(0, noTS, "only the %s's packets are in the capture; the %s's are missing", seen, unseen)
	return e
}

func oneSided(f *facts, d Decision, e evs) Decision {
	d = d.with(e)
	d.Confirm = "a capture that sees both directions (asymmetric routing or a one-way SPAN)"
	return d
}

func oneSidedUndetermined(f *facts, why, runnerUp string, e evs) Decision {
	d := decision(Undetermined, "unknown", "none", "low", why)
	d.RunnerUp = runnerUp
	return oneSided(f, d, e)
}

func thenClientOnlyQuitNoTxn(f *facts) Decision {
	e := oneSidedEvidence(f)
	e.add(f.r.Quit.CmdFrame, f.r.Quit.CmdTS, "client QUIT")
	d := decision(QuitNoTransaction, "client", "quit", "medium", "the client quit without sending a message (the server's replies are not captured)")
	return oneSided(f, d, e)
}

// thenClientOnlyQuit: the client's side of a dialogue that ends with QUIT.
// When the client had sent the end of data of its last message, it did not
// abandon it (quit_mid_transaction would say so): the message's fate is in
// the end-of-data reply, which is not captured, so accepted
// (quit_after_message) and refused (quit_after_rejection) stay open.
func thenClientOnlyQuit(f *facts) Decision {
	e := oneSidedEvidence(f)
	sent := 0
	for _, t := range f.r.Trans {
		if t.DataCmd != "" && t.EndFrame != 0 {
			sent++
			e.add(t.EndFrame, t.EndTS, "client's end of data (%s) of the message from <%s>; its reply is not captured", t.DataCmd, t.MailFrom)
		}
	}
	e.add(f.r.Quit.CmdFrame, f.r.Quit.CmdTS, "client QUIT")
	if t := f.openTx; t != nil && t.DataCmd != "" && t.EndFrame != 0 {
		// The session ended with the client's QUIT after whole messages:
		// that much the client's side shows; their fate it does not.
		d := decision(QuitFateUnseen, "client", "quit", "medium",
			fmt.Sprintf("the client sent the end of data of %d message(s), then QUIT; whether the server accepted or refused them is in its replies, which are not captured", sent))
		d.RunnerUp = string(QuitAfterMessage) + " (or " + string(QuitAfterRejection) + "): the end of data was sent, the reply that decides is not captured"
		return oneSided(f, d, e)
	}
	return oneSidedUndetermined(f, "the client sent QUIT; whether its message was accepted is in the server's replies, which are not captured", string(f.quitKind), e)
}

func thenClientOnlyClose(f *facts) Decision {
	fc, phase := f.firstClose, f.r.PhaseAtEnd
	e := oneSidedEvidence(f)
	e.add(fc.frame, fc.ts, "client %s without QUIT, phase %s", strings.ToUpper(fc.kind), phase)
	runnerUp := ClientFINNoQuit
	if fc.kind == "rst" {
		runnerUp = ClientRST
	}
	return oneSidedUndetermined(f, "the client closed ("+fc.kind+") in phase "+phase.String()+"; whether the server had closed or replied first is not captured", string(runnerUp), e)
}

func thenOneSidedOpen(f *facts) Decision {
	return oneSidedUndetermined(f, "no FIN or RST in the captured direction; the other direction is not captured", string(CaptureEnded), oneSidedEvidence(f))
}

func thenServerOnlyTimeout(f *facts) Decision {
	la := f.lastReply
	e := oneSidedEvidence(f)
	e.add(la.ReplyFrame, la.ReplyTS, "server replied %q", la.Reply)
	// Low: whether the client's side still existed (a firewall may have
	// forgotten the connection before the server's timer) is in the
	// direction the capture lacks.
	d := decision(ServerTimeout, "server", "timeout", "low", "the server announced a timeout and closed (one direction captured)")
	d.RunnerUp = "firewall_idle_expiry: a firewall that had already forgotten the connection answered or dropped the server's notice"
	return oneSided(f, d, e)
}

func thenServerOnly221(f *facts) Decision {
	la := f.lastReply
	e := oneSidedEvidence(f)
	e.add(la.ReplyFrame, la.ReplyTS, "server replied %q", la.Reply)
	return oneSidedUndetermined(f, "the server said 221 (a QUIT was answered); the client's commands are not captured", string(QuitAfterMessage), e)
}

func thenServerOnlyClose(f *facts) Decision {
	fc := f.firstClose
	e := oneSidedEvidence(f)
	e.add(fc.frame, fc.ts, "server %s", strings.ToUpper(fc.kind))
	// "server_fin" is not a verdict: the runner-up names the mechanism.
	runnerUp := "server_fin"
	if fc.kind == "rst" {
		runnerUp = string(ServerRST)
	}
	return oneSidedUndetermined(f, "the server closed ("+fc.kind+"); whether the client closed or quit first is not captured", runnerUp, e)
}

// Silent drop rules.

// idleBeforeDrop: the longest idle gap (≥ FirewallIdle) ended right at
// the start of the unacknowledged run.
func idleBeforeDrop(f *facts) bool {
	r := f.r
	return r.MaxIdle >= f.p.FirewallIdle && r.MaxIdleFrame > 0 && r.MaxIdleFrame <= f.silentDrop.run.FirstFrame+1
}

func dropEvidence(f *facts) evs {
	sd := f.silentDrop
	run, peer := sd.run, dirOf(f.r, sd.dir.Other())
	var e evs
	e.add(run.FirstFrame, noTS, "%s retransmitted seq %d %d times over %.1fs, never acknowledged", sd.dir, run.Seq, run.Count, run.Span)
	if !peer.LastTS.IsZero() {
		e.add(0, peer.LastTS, "last packet from the %s", sd.dir.Other())
	}
	return e
}

func thenIdleThenDrop(f *facts) Decision {
	r, who := f.r, f.silentDrop.dir.String()
	e := dropEvidence(f)
	e.add(r.MaxIdleFrame, noTS, "traffic resumed after %.0fs idle", r.MaxIdle)
	d := decision(FirewallIdleExpiry, "middlebox", "none", "medium",
		fmt.Sprintf("after %.0fs idle the %s's packets were dropped: a firewall's idle timer expired the connection (DROP)", r.MaxIdle, who))
	d.RunnerUp = "silent_drop: a path failure unrelated to the idle gap"
	d.Confirm = "the firewall's idle timeout and its teardown log for this connection"
	return d.with(e)
}

func thenSilentDrop(f *facts) Decision {
	r := f.r
	d := decision(SilentDrop, "middlebox", "none", "medium",
		fmt.Sprintf("the %s's segments were never acknowledged: dropped on the path", f.silentDrop.dir))
	if hasAnomaly(r, "banner_masked") || hasAnomaly(r, "command_masked") {
		d.Reason += " after an ESMTP-inspection trigger"
	}
	d.RunnerUp = "the peer host died (no RST because it is gone)"
	d.Confirm = "a capture on the other side of the firewall; its drop log"
	return d.with(dropEvidence(f))
}

// Open rules: no FIN or RST.

func thenEvicted(f *facts) Decision {
	d := decision(Undetermined, "unknown", "none", "low", fmt.Sprintf("the session table was full: this session, quiet for %.0fs, was evicted while the capture went on", f.idleAtEnd))
	d.ev(f.r.LastFrame, f.r.EndTS, "last packet of the session; the capture ends %.1fs later", f.idleAtEnd)
	d.Confirm = "a run with a larger session table, or a capture filtered to fewer hosts"
	return d
}

func thenReused(f *facts) Decision {
	d := decision(Undetermined, "unknown", "none", "low", fmt.Sprintf("a new connection (a SYN with a new ISN) reused this 4-tuple %.1fs after its last packet, while it was still open: how it ended was not captured", f.idleAtEnd))
	d.ev(f.r.LastFrame, f.r.EndTS, "last packet of the session; the capture ends %.1fs later", f.idleAtEnd)
	d.Flags = []string{"active_connection_reuse"}
	d.Confirm = "a capture that holds the end of the first connection, or the ESA mail log for it"
	return d
}

func thenOpenAtEnd(f *facts) Decision {
	reason := "the capture ends while the session is open"
	var flags []string
	switch {
	case f.r.EndReason == "idle":
		reason = fmt.Sprintf("no FIN or RST, and no packet for %.0fs: finalized as idle while the capture went on (a timeout may have happened unseen)", f.idleAtEnd)
		flags = []string{"idle_open_at_end"}
	case f.idleAtEnd > f.p.CaptureEndSlack:
		reason = fmt.Sprintf("no FIN or RST; the session was idle %.0fs at the end of the capture (a timeout may have followed)", f.idleAtEnd)
		flags = []string{"idle_open_at_end"}
	}
	d := decision(CaptureEnded, "unknown", "none", "high", reason)
	d.ev(f.r.LastFrame, f.r.EndTS, "last packet of the session; the capture ends %.1fs later", f.idleAtEnd)
	d.Flags = flags
	d.Confirm = "a longer capture, or the ESA mail log for this connection"
	return d
}

// thenOpenAfterLoss: no close in a capture that lost bytes of the session.
// capture_ended rests on "no FIN or RST in the capture, so none was sent
// before it stopped", which only a capture that saw the whole session can
// say. A session still active when the capture stopped is most likely open
// at its end (low: its close may have been lost in the last moments); one
// whose last packet came well before the capture ended went quiet while the
// capture went on, and its close may be among the lost packets
// (undetermined).
func thenOpenAfterLoss(f *facts) Decision {
	r := f.r
	lost := fmt.Sprintf("the capture lost bytes of this session (%d missing, %d acknowledged but not seen)",
		r.MissedBytes, r.Client.AckedUnseen+r.Server.AckedUnseen)
	var d Decision
	if r.EndReason == "idle" || f.idleAtEnd > f.p.CaptureEndSlack {
		d = decision(Undetermined, "unknown", "none", "low",
			fmt.Sprintf("no FIN or RST seen, but %s and its last packet came %.0fs before the capture ended: its close may be among the lost packets", lost, f.idleAtEnd))
		d.RunnerUp = string(CaptureEnded) + ": the session stayed open and idle until the capture stopped"
		d.Flags = []string{"idle_open_at_end"}
	} else {
		d = decision(CaptureEnded, "unknown", "none", "low",
			"the capture ends while the session is open, as far as it shows: "+lost+", so a FIN or RST may have been lost too")
		d.RunnerUp = "a close (FIN or RST) the capture lost"
	}
	d.ev(0, noTS, "%s", lost)
	d.ev(r.LastFrame, r.EndTS, "last packet of the session; the capture ends %.1fs later", f.idleAtEnd)
	d.Confirm = "the ESA mail log for this connection (ICID close, or lost), or a capture without loss"
	return d
}
