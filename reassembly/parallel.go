package reassembly

import (
	"math"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// Parallel mode: the caller's goroutine reads and decodes, and hands each
// segment (copied into a batch) to the worker its symmetric flow hash
// names; each worker owns a session table and prepares (encodes) the
// records it finishes; one merger goroutine emits them in the output order.
//
// The output does not depend on the number of workers: the order is a key
// of frame numbers (the frame that opened a session, or the one at which it
// was finalized), capture-time housekeeping runs in every worker at the
// same frame (tick markers), and every time a worker sees is the input's.
// A worker's bound says that nothing it has not yet sent can sort before
// it; the merger emits what lies below every worker's bound.

const (
	batchSegs  = 1024
	batchBytes = 2 << 20
	batchesPer = 4
)

type batch struct {
	segs  []segment
	buf   []byte
	upTo  uint64 // every frame up to here has been dispatched
	final bool   // end of input: close at (closeNow, closeFrame)
	cNow  time.Time
	cFrm  uint64
}

type wmsg struct {
	bound uint64
	w     int
	items []ordItem
}

type pworker struct {
	w    *worker
	in   chan *batch
	free chan *batch
	cur  *batch
}

type parallel struct {
	ws      []*pworker
	merged  chan wmsg
	done    chan struct{}
	frame   uint64
	prepare func(*smtpstate.Record) any
	emit    func(any)
}

func newParallel(opt *Options, ports *[65536 / 64]uint64, prepare func(*smtpstate.Record) any, emit func(any)) *parallel {
	p := &parallel{merged: make(chan wmsg, opt.Workers*batchesPer), done: make(chan struct{}), prepare: prepare, emit: emit}
	for i := 0; i < opt.Workers; i++ {
		pw := &pworker{w: newWorker(opt, ports), in: make(chan *batch, batchesPer), free: make(chan *batch, batchesPer)}
		for j := 0; j < batchesPer; j++ {
			pw.free <- &batch{segs: make([]segment, 0, batchSegs), buf: make([]byte, 0, batchBytes)}
		}
		p.ws = append(p.ws, pw)
		go p.run(i, pw)
	}
	go p.merge()
	return p
}

func (p *parallel) batch(pw *pworker) *batch {
	if pw.cur == nil {
		pw.cur = <-pw.free
	}
	return pw.cur
}

func (p *parallel) send(pw *pworker) {
	if b := pw.cur; b != nil {
		b.upTo = p.frame
		pw.cur = nil
		pw.in <- b
	}
}

// dispatch copies the segment into its worker's batch.
func (p *parallel) dispatch(sg *segment) {
	p.frame = sg.frame
	k, _ := canon(sg.src, sg.sport, sg.dst, sg.dport)
	pw := p.ws[k.hash()%uint32(len(p.ws))]
	b := p.batch(pw)
	if n := len(sg.payload); len(b.buf)+n > cap(b.buf) {
		if len(b.segs) > 0 {
			p.send(pw)
			b = p.batch(pw)
		}
		if n > cap(b.buf) {
			b.buf = make([]byte, 0, n)
		}
	}
	off := len(b.buf)
	b.buf = append(b.buf, sg.payload...)
	b.segs = append(b.segs, *sg)
	b.segs[len(b.segs)-1].payload = b.buf[off:len(b.buf):len(b.buf)]
	if len(b.segs) == cap(b.segs) {
		p.send(pw)
	}
}

// tick puts a housekeeping marker in every worker's stream at this frame
// and sends every batch, so that every worker's bound moves on.
func (p *parallel) tick(now time.Time, frame uint64) {
	p.frame = frame
	for _, pw := range p.ws {
		b := p.batch(pw)
		b.segs = append(b.segs, segment{tick: true, now: now, frame: frame})
		p.send(pw)
	}
}

func (p *parallel) close(now time.Time, frame uint64) {
	for _, pw := range p.ws {
		b := p.batch(pw)
		b.final, b.cNow, b.cFrm = true, now, frame
		p.send(pw)
	}
	<-p.done
}

func (p *parallel) run(i int, pw *pworker) {
	w := pw.w
	for b := range pw.in {
		for j := range b.segs {
			if sg := &b.segs[j]; sg.tick {
				w.tick(sg.now, sg.frame)
			} else {
				w.packet(sg)
			}
		}
		final := b.final
		if final {
			// Send as it goes: all that is still open ends now.
			// Records finished at close all have k1 = cFrm under ByEnd:
			// none may pass before every worker is done.
			w.close(b.cNow, b.cFrm, func() { p.merged <- wmsg{bound: min(w.bound(b.cFrm), b.cFrm), w: i, items: p.items(w)} })
		}
		bound := uint64(math.MaxUint64)
		if !final {
			bound = w.bound(b.upTo)
		}
		items := p.items(w)
		clear(b.segs)
		b.segs, b.buf, b.final = b.segs[:0], b.buf[:0], false
		pw.free <- b
		p.merged <- wmsg{bound: bound, w: i, items: items}
		if final {
			return
		}
	}
}

// items prepares the worker's finished records (on its goroutine).
func (p *parallel) items(w *worker) []ordItem {
	if len(w.out) == 0 {
		return nil
	}
	items := make([]ordItem, len(w.out))
	for j, f := range w.out {
		items[j] = ordItem{f.k1, f.k2, p.prepare(f.rec)}
	}
	clear(w.out)
	w.out = w.out[:0]
	return items
}

func (p *parallel) merge() {
	var ord orderer
	bounds := make([]uint64, len(p.ws))
	finals := 0
	for finals < len(p.ws) {
		m := <-p.merged
		for _, it := range m.items {
			ord.push(it.k1, it.k2, it.v)
		}
		bounds[m.w] = m.bound
		if m.bound == math.MaxUint64 {
			finals++
		}
		low := bounds[0]
		for _, b := range bounds[1:] {
			low = min(low, b)
		}
		ord.popBelow(low, p.emit)
	}
	close(p.done)
}

func (p *parallel) stats() Stats {
	var st Stats
	for _, pw := range p.ws {
		st.add(pw.w.stats)
	}
	return st
}
