package smtpstate

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// replyAcc accumulates a multi-line reply.
type replyAcc struct {
	code  string
	first string
	last  string
	lines []string // continuation texts, kept for EHLO only (bounded)
	n     int
}

func (c *Conn) push(p pendingCmd) {
	if len(c.pending) > 0 {
		c.rec.Pipelined = true
	}
	if len(c.pending) >= maxPending {
		c.anomaly("excessive_pending_commands")
		c.pending = c.pending[1:]
	}
	c.pending = append(c.pending, p)
}

func (c *Conn) curTrans() *Transaction {
	if c.curIdx < 0 || c.curIdx >= len(c.rec.Trans) {
		return nil
	}
	return &c.rec.Trans[c.curIdx]
}

func (c *Conn) trans(i int) *Transaction {
	if i < 0 || i >= len(c.rec.Trans) {
		return nil
	}
	return &c.rec.Trans[i]
}

// lineText returns the line without its terminator, flagging bare LF.
func lineText(l *lineBuf) ([]byte, bool) {
	b := l.buf
	bare := true
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
			bare = false
		}
	} else {
		bare = false // truncated line: terminator not kept
	}
	return b, bare
}

func (c *Conn) clientLine(frame uint64, ts time.Time) {
	line, bare := lineText(&c.cli)
	if bare {
		c.anomaly("bare_lf_command")
	}
	if c.cli.over {
		c.anomaly("long_command_line")
	}
	if c.mode == modeAuth {
		if c.rec.Auth != nil {
			c.rec.Auth.Bytes += len(line)
		}
		c.push(pendingCmd{verb: "AUTH-DATA", frame: frame, ts: ts, tx: -1})
		return
	}
	if c.rec.Greeting == "" && c.rec.Replies == 0 {
		var skip bool
		if line, skip = c.clientPreamble(line); skip {
			return
		}
	}
	if len(line) == 0 {
		c.anomaly("empty_command")
		return
	}
	verb, arg := splitVerb(line)
	c.rec.Commands++
	c.rec.LastCommand = verb
	if isMasked(verb) {
		c.anomaly("command_masked")
	}
	p := pendingCmd{verb: verb, frame: frame, ts: ts, tx: c.curIdx, rcpt: -1}
	switch verb {
	case "HELO", "EHLO", "LHLO":
		p.arg = clip(arg, 255)
	case "MAIL":
		c.newTrans(addrArg(arg, "FROM:"), frame)
		p.tx = c.curIdx
		c.state = StateMail
	case "RCPT":
		if t := c.curTrans(); t != nil && len(t.Rcpts) < maxRcpts {
			t.Rcpts = append(t.Rcpts, Rcpt{Addr: addrArg(arg, "TO:")})
			p.rcpt = len(t.Rcpts) - 1
		}
	case "DATA":
		c.implicitTrans(&p, frame)
		c.mode, c.dataDot, c.bareLF, c.dataBytes = modeData, dsLineStart, false, 0
		c.state = StateData
		if t := c.curTrans(); t != nil {
			t.DataCmd = "DATA"
		}
	case "BDAT":
		n, last, ok := parseBDAT(arg)
		if !ok {
			c.anomaly("bdat_invalid_size")
			break
		}
		c.implicitTrans(&p, frame)
		c.state = StateBDAT
		c.bdatLast, c.bdatFrame, c.bdatTS = last, frame, ts
		p.last = last
		if t := c.curTrans(); t != nil {
			t.DataCmd = "BDAT"
		}
		c.push(p)
		c.mode, c.chunkRem = modeChunk, n
		if n == 0 {
			c.chunkDone()
		}
		return
	case "RSET":
		c.curIdx = -1 // commands after RSET belong to a new transaction
		if c.state == StateMail || c.state == StateRcpt {
			c.state = StateHelo
		}
	case "QUIT":
		if t := c.curTrans(); t != nil && t.FinalReply == "" && t.Outcome == "" {
			t.Outcome = "quit"
		}
		c.state = StateQuit
		c.rec.Quit = &Exchange{Cmd: "QUIT", CmdFrame: frame, CmdTS: Time{ts}}
	case "AUTH":
		mech, ir := splitVerb([]byte(arg))
		c.rec.Auth = &Auth{Mechanism: clip(mech, 32), Bytes: len(ir)}
		c.preAuth = c.state
		c.state = StateAuth
		c.mode = modeAuth
	}
	c.push(p)
}

