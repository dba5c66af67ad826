package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/smtpcap/smtpcap/capture"
	"github.com/smtpcap/smtpcap/reassembly"
	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/ending"
	"github.com/smtpcap/smtpcap/smtpstate/esalog"
)

// liveFlags are live's own flags (capture, stats, evidence, privileges).
type liveFlags struct {
	ifaces     *[]string
	snap       *int
	buffer     *string
	noPromisc  *bool
	immediate  *bool
	stats      *time.Duration
	jsonStats  *bool
	dedup      *time.Duration
	dir        *string
	sizeMB     *int
	every      *int
	count      *int
	user       *string
	tickEvery  time.Duration
	quiet      *bool
	anaWorkers *int
	afpacket   *bool
	esaLogs    *[]string
	esaTZ      *string
	esaWait    *time.Duration
}

func addLiveFlags(fs *pflag.FlagSet) *liveFlags {
	return &liveFlags{
		ifaces:     fs.StringArrayP("interface", "i", nil, "interface to capture on (repeat: several interfaces are one input)"),
		snap:       fs.IntP("snaplen", "s", 262144, "bytes kept of each packet"),
		buffer:     fs.StringP("buffer-size", "B", "8MiB", "kernel capture buffer per interface"),
		noPromisc:  fs.BoolP("no-promiscuous-mode", "p", false, "do not put the interface in promiscuous mode"),
		immediate:  fs.Bool("immediate", false, "deliver every packet at once (else within 100 ms; more CPU)"),
		stats:      fs.Duration("stats", 10*time.Second, "print capture statistics on stderr this often (0: only at exit)"),
		jsonStats:  fs.Bool("json-stats", false, "statistics as one JSON object per line"),
		dedup:      fs.Duration("dedup-window", 50*time.Millisecond, "drop (and count) copies of a packet seen again within this window, as SPAN ports make (0: keep them)"),
		dir:        fs.StringP("write-dir", "w", "", "write the captured traffic to rotating pcapng files in this directory"),
		sizeMB:     fs.IntP("file-size", "C", 0, "with -w: start a new file past this many MB (1,000,000 bytes)"),
		every:      fs.IntP("rotate-seconds", "G", 0, "with -w: start a new file every this many seconds"),
		count:      fs.IntP("file-count", "W", 0, "with -w: keep only the newest this many files"),
		user:       fs.StringP("user", "Z", "", "drop privileges to this user (and its groups) once the interfaces and files are open"),
		quiet:      fs.BoolP("quiet", "q", false, "no summary at exit (statistics lines still print)"),
		anaWorkers: fs.Int("workers", 1, "session tables on their own cores, sharded by flow (with --afpacket: by the kernel's fanout, one socket each)"),
		afpacket:   fs.Bool("afpacket", false, "capture with AF_PACKET TPACKET_V3 rings instead of libpcap (Linux, Ethernet interfaces)"),
		esaLogs:    fs.StringArray("esa-log", nil, "ESA mail log the appliance is writing: followed as tail -F (across rotation), each session matched to its ICID/MID before it is printed (repeatable)"),
		esaTZ:      fs.String("esa-tz", "", "the appliance's time zone, if its log has no 'Time offset from UTC' header"),
		esaWait:    fs.Duration("esa-wait", esalog.DefaultHorizon, "with --esa-log: how long after its SYN a session waits for its log lines and its neighbours before it is matched and printed"),
		tickEvery:  250 * time.Millisecond,
	}
}

