package smtpstate

import (
	"bytes"
	"time"
)

// lineBuf accumulates one line across segment boundaries, bounded.
type lineBuf struct {
	buf  []byte
	over bool // the line was longer than maxLine; the rest was dropped
}

func (l *lineBuf) add(b []byte) {
	room := maxLine - len(l.buf)
	if len(b) > room {
		b = b[:room]
		l.over = true
	}
	l.buf = append(l.buf, b...)
}

func (l *lineBuf) reset() { l.buf, l.over = l.buf[:0], false }

// dotState is the end-of-data detector's state; it survives segment
// boundaries (compare net/textproto's dotReader).
type dotState uint8

const (
	dsLineStart dotState = iota // at the first byte of a line
	dsMid                       // inside a line
	dsCR                        // inside a line, just after CR
	dsDot                       // "." at line start
	dsDotCR                     // ".\r" at line start
)

// Deliver hands in-order bytes of direction d to the dialogue. frame and ts
// are those of the segment that carried them. b is not retained.
func (c *Conn) Deliver(d Dir, b []byte, frame uint64, ts time.Time) {
	if len(b) == 0 {
		return
	}
	if !c.sawData[0] && !c.sawData[1] && d == FromClient && c.rec.RoleBasis == "first_packet" &&
		len(b) >= 4 && isDigit(b[0]) && isDigit(b[1]) && isDigit(b[2]) && (b[3] == ' ' || b[3] == '-') {
		// The side we took for the client speaks first with a reply: it is
		// the server.
		c.SwapRoles("greeting")
		c.swapped = !c.swapped
		d = FromServer
	}
	c.sawData[d] = true
	c.desyncStart(d)
	if d == FromClient {
		c.clientBytes(b, frame, ts)
	} else {
		c.serverBytes(b, frame, ts)
	}
}

// Swapped reports whether SwapRoles was applied because of the greeting, so
// the caller can map later packets.
func (c *Conn) Swapped() bool { return c.swapped }

func (c *Conn) clientBytes(b []byte, frame uint64, ts time.Time) {
	for len(b) > 0 {
		switch c.mode {
		case modeTLS:
			c.tls.feed(b, frame, ts)
			return
		case modeIgnore:
			return
		case modeData:
			n, end := c.scanData(b)
			c.msgid.feed(c.curTrans(), c.curIdx, b[:n], true) // Message-ID hook (msgid.go)
			c.body(int64(n))
			b = b[n:]
			if end {
				c.endOfData(frame, ts)
			}
		case modeChunk:
			n := int64(len(b))
			if n > c.chunkRem {
				n = c.chunkRem
			}
			c.msgid.feed(c.curTrans(), c.curIdx, b[:n], false) // Message-ID hook (msgid.go)
			c.body(n)
			c.chunkRem -= n
			b = b[n:]
			if c.chunkRem == 0 {
				c.chunkDone()
			}
		default:
			if c.rec.Commands == 0 || c.lastVerb() == "STARTTLS" {
				if tls, wait := c.tlsStart(b); wait {
					c.cli.add(b)
					return
				} else if tls {
					mode := "implicit"
					if c.rec.Commands > 0 {
						mode = "starttls"
					}
					head := append([]byte(nil), c.cli.buf...) // at most one byte
					c.cli.reset()
					c.update(&pendingCmd{verb: vTLS, arg: mode}, nil)
					c.tls.feed(head, frame, ts)
					continue
				}
			}
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.cli.add(b)
				return
			}
			c.cli.add(b[:i+1])
			b = b[i+1:]
			c.clientLine(frame, ts)
			c.cli.reset()
		}
	}
}

func (c *Conn) lastVerb() string {
	if len(c.pending) == 0 {
		return ""
	}
	return c.pending[len(c.pending)-1].name
}

// tlsStart reports whether the client's line so far plus b begins a TLS
// handshake record (0x16 0x03), or whether one more byte is needed to tell:
// the record header may straddle segments.
func (c *Conn) tlsStart(b []byte) (tls, wait bool) {
	if len(c.cli.buf) >= 2 {
		return false, false
	}
	var head [2]byte
	n := copy(head[:], c.cli.buf)
	n += copy(head[n:], b)
	switch {
	case n == 0 || head[0] != 0x16:
		return false, false
	case n < 2:
		return false, true
	}
	return head[1] == 0x03, false
}

func (c *Conn) serverBytes(b []byte, frame uint64, ts time.Time) {
	for len(b) > 0 {
		if c.mode == modeTLS {
			c.tlsSrv.feed(b, frame, ts)
			return
		}
		if c.mode == modeIgnore {
			return
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.srv.add(b)
			return
		}
		c.srv.add(b[:i+1])
		b = b[i+1:]
		c.serverLine(frame, ts)
		c.srv.reset()
	}
}

func (c *Conn) body(n int64) {
	c.dataBytes += n
	if t := c.curTrans(); t != nil {
		t.BodyBytes += n
	}
}

