package smtpstate

import (
	"strings"
	"time"
)

// verb is a client command, or a dialogue event that moves the state the
// way a command does (as Zeek's SMTP pseudo-commands). Commands are typed
// once, when the line is parsed; nothing downstream compares strings.
type verb uint8

const (
	vOther       verb = iota // a command not followed here (NOOP, VRFY, a masked XXXX …)
	vHELO                    // HELO
	vEHLO                    // EHLO
	vLHLO                    // LHLO
	vMAIL                    // MAIL FROM
	vRCPT                    // RCPT TO
	vDATA                    // DATA
	vBDAT                    // BDAT n [LAST]
	vRSET                    // RSET
	vQUIT                    // QUIT
	vSTARTTLS                // STARTTLS
	vAUTH                    // AUTH mechanism [initial response]
	vAuthLine                // a credential line sent after a 334
	vEndOfData               // the "." line that ends a DATA body
	vChunkEnd                // the last byte of a BDAT chunk
	vGreeting                // the server's first reply
	vUnsolicited             // a reply with no command pending
	vTLS                     // a TLS handshake began (after STARTTLS, or implicit TLS)
	vNotSMTP                 // the server's first line is not a reply
	vGap                     // bytes of the dialogue are missing from the capture
)

var verbOf = map[string]verb{
	"HELO": vHELO, "EHLO": vEHLO, "LHLO": vLHLO, "MAIL": vMAIL, "RCPT": vRCPT, "DATA": vDATA,
	"BDAT": vBDAT, "RSET": vRSET, "QUIT": vQUIT, "STARTTLS": vSTARTTLS, "AUTH": vAUTH,
}

// pendingName is how a pseudo-command is listed in Record.Unanswered.
var pendingName = map[verb]string{vAuthLine: "AUTH-DATA", vEndOfData: "."}

// answers is the command a reply code can answer, and only that one: after
// a gap such a reply re-synchronises the dialogue (Zeek's
// SMTP_GAP_RECOVERY).
var answers = map[int][]verb{354: {vDATA}, 221: {vQUIT}, 220: {vSTARTTLS}, 334: {vAUTH, vAuthLine}, 235: {vAUTH, vAuthLine}}

type pendingCmd struct {
	verb  verb
	name  string // as sent (or pendingName), for Unanswered
	frame uint64
	ts    time.Time
	arg   string
	tx    int   // transaction the command belongs to, -1 if none
	rcpt  int   // recipient index for RCPT
	n     int64 // BDAT chunk size, -1 if the size was invalid
	last  bool  // BDAT … LAST
}

// realign drops the pending commands that the replies lost in a gap
// answered, when the reply can answer only one command.
func (c *Conn) realign(code int) {
	for i, p := range c.pending {
		for _, v := range answers[code] {
			if p.verb == v {
				c.pending = c.pending[i:]
				return
			}
		}
	}
}