func runLive(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("live", pflag.ContinueOnError)
	fs.Usage = func() {}
	lf := addLiveFlags(fs)
	of := addOutFlags(fs)
	af := addAnalysisFlags(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	fail := func(code int, f string, a ...any) int {
		fmt.Fprintf(stderr, "smtpcap live: "+f+"\n", a...)
		return code
	}
	if len(*lf.ifaces) == 0 {
		return fail(exitUsage, "-i IFACE is required")
	}
	sel, err := of.selector()
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	opt, params, loc, err := af.options(0)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	buf, err := parseSize(*lf.buffer)
	switch {
	case err != nil || buf < 1 || buf > 1<<31:
		return fail(exitUsage, "--buffer-size takes a size such as 8MiB")
	case *lf.snap < 1 || *lf.snap > 262144:
		return fail(exitUsage, "--snaplen must be between 1 and 262144")
	case *lf.sizeMB < 0 || *lf.every < 0 || *lf.count < 0:
		return fail(exitUsage, "-C, -G and -W must not be negative")
	case *lf.dir == "" && (*lf.sizeMB > 0 || *lf.every > 0 || *lf.count > 0):
		return fail(exitUsage, "-C, -G and -W need -w DIR")
	case *lf.anaWorkers < 1:
		return fail(exitUsage, "--workers must be at least 1")
	case *lf.esaWait <= 0:
		return fail(exitUsage, "--esa-wait must be positive")
	}
	var esa *liveESA
	if len(*lf.esaLogs) > 0 {
		if esa, err = newLiveESA(*lf.esaLogs, *lf.esaTZ, *lf.esaWait, true); err != nil {
			return fail(exitUsage, "%v", err)
		}
	}
	filter := joinFilter(fs.Args())
	if filter == "" {
		filter = defaultLiveFilter(opt.Ports)
	}
	src, rot, backend, err := openLiveInput(lf, filter, int(buf))
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer src.Stop()
	if rot != nil {
		defer rot.Close()
	}
	pr := newPrinter(of, sel, loc, stdout)
	opt.Order = reassembly.ByEnd
	opt.Workers = *lf.anaWorkers
	if *lf.afpacket {
		opt.Workers = 1 // the kernel's fanout shards: one table per socket
	}
	st := &liveStats{w: stderr, json: *lf.jsonStats, src: src}
	lv := &liveRun{stderr: stderr, params: params, pr: pr, rot: rot, st: st, dedup: *lf.dedup, opt: opt, esa: esa}
	if *lf.afpacket && *lf.anaWorkers > 1 {
		// The kernel's fanout hashes a tunnel's outer headers: the two
		// directions of one inner flow may reach two sockets (a VXLAN
		// source port per direction). Tunnelled frames go to one more
		// table set, sharded in user space by the inner flow.
		lv.tun = make(chan capture.Frame, 4096)
		lv.tunWorkers = *lf.anaWorkers
	}
	fmt.Fprintf(stderr, "smtpcap live: capturing on %s (%s), filter %q\n", joinFilter(*lf.ifaces), backend, filter)
	stopWatch := context.AfterFunc(ctx, src.Stop)
	defer stopWatch()
	src.Start()
	lv.run(src.Queues(), lf.tickEvery, *lf.stats)
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "smtpcap: %v; the sessions still open ended as the capture ended\n", context.Cause(ctx))
	}
	st.print(true)
	writeErr := lv.werr
	if rot != nil {
		if err := rot.Close(); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	capWarnings(stderr, lv.anaStats)
	extra := ""
	if esa != nil {
		var b strings.Builder
		esa.summary(&b)
		extra = b.String()
	}
	code := outcome(stderr, pr.finish(stdout, stderr, *lf.quiet, extra), src.Err())
	if writeErr != nil {
		fmt.Fprintf(stderr, "smtpcap: %v\n", writeErr)
		code = max(code, exitError)
	}
	return interrupt(ctx, code)
}

