package capture

import (
	"container/heap"
	"time"
)

// TimeOrder puts frames that come from several sockets back in the order
// of their stamps. Each socket delivers in order, but in batches (a
// TPACKET_V3 block, libpcap's buffer: up to the read timeout), so one
// socket's frames can reach the program after a later frame of another's.
// A frame is held until a frame stamped Hold later has arrived, or for
// Hold of wall-clock time (a quiet link), and at most MaxHeld are held.
type TimeOrder struct {
	Hold    time.Duration
	MaxHeld int
	h       frameHeap
	newest  time.Time
	seq     uint64
}

type heldFrame struct {
	f       Frame
	arrived time.Time
	seq     uint64 // arrival order among equal stamps
}

type frameHeap []heldFrame

func (h frameHeap) Len() int { return len(h) }
func (h frameHeap) Less(i, j int) bool {
	a, b := h[i].f.CI.Timestamp, h[j].f.CI.Timestamp
	if !a.Equal(b) {
		return a.Before(b)
	}
	return h[i].seq < h[j].seq
}
func (h frameHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)   { *h = append(*h, x.(heldFrame)) }
func (h *frameHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = heldFrame{}
	*h = old[:len(old)-1]
	return x
}

// Push holds a frame that arrived at now (wall clock).
func (o *TimeOrder) Push(f Frame, now time.Time) {
	if f.CI.Timestamp.After(o.newest) {
		o.newest = f.CI.Timestamp
	}
	o.seq++
	heap.Push(&o.h, heldFrame{f: f, arrived: now, seq: o.seq})
}

// Pop returns the earliest frame if its time has come (or too many are
// held); all, when final.
func (o *TimeOrder) Pop(now time.Time, final bool) (Frame, bool) {
	if len(o.h) == 0 {
		return Frame{}, false
	}
	top := o.h[0]
	if !final && len(o.h) <= max(o.MaxHeld, 1) && o.newest.Sub(top.f.CI.Timestamp) < o.Hold && now.Sub(top.arrived) < o.Hold {
		return Frame{}, false
	}
	heap.Pop(&o.h)
	return top.f, true
}

// Held is how many frames wait.
func (o *TimeOrder) Held() int { return len(o.h) }
