package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/smtpcap/smtpcap/capture"
	"github.com/smtpcap/smtpcap/reassembly"
	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/ending"
	"github.com/smtpcap/smtpcap/smtpstate/esalog"
)

func runAnalyze(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("analyze", pflag.ContinueOnError)
	fs.Usage = func() {}
	recFiles := recordsFlag(fs)
	files := fs.StringArrayP("read", "r", nil, "capture file (pcap, pcapng, .gz, .zst; - for stdin); repeat to merge files in time order")
	of := addOutFlags(fs)
	maxFrag := fs.String("max-fragment-bytes", "32MiB", "bytes of unfinished IPv4 datagrams held; past it they are dropped (and counted)")
	maxRecord := fs.Int("max-record", capture.DefaultMaxRecord, "bytes kept of one capture record whatever the file's snaplen says; longer records are cut and counted")
	maxOpen := fs.Int("max-open-files", capture.DefaultMaxOpenFiles, "input files open at once (rotated files are opened one after the other)")
	quiet := fs.BoolP("quiet", "q", false, "no progress on stderr")
	af := addAnalysisFlags(fs)
	tz := af.tz
	esaLogs := fs.StringArray("esa-log", nil, "ESA mail_logs file (text, .gz, rolled mail.@….s/.c/.current); repeat for several")
	esaTZ := fs.String("esa-tz", "", "the appliance's time zone (IANA name or offset like +01:00); default: the log header, else inferred")
	icid := fs.String("icid", "", "show only the session of this ICID (or DCID); needs --esa-log")
	mid := fs.String("mid", "", "show only the session that carried this MID; needs --esa-log")
	fs.IntVar(&esaMaxLines, "max-log-lines", esalog.DefaultMaxLines, "ESA log lines held at most (within a day of the capture); past it lines are counted, not kept")
	memLimit := fs.String("memory-limit", "100MiB", "soft limit on the heap while records stream out (the garbage collector works harder near it; 0: Go's default)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file (for developers)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file when the input has been read (for developers)")
	_ = fs.MarkHidden("cpuprofile")
	workers := fs.Int("workers", runtime.NumCPU(), "session tables on their own cores (sharded by flow); the output is the same for any number")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	for _, id := range []struct{ flag, v string }{{"--icid", *icid}, {"--mid", *mid}} {
		if id.v != "" && !isIdent(id.v) {
			fmt.Fprintf(stderr, "smtpcap analyze: %s %.40q: an ESA identifier is a number of at most 18 digits\n", id.flag, id.v)
			return exitUsage
		}
	}
	if len(*esaLogs) == 0 && (*icid != "" || *mid != "") {
		fmt.Fprintln(stderr, "smtpcap analyze: --icid and --mid need --esa-log")
		return exitUsage
	}
	sel, err := of.selector()
	if err != nil {
		fmt.Fprintf(stderr, "smtpcap analyze: %v\n", err)
		return exitUsage
	}
	// Session times' zone (esa.go); "esa" is known once the log is matched.
	opt, params, loc, err := af.options(len(*esaLogs))
	if err != nil {
		fmt.Fprintf(stderr, "smtpcap analyze: %v\n", err)
		return exitUsage
	}
	if *workers < 1 {
		fmt.Fprintln(stderr, "smtpcap analyze: --workers must be at least 1")
		return exitUsage
	}
	if (len(*files) == 0) == (len(*recFiles) == 0) {
		fmt.Fprintln(stderr, "smtpcap analyze: -r FILE or --records FILE.jsonl is required (not both)")
		return exitUsage
	}
	if *of.stream && (*icid != "" || *mid != "") {
		fmt.Fprintln(stderr, "smtpcap analyze: --stream cannot be combined with --icid or --mid (a selection is decided once every session is matched)")
		return exitUsage
	}
	fragBytes, err := parseSize(*maxFrag)
	switch {
	case err != nil || fragBytes < 1:
		fmt.Fprintln(stderr, "smtpcap analyze: --max-fragment-bytes takes a size above zero, such as 32MiB")
		return exitUsage
	case *maxRecord < 1 || *maxOpen < 1 || esaMaxLines < 1:
		fmt.Fprintln(stderr, "smtpcap analyze: --max-record, --max-open-files and --max-log-lines must be at least 1")
		return exitUsage
	}
	opt.MaxFragmentBytes = int(min(fragBytes, 1<<40))
	if *cpuProfile != "" {
		if stop, err := startProfile(*cpuProfile); err != nil {
			fmt.Fprintf(stderr, "smtpcap: %v\n", err)
			return exitError
		} else {
			defer stop()
		}
	}
	// Every record is classified and written as soon as the output order
	// allows, on the worker that finished it, and then dropped: memory
	// follows concurrency, not the capture's length. ESA matching holds a
	// record only until its window of SYN time is matched (esa.go).
	if lim, err := parseSize(*memLimit); err != nil {
		fmt.Fprintf(stderr, "smtpcap analyze: --memory-limit: %v\n", err)
		return exitUsage
	} else if lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(lim)
	}
	pr := newPrinter(of, sel, loc, stdout)
	fm := newFrameMap(*files)
	pr.frames = fm.fn()
	prepare := func(r *smtpstate.Record) any { classify(r, params); return pr.prepare(r) }
	emit := pr.emit
	var es *esaStream
	var ss *liveESA // --stream: matched as they end, as live does
	var tzErr error // a bad --esa-tz is reported, but the sessions are still printed
	if *of.stream && len(*esaLogs) > 0 {
		if ss, tzErr = newLiveESA(*esaLogs, *esaTZ, esalog.DefaultHorizon, false); ss != nil {
			prepare = func(r *smtpstate.Record) any { classify(r, params); return r }
			emit = func(v any) {
				ss.add(v.(*smtpstate.Record))
				pr.records(ss.poll(ss.present(), false))
			}
		}
	} else if len(*esaLogs) > 0 || *icid != "" || *mid != "" {
		if es, tzErr = newESAStream(*esaLogs, *esaTZ, *icid, *mid, pr, strings.EqualFold(*tz, "esa")); es != nil {
			prepare = func(r *smtpstate.Record) any { classify(r, params); return r }
			emit = func(v any) { es.add(v.(*smtpstate.Record)) }
		} else if *icid != "" || *mid != "" {
			fmt.Fprintf(stderr, "smtpcap analyze: %v (needed to select by --icid/--mid)\n", tzErr)
			return exitUsage
		}
	}
	var readErr error
	if len(*recFiles) > 0 {
		readErr = readRecords(*recFiles, func(r *smtpstate.Record) { emit(prepare(r)) })
	} else {
		if *of.stream {
			opt.Order = reassembly.ByEnd
		}
		opt.Workers = *workers
		in := captureInput{files: *files, filter: joinFilter(fs.Args()), maxRecord: *maxRecord, maxOpen: *maxOpen, quiet: *quiet, frames: fm}
		var code int
		if readErr, code = in.read(ctx, opt, prepare, emit, stderr); code != 0 {
			return code
		}
	}
	if *memProfile != "" {
		writeHeapProfile(*memProfile, stderr)
	}
	if ss != nil {
		pr.records(ss.poll(ss.present(), true))
		var summary strings.Builder
		ss.summary(&summary)
		code := outcome(stderr, pr.finish(stdout, stderr, *quiet, summary.String()), readErr)
		if esaErr := ss.readErr; esaErr != nil {
			fmt.Fprintf(stderr, "smtpcap: %v\n", esaErr)
			code = max(code, exitError)
		}
		return interrupt(ctx, code)
	}
	if es == nil {
		code := outcome(stderr, pr.finish(stdout, stderr, *quiet, ""), readErr)
		if tzErr != nil {
			fmt.Fprintf(stderr, "smtpcap: %v\n", tzErr)
			code = max(code, exitError)
		}
		return interrupt(ctx, code)
	}
	// ESA matching (esa.go): a log that cannot be read, or an ICID/MID it
	// does not hold, is reported and exits 1, but never hides the sessions.
	esa, esaErr := es.close()
	code := outcome(stderr, pr.finish(stdout, stderr, *quiet, esa.Summary), readErr)
	if esaErr != nil {
		fmt.Fprintf(stderr, "smtpcap: %v\n", esaErr)
		code = max(code, exitError)
	}
	return interrupt(ctx, code)
}

