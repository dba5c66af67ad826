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
	// Set when the reply is complete:
	num   int // the code as a number
	frame uint64
	ts    time.Time
}

func (c *Conn) push(p pendingCmd) {
	// A command sent before the reply to the one before it - claimed only
	// where the server's replies are in the capture at all: with the
	// client's side alone every command looks unanswered.
	if len(c.pending) > 0 && c.rec.Replies > 0 {
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
	if c.desync.on {
		c.desyncLine(line, frame, ts)
		return
	}
	if c.mode == modeAuth {
		c.command(&pendingCmd{verb: vAuthLine, name: pendingName[vAuthLine], frame: frame, ts: ts, tx: -1, n: int64(len(line))})
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
	name, arg := splitVerb(line)
	c.rec.Commands++
	c.rec.LastCommand = name
	if isMasked(name) {
		c.anomaly("command_masked")
	}
	p := pendingCmd{verb: verbOf[name], name: name, frame: frame, ts: ts, tx: c.curIdx, rcpt: -1}
	switch p.verb {
	case vHELO, vEHLO, vLHLO:
		p.arg = clip(arg, 255)
	case vMAIL:
		p.arg = addrArg(arg, "FROM:")
	case vRCPT:
		p.arg = addrArg(arg, "TO:")
	case vAUTH:
		p.arg = arg
	case vBDAT:
		n, last, ok := parseBDAT(arg)
		if !ok {
			n = -1
		}
		p.n, p.last = n, last
	}
	c.command(&p)
}

// command applies a command (or a pseudo-command) and queues it for its
// reply.
func (c *Conn) command(p *pendingCmd) {
	c.update(p, nil)
	c.push(*p)
	if p.verb == vBDAT && p.n == 0 {
		c.chunkDone()
	}
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

// clip bounds a line kept in the record (cut on a rune boundary) and makes
// it valid UTF-8 with each byte that is not UTF-8 written as \xNN, as Zeek
// writes them: the raw byte stays visible, and the record decodes from its
// JSON line as it was.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
		for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
			if utf8.RuneStart(s[i]) {
				if !utf8.FullRuneInString(s[i:]) {
					s = s[:i]
				}
				break
			}
		}
	}
	if !utf8.ValidString(s) {
		var b strings.Builder
		for i := 0; i < len(s); {
			r, w := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && w == 1 {
				b.WriteString(`\x`)
				b.WriteByte("0123456789abcdef"[s[i]>>4])
				b.WriteByte("0123456789abcdef"[s[i]&15])
			} else {
				b.WriteString(s[i : i+w])
			}
			i += w
		}
		s = b.String()
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
func (c *Conn) implicitTrans(p *pendingCmd) {
	if c.curTrans() == nil {
		c.anomaly("data_without_mail")
		c.newTrans("", p.frame)
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
			c.update(&pendingCmd{verb: vNotSMTP}, nil)
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
	rp.num, rp.frame, rp.ts = replyCode(rp.code), frame, ts
	code := rp.num
	wasOut := c.desync.on
	if wasOut {
		c.desyncReply(code, frame, ts) // may queue the command the reply answers
	}
	if !wasOut && c.rec.Replies == 1 && c.rec.Greeting == "" && (len(c.pending) == 0 || code == 220 || code == 421 || code == 554) {
		if len(c.pending) > 0 {
			c.anomaly("client_spoke_before_greeting")
		}
		c.update(&pendingCmd{verb: vGreeting, tx: -1}, rp)
		return
	}
	if len(c.pending) == 0 {
		c.update(&pendingCmd{verb: vUnsolicited, tx: -1}, rp)
		return
	}
	if c.state == StateAfterGap {
		c.realign(code)
	}
	p := c.pending[0]
	c.pending = c.pending[1:]
	c.update(&p, rp)
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