// openLiveInput opens the capture sockets and the first -w file, then
// drops the privileges (-Z): nothing opened later needs them.
func openLiveInput(lf *liveFlags, filter string, buf int) (src *capture.Live, rot *capture.Rotator, backend string, err error) {
	lo := capture.LiveOptions{Interfaces: *lf.ifaces, Filter: filter, SnapLen: *lf.snap,
		BufferSize: buf, Promisc: !*lf.noPromisc, Immediate: *lf.immediate}
	backend = "libpcap"
	if *lf.afpacket {
		backend = fmt.Sprintf("AF_PACKET TPACKET_V3, %d fanout sockets per interface", *lf.anaWorkers)
		src, err = capture.OpenAFPacket(lo, *lf.anaWorkers)
	} else {
		src, err = capture.OpenLive(lo)
	}
	if err != nil {
		return nil, nil, "", err
	}
	fail := func(err error) (*capture.Live, *capture.Rotator, string, error) {
		src.Stop()
		if rot != nil {
			rot.Close()
		}
		return nil, nil, "", err
	}
	if *lf.dir != "" {
		ro := capture.RotateOptions{Dir: *lf.dir, MaxBytes: int64(*lf.sizeMB) * 1e6, Every: time.Duration(*lf.every) * time.Second,
			Count: *lf.count, UID: -1, GID: -1}
		if *lf.user != "" {
			if ro.UID, ro.GID, _, err = lookupUser(*lf.user); err != nil {
				return fail(fmt.Errorf("-Z: %w", err))
			}
		}
		for _, li := range src.Ifaces {
			ro.Ifaces = append(ro.Ifaces, capture.RotateIface{Name: li.Name, LinkType: li.LinkType, SnapLen: li.SnapLen, Filter: filter})
		}
		if rot, err = capture.NewRotator(ro, time.Now()); err != nil {
			return fail(err)
		}
	}
	if *lf.user != "" {
		if err := dropPrivileges(*lf.user); err != nil {
			return fail(fmt.Errorf("-Z %s: %w", *lf.user, err))
		}
	}
	return src, rot, backend, nil
}

// liveRun is the analysis of a live capture: one pipeline per queue (one
// with libpcap, one per fanout socket with AF_PACKET), one printer, one
// -w ring, one numbering of frames.
type liveRun struct {
	stderr io.Writer
	params ending.Params
	pr     *printer
	rot    *capture.Rotator
	st     *liveStats
	dedup  time.Duration
	opt    reassembly.Options
	// tun, with AF_PACKET fanout, takes the tunnelled frames of every
	// socket to a pipeline of tunWorkers tables sharded by the inner flow.
	tun        chan capture.Frame
	tunWorkers int
	// esa, with --esa-log, holds ended sessions until they are matched.
	esa *liveESA

	mu       sync.Mutex // the printer; the frame numbers with the -w ring
	n        uint64
	werr     error
	warned   bool
	anaStats reassembly.Stats
}

// warnWrite says at once (with lv.mu held) that -w stopped: the analysis
// goes on, and the error is reported again at exit (exit 1).
func (lv *liveRun) warnWrite() {
	if lv.werr != nil && !lv.warned {
		lv.warned = true
		fmt.Fprintf(lv.stderr, "smtpcap: warning: -w stopped: %v; the analysis goes on\n", lv.werr)
	}
}

// run feeds every queue's pipeline until the queues close (Stop, on a
// signal), then ends the sessions still open. It prints the statistics
// every statsEvery.
func (lv *liveRun) run(queues []<-chan capture.Frame, tickEvery, statsEvery time.Duration) {
	var wg sync.WaitGroup
	loops := len(queues)
	if lv.tun != nil {
		loops++
	}
	lv.st.open = make([]atomic.Int64, loops)
	lv.st.dups = make([]atomic.Uint64, loops)
	lv.st.qn = make([]atomic.Uint64, len(queues))
	for i, q := range queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lv.loop(i, q, lv.opt, tickEvery)
		}()
	}
	var tunDone chan struct{}
	if lv.tun != nil {
		tunDone = make(chan struct{})
		opt := lv.opt
		opt.Workers = lv.tunWorkers
		go func() {
			defer close(tunDone)
			lv.loop(len(queues), lv.tun, opt, tickEvery)
		}()
	}
	sockets := make(chan struct{})
	go func() { wg.Wait(); close(sockets) }()
	done := make(chan struct{})
	go func() {
		<-sockets
		if lv.tun != nil {
			close(lv.tun) // no socket sends any more
			<-tunDone
		}
		close(done)
	}()
	var statsC <-chan time.Time
	if statsEvery > 0 {
		t := time.NewTicker(statsEvery)
		defer t.Stop()
		statsC = t.C
	}
	var esaC <-chan time.Time
	if lv.esa != nil {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		esaC = t.C
	}
	for {
		select {
		case <-done:
			if lv.esa != nil {
				lv.printMatched(lv.esa.poll(time.Now(), true))
			}
			return
		case <-statsC:
			lv.st.print(false)
		case now := <-esaC:
			lv.printMatched(lv.esa.poll(now, false))
		}
	}
}

