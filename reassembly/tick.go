package reassembly

import "time"

// Tick moves capture time to now without a frame: a live capture calls it
// from a wall-clock ticker so that, on a quiet link, idle and lingering
// sessions still end and are emitted. It runs the same once-per-second
// housekeeping as Frame, at the position of the last frame, and is called
// from the goroutine that calls Frame (never concurrently with it).
func (a *Analyzer) Tick(now time.Time) {
	if a.now.IsZero() && a.frame == 0 {
		return // nothing seen yet: the time starts with the first frame
	}
	a.advance(now)
	if a.now.Sub(a.lastTck) < time.Second {
		return
	}
	a.lastTck = a.now
	a.dec.dropFragments(a.now.Add(-fragLife))
	if a.w != nil {
		a.w.tick(a.now, a.frame)
		a.release(a.frame)
	} else {
		a.par.tick(a.now, a.frame)
	}
}

// Open is the number of sessions still open (not yet finalized) with one
// session table; -1 with several (Workers > 1), whose tables belong to
// their goroutines.
func (a *Analyzer) Open() int {
	if a.w != nil {
		return len(a.w.table)
	}
	return -1
}