func splitVerb(line []byte) (string, string) {
	i := bytes.IndexByte(line, ' ')
	var v, a []byte
	if i < 0 {
		v = line
	} else {
		v, a = line[:i], bytes.TrimSpace(line[i+1:])
	}
	if len(v) > 16 {
		v = v[:16]
	}
	return clip(strings.ToUpper(string(v)), 512), clip(string(a), 512)
}

// clip bounds a line kept in the record and makes it valid UTF-8 (invalid
// bytes become U+FFFD, as JSON would write them), so the record decodes
// from its JSON line as it was.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// addrArg extracts the path from "FROM:<a@b> SIZE=…" (prefix case-insensitive).
func addrArg(arg, prefix string) string {
	if len(arg) >= len(prefix) && strings.EqualFold(arg[:len(prefix)], prefix) {
		arg = strings.TrimSpace(arg[len(prefix):])
	}
	if strings.HasPrefix(arg, "<") {
		if j := strings.IndexByte(arg, '>'); j >= 0 {
			return clip(arg[1:j], 320)
		}
	}
	if j := strings.IndexByte(arg, ' '); j >= 0 {
		arg = arg[:j]
	}
	return clip(strings.Trim(arg, "<>"), 320)
}

func parseBDAT(arg string) (int64, bool, bool) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 {
		return 0, false, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return 0, false, false
	}
	last := len(f) == 2 && strings.EqualFold(f[1], "LAST")
	if len(f) == 2 && !last {
		return 0, false, false
	}
	return n, last, true
}

func isMasked(v string) bool {
	if len(v) < 3 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] != 'X' && !(i == len(v)-1 && v[i] >= 'A' && v[i] <= 'Z') {
			return false
		}
	}
	return true
}

// implicitTrans opens a transaction for DATA/BDAT sent without MAIL, so its
// data and final reply are still accounted for.
func (c *Conn) implicitTrans(p *pendingCmd, frame uint64) {
	if c.curTrans() == nil {
		c.anomaly("data_without_mail")
		c.newTrans("", frame)
		p.tx = c.curIdx
	}
}

func (c *Conn) newTrans(from string, frame uint64) {
	if len(c.rec.Trans) >= maxTrans {
		c.anomaly("transactions_truncated")
		c.curIdx = -1
		return
	}
	c.rec.Trans = append(c.rec.Trans, Transaction{MailFrom: from, MailFrame: frame})
	c.curIdx = len(c.rec.Trans) - 1
}

func (c *Conn) serverLine(frame uint64, ts time.Time) {
	line, bare := lineText(&c.srv)
	if c.rec.Replies == 0 && c.reply.n == 0 && !isReplyLine(line) {
		var skip bool
		if line, skip = c.serverPreamble(line); skip {
			return
		}
	}
	if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
		if c.rec.Replies == 0 && c.reply.n == 0 {
			// The server's first line is not a reply: not SMTP.
			c.state, c.mode = StateNotSMTP, modeIgnore
			return
		}
		c.anomaly("malformed_reply")
		return
	}
	if bare {
		c.anomaly("bare_lf_reply")
	}
	code := string(line[:3])
	text := clip(string(line), 512)
	if c.reply.n == 0 {
		c.reply.code, c.reply.first = code, text
		c.reply.lines = c.reply.lines[:0]
	} else {
		if code != c.reply.code {
			c.anomaly("reply_code_mismatch")
		}
		if len(c.reply.lines) < maxExtensions && len(line) > 4 {
			c.reply.lines = append(c.reply.lines, clip(string(line[4:]), 80))
		}
	}
	c.reply.n++
	c.reply.last = text
	if len(line) > 3 && line[3] == '-' {
		return
	}
	c.reply.n = 0
	c.rec.Replies++
	c.rec.SMTP = true
	c.rec.LastReply = text
	c.rec.LastReplyAt = &Exchange{Reply: text, ReplyFrame: frame, ReplyTS: Time{ts}}
	c.onReply(frame, ts)
}

