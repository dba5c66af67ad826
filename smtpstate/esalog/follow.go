package esalog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sort"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// A Follower reads a log file that the appliance is still writing, as
// `tail -F` does: from its start, then each new complete line as it
// comes, across rotation (the name now names another file: the rest of
// the old one is read first) and truncation (read again from the start).
type Follower struct {
	Path string
	opt  Options
	f    *os.File
	fi   os.FileInfo
	off  int64
	part []byte // a line not yet complete
	no   int    // lines read from the current file
	// Offset is the current file's "Time offset from UTC" header.
	Offset    int
	HasOffset bool
	Rotations int
}

// NewFollower follows path; it need not exist yet.
func NewFollower(path string, opt Options) *Follower {
	return &Follower{Path: path, opt: opt}
}

// maxPoll bounds the bytes read by one Poll (a huge file is caught up on
// over several).
const maxPoll = 16 << 20

// Poll returns the lines completed since the last call. Lines it cannot
// read are counted in errs, never stop it.
func (fw *Follower) Poll() (lines []*Line, errs []*ParseError, err error) {
	if fw.f == nil {
		if !fw.open() {
			return nil, nil, nil // not there yet (or between rotation steps)
		}
	}
	if fi, serr := os.Stat(fw.Path); serr == nil && !os.SameFile(fi, fw.fi) {
		// Rotated: the rest of the old file, then the new one from its start.
		lines, errs = fw.read()
		fw.f.Close()
		fw.f, fw.part, fw.off, fw.no, fw.HasOffset = nil, nil, 0, 0, false
		fw.Rotations++
		if fw.open() {
			l2, e2 := fw.read()
			lines, errs = append(lines, l2...), append(errs, e2...)
		}
		return lines, errs, nil
	} else if serr == nil && fi.Size() < fw.off {
		// Truncated in place.
		fw.off, fw.part, fw.no, fw.HasOffset = 0, nil, 0, false
		fw.Rotations++
	}
	lines, errs = fw.read()
	return lines, errs, nil
}

func (fw *Follower) open() bool {
	f, err := os.Open(fw.Path)
	if err != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return false
	}
	fw.f, fw.fi = f, fi
	return true
}

func (fw *Follower) read() ([]*Line, []*ParseError) {
	buf := make([]byte, 1<<16)
	var chunk []byte
	for len(chunk) < maxPoll {
		n, err := fw.f.ReadAt(buf, fw.off)
		chunk = append(chunk, buf[:n]...)
		fw.off += int64(n)
		if err != nil || n == 0 {
			break
		}
	}
	data := append(fw.part, chunk...)
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		fw.part = data
		if len(fw.part) > MaxLineLen+1 {
			fw.part = nil // an endless line: skipped, as the reader would
		}
		return nil, nil
	}
	fw.part = append([]byte(nil), data[end+1:]...)
	r := NewReader(bytes.NewReader(data[:end+1]), fw.Path, fw.opt)
	var lines []*Line
	var errs []*ParseError
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.No += fw.no
			errs = append(errs, pe)
			continue
		}
		if err != nil {
			break
		}
		l.No += fw.no
		lines = append(lines, l)
	}
	fw.no += r.no
	if off, ok := r.Offset(); ok {
		fw.Offset, fw.HasOffset = off, true
	}
	return lines, errs
}

// Close closes the file followed.
func (fw *Follower) Close() {
	if fw.f != nil {
		fw.f.Close()
		fw.f = nil
	}
}

// Live matches sessions as they end against logs that are still growing.
// Ended sessions wait, in SYN order, until their SYN is a Horizon older
// than the capture's present (the log has caught up, and a session that
// began near them has had time to end too); then they are matched as a
// Stream's window would match them, with the lines read so far (kept for
// Retain of log time). A log connection a session took is never given to
// another.
type Live struct {
	opt     MatchOptions
	Retain  time.Duration
	Horizon time.Duration
	lines   []*Line
	offsets map[string]int
	files   []string
	taken   map[string]time.Time // connection name -> its start, while retained
	pend    []*smtpstate.Record  // ended, by SYN
	recent  []*smtpstate.Record  // the last ones matched: evidence for the zone and clock
	// Counts for the summary.
	Matched, Unmatched, Ambiguous, LinesRead int
	Zone                                     ZoneInfo
}

