package reassembly

import (
	"math"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// DefaultPorts are the ports on which a TCP connection is an SMTP session
// whatever it carries.
var DefaultPorts = []uint16{25, 465, 587, 2525}

// Order is the order in which finished sessions are emitted.
type Order uint8

const (
	// ByStart emits sessions in the order they began (the frame of their
	// first packet); a finished session waits until every session that
	// began before it has finished.
	ByStart Order = iota
	// ByEnd emits sessions in the order they were finalized, at once.
	ByEnd
)

// Options configure an Analyzer.
type Options struct {
	Ports []uint16 // SMTP ports; DefaultPorts if nil
	// IdleTimeout finalizes a session that saw no packet for this long
	// (capture time). It must exceed the firewall timers we want to see
	// expire (an hour is common), so the default is two hours.
	IdleTimeout time.Duration
	// Linger keeps a closed session (RST, or FIN both ways) open this long
	// for the trailing ACKs and RSTs.
	Linger time.Duration
	// MaxSessions bounds the table; the least recently active session is
	// finalized ("evicted") when it is full.
	MaxSessions int
	// HalfOpenTimeout finalizes a session that is still a bare SYN (never
	// answered) after this much capture time without another SYN; longer
	// than the gaps between a client's SYN retransmissions.
	HalfOpenTimeout time.Duration
	// MaxBufferedPerConn and MaxBufferedTotal bound the out-of-order bytes
	// queued for one direction and for all; past them the oldest hole is
	// given up as a gap.
	MaxBufferedPerConn int
	MaxBufferedTotal   int
	// Workers is the number of session tables, each on its own goroutine,
	// fed by a symmetric flow hash; 0 or 1 runs everything on the caller's
	// goroutine. The output is the same whatever the number.
	Workers int
	// Order of the emitted sessions.
	Order Order
	// MaxFragmentBytes bounds the bytes of unfinished IPv4 datagrams held
	// (0: 32 MiB); past it they are all dropped and counted.
	MaxFragmentBytes int
	// Checksums drops TCP segments whose checksum is wrong (counted, and
	// marked on the session). Off by default: a capture on the sending
	// host sees checksums its NIC fills in later.
	Checksums bool
}

// Stats count what the analyzer saw.
type Stats struct {
	Frames           uint64
	TCP              uint64
	NonTCP           uint64
	DecodeErrors     uint64
	Sessions         uint64 // finalized sessions handed to emit
	NotSMTP          uint64 // connections on other ports that were not SMTP
	Strays           uint64 // packets of a session already finalized
	Evicted          uint64 // sessions finalized because the table was full
	Reused           uint64 // open sessions ended by a SYN with a new ISN
	Queued           uint64 // segments queued out of order
	AckFlushes       uint64 // holes given up because the peer acknowledged past them
	BufferCapFlushes uint64 // holes given up because a buffer cap was reached
	TimeJumps        uint64 // frames stamped more than a day ahead, not taken as the time
	BadChecksums     uint64 // segments dropped for a wrong checksum (Options.Checksums)
	Duplicates       uint64 // copies of a segment dropped (a SPAN port mirroring both ways)
	Fragments        uint64 // IPv4 fragments of TCP segments
	FragmentsDropped uint64 // unfinished datagrams given up (too old, or too many bytes held)
}

func (s *Stats) add(o Stats) {
	s.Sessions += o.Sessions
	s.NotSMTP += o.NotSMTP
	s.Strays += o.Strays
	s.Evicted += o.Evicted
	s.Reused += o.Reused
	s.Queued += o.Queued
	s.AckFlushes += o.AckFlushes
	s.BufferCapFlushes += o.BufferCapFlushes
	s.Duplicates += o.Duplicates
}

// Analyzer consumes frames and emits one smtpstate.Record per TCP
// connection that carried SMTP.
type Analyzer struct {
	opt     Options
	ports   [65536 / 64]uint64 // bitmap of SMTP ports
	dec     *decoder
	seg     segment
	now     time.Time // capture time: the latest timestamp, but see advance
	last    time.Time // the latest timestamp
	jumpN   int
	lastTck time.Time
	frame   uint64
	stats   Stats
	// inline mode
	w   *worker
	ord orderer
	// parallel mode
	par *parallel
	// prepare turns a record into what emit receives (on a worker's
	// goroutine in parallel mode); emit receives them in order.
	prepare func(*smtpstate.Record) any
	emit    func(any)
}

// New returns an Analyzer that calls emit for every finished session, in
// opt.Order, on the goroutine that calls Frame and Close.
func New(opt Options, emit func(*smtpstate.Record)) *Analyzer {
	opt.Workers = 1
	return NewPipeline(opt, nil, func(v any) { emit(v.(*smtpstate.Record)) })
}

// NewPipeline returns an Analyzer with opt.Workers session tables. prepare
// (nil: the record itself) runs on the worker that finished the session —
// encode output there; emit gets the results in opt.Order, from one
// goroutine at a time (not the caller's when Workers > 1), and all of them
// before Close returns.
func NewPipeline(opt Options, prepare func(*smtpstate.Record) any, emit func(any)) *Analyzer {
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 2 * time.Hour
	}
	if opt.Linger <= 0 {
		opt.Linger = 5 * time.Second
	}
	if opt.HalfOpenTimeout <= 0 {
		opt.HalfOpenTimeout = time.Minute
	}
	if opt.MaxSessions <= 0 {
		opt.MaxSessions = 1 << 20
	}
	if opt.MaxBufferedPerConn <= 0 {
		opt.MaxBufferedPerConn = 1 << 20
	}
	if opt.MaxBufferedTotal <= 0 {
		opt.MaxBufferedTotal = 256 << 20
	}
	if prepare == nil {
		prepare = func(r *smtpstate.Record) any { return r }
	}
	a := &Analyzer{opt: opt, dec: newDecoder(), prepare: prepare, emit: emit}
	if opt.MaxFragmentBytes > 0 {
		a.dec.maxFragBytes = opt.MaxFragmentBytes
	}
	ports := opt.Ports
	if ports == nil {
		ports = DefaultPorts
	}
	for _, p := range ports {
		a.ports[p/64] |= 1 << (p % 64)
	}
	if opt.Workers > 1 {
		wopt := a.opt
		wopt.MaxSessions = max(1, opt.MaxSessions/opt.Workers)
		wopt.MaxBufferedTotal = max(1, opt.MaxBufferedTotal/opt.Workers)
		a.par = newParallel(&wopt, &a.ports, prepare, emit)
	} else {
		a.w = newWorker(&a.opt, &a.ports)
	}
	return a
}

