package smtpstate

import (
	"bytes"
	"time"
)

// A capture that begins in the middle of a dialogue (no SYN, and the
// client speaks before any greeting) cannot know what the client's lines
// are: commands, a message body, or credentials after a 334. Until a reply
// that can answer only one thing puts the dialogue back in step, client
// lines are not taken for commands (a body line "MAIL FROM:<x>" is not a
// transaction, a password is not a command); only two lines are noted, as
// candidates a later reply may confirm: "." (the end of a body) and QUIT.
//
//	354            the body begins: DATA was sent
//	250 after "."  the end-of-data reply: a message was accepted
//	221            QUIT was sent (the QUIT line if it was seen)
//
// Any other reply leaves the dialogue out of step.

// desyncState is the out-of-step reading (Conn.desync).
type desyncState struct {
	on      bool
	decided bool // the first bytes decided whether the dialogue is in step
	dot     *pendingCmd
	quit    *pendingCmd
	skipped int // client lines not taken for commands
}

// desyncStart decides, at the first bytes of the session, whether the
// dialogue can be read in step: it can when the SYN was seen or the
// server speaks first.
func (c *Conn) desyncStart(d Dir) {
	if c.desync.decided {
		return
	}
	c.desync.decided = true
	if d == FromClient && c.rec.RoleBasis != "syn" && c.rec.RoleBasis != "synack" && c.rec.Replies == 0 && c.mode == modeCommand {
		c.desync.on = true
		c.anomaly("dialogue_out_of_step")
	}
}

// desyncLine notes a client line read out of step.
func (c *Conn) desyncLine(line []byte, frame uint64, ts time.Time) {
	c.desync.skipped++
	switch t := bytes.TrimSpace(line); {
	case len(t) == 1 && t[0] == '.':
		c.desync.dot = &pendingCmd{verb: vEndOfData, name: pendingName[vEndOfData], frame: frame, ts: ts, tx: -1, rcpt: -1}
	case bytes.EqualFold(t, []byte("QUIT")):
		c.desync.quit = &pendingCmd{verb: vQUIT, name: "QUIT", frame: frame, ts: ts, tx: -1, rcpt: -1}
	}
}

// desyncReply lets a reply that can answer only one thing bring the
// dialogue back in step: it queues the command that reply answers, so
// that the reply is then paired with it as usual.
func (c *Conn) desyncReply(code int, frame uint64, ts time.Time) {
	ds := &c.desync
	switch {
	case code == 354:
		ds.on = false
		c.anomaly("inferred_from_reply")
		c.command(&pendingCmd{verb: vDATA, name: "DATA", frame: frame, ts: ts, tx: c.curIdx, rcpt: -1})
	case code/100 == 2 && code != 221 && code != 220 && ds.dot != nil:
		ds.on = false
		c.anomaly("inferred_from_reply")
		c.newTrans("", ds.dot.frame)
		if t := c.curTrans(); t != nil {
			t.DataCmd = "DATA"
		}
		p := *ds.dot
		p.tx = c.curIdx
		c.update(&p, nil) // the end of the body, then its reply pairs with it
		c.push(p)
	case code == 221:
		ds.on = false
		if ds.quit != nil {
			c.command(ds.quit)
		}
	}
}