func isReplyLine(l []byte) bool {
	return len(l) >= 3 && isDigit(l[0]) && isDigit(l[1]) && isDigit(l[2]) && (len(l) == 3 || l[3] == ' ' || l[3] == '-')
}

// A proxy may stand before the dialogue: HTTP CONNECT (a request line,
// headers, an empty line) or SOCKS5 (binary, no line breaks). Preambles are
// skipped only before the greeting and are bounded.
const maxPreamble = 4096

func (c *Conn) clientPreamble(line []byte) ([]byte, bool) {
	if c.cliPre {
		if len(line) == 0 {
			c.cliPre = false
		}
		return line, true
	}
	if bytes.HasPrefix(line, []byte("CONNECT ")) && bytes.Contains(line, []byte(" HTTP/1.")) {
		c.anomaly("proxy_preamble")
		c.cliPre = true
		return line, true
	}
	if len(line) > 0 && line[0] < 0x20 && line[0] != '\t' && c.cliPreN < maxPreamble {
		c.cliPreN += len(line) + 1
		c.anomaly("proxy_preamble")
		for _, v := range []string{"EHLO ", "HELO ", "ehlo ", "helo "} {
			if i := bytes.Index(line, []byte(v)); i > 0 {
				return line[i:], false
			}
		}
		return line, true
	}
	return line, false
}

func (c *Conn) serverPreamble(line []byte) ([]byte, bool) {
	if c.srvPre > maxPreamble {
		return line, false
	}
	c.srvPre += len(line) + 1
	if bytes.HasPrefix(line, []byte("HTTP/1.")) || c.srvPre > 0 && c.anomSeen["proxy_preamble"] && !bytes.Contains(line, []byte("220")) {
		c.anomaly("proxy_preamble")
		return line, true
	}
	if len(line) > 0 && line[0] < 0x20 && line[0] != '\t' {
		// Binary (SOCKS) bytes; a 0x0a inside them ends a "line" early.
		c.anomaly("proxy_preamble")
		for _, g := range []string{"220 ", "220-"} {
			if i := bytes.Index(line, []byte(g)); i > 0 && i <= 64 {
				return line[i:], false
			}
		}
		return line, true
	}
	return line, false
}

func replyCode(s string) int {
	if len(s) < 3 {
		return 0
	}
	n, _ := strconv.Atoi(s[:3])
	return n
}

// onReply pairs the completed reply with the oldest pending command and
// applies the transition.
func (c *Conn) onReply(frame uint64, ts time.Time) {
	rp := &c.reply
	code := replyCode(rp.code)
	if c.rec.Replies == 1 && c.rec.Greeting == "" && (len(c.pending) == 0 || code == 220 || code == 421 || code == 554) {
		if len(c.pending) > 0 {
			c.anomaly("client_spoke_before_greeting")
		}
		c.greeting(rp.first, code)
		return
	}
	if len(c.pending) == 0 {
		if len(c.rec.Unsolicited) < maxUnsolic {
			c.rec.Unsolicited = append(c.rec.Unsolicited, Exchange{Reply: rp.last, ReplyFrame: frame, ReplyTS: Time{ts}})
		}
		if code == 421 {
			c.state = StateClosed
		}
		return
	}
	p := c.pending[0]
	c.pending = c.pending[1:]
	c.transition(p, rp, code, frame, ts)
}

func (c *Conn) greeting(text string, code int) {
	c.rec.Greeting = text
	if code/100 == 2 && c.state == StateConnect {
		c.state = StateGreeted
	}
	if code == 421 {
		c.state = StateClosed
	}
	if i := strings.IndexByte(text, '*'); i >= 0 && strings.Count(text, "*") >= 5 {
		c.anomaly("banner_masked")
	}
}