// Stats returns the counters; complete after Close.
func (a *Analyzer) Stats() Stats {
	st := a.stats
	st.Fragments, st.FragmentsDropped = a.dec.stats.Fragments, a.dec.stats.FragmentsDropped
	if a.w != nil {
		st.add(a.w.stats)
	} else {
		st.add(a.par.stats())
	}
	return st
}

// Frame processes one frame. data is not retained.
func (a *Analyzer) Frame(number uint64, lt layers.LinkType, ci gopacket.CaptureInfo, data []byte) {
	a.stats.Frames++
	a.frame = number
	a.advance(ci.Timestamp)
	a.dec.ts = ci.Timestamp
	isTCP, err := a.dec.decode(lt, data)
	if !isTCP {
		if err != nil {
			a.stats.DecodeErrors++
		} else {
			a.stats.NonTCP++
		}
	} else {
		a.stats.TCP++
		a.dec.segment(&a.seg, number, ci.Timestamp, a.now)
		if a.opt.Checksums && !a.dec.checksumOK() {
			a.stats.BadChecksums++
			a.seg.badsum = true
		}
		if a.w != nil {
			a.w.packet(&a.seg)
			a.release(a.frame)
		} else {
			a.par.dispatch(&a.seg)
		}
	}
	if a.now.Sub(a.lastTck) >= time.Second {
		a.lastTck = a.now
		a.dec.dropFragments(a.now.Add(-fragLife))
		if a.w != nil {
			a.w.tick(a.now, number)
			a.release(number)
		} else {
			a.par.tick(a.now, number)
		}
	}
}

// Capture time only moves forward, and not by a single frame stamped far
// ahead (a broken clock, a spliced file): that would end every open
// session as idle. A jump of more than maxJump is taken only when
// jumpConfirm frames in a row confirm it.
const (
	maxJump     = 24 * time.Hour
	jumpConfirm = 16
)

func (a *Analyzer) advance(ts time.Time) {
	if ts.After(a.last) {
		a.last = ts
	}
	switch {
	case !ts.After(a.now):
		a.jumpN = 0
	case a.now.IsZero() || ts.Sub(a.now) <= maxJump:
		a.now, a.jumpN = ts, 0
	default:
		if a.jumpN == 0 {
			a.stats.TimeJumps++
		}
		if a.jumpN++; a.jumpN >= jumpConfirm {
			a.now, a.jumpN = ts, 0
		}
	}
}

// release hands the inline worker's finished records to the orderer and
// emits what no unfinished session can precede.
func (a *Analyzer) release(upTo uint64) {
	for _, f := range a.w.out {
		a.ord.push(f.k1, f.k2, a.prepare(f.rec))
	}
	clear(a.w.out)
	a.w.out = a.w.out[:0]
	if a.ord.len() > 0 {
		a.ord.popBelow(a.w.bound(upTo), a.emit)
	}
}

// Close finalizes every open session and emits everything left.
func (a *Analyzer) Close() {
	a.now = a.last
	if a.w != nil {
		a.w.close(a.now, a.frame+1, func() { a.release(a.frame + 1) })
		a.release(a.frame + 1)
		a.ord.popBelow(math.MaxUint64, a.emit)
		return
	}
	a.par.close(a.now, a.frame+1)
}