// interrupt turns a clean exit of an interrupted run into 130/143.
func interrupt(ctx context.Context, code int) int {
	if c := interruptCode(ctx); c != 0 && code == exitOK {
		return c
	}
	return code
}

// outcome turns the output error and the input's hard error (if reading
// stopped early; the sessions before it were reported) into the exit code.
func outcome(stderr io.Writer, writeErr, readErr error) int {
	if writeErr != nil {
		fmt.Fprintf(stderr, "smtpcap: writing output: %v\n", writeErr)
		return exitError
	}
	if readErr != nil {
		fmt.Fprintf(stderr, "smtpcap: %v (sessions before it are reported)\n", readErr)
		return exitError
	}
	return exitOK
}

// progress prints bytes read to stderr a few times a second, only on a TTY.
type progress struct {
	w    io.Writer
	on   bool
	src  *capture.Source
	last time.Time
}

func newProgress(w io.Writer, on bool, src *capture.Source) *progress {
	return &progress{w: w, on: on, src: src}
}

func (p *progress) update() {
	if !p.on || time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%.1f MB read", float64(p.src.BytesRead())/1e6)
}

func (p *progress) done() {
	if p.on && !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// startProfile writes a CPU profile until the returned function is called.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeHeapProfile writes the live heap (after a collection) to path.
func writeHeapProfile(path string, stderr io.Writer) {
	f, err := os.Create(path)
	if err == nil {
		runtime.GC()
		err = errors.Join(pprof.WriteHeapProfile(f), f.Close())
	}
	if err != nil {
		fmt.Fprintf(stderr, "smtpcap: --memprofile: %v\n", err)
	}
}

// parseSize reads a byte count with an optional KiB/MiB/GiB (or K/M/G)
// suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	t := strings.TrimSpace(s)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 100MiB", s)
	}
	return n * mult, nil
}