// maxRecent bounds the matched sessions kept as evidence for the clock.
const maxRecent = 256

// NewLive returns a Live matcher for these files.
func NewLive(files []string, opt MatchOptions) *Live {
	return &Live{opt: opt, Retain: time.Hour, Horizon: DefaultHorizon, offsets: map[string]int{}, files: files, taken: map[string]time.Time{}}
}

// Feed adds the lines a Follower of file read; off is its current offset
// header, if it has one.
func (lm *Live) Feed(file string, lines []*Line, off int, hasOff bool) {
	if hasOff {
		lm.offsets[file] = off
	}
	if len(lines) == 0 {
		return
	}
	lm.LinesRead += len(lines)
	lm.lines = append(lm.lines, lines...)
	if len(lm.files) > 1 {
		key := func(l *Line) time.Time { return l.Local.Add(-time.Duration(lm.offsets[l.File]) * time.Second) }
		sort.SliceStable(lm.lines, func(i, j int) bool { return key(lm.lines[i]).Before(key(lm.lines[j])) })
	}
	// Forget what is older than Retain before the newest line.
	newest := lm.lines[len(lm.lines)-1].Local
	k := 0
	for k < len(lm.lines) && newest.Sub(lm.lines[k].Local) > lm.Retain {
		k++
	}
	if k > 0 {
		lm.lines = append([]*Line(nil), lm.lines[k:]...)
		for name, at := range lm.taken {
			if newest.Sub(at) > 2*lm.Retain {
				delete(lm.taken, name)
			}
		}
	}
}

// Add takes a session that has ended.
func (lm *Live) Add(r *smtpstate.Record) {
	i := sort.Search(len(lm.pend), func(i int) bool { return lm.pend[i].TS.After(r.TS.Time) })
	lm.pend = append(lm.pend, nil)
	copy(lm.pend[i+1:], lm.pend[i:])
	lm.pend[i] = r
}

// Waiting is how many ended sessions wait to be matched.
func (lm *Live) Waiting() int { return len(lm.pend) }

// Match matches the sessions whose SYN is a Horizon older than now (the
// capture's present), or all of them when final, and returns them in SYN
// order, their ESA part filled.
func (lm *Live) Match(now time.Time, final bool) []*smtpstate.Record {
	k := len(lm.pend)
	if !final {
		cut := now.Add(-lm.Horizon)
		k = sort.Search(len(lm.pend), func(i int) bool { return !lm.pend[i].TS.Before(cut) })
	}
	if k == 0 {
		return nil
	}
	lg := &Log{Lines: lm.lines, Offsets: lm.offsets, Files: lm.files}
	// The zone and the clock are estimated on the waiting sessions and the
	// last ones matched: a batch of a few is too few to tell a clock.
	s := &Stream{opt: lm.opt, keep: true}
	s.start(append(append([]*smtpstate.Record(nil), lm.recent...), lm.pend...), lg)
	for _, c := range s.res.Conns {
		if _, ok := lm.taken[connName(c)]; ok {
			c.matched = true
		}
	}
	done := lm.pend[:k]
	settled := make(map[*smtpstate.Record]bool, k)
	for _, r := range done {
		settled[r] = true
	}
	// The connections of a second not over yet may belong to sessions
	// not seen yet: no candidates until it is.
	s.m.setRecs(lm.pend)
	s.window(func(r *smtpstate.Record) bool { return settled[r] }, final, now)
	s.m.recs = nil
	for _, c := range s.res.ByRecord {
		lm.taken[connName(c)] = c.Start
	}
	lm.Matched += s.res.Matched
	lm.Unmatched += s.res.Unmatched
	lm.Ambiguous += s.res.Ambiguous
	lm.Zone = s.res.Zone
	lm.recent = append(lm.recent, done...)
	if len(lm.recent) > maxRecent {
		lm.recent = append([]*smtpstate.Record(nil), lm.recent[len(lm.recent)-maxRecent:]...)
	}
	lm.pend = append([]*smtpstate.Record(nil), lm.pend[k:]...)
	return done
}
