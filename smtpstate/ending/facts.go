package ending

import (
	"strconv"
	"strings"

	"github.com/smtpcap/smtpcap/smtpstate"
)

type (
	record = smtpstate.Record
	dir    = smtpstate.Dir
)

const (
	fromClient = smtpstate.FromClient
	fromServer = smtpstate.FromServer
)

// closeEvent is a FIN or RST that may have ended the connection.
type closeEvent struct {
	kind  string // "fin" or "rst"
	dir   dir
	frame uint64
	ts    smtpstate.Time
	rst   *smtpstate.RST
}

// drop is a retransmission run that no ACK answered.
type drop struct {
	dir dir
	run *smtpstate.Run
}

// facts are derived once from the record; the rules only read them.
type facts struct {
	r *record
	p Params

	// firstClose is the earliest FIN or RST of either side (nil: none).
	firstClose *closeEvent
	// quitCovers: the client sent QUIT before the first close (or there
	// was no close): the QUIT explains what follows.
	quitCovers bool
	// quitKind is the quit_* verdict the transactions call for.
	quitKind Verdict
	// lastReply is the last server reply and lastCode its code (0: none).
	lastReply *smtpstate.Exchange
	lastCode  int
	// lastUnsolicited: the last reply answered no command (a timeout
	// notice, typically).
	lastUnsolicited bool
	// timeoutText: the last reply's text speaks of a timeout.
	timeoutText bool
	// closingReply: before the first close the server announced the end
	// (421, or an unsolicited 4xx/5xx); what closes afterwards follows it.
	closingReply bool
	// idleBeforeClose is how long the client had been silent (no payload,
	// no reply awaited) when the first close came; 0 without a close.
	idleBeforeClose float64
	// matchedTimer is the known server timer idleBeforeClose matches (0:
	// none), within [timerLow, timerHigh].
	matchedTimer float64
	// clientOnly, serverOnly: only that side's packets were captured.
	clientOnly, serverOnly bool
	// degraded: one direction only, or bytes lost by the capture.
	degraded bool
	// captureLoss: the capture lost bytes of this session (missing from a
	// stream, or acknowledged by the peer but never captured): it did not
	// see every packet of the session, so the absence of a packet (a FIN,
	// a RST) is no proof that it was not sent.
	captureLoss bool
	// sequenceBroken: bytes missing from the capture broke the pairing of
	// commands and replies.
	sequenceBroken bool
	// silentDrop is the first side's unacknowledged retransmission run
	// (≥ silentDropRun, before any close, the peer seen); nil if none.
	silentDrop *drop
	// rstOrigin scores the first close when it is a RST (nil otherwise);
	// rstMargin is its middlebox minus endpoint points.
	rstOrigin *smtpstate.Score
	rstMargin int
	// capturePoint is where the TTLs say the capture was taken.
	capturePoint string
	// openTx is the last transaction when it was unfinished ("open", or
	// abandoned by QUIT); messageOpen when it was "open".
	openTx      *smtpstate.Transaction
	messageOpen bool
	// idleAtEnd is the time from the session's last packet to the end of
	// the capture.
	idleAtEnd float64
}

func derive(r *record, p Params) *facts {
	f := &facts{r: r, p: p, capturePoint: capturePoint(r)}
	f.firstClose = firstClose(r)
	fc := f.firstClose
	f.quitCovers = r.Quit != nil && (fc == nil || fc.frame >= r.Quit.CmdFrame)
	f.quitKind = quitKind(r)
	if la := r.LastReplyAt; la != nil {
		f.lastReply, f.lastCode = la, replyCode(la.Reply)
		f.timeoutText = isTimeoutText(la.Reply)
		f.lastUnsolicited = len(r.Unsolicited) > 0 && r.Unsolicited[len(r.Unsolicited)-1].ReplyFrame == la.ReplyFrame
		f.closingReply = fc != nil && la.ReplyFrame <= fc.frame && (f.lastCode == 421 || f.lastUnsolicited && f.lastCode >= 400)
	}
	if fc != nil {
		f.idleBeforeClose = clientIdleBefore(r, fc.ts)
		f.matchedTimer = matchTimer(p, f.idleBeforeClose)
		if fc.kind == "rst" {
			f.rstOrigin = origin(r, fc.dir, fc.rst)
			f.rstMargin = f.rstOrigin.Middlebox - f.rstOrigin.Endpoint
		}
	}
	f.clientOnly = r.Server.Packets == 0 && r.Client.Packets > 0
	f.serverOnly = r.Client.Packets == 0 && r.Server.Packets > 0
	f.captureLoss = r.MissedBytes > 0 || r.Client.AckedUnseen > 0 || r.Server.AckedUnseen > 0
	f.degraded = r.Client.Packets == 0 || r.Server.Packets == 0 || f.captureLoss
	f.sequenceBroken = hasAnomaly(r, "gap_in_commands") || hasAnomaly(r, "gap_in_replies")
	f.silentDrop = silentDrop(r, fc)
	if n := len(r.Trans); n > 0 && (r.Trans[n-1].Outcome == "open" || r.Trans[n-1].Outcome == "quit") {
		f.openTx = &r.Trans[n-1]
		f.messageOpen = f.openTx.Outcome == "open"
	}
	f.idleAtEnd = r.CaptureEnd.Sub(r.EndTS.Time).Seconds()
	return f
}