// capWarnings says on stderr when a cap changed the analysis, with the
// flag that raises it.
func capWarnings(w io.Writer, st reassembly.Stats) {
	if st.Evicted > 0 {
		fmt.Fprintf(w, "smtpcap: warning: %d sessions evicted at the open-session cap (reported as undetermined); raise --max-sessions\n", st.Evicted)
	}
	if st.BufferCapFlushes > 0 {
		fmt.Fprintf(w, "smtpcap: warning: %d holes given up early at the out-of-order buffer cap; raise --max-buffered / --max-buffered-total\n", st.BufferCapFlushes)
	}
	if st.FragmentsDropped > 0 {
		fmt.Fprintf(w, "smtpcap: warning: %d IPv4 datagrams whose fragments never completed were dropped (of %d fragments)\n", st.FragmentsDropped, st.Fragments)
	}
	if st.TimeJumps > 0 {
		fmt.Fprintf(w, "smtpcap: warning: %d frames stamped more than a day ahead of the capture's time were not taken as the time\n", st.TimeJumps)
	}
}

// classify computes the record's ending with the current timers.
func classify(r *smtpstate.Record, p ending.Params) { r.Ending = ending.Classify(r, p) }

// isIdent: an ICID, MID or DCID as the ESA writes them.
func isIdent(s string) bool {
	if len(s) == 0 || len(s) > 18 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
