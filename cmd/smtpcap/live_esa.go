package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/esalog"
)

// liveESA ties sessions that come in the order they end to their ESA log
// connections (esalog.Live): an ended session waits until its SYN is
// `wait` older than the present, so that its log lines have been written
// and the sessions that began with it have had time to end, then it is
// matched and handed back to be printed.
//
// live follows each log as tail -F does (esalog.Follower) and the present
// is the wall clock; analyze --stream reads the logs once, around the
// first session, and the present is the latest session end seen.
type liveESA struct {
	mu        sync.Mutex
	lm        *esalog.Live
	files     []string
	follow    bool
	followers []*esalog.Follower
	read      bool  // the logs were read (not following)
	readErr   error // reading them failed (not following)
	latest    time.Time
	lines     int
	broken    int
	firstErr  error
}

func newLiveESA(files []string, tz string, wait time.Duration, follow bool) (*liveESA, error) {
	loc, err := parseZone(tz)
	if err != nil {
		return nil, fmt.Errorf("--esa-tz %w", err)
	}
	e := &liveESA{lm: esalog.NewLive(files, esalog.MatchOptions{Zone: loc}), files: files, follow: follow}
	e.lm.Horizon = wait
	if follow {
		for _, f := range files {
			e.followers = append(e.followers, esalog.NewFollower(f, esalog.Options{Year: time.Now().Year(), MaxLines: esaMaxLines}))
		}
	} else {
		e.lm.Retain = 100 * 365 * 24 * time.Hour // read once: keep every line
	}
	return e, nil
}

// add takes a session that has ended (any goroutine).
func (e *liveESA) add(r *smtpstate.Record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.readOnce(r.TS.Time)
	e.lm.Add(r)
	if r.EndTS.After(e.latest) {
		e.latest = r.EndTS.Time
	}
}

// present is the latest session end seen (analyze --stream's clock).
func (e *liveESA) present() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.latest
}

// readOnce reads the logs (not following), from a day before the first
// session on (first zero: no session came, the whole log).
func (e *liveESA) readOnce(first time.Time) {
	if e.follow || e.read {
		return
	}
	e.read = true
	opt := esalog.Options{Year: time.Now().Year(), MaxLines: esaMaxLines}
	if !first.IsZero() {
		opt.Year, opt.From, opt.To = first.Year(), first.Add(-24*time.Hour), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	lg, err := esalog.ReadFiles(e.files, opt)
	e.readErr = err
	e.lines, e.broken = len(lg.Lines), lg.Broken
	if len(lg.Errors) > 0 {
		e.firstErr = lg.Errors[0]
	}
	byFile := map[string][]*esalog.Line{}
	for _, l := range lg.Lines {
		byFile[l.File] = append(byFile[l.File], l)
	}
	for _, f := range lg.Files {
		off, ok := lg.Offsets[f]
		e.lm.Feed(f, byFile[f], off, ok)
	}
}

// poll reads what the followed logs gained and returns the sessions whose
// match is final at now (all of them when final), their ESA part filled.
func (e *liveESA) poll(now time.Time, final bool) []*smtpstate.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.readOnce(time.Time{})
	for _, fw := range e.followers {
		lines, errs, _ := fw.Poll()
		for _, pe := range errs {
			if !pe.Long {
				e.broken++
				if e.firstErr == nil {
					e.firstErr = pe
				}
			}
		}
		e.lines += len(lines)
		e.lm.Feed(fw.Path, lines, fw.Offset, fw.HasOffset)
	}
	return e.lm.Match(now, final)
}

// summary says what following (or reading) the logs and matching found.
func (e *liveESA) summary(w io.Writer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.follow {
		rot := 0
		for _, fw := range e.followers {
			rot += fw.Rotations
			fw.Close()
		}
		fmt.Fprintf(w, "ESA log: %d files followed (%d rotations), %d lines read", len(e.files), rot, e.lines)
	} else {
		fmt.Fprintf(w, "ESA log: %d files, %d lines kept", len(e.files), e.lines)
	}
	if e.broken > 0 {
		fmt.Fprintf(w, ", %d unreadable (first: %v)", e.broken, e.firstErr)
	}
	z := e.lm.Zone
	fmt.Fprintf(w, "\nESA zone: UTC%s (%s)", fmtOffset(z.Offset), z.Source)
	if z.Skew != 0 {
		fmt.Fprintf(w, ", appliance clock %+.1fs from the capture's", z.Skew)
	}
	what := "ESA match"
	if !e.follow {
		what += " (streamed)"
	}
	fmt.Fprintf(w, "\n%s: %d sessions matched", what, e.lm.Matched)
	if e.lm.Ambiguous > 0 {
		fmt.Fprintf(w, " (%d ambiguous, marked ? on their lines)", e.lm.Ambiguous)
	}
	fmt.Fprintf(w, ", %d capture sessions without a log connection\n", e.lm.Unmatched)
}