// transition is the flat (command, reply) transition function.
func (c *Conn) transition(p pendingCmd, rp *replyAcc, code int, frame uint64, ts time.Time) {
	ok := code/100 == 2
	t := c.trans(p.tx)
	switch p.verb {
	case "HELO", "EHLO", "LHLO":
		if ok {
			c.rec.Helo = p.arg
			if c.state < StateHelo || c.state == StateAuth || c.state == StateClosed {
				c.state = StateHelo
			}
			if p.verb != "HELO" {
				c.extensions(rp.lines)
			}
		}
	case "MAIL":
		if t != nil {
			t.MailReply = rp.last
			if !ok {
				t.Outcome = "rejected"
			}
		}
		if !ok && c.curIdx == p.tx && c.state == StateMail {
			c.state = StateHelo
		}
	case "RCPT":
		if t != nil && p.rcpt >= 0 && p.rcpt < len(t.Rcpts) {
			t.Rcpts[p.rcpt].Reply = rp.last
		}
		if ok && c.state == StateMail && c.curIdx == p.tx {
			c.state = StateRcpt
		}
	case "DATA":
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
	case ".":
		c.final(t, rp.last, ok, frame, ts)
	case "BDAT":
		if !ok && t != nil && t.Outcome == "" {
			t.Outcome = "rejected"
		}
		if p.last {
			c.final(t, rp.last, ok, frame, ts)
		}
	case "RSET":
		if ok {
			if t != nil && t.Outcome == "" && t.FinalReply == "" {
				t.Outcome = "reset"
			}
		}
	case "QUIT":
		if c.rec.Quit != nil {
			c.rec.Quit.Reply, c.rec.Quit.ReplyFrame, c.rec.Quit.ReplyTS = rp.last, frame, Time{ts}
		}
		if code == 221 {
			c.state = StateClosed
		}
	case "STARTTLS":
		if code == 220 {
			c.enterTLS("starttls")
		} else {
			c.anomaly("starttls_refused")
		}
	case "AUTH", "AUTH-DATA":
		if code != 334 {
			if c.rec.Auth != nil {
				c.rec.Auth.Reply, c.rec.Auth.Success = rp.last, ok
			}
			c.mode = modeCommand
			if c.state == StateAuth {
				c.state = c.preAuth
			}
		}
	default:
		if (code == 500 || code == 502) && isMasked(p.verb) {
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

func (c *Conn) extensions(lines []string) {
	c.rec.Extensions = c.rec.Extensions[:0]
	for _, l := range lines {
		kw := l
		if i := strings.IndexByte(kw, ' '); i >= 0 {
			kw = kw[:i]
		}
		kw = strings.ToUpper(kw)
		if isMasked(kw) {
			c.anomaly("ehlo_keyword_masked")
		}
		c.rec.Extensions = append(c.rec.Extensions, kw)
	}
}

func (c *Conn) enterTLS(mode string) {
	c.rec.TLS, c.rec.TLSMode = true, mode
	c.rec.TLSInfo = &TLSFacts{}
	c.mode, c.state = modeTLS, StateTLS
	for _, p := range c.pending {
		if p.verb != "STARTTLS" {
			c.anomaly("command_pipelined_after_starttls")
		}
	}
	c.pending = c.pending[:0]
}

// queueID finds a queue id or an ESA MID in a final reply:
// "250 2.0.0 Ok: queued as 4F2A1C0" (Postfix), "250 ok:  Message 214
// accepted" (ESA), "250 2.0.0 x1ABCD Message accepted for delivery" (sendmail).
func queueID(reply string) (qid, mid string) {
	f := strings.Fields(reply)
	for i := 0; i+1 < len(f); i++ {
		w := strings.ToLower(f[i])
		if w == "queued" && i+2 < len(f) && strings.ToLower(f[i+1]) == "as" {
			return strings.Trim(f[i+2], "<>()[],;"), ""
		}
		if w == "message" && i+2 < len(f) && strings.HasPrefix(strings.ToLower(f[i+2]), "accepted") {
			if _, err := strconv.ParseUint(f[i+1], 10, 64); err == nil {
				return f[i+1], f[i+1]
			}
		}
	}
	for i := 2; i+2 < len(f); i++ {
		if strings.EqualFold(f[i+1], "Message") && strings.EqualFold(f[i+2], "accepted") {
			return f[i], ""
		}
	}
	return "", ""
}