// scanData consumes DATA body bytes up to and including the end-of-data
// line. It reports how many bytes it consumed and whether the end was found.
func (c *Conn) scanData(b []byte) (int, bool) {
	s := c.dataDot
	for i := 0; i < len(b); i++ {
		switch s {
		case dsMid:
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				if b[len(b)-1] == '\r' {
					s = dsCR
				}
				c.dataDot = s
				return len(b), false
			}
			i += j
			if i == 0 || b[i-1] != '\r' {
				c.bareLF = true
			}
			s = dsLineStart
		case dsLineStart:
			switch b[i] {
			case '.':
				s = dsDot
			case '\r':
				s = dsCR
			case '\n':
				c.bareLF = true
			default:
				s = dsMid
			}
		case dsCR:
			switch b[i] {
			case '\n':
				s = dsLineStart
			case '\r':
			default:
				s = dsMid
			}
		case dsDot:
			switch b[i] {
			case '\r':
				s = dsDotCR
			case '\n':
				c.anomaly("bare_lf_terminator")
				c.dataDot = dsLineStart
				return i + 1, true
			default:
				s = dsMid
			}
		case dsDotCR:
			switch b[i] {
			case '\n':
				if c.bareLF {
					c.anomaly("bare_lf_in_body")
				}
				c.dataDot = dsLineStart
				return i + 1, true
			case '\r':
				s = dsCR
			default:
				s = dsMid
			}
		}
	}
	c.dataDot = s
	return len(b), false
}

func (c *Conn) endOfData(frame uint64, ts time.Time) {
	c.command(&pendingCmd{verb: vEndOfData, name: pendingName[vEndOfData], frame: frame, ts: ts})
}

func (c *Conn) chunkDone() { c.update(&pendingCmd{verb: vChunkEnd}, nil) }

// gapStream keeps the dialogue in step across n missing bytes.
func (c *Conn) gapStream(d Dir, n int64) {
	if d == FromServer {
		if c.mode == modeTLS {
			c.tlsSrv.skip(n)
			return
		}
		c.srv.reset()
		c.reply.n = 0
		c.anomaly("gap_in_replies")
		c.update(&pendingCmd{verb: vGap}, nil)
		return
	}
	c.msgid.gap() // Message-ID hook (msgid.go): bytes missing, stop reading the header
	switch c.mode {
	case modeTLS:
		c.tls.skip(n)
	case modeData:
		c.body(n)
		c.dataDot = dsMid
	case modeChunk:
		if n >= c.chunkRem {
			n -= c.chunkRem
			c.body(c.chunkRem)
			c.chunkRem = 0
			c.chunkDone()
			if n > 0 {
				c.anomaly("gap_in_commands")
				c.update(&pendingCmd{verb: vGap}, nil)
			}
			return
		}
		c.body(n)
		c.chunkRem -= n
	default:
		c.cli.reset()
		c.anomaly("gap_in_commands")
		c.update(&pendingCmd{verb: vGap}, nil)
	}
}

// tlsScanner follows TLS record headers of one direction.
type tlsScanner struct {
	hdr     [5]byte
	hn      int
	rem     int64
	records int
	bytes   int64
	alerts  int
	lastAt  time.Time
	garbled bool
	// the last records' headers (a ring) and the shortest application-data
	// record after the first two: the size of a short command or reply
	// plus the cipher suite's fixed overhead
	tail   [tlsTail]TLSRecord
	tailN  int
	appN   int
	minApp int
}

// tlsTail is how many of the last TLS records per direction are kept.
const tlsTail = 6

func (t *tlsScanner) feed(b []byte, frame uint64, ts time.Time) {
	t.bytes += int64(len(b))
	t.lastAt = ts
	for len(b) > 0 && !t.garbled {
		if t.rem > 0 {
			n := int64(len(b))
			if n > t.rem {
				n = t.rem
			}
			t.rem -= n
			b = b[n:]
			continue
		}
		k := copy(t.hdr[t.hn:], b)
		t.hn += k
		b = b[k:]
		if t.hn < 5 {
			return
		}
		t.hn = 0
		typ, major := t.hdr[0], t.hdr[1]
		if typ < 20 || typ > 24 || major != 3 {
			t.garbled = true
			return
		}
		t.records++
		if typ == 21 {
			t.alerts++
		}
		t.rem = int64(t.hdr[3])<<8 | int64(t.hdr[4])
		t.tail[t.tailN%tlsTail] = TLSRecord{Type: typ, Len: int(t.rem), Frame: frame, TS: Time{ts}}
		t.tailN++
		if typ == 23 {
			// The first two application-data records may carry the
			// encrypted handshake (TLS 1.3): not a command's size.
			if t.appN++; t.appN > 2 && (t.minApp == 0 || int(t.rem) < t.minApp) {
				t.minApp = int(t.rem)
			}
		}
	}
}

func (t *tlsScanner) skip(n int64) {
	t.bytes += n
	if t.rem >= n {
		t.rem -= n
		return
	}
	t.garbled = true // lost record sync
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// last returns the kept records, oldest first.
func (t *tlsScanner) last() []TLSRecord {
	n := min(t.tailN, tlsTail)
	out := make([]TLSRecord, 0, n)
	for i := t.tailN - n; i < t.tailN; i++ {
		out = append(out, t.tail[i%tlsTail])
	}
	return out
}
