package esalog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ParseError is a line that could not be read; reading goes on after it.
type ParseError struct {
	File string
	No   int
	Text string
	Why  string
	Long bool // the line was over MaxLineLen and skipped
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("esalog: %s:%d: %s: %q", e.File, e.No, e.Why, clip(e.Text, 120))
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Options tune a Reader.
type Options struct {
	// Year is used for syslog-envelope lines, which carry none.
	Year int
	// From and To, when set, keep only lines whose appliance-local time is
	// within [From, To]: memory stays bounded on large logs.
	From, To time.Time
	// MaxLines bounds the lines kept over all files (0: DefaultMaxLines);
	// past it lines are counted in Log.Dropped, not kept.
	MaxLines int
}

// DefaultMaxLines is the default cap on log lines held (a few hundred
// bytes each).
const DefaultMaxLines = 2000000

// Reader iterates over the lines of one log file.
type Reader struct {
	name   string
	lr     *lineReader
	opt    Options
	no     int
	offset int
	hasOff bool
	prev   *Line
	// Counts
	Lines, Kept, Unknown, Comments, Continuations, Broken, Long int
}

// NewReader reads r; name is used in errors.
func NewReader(r io.Reader, name string, opt Options) *Reader {
	if opt.Year == 0 {
		opt.Year = time.Now().Year()
	}
	return &Reader{name: name, lr: newLineReader(r), opt: opt}
}

// Offset reports the file's "Time offset from UTC" header, if it had one.
func (r *Reader) Offset() (int, bool) { return r.offset, r.hasOff }

// Next returns the next line kept, io.EOF at the end, or a *ParseError for
// a line it could not read (call Next again to go on).
func (r *Reader) Next() (*Line, error) {
	for {
		b, n, err := r.lr.next()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("esalog: %s: line %d: %w", r.name, r.no+1, err)
		}
		r.no++
		r.Lines++
		if n > MaxLineLen {
			r.Long++
			return nil, &ParseError{File: r.name, No: r.no, Text: string(b), Long: true,
				Why: fmt.Sprintf("line of %d bytes is over the %d-byte limit, skipped", n, MaxLineLen)}
		}
		if len(b) == 0 {
			continue
		}
		if b[0] == '#' {
			r.Comments++
			continue
		}
		if b[0] == ' ' || b[0] == '\t' {
			r.Continuations++ // a header value broken across lines (FORMAT.md §1.1)
			continue
		}
		l := &Line{File: r.name, No: r.no}
		msg, ok := envelope(string(b), l, r.opt.Year)
		if !ok {
			r.Broken++
			return nil, &ParseError{File: r.name, No: r.no, Text: string(b), Why: "no timestamp envelope"}
		}
		if !r.opt.From.IsZero() && (l.Local.Before(r.opt.From) || l.Local.After(r.opt.To)) {
			if strings.HasPrefix(msg, "Time offset from UTC: ") {
				ParseMessage(msg, l)
				r.offset, r.hasOff = l.Offset, true
			}
			continue
		}
		ParseMessage(msg, l)
		if l.Kind == KindTimeOffset {
			r.offset, r.hasOff = l.Offset, true
		}
		if l.Kind == KindUnknown {
			r.Unknown++
		}
		r.Kept++
		r.prev = l
		return l, nil
	}
}

