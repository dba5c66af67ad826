package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/smtpcap/smtpcap/capture"
	"github.com/smtpcap/smtpcap/reassembly"
	"github.com/smtpcap/smtpcap/smtpstate"
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
		anaWorkers: fs.Int("workers", 1, "session tables on their own cores (sharded by flow)"),
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
	opt, loc, err := af.options()
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
	}
	filter := joinFilter(fs.Args())
	if filter == "" {
		filter = defaultLiveFilter(opt.Ports)
	}
	src, err := capture.OpenLive(capture.LiveOptions{Interfaces: *lf.ifaces, Filter: filter, SnapLen: *lf.snap,
		BufferSize: int(buf), Promisc: !*lf.noPromisc, Immediate: *lf.immediate})
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer src.Stop()
	var rot *capture.Rotator
	if *lf.dir != "" {
		ro := capture.RotateOptions{Dir: *lf.dir, MaxBytes: int64(*lf.sizeMB) * 1e6, Every: time.Duration(*lf.every) * time.Second,
			Count: *lf.count, UID: -1, GID: -1}
		if *lf.user != "" {
			if ro.UID, ro.GID, _, err = lookupUser(*lf.user); err != nil {
				return fail(exitError, "-Z: %v", err)
			}
		}
		for _, li := range src.Ifaces {
			ro.Ifaces = append(ro.Ifaces, capture.RotateIface{Name: li.Name, LinkType: li.LinkType, SnapLen: li.SnapLen, Filter: filter})
		}
		if rot, err = capture.NewRotator(ro, time.Now()); err != nil {
			return fail(exitError, "%v", err)
		}
		defer rot.Close()
	}
	if *lf.user != "" {
		if err := dropPrivileges(*lf.user); err != nil {
			return fail(exitError, "-Z %s: %v", *lf.user, err)
		}
	}
	pr := newPrinter(of, sel, loc, stdout)
	// Every record is written the moment its session ends, and flushed.
	var ended atomic.Uint64
	emit := func(v any) {
		ended.Add(1)
		pr.emit(v)
		if pr.err == nil {
			pr.err = pr.w.Flush()
		}
	}
	opt.Order = reassembly.ByEnd
	opt.Workers = *lf.anaWorkers
	// Bytes acknowledged but never seen (Zeek's missed_bytes), of the
	// sessions ended so far: the capture's own loss, whatever its cause.
	var missed atomic.Int64
	prepare := func(r *smtpstate.Record) any {
		missed.Add(r.MissedBytes)
		return pr.prepare(r)
	}
	an := reassembly.NewPipeline(opt, prepare, emit)
	st := &liveStats{w: stderr, json: *lf.jsonStats, src: src, an: an, ended: &ended, missed: &missed}
	if *lf.dedup > 0 {
		st.dd = capture.NewDedup(*lf.dedup)
	}
	fmt.Fprintf(stderr, "smtpcap live: capturing on %s, filter %q\n", joinFilter(*lf.ifaces), filter)
	writeErr := liveLoop(ctx, lf, src, an, rot, st)
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "smtpcap: %v; the sessions still open end as the capture ends\n", context.Cause(ctx))
	}
	an.Close()
	st.print(true)
	if rot != nil {
		if err := rot.Close(); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	capWarnings(stderr, an.Stats())
	code := outcome(stderr, pr.finish(stdout, stderr, *lf.quiet, ""), src.Err())
	if writeErr != nil {
		fmt.Fprintf(stderr, "smtpcap: %v\n", writeErr)
		code = max(code, exitError)
	}
	return interrupt(ctx, code)
}

// liveLoop feeds the pipeline until a signal or the end of every reader:
// frames in arrival order (numbered here, after duplicates are dropped, so
// that the numbers are those of the -w files' frames in order), wall-clock
// ticks that end idle sessions on a quiet link, and the statistics lines.
func liveLoop(ctx context.Context, lf *liveFlags, src *capture.Live, an *reassembly.Analyzer, rot *capture.Rotator, st *liveStats) error {
	src.Start()
	tick := time.NewTicker(lf.tickEvery)
	defer tick.Stop()
	var statsC <-chan time.Time
	if *lf.stats > 0 {
		t := time.NewTicker(*lf.stats)
		defer t.Stop()
		statsC = t.C
	}
	var werr error
	frame := func(f capture.Frame) {
		if st.dd != nil && st.dd.Duplicate(f.LinkType, f.CI.Timestamp, f.Data) {
			return
		}
		st.n++
		an.Frame(st.n, f.LinkType, f.CI, f.Data)
		if rot != nil && werr == nil {
			werr = rot.Write(f)
		}
	}
	frames := src.Frames()
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				return werr
			}
			frame(f)
		case now := <-tick.C:
			an.Tick(now)
			if rot != nil && werr == nil {
				werr = rot.Flush()
			}
		case <-statsC:
			st.print(false)
		case <-ctx.Done():
			src.Stop()
			for f := range frames { // already captured: analysed too
				frame(f)
			}
			return werr
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

// liveStats prints the statistics line.
type liveStats struct {
	w      io.Writer
	json   bool
	src    *capture.Live
	an     *reassembly.Analyzer
	dd     *capture.Dedup
	n      uint64         // frames analysed
	ended  *atomic.Uint64 // sessions finished (selected or not)
	missed *atomic.Int64  // their bytes acknowledged but never captured
}

// statsLine is what the statistics line says (the JSON form's fields).
type statsLine struct {
	Time  string `json:"ts"`
	Final bool   `json:"final"`
	capture.LiveStats
	Duplicates uint64 `json:"duplicates"`
	Frames     uint64 `json:"frames"`
	Sessions   uint64 `json:"sessions"`
	Missed     int64  `json:"missed_bytes"`
	Open       *int   `json:"open,omitempty"`
	HeapBytes  uint64 `json:"heap_bytes"`
	SysBytes   uint64 `json:"sys_bytes"`
}

func (s *liveStats) print(final bool) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	l := statsLine{Time: time.Now().UTC().Format(time.RFC3339), Final: final, LiveStats: s.src.Stats(), Frames: s.n,
		Sessions: s.ended.Load(), Missed: s.missed.Load(), HeapBytes: ms.HeapAlloc, SysBytes: ms.Sys}
	if s.dd != nil {
		l.Duplicates = s.dd.Dropped
	}
	if o := s.an.Open(); o >= 0 && !final {
		l.Open = &o
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
	open := ""
	if l.Open != nil {
		open = fmt.Sprintf(" open=%d", *l.Open)
	}
	fmt.Fprintf(s.w, "smtpcap: %s: packets=%d bytes=%d kernel_drops=%d if_drops=%d duplicates=%d frames=%d sessions=%d missed_bytes=%d%s heap=%.1fMiB\n",
		what, l.Packets, l.Bytes, l.KernelDrops, l.IfDrops, l.Duplicates, l.Frames, l.Sessions, l.Missed, open, float64(l.HeapBytes)/(1<<20))
}