// printMatched writes sessions the ESA matching has finished with.
func (lv *liveRun) printMatched(rs []*smtpstate.Record) {
	if len(rs) == 0 {
		return
	}
	lv.mu.Lock()
	defer lv.mu.Unlock()
	for _, r := range rs {
		if v := lv.pr.prepare(r); v != nil {
			lv.pr.emit(v)
		}
	}
	if lv.pr.err == nil {
		lv.pr.err = lv.pr.w.Flush()
	}
}

// loop is one queue: frames in arrival order (numbered after the copies
// are dropped, under the lock that writes them to -w, so that the numbers
// are those of the frames in the files taken in order) and wall-clock
// ticks that end idle sessions on a quiet link.
func (lv *liveRun) loop(i int, q <-chan capture.Frame, opt reassembly.Options, tickEvery time.Duration) {
	// Every record is written the moment its session ends, and flushed.
	emit := func(v any) {
		lv.st.ended.Add(1)
		if r, ok := v.(*smtpstate.Record); ok && lv.esa != nil {
			lv.esa.add(r) // printed once matched
			return
		}
		lv.mu.Lock()
		defer lv.mu.Unlock()
		lv.pr.emit(v)
		if lv.pr.err == nil {
			lv.pr.err = lv.pr.w.Flush()
		}
	}
	// Bytes acknowledged but never seen (Zeek's missed_bytes), of the
	// sessions ended so far: the capture's own loss, whatever its cause.
	prepare := func(r *smtpstate.Record) any {
		classify(r, lv.params)
		lv.st.missed.Add(r.MissedBytes)
		if lv.esa != nil {
			return r
		}
		return lv.pr.prepare(r)
	}
	an := reassembly.NewPipeline(opt, prepare, emit)
	socket := i < len(lv.st.qn) // not the tunnels' pipeline
	var dd *capture.Dedup
	if lv.dedup > 0 {
		dd = capture.NewDedup(lv.dedup)
	}
	handle := func(f capture.Frame) {
		if dd != nil && dd.Duplicate(f.LinkType, f.CI.Timestamp, f.Data) {
			lv.st.dups[i].Store(dd.Dropped)
			return
		}
		lv.mu.Lock()
		lv.n++
		n := lv.n
		if lv.rot != nil && lv.werr == nil {
			lv.werr = lv.rot.Write(f)
			lv.warnWrite()
		}
		lv.mu.Unlock()
		lv.st.frames.Add(1)
		if socket {
			lv.st.qn[i].Add(1)
		}
		an.Frame(n, f.LinkType, f.CI, f.Data)
	}
	// The tunnels' pipeline takes frames from every socket: put back in
	// the order of their stamps (each socket delivers in blocks, up to the
	// read timeout late), else a reply may come after the close it caused.
	var order *capture.TimeOrder
	var orderTick <-chan time.Time
	if !socket {
		order = &capture.TimeOrder{Hold: 250 * time.Millisecond, MaxHeld: 1 << 16}
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		orderTick = t.C
	}
	release := func(now time.Time, final bool) {
		for order != nil {
			f, ok := order.Pop(now, final)
			if !ok {
				return
			}
			handle(f)
		}
	}
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		select {
		case f, ok := <-q:
			if !ok {
				release(time.Now(), true)
				an.Close()
				lv.mu.Lock()
				st := an.Stats()
				lv.anaStats.Evicted += st.Evicted
				lv.anaStats.BufferCapFlushes += st.BufferCapFlushes
				lv.anaStats.FragmentsDropped += st.FragmentsDropped
				lv.anaStats.Fragments += st.Fragments
				lv.anaStats.TimeJumps += st.TimeJumps
				lv.mu.Unlock()
				lv.st.open[i].Store(0)
				return
			}
			if socket && lv.tun != nil && capture.Encapsulated(f.LinkType, f.Data) {
				lv.st.qn[i].Add(1)
				lv.tun <- f
				continue
			}
			if order != nil {
				now := time.Now()
				order.Push(f, now)
				release(now, false)
				continue
			}
			handle(f)
		case now := <-orderTick:
			release(now, false)
		case now := <-tick.C:
			an.Tick(now)
			lv.st.open[i].Store(int64(an.Open()))
			if lv.rot != nil {
				lv.mu.Lock()
				if lv.werr == nil {
					lv.werr = lv.rot.Flush()
					lv.warnWrite()
				}
				lv.mu.Unlock()
			}
		}
	}
}