var months = map[string]time.Month{"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}

// envelope parses the file envelope "Thu Aug 14 11:04:31 2014 Info: msg" or
// the syslog one "<166>Mar 17 18:24:37 [host] mail_logs: Info: msg" and
// returns the message part.
func envelope(s string, l *Line, year int) (string, bool) {
	if len(s) > 0 && s[0] == '<' {
		if i := strings.IndexByte(s, '>'); i > 0 && i < 5 {
			s = s[i+1:]
		}
	}
	if len(s) > 4 && isDow(s[:3]) && s[3] == ' ' {
		return fileEnvelope(s[4:], l)
	}
	// syslog: "Mmm dd HH:MM:SS[ YYYY][ host] name: Level: msg"
	t, rest, ok := monDayTime(s, year)
	if !ok {
		return "", false
	}
	if len(rest) >= 5 && rest[0] == ' ' && isDigits(rest[1:5]) && (len(rest) == 5 || rest[5] == ' ') {
		y := int(atoi(rest[1:5]))
		t = time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
		rest = rest[5:]
	}
	// skip "[host] name:" up to the level
	for _, lv := range []string{" Info: ", " Warning: ", " Critical: ", " Debug: ", " Trace: ", " Alert: "} {
		if i := strings.Index(rest, lv); i >= 0 {
			head := rest[:i]
			// an inner file envelope wins (collector re-wrapping, FORMAT.md §1.2)
			if j := strings.LastIndex(head, ": "); j >= 0 && len(head) > j+6 && isDow(head[j+2:j+5]) {
				if msg, ok := fileEnvelope(head[j+6:]+rest[i:], l); ok {
					return msg, true
				}
			}
			l.Local, l.Level = t, lv[1:len(lv)-2]
			return rest[i+len(lv):], true
		}
	}
	return "", false
}

// fileEnvelope parses "Aug 14 11:04:31 2014 Info: msg" (after the weekday).
func fileEnvelope(s string, l *Line) (string, bool) {
	t, rest, ok := monDayTime(s, 0)
	if !ok || len(rest) < 6 || rest[0] != ' ' || !isDigits(rest[1:5]) {
		return "", false
	}
	y := int(atoi(rest[1:5]))
	rest = rest[5:]
	if len(rest) < 3 || rest[0] != ' ' {
		return "", false
	}
	lv, msg, ok := strings.Cut(rest[1:], ": ")
	if !ok || len(lv) > 10 {
		return "", false
	}
	l.Local = time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	l.Level = lv
	return msg, true
}

// monDayTime parses "Aug 14 11:04:31" (day space-padded or not).
func monDayTime(s string, year int) (time.Time, string, bool) {
	if len(s) < 14 {
		return time.Time{}, "", false
	}
	m, ok := months[s[:3]]
	if !ok || s[3] != ' ' {
		return time.Time{}, "", false
	}
	s = strings.TrimLeft(s[4:], " ")
	i := 0
	for i < len(s) && i < 2 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || len(s) < i+9 || s[i] != ' ' {
		return time.Time{}, "", false
	}
	day := int(atoi(s[:i]))
	hms := s[i+1 : i+9]
	if hms[2] != ':' || hms[5] != ':' || !isDigits(hms[:2]) || !isDigits(hms[3:5]) || !isDigits(hms[6:8]) {
		return time.Time{}, "", false
	}
	t := time.Date(year, m, day, int(atoi(hms[:2])), int(atoi(hms[3:5])), int(atoi(hms[6:8])), 0, time.UTC)
	return t, s[i+9:], true
}

func isDow(s string) bool {
	switch s {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func atoi(s string) int64 { v, _ := num(s); return v }

// Log is everything read from a set of files.
type Log struct {
	Lines   []*Line
	Errors  []*ParseError // the first ones, bounded
	Broken  int
	Unknown int
	// UnknownSamples keeps a few unknown lines for the report.
	UnknownSamples []*Line
	// Offsets holds each file's header offset, by file name.
	Offsets map[string]int
	Files   []string
	// Long counts lines over MaxLineLen (skipped); LongSamples keeps the
	// first few with their position.
	Long        int
	LongSamples []*ParseError
	// Warnings are reads that stopped early (a truncated .gz): the lines
	// before are kept.
	Warnings []string
	// Dropped counts lines not kept because Options.MaxLines was reached.
	Dropped int
}

const maxKeptErrors = 20

var rolled = regexp.MustCompile(`@(\d{8}T\d{6})\.`)

// ReadFiles reads files (plain or gzip) in rollover order and returns
// their lines in time order (stable within a second).
func ReadFiles(names []string, opt Options) (*Log, error) {
	names = append([]string(nil), names...)
	sort.SliceStable(names, func(i, j int) bool { return rollKey(names[i]) < rollKey(names[j]) })
	lg := &Log{Offsets: map[string]int{}, Files: names}
	// A file that cannot be read is an error, but the others are still used.
	var errs []error
	for _, n := range names {
		if err := lg.readFile(n, opt); err != nil {
			errs = append(errs, err)
		}
	}
	// In time order; files with their own offset header are ordered in UTC,
	// so a DST change between rolled files does not interleave them.
	key := func(l *Line) time.Time {
		return l.Local.Add(-time.Duration(lg.Offsets[l.File]) * time.Second)
	}
	sort.SliceStable(lg.Lines, func(i, j int) bool { return key(lg.Lines[i]).Before(key(lg.Lines[j])) })
	return lg, errors.Join(errs...)
}

// rollKey orders mail.@20061107T182155.s before mail.current.
func rollKey(name string) string {
	if m := rolled.FindStringSubmatch(filepath.Base(name)); m != nil {
		return m[1]
	}
	return "99999999T999999" + filepath.Base(name)
}

func (lg *Log) readFile(name string, opt Options) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("esalog: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	if m, _ := br.Peek(2); bytes.Equal(m, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("esalog: %s: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<20)
	}
	if err := sniff(br); err != nil {
		return fmt.Errorf("esalog: %s: %w", name, err)
	}
	r := NewReader(br, name, opt)
	var fileLines []*Line
	defer func() {
		if off, ok := r.Offset(); ok {
			lg.Offsets[name] = off
		}
		lg.Lines = append(lg.Lines, fileLines...)
		lg.Long += r.Long
	}()
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var pe *ParseError
		if errors.As(err, &pe) {
			if pe.Long {
				if len(lg.LongSamples) < 3 {
					lg.LongSamples = append(lg.LongSamples, pe)
				}
				continue
			}
			lg.Broken++
			if len(lg.Errors) < maxKeptErrors {
				lg.Errors = append(lg.Errors, pe)
			}
			continue
		}
		if err != nil {
			// A truncated .gz or a read error: keep what was read.
			lg.Warnings = append(lg.Warnings, fmt.Sprintf("%v; the %d lines before it are used", err, r.no))
			return nil
		}
		if l.Kind == KindUnknown {
			lg.Unknown++
			if len(lg.UnknownSamples) < 10 {
				lg.UnknownSamples = append(lg.UnknownSamples, l)
			}
		}
		max := opt.MaxLines
		if max <= 0 {
			max = DefaultMaxLines
		}
		if len(lg.Lines)+len(fileLines) >= max {
			lg.Dropped++
			continue
		}
		fileLines = append(fileLines, l)
	}
}
