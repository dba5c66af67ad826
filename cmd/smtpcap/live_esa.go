package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/esalog"
)

// liveESA ties the sessions a live capture ends to the ESA logs the
// appliance is still writing: each log is followed as tail -F does
// (esalog.Follower), and an ended session is matched (esalog.Live) once
// its SYN is --esa-wait old, so that its log lines have been written and
// the sessions that began with it have had time to end; then it is
// printed.
type liveESA struct {
	mu        sync.Mutex
	followers []*esalog.Follower
	lm        *esalog.Live
	broken    int
	firstErr  *esalog.ParseError
}

func newLiveESA(files []string, tz string, wait time.Duration) (*liveESA, error) {
	loc, err := parseZone(tz)
	if err != nil {
		return nil, fmt.Errorf("--esa-tz %w", err)
	}
	e := &liveESA{lm: esalog.NewLive(files, esalog.MatchOptions{Zone: loc})}
	e.lm.Horizon = wait
	for _, f := range files {
		e.followers = append(e.followers, esalog.NewFollower(f, esalog.Options{Year: time.Now().Year(), MaxLines: esaMaxLines}))
	}
	return e, nil
}

// add takes a session that has ended (any goroutine).
func (e *liveESA) add(r *smtpstate.Record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lm.Add(r)
}

// poll reads what the logs gained and returns the sessions whose match is
// final (all of them when final), their ESA part filled.
func (e *liveESA) poll(now time.Time, final bool) []*smtpstate.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
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
		e.lm.Feed(fw.Path, lines, fw.Offset, fw.HasOffset)
	}
	return e.lm.Match(now, final)
}

// summary says what following the logs found, for the exit.
func (e *liveESA) summary(w io.Writer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rot := 0
	for _, fw := range e.followers {
		rot += fw.Rotations
		fw.Close()
	}
	fmt.Fprintf(w, "ESA log: %d files followed (%d rotations), %d lines read", len(e.followers), rot, e.lm.LinesRead)
	if e.broken > 0 {
		fmt.Fprintf(w, ", %d unreadable (first: %v)", e.broken, e.firstErr)
	}
	z := e.lm.Zone
	fmt.Fprintf(w, "; zone UTC%s (%s)", fmtOffset(z.Offset), z.Source)
	if z.Skew != 0 {
		fmt.Fprintf(w, ", appliance clock %+.1fs from the capture's", z.Skew)
	}
	fmt.Fprintf(w, "\nESA match: %d sessions matched", e.lm.Matched)
	if e.lm.Ambiguous > 0 {
		fmt.Fprintf(w, " (%d ambiguous, marked ? on their lines)", e.lm.Ambiguous)
	}
	fmt.Fprintf(w, ", %d capture sessions without a log connection\n", e.lm.Unmatched)
}