// update is the dialogue's one transition function: every change of the
// state (and of how client bytes are read) happens here. It is called with
// rp == nil when a command (or event) is seen, updating optimistically, and
// with the reply when it arrives, correcting. While the state is
// StateAfterGap, commands do not move it; a reply that can answer only one
// command (answers) puts it back where that command leads.
func (c *Conn) update(p *pendingCmd, rp *replyAcc) {
	lost := c.state == StateAfterGap
	set := func(s State) {
		if !lost {
			c.state = s
		}
	}
	code, ok := 0, false
	var t *Transaction
	if rp != nil {
		code, ok = rp.num, rp.num/100 == 2
		t = c.trans(p.tx)
	}
	switch p.verb {
	case vHELO, vEHLO, vLHLO:
		if rp != nil && ok {
			c.rec.Helo = p.arg
			if c.state < StateHelo || c.state == StateAuth || c.state == StateClosed {
				c.state = StateHelo
			}
			if p.verb != vHELO {
				c.extensions(rp.lines)
			}
		}
	case vMAIL:
		if rp == nil {
			c.newTrans(p.arg, p.frame)
			p.tx = c.curIdx
			set(StateMail)
			break
		}
		if t != nil {
			t.MailReply = rp.last
			if !ok {
				t.Outcome = "rejected"
			}
		}
		if !ok && c.curIdx == p.tx && c.state == StateMail {
			c.state = StateHelo
		}
	case vRCPT:
		if rp == nil {
			if t := c.curTrans(); t != nil && len(t.Rcpts) < maxRcpts {
				t.Rcpts = append(t.Rcpts, Rcpt{Addr: p.arg})
				p.rcpt = len(t.Rcpts) - 1
			}
			break
		}
		if t != nil && p.rcpt >= 0 && p.rcpt < len(t.Rcpts) {
			t.Rcpts[p.rcpt].Reply = rp.last
		}
		if ok && c.state == StateMail && c.curIdx == p.tx {
			c.state = StateRcpt
		}
	case vDATA:
		if rp == nil {
			c.implicitTrans(p)
			c.mode, c.dataDot, c.bareLF, c.dataBytes = modeData, dsLineStart, false, 0
			set(StateData)
			if t := c.curTrans(); t != nil {
				t.DataCmd = "DATA"
			}
			break
		}
		if lost && code == 354 {
			c.state = StateData
		}
		if t != nil {
			t.DataReply = rp.last
		}
		if code != 354 {
			if t != nil && t.Outcome == "" {
				t.Outcome = "rejected"
			}
			if c.mode == modeData && c.dataBytes == 0 {
				c.mode = modeCommand
			}
			if c.state == StateData {
				c.state = StateHelo
			}
		}
	case vEndOfData:
		if rp == nil {
			c.mode = modeCommand
			set(StateDataDone)
			if t := c.curTrans(); t != nil {
				t.EndFrame, t.EndTS = p.frame, Time{p.ts}
				if t.BodyBytes >= 3 {
					t.BodyBytes -= 3 // the ".\r\n" line is not message content
				}
			}
			p.tx = c.curIdx
			c.curIdx = -1 // the client is done with this transaction
			break
		}
		c.final(t, rp.last, ok, rp.frame, rp.ts)
	case vBDAT:
		if rp == nil {
			if p.n < 0 {
				c.anomaly("bdat_invalid_size")
				break
			}
			c.implicitTrans(p)
			set(StateBDAT)
			c.bdatLast, c.bdatFrame, c.bdatTS = p.last, p.frame, p.ts
			if t := c.curTrans(); t != nil {
				t.DataCmd = "BDAT"
			}
			c.mode, c.chunkRem = modeChunk, p.n
			break
		}
		if !ok && t != nil && t.Outcome == "" {
			t.Outcome = "rejected"
		}
		if p.last {
			c.final(t, rp.last, ok, rp.frame, rp.ts)
		}
	case vChunkEnd:
		c.mode = modeCommand
		if c.bdatLast {
			set(StateDataDone)
			if t := c.curTrans(); t != nil {
				t.EndFrame, t.EndTS = c.bdatFrame, Time{c.bdatTS}
			}
			c.curIdx = -1
		}
	case vRSET:
		if rp == nil {
			c.curIdx = -1 // commands after RSET belong to a new transaction
			if c.state == StateMail || c.state == StateRcpt {
				c.state = StateHelo
			}
			break
		}
		if ok && t != nil && t.Outcome == "" && t.FinalReply == "" {
			t.Outcome = "reset"
		}
	case vQUIT:
		if rp == nil {
			if t := c.curTrans(); t != nil && t.FinalReply == "" && t.Outcome == "" {
				t.Outcome = "quit"
			}
			set(StateQuit)
			c.rec.Quit = &Exchange{Cmd: "QUIT", CmdFrame: p.frame, CmdTS: Time{p.ts}}
			break
		}
		if c.rec.Quit != nil {
			c.rec.Quit.Reply, c.rec.Quit.ReplyFrame, c.rec.Quit.ReplyTS = rp.last, rp.frame, Time{rp.ts}
		}
		if code == 221 {
			c.state = StateClosed
		}
	case vSTARTTLS:
		switch {
		case rp == nil:
		case code == 220:
			c.update(&pendingCmd{verb: vTLS, arg: "starttls"}, nil)
		default:
			c.anomaly("starttls_refused")
		}
	case vTLS:
		c.rec.TLS, c.rec.TLSMode = true, p.arg
		c.rec.TLSInfo = &TLSFacts{}
		c.mode, c.state = modeTLS, StateTLS
		for _, q := range c.pending {
			if q.verb != vSTARTTLS {
				c.anomaly("command_pipelined_after_starttls")
			}
		}
		c.pending = c.pending[:0]
	case vAUTH, vAuthLine:
		switch {
		case rp == nil && p.verb == vAUTH:
			mech, ir := splitVerb([]byte(p.arg))
			c.rec.Auth = &Auth{Mechanism: clip(mech, 32), Bytes: len(ir)}
			c.preAuth = c.state
			set(StateAuth)
			c.mode = modeAuth
		case rp == nil:
			if c.rec.Auth != nil {
				c.rec.Auth.Bytes += int(p.n) // the line's length; its text is never kept
			}
		case code == 334:
			if lost {
				c.state = StateAuth
			}
		default:
			if c.rec.Auth != nil {
				c.rec.Auth.Reply, c.rec.Auth.Success = rp.last, ok
			}
			c.mode = modeCommand
			switch {
			case lost && code == 235:
				c.state = StateHelo // authenticated: the session is past EHLO
			case c.state == StateAuth:
				c.state = c.preAuth
			}
		}
	case vGreeting:
		c.rec.Greeting = rp.first
		if ok && c.state == StateConnect {
			c.state = StateGreeted
		}
		if i := strings.IndexByte(rp.first, '*'); i >= 0 && strings.Count(rp.first, "*") >= 5 {
			c.anomaly("banner_masked")
		}
	case vUnsolicited:
		if len(c.rec.Unsolicited) < maxUnsolic {
			c.rec.Unsolicited = append(c.rec.Unsolicited, Exchange{Reply: rp.last, ReplyFrame: rp.frame, ReplyTS: Time{rp.ts}})
		}
	case vNotSMTP:
		c.state, c.mode = StateNotSMTP, modeIgnore
	case vGap:
		if c.state != StateTLS && c.state != StateNotSMTP && c.state != StateClosed {
			c.state = StateAfterGap
		}
	default:
		if rp != nil && (code == 500 || code == 502) && isMasked(p.name) {
			c.anomaly("masked_command_rejected")
		}
	}
	if code == 421 {
		c.state = StateClosed
	}
}

func (c *Conn) final(t *Transaction, reply string, ok bool, frame uint64, ts time.Time) {
	if t != nil {
		t.FinalReply, t.FinalFrame, t.FinalTS = reply, frame, Time{ts}
		if ok {
			t.Outcome = "accepted"
		} else {
			t.Outcome = "rejected"
		}
		t.QueueID, t.MID = queueID(reply)
	}
	if c.state == StateDataDone {
		c.state = StateHelo
	}
}