// defaultLiveFilter keeps SMTP ports, also inside one VLAN tag.
func defaultLiveFilter(ports []uint16) string {
	if ports == nil {
		ports = reassembly.DefaultPorts
	}
	s := ""
	for i, p := range ports {
		if i > 0 {
			s += " or "
		}
		s += fmt.Sprintf("port %d", p)
	}
	return fmt.Sprintf("(tcp and (%s)) or (vlan and tcp and (%s))", s, s)
}

// liveStats prints the statistics line; the loops update its counters.
type liveStats struct {
	w      io.Writer
	json   bool
	src    *capture.Live
	frames atomic.Uint64  // frames analysed
	ended  atomic.Uint64  // sessions finished (selected or not)
	missed atomic.Int64   // their bytes acknowledged but never captured
	open   []atomic.Int64 // per queue: open sessions (-1: unknown)
	dups   []atomic.Uint64
	qn     []atomic.Uint64 // per queue: frames analysed
}

// statsLine is what the statistics line says (the JSON form's fields).
type statsLine struct {
	Time  string `json:"ts"`
	Final bool   `json:"final"`
	capture.LiveStats
	Duplicates uint64   `json:"duplicates"`
	Frames     uint64   `json:"frames"`
	Sessions   uint64   `json:"sessions"`
	Missed     int64    `json:"missed_bytes"`
	Open       *int     `json:"open,omitempty"`
	PerSocket  []uint64 `json:"frames_per_socket,omitempty"` // AF_PACKET fanout: the balance
	HeapBytes  uint64   `json:"heap_bytes"`
	SysBytes   uint64   `json:"sys_bytes"`
}

func (s *liveStats) print(final bool) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	l := statsLine{Time: time.Now().UTC().Format(time.RFC3339), Final: final, LiveStats: s.src.Stats(), Frames: s.frames.Load(),
		Sessions: s.ended.Load(), Missed: s.missed.Load(), HeapBytes: ms.HeapAlloc, SysBytes: ms.Sys}
	open := 0
	if len(s.qn) > 1 {
		for i := range s.qn {
			l.PerSocket = append(l.PerSocket, s.qn[i].Load())
		}
	}
	for i := range s.open {
		l.Duplicates += s.dups[i].Load()
		if o := s.open[i].Load(); o < 0 || open < 0 {
			open = -1
		} else {
			open += int(o)
		}
	}
	if open >= 0 && !final {
		l.Open = &open
	}
	if s.json {
		b, _ := json.Marshal(l)
		fmt.Fprintf(s.w, "%s\n", b)
		return
	}
	what := "stats"
	if final {
		what = "final stats"
	}
	openS := ""
	if l.Open != nil {
		openS = fmt.Sprintf(" open=%d", *l.Open)
	}
	fmt.Fprintf(s.w, "smtpcap: %s: packets=%d bytes=%d kernel_drops=%d if_drops=%d duplicates=%d frames=%d sessions=%d missed_bytes=%d%s heap=%.1fMiB\n",
		what, l.Packets, l.Bytes, l.KernelDrops, l.IfDrops, l.Duplicates, l.Frames, l.Sessions, l.Missed, openS, float64(l.HeapBytes)/(1<<20))
}
