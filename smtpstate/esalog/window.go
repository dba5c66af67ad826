package esalog

import (
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// A Stream matches sessions as they come, in SYN order, in windows of SYN
// time, and hands each one on once its match is final: memory follows the
// number of sessions in a window, not the capture's length. The log is
// read and indexed once, when the first window is full.
//
// Two sessions compete for a log connection only when their SYNs are
// within the candidate window of each other (tolerance + late DNS, a few
// seconds), so a session whose SYN is a Horizon older than the newest one
// seen is matched as the global assignment would match it. While fewer
// than Window sessions are waiting nothing is decided, so a capture of
// fewer sessions is matched in one window, exactly as Match does.
type Stream struct {
	opt  MatchOptions
	load func(first time.Time) *Log
	emit func(*smtpstate.Record)
	keep bool // fill the Result's per-record maps (Match)

	lg      *Log
	m       *matcher
	res     *Result
	pend    []*smtpstate.Record // in arrival order
	windows int
	forced  int
	lastEnd time.Time // the latest session end seen
	maxWait int       // the most sessions waiting at once
	retryAt int       // waiting sessions at which to try fixing the zone again
	byAddr  map[string]*addrConns

	// Window is how many sessions wait before a window is matched (at
	// most 4× that many wait when SYNs come faster than a Horizon allows).
	Window  int
	Horizon time.Duration
}

// Defaults of a Stream: a window of sessions, and the SYN-time distance
// past which two sessions cannot compete for a log connection (the
// candidate window is -tolerance-2 .. tolerance+lateDNS+1 s: 15 s; 30 s
// is twice that).
const (
	DefaultWindow  = 512
	DefaultHorizon = 30 * time.Second
)

// NewStream returns a Stream that calls load once, with the first
// session's SYN time (zero if none came), to read the log, and emit for every session once its
// ESA part is filled, in arrival order.
func NewStream(load func(first time.Time) *Log, opt MatchOptions, emit func(*smtpstate.Record)) *Stream {
	return &Stream{opt: opt, load: load, emit: emit, Window: DefaultWindow, Horizon: DefaultHorizon}
}

// Add takes the next session (in SYN order: the order reassembly.ByStart
// hands them on).
func (s *Stream) Add(r *smtpstate.Record) {
	s.pend = append(s.pend, r)
	if r.EndTS.After(s.lastEnd) {
		s.lastEnd = r.EndTS.Time
	}
	s.maxWait = max(s.maxWait, len(s.pend))
	if len(s.pend) >= max(s.Window, 1) {
		s.batch(false)
	}
}

// Close matches the sessions still waiting and returns what matching found
// and the log read (nil when no session came and no log was read).
func (s *Stream) Close() (*Result, *Log) {
	if s.m == nil && s.lg == nil && s.load != nil {
		var first time.Time // zero: no session came
		if len(s.pend) > 0 {
			first = s.pend[0].TS.Time
		}
		s.lg = s.load(first)
	}
	if s.m == nil {
		s.start(s.pend, s.lg)
	}
	s.batch(true)
	return s.res, s.lg
}

// Result is what matching found so far (nil before the first window).
func (s *Stream) Result() *Result { return s.res }

// batch matches the waiting sessions and hands on those that are final:
// all of them at the end, else those a Horizon older than the newest.
func (s *Stream) batch(final bool) {
	if s.m == nil && !final && len(s.pend) < s.retryAt {
		return
	}
	if s.m == nil {
		if s.lg == nil {
			s.lg = s.load(s.pend[0].TS.Time)
		}
		s.start(s.pend, s.lg)
		// A zone to infer, but no session yet with a log connection from
		// its client: wait for more sessions (within the bound) rather
		// than fix the zone on nothing.
		if z := s.res.Zone; !final && z.Of == 0 && z.Source != "header" && z.Source != "flag" && len(s.pend) < 4*max(s.Window, 1) {
			s.m, s.res = nil, nil
			s.retryAt = len(s.pend) + max(s.Window, 1)
			return
		}
	}
	k := len(s.pend)
	if !final {
		cut := s.pend[len(s.pend)-1].TS.Add(-s.horizon())
		k = 0
		for k < len(s.pend) && s.pend[k].TS.Before(cut) {
			k++
		}
		if k == 0 {
			if len(s.pend) < 4*max(s.Window, 1) {
				return // the SYNs are too close together to decide yet
			}
			k = len(s.pend) / 2 // bounded: decide the older half now
			s.forced++
		}
	}
	settled := make(map[*smtpstate.Record]bool, k)
	for _, r := range s.pend[:k] {
		settled[r] = true
	}
	s.m.setRecs(s.pend)
	s.window(func(r *smtpstate.Record) bool { return settled[r] }, final, time.Time{})
	for _, r := range s.pend[:k] {
		if s.emit != nil {
			s.emit(r)
		}
	}
	rest := make([]*smtpstate.Record, len(s.pend)-k, max(len(s.pend)-k, s.Window))
	copy(rest, s.pend[k:])
	s.pend = rest
	s.m.recs = nil
	if final {
		s.res.Forced, s.res.MaxWaiting = s.forced, max(s.maxWait, len(s.pend))
		s.finish()
	}
}

func (s *Stream) horizon() time.Duration {
	if s.Horizon > 0 {
		return s.Horizon
	}
	return DefaultHorizon
}
