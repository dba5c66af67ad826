package smtpstate

import "bytes"

// Limits of the Message-ID scanner. RFC 5322 §2.1.1 caps a line at 998
// characters; a header block larger than 64 KiB is not a header block a
// Message-ID would be looked for in (the ESA logs the field from the header).
const (
	maxHeaderLine  = 998
	maxHeaderBlock = 64 << 10
	maxFieldName   = 76
)

// msgIDScanner reads the header block of one DATA or BDAT message as it
// streams past and keeps the unfolded value of its first Message-ID field.
// It keeps nothing else: field names are compared and dropped, every other
// value is skipped, and once the header block ends (the empty line, a line
// that is not a field, a gap, or the limits above) it ignores the rest of
// the message, so the body is never looked at. Its state survives segment
// boundaries. The ESA logs the same field as "MID n Message-ID '<…>'"
// (shared/esa/FORMAT.md §4.6); the matcher joins on it.
type msgIDScanner struct {
	cur     int  // 1 + index of the transaction being scanned; 0 none
	done    bool // the header block is over: ignore everything
	data    bool // DATA (dot-stuffed, RFC 5321 §4.5.2) rather than a BDAT chunk
	atStart bool // at the first byte of a physical line
	first   bool // no byte of this line seen yet (a leading dot is stuffing)
	inName  bool // reading a field name
	isID    bool // the current field is Message-ID
	cr      bool // the last byte was CR
	lineLen int  // bytes of the current physical line
	total   int  // bytes of the header block so far
	name    [maxFieldName]byte
	nameLen int
	val     []byte // the Message-ID value being collected (unfolded)
	valOver bool   // it was longer than a header line may be
}

// feed scans b, the next bytes of the message of transaction idx (t). data
// says the bytes are DATA (dot-stuffed) rather than a BDAT chunk. A new
// transaction index restarts the scanner.
func (s *msgIDScanner) feed(t *Transaction, idx int, b []byte, data bool) {
	if t == nil || idx < 0 {
		return
	}
	if s.cur != idx+1 {
		*s = msgIDScanner{cur: idx + 1, data: data, atStart: true, first: true, inName: true, val: s.val[:0]}
	}
	for _, c := range b {
		if s.done {
			return
		}
		s.byte(t, c)
	}
}

// gap marks the rest of the header block unreadable (bytes are missing).
func (s *msgIDScanner) gap() {
	s.done = true
	s.val = s.val[:0]
}

func (s *msgIDScanner) byte(t *Transaction, c byte) {
	s.total++
	if s.total > maxHeaderBlock {
		s.end(t)
		return
	}
	if c == '\n' {
		if s.atStart || s.inName {
			s.end(t) // an empty line ends the header block; a line without a colon is not a field
			return
		}
		s.atStart, s.first, s.cr, s.lineLen = true, true, false, 0
		return
	}
	if s.atStart {
		if s.first && s.data && c == '.' {
			s.first = false // stuffing: the line starts at the next byte
			return
		}
		s.atStart, s.first = false, false
		switch c {
		case '\r':
			s.end(t) // the empty line
			return
		case ' ', '\t':
			// folded: the field goes on (unfolding keeps the WSP, RFC 5322 §2.2.3)
			if s.inName {
				s.end(t) // a continuation before any field: not a header block
				return
			}
			s.lineLen++
			s.value(c)
			return
		default:
			s.fieldDone(t)
			s.inName, s.isID, s.nameLen = true, false, 0
		}
	}
	s.lineLen++
	if s.lineLen > maxHeaderLine {
		if s.isID {
			s.valOver = true
		}
		return
	}
	if s.cr {
		s.cr = false // a bare CR: not kept in the value
		if s.inName {
			s.end(t)
			return
		}
	}
	if c == '\r' {
		s.cr = true
		return
	}
	if s.inName {
		s.nameByte(t, c)
		return
	}
	s.value(c)
}

// nameByte takes one byte of a field name; the colon ends it.
func (s *msgIDScanner) nameByte(t *Transaction, c byte) {
	switch {
	case c == ':':
		n := bytes.TrimRight(s.name[:s.nameLen], " \t") // obsolete WSP before the colon
		s.inName = false
		s.isID = bytes.EqualFold(n, []byte("Message-ID"))
		s.val, s.valOver = s.val[:0], false
	case c > 32 && c < 127 || c == ' ' || c == '\t':
		if s.nameLen == maxFieldName {
			s.end(t) // no field name is this long: not a header
			return
		}
		s.name[s.nameLen] = c
		s.nameLen++
	default:
		s.end(t) // not a field name: the header block is over
	}
}

func (s *msgIDScanner) value(c byte) {
	if !s.isID || s.valOver {
		return
	}
	if len(s.val) >= maxHeaderLine {
		s.valOver = true
		return
	}
	s.val = append(s.val, c)
}

// fieldDone closes the current field: a complete Message-ID is kept (the
// first one wins).
func (s *msgIDScanner) fieldDone(t *Transaction) {
	if s.isID && !s.valOver && t.MsgID == "" {
		if v := bytes.TrimSpace(s.val); len(v) > 0 {
			t.MsgID = string(v)
		}
	}
	s.isID = false
	s.val = s.val[:0]
}

func (s *msgIDScanner) end(t *Transaction) {
	if !s.inName {
		s.fieldDone(t)
	}
	s.done = true
	s.val = s.val[:0]
}