// firstClose is the earliest FIN or RST of the connection.
func firstClose(r *record) *closeEvent {
	var best *closeEvent
	consider := func(c closeEvent) {
		if best == nil || c.frame < best.frame {
			best = &c
		}
	}
	for _, d := range []dir{fromClient, fromServer} {
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

func silentDrop(r *record, fc *closeEvent) *drop {
	for _, d := range []dir{fromClient, fromServer} {
		run, peer := dirOf(r, d).RetransRun, dirOf(r, d.Other())
		if run == nil || run.Count < silentDropRun || run.Acked || peer.Packets == 0 {
			continue
		}
		if fc != nil && fc.frame < run.FirstFrame {
			continue
		}
		return &drop{dir: d, run: run}
	}
	return nil
}

// quitKind names the QUIT verdict the last transaction calls for.
func quitKind(r *record) Verdict {
	if len(r.Trans) == 0 {
		return QuitNoTransaction
	}
	switch t := &r.Trans[len(r.Trans)-1]; t.Outcome {
	case "quit", "open":
		if refused(t) {
			// Every recipient (or the sender) was refused: the server
			// refused the transaction, the client did not abandon it.
			return QuitAfterRejection
		}
		return QuitMidTransaction
	case "accepted":
		return QuitAfterMessage
	case "reset":
		for i := len(r.Trans) - 1; i >= 0; i-- {
			if r.Trans[i].Outcome == "accepted" {
				return QuitAfterMessage
			}
		}
		return QuitNoTransaction
	}
	return QuitAfterRejection
}

// clientIdleBefore is how long the client had sent no payload before t;
// an answered command counts from the reply (the server then waits for
// the client).
func clientIdleBefore(r *record, t smtpstate.Time) float64 {
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
	if la := r.LastReplyAt; la != nil && la.ReplyTS.After(last.Time) && !la.ReplyTS.After(t.Time) && !isTimeoutText(la.Reply) && len(r.Unsolicited) == 0 {
		last = la.ReplyTS
	}
	return t.Sub(last.Time).Seconds()
}

// matchTimer returns the known server timer an idle gap matches.
func matchTimer(p Params, idle float64) float64 {
	for _, t := range p.ServerTimeouts {
		if idle >= t*timerLow && idle <= t*timerHigh {
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

func replyCode(s string) int {
	if len(s) < 3 {
		return 0
	}
	n, _ := strconv.Atoi(s[:3])
	return n
}

func dirOf(r *record, d dir) *smtpstate.DirFacts {
	if d == fromClient {
		return &r.Client
	}
	return &r.Server
}

// endpointRST is the verdict for a RST its purported sender really sent.
func endpointRST(d dir) Verdict {
	if d == fromClient {
		return ClientRST
	}
	return ServerRST
}

func appendFlag(fs []string, f string) []string {
	if hasFlag(fs, f) {
		return fs
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

func hasAnomaly(r *record, a string) bool { return hasFlag(r.Anomalies, a) }

func hasExt(r *record, x string) bool { return hasFlag(r.Extensions, x) }

// refused: the transaction's MAIL, or every one of its recipients, was
// refused with a 4xx/5xx, and no DATA was accepted.
func refused(t *smtpstate.Transaction) bool {
	if c := replyCode(t.MailReply); c >= 400 {
		return true
	}
	if len(t.Rcpts) == 0 || t.DataCmd != "" && replyCode(t.DataReply) < 400 && t.DataReply != "" {
		return false
	}
	for _, rc := range t.Rcpts {
		if c := replyCode(rc.Reply); c < 400 {
			return false
		}
	}
	return true
}
