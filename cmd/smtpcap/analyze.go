package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/smtpcap/smtpcap/capture"
	"github.com/smtpcap/smtpcap/reassembly"
	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/ending"
	"github.com/smtpcap/smtpcap/smtpstate/report"
)

func runAnalyze(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("analyze", pflag.ContinueOnError)
	fs.Usage = func() {}
	files := fs.StringArrayP("read", "r", nil, "capture file (pcap, pcapng, .gz, .zst; - for stdin); repeat to merge files in time order")
	jsonOut := fs.Bool("json", false, "write JSON lines (Zeek field names) instead of the table")
	stream := fs.Bool("stream", false, "write JSON lines as sessions end (in the order they end) instead of sorted at the end: memory stays bounded on huge captures; not with --esa-log")
	ports := fs.UintSlice("port", nil, "additional SMTP server port (repeatable)")
	idle := fs.Duration("idle-timeout", 2*time.Hour, "finalize a session after this much capture time without packets")
	quiet := fs.BoolP("quiet", "q", false, "no progress on stderr")
	srvTimeouts := fs.DurationSlice("server-timeout", nil, "a server idle timer to recognise, besides RFC 5321's and the ESA's (repeatable, e.g. 45s)")
	fwIdle := fs.Duration("firewall-idle", 5*time.Second, "shortest idle gap taken as a firewall's idle expiry when a foreign RST or silence follows")
	utc := fs.Bool("utc", true, "print times in UTC (else local time)")
	esaLogs := fs.StringArray("esa-log", nil, "ESA mail_logs file (text, .gz, rolled mail.@….s/.c/.current); repeat for several")
	esaTZ := fs.String("esa-tz", "", "the appliance's time zone (IANA name or offset like +01:00); default: the log header, else inferred")
	icid := fs.String("icid", "", "show only the session of this ICID (or DCID); needs --esa-log")
	mid := fs.String("mid", "", "show only the session that carried this MID; needs --esa-log")
	recFiles := recordsFlag(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if (len(*files) == 0) == (len(*recFiles) == 0) {
		fmt.Fprintln(stderr, "smtpcap analyze: -r FILE or --records FILE.jsonl is required (not both)")
		return exitUsage
	}
	if *stream && (len(*esaLogs) > 0 || *icid != "" || *mid != "") {
		fmt.Fprintln(stderr, "smtpcap analyze: --stream cannot be combined with --esa-log, --icid or --mid (matching needs every session)")
		return exitUsage
	}
	params := ending.DefaultParams
	params.ServerTimeouts = append([]float64(nil), params.ServerTimeouts...)
	for _, d := range *srvTimeouts {
		params.ServerTimeouts = append(params.ServerTimeouts, d.Seconds())
	}
	params.FirewallIdle = fwIdle.Seconds()
	opt := reassembly.Options{IdleTimeout: *idle}
	if len(*ports) > 0 {
		opt.Ports = append([]uint16(nil), reassembly.DefaultPorts...)
		for _, p := range *ports {
			if p == 0 || p > 65535 {
				fmt.Fprintf(stderr, "smtpcap analyze: bad port %d\n", p)
				return exitUsage
			}
			opt.Ports = append(opt.Ports, uint16(p))
		}
	}
	var records []*smtpstate.Record
	var streamErr error
	emit := func(r *smtpstate.Record) { classify(r, params); records = append(records, r) }
	if *stream {
		emit = func(r *smtpstate.Record) {
			classify(r, params)
			if streamErr == nil {
				streamErr = report.JSONLines(stdout, []*smtpstate.Record{r})
			}
		}
	}
	var readErr error
	if len(*recFiles) > 0 {
		readErr = readRecords(*recFiles, emit)
	} else {
		src, err := capture.Open(*files, capture.Options{Filter: joinFilter(fs.Args()), Stdin: stdin})
		if err != nil {
			fmt.Fprintf(stderr, "smtpcap: %v\n", err)
			return exitError
		}
		defer src.Close()

		an := reassembly.New(opt, emit)
		prog := newProgress(stderr, !*quiet && isTerminal(stderr), src)
		for i := 0; ; i++ {
			f, ok := src.Next()
			if !ok {
				break
			}
			an.Frame(f.Number, f.LinkType, f.CI, f.Data)
			if i&0xffff == 0 {
				if ctx.Err() != nil {
					fmt.Fprintln(stderr, "smtpcap: interrupted; reporting what was read")
					break
				}
				prog.update()
			}
		}
		an.Close()
		prog.done()
		for _, w := range src.Warnings() {
			fmt.Fprintf(stderr, "smtpcap: warning: %s\n", w)
		}
		readErr = src.Err()
	}
	if *stream {
		return outcome(stderr, streamErr, readErr)
	}
	report.Sort(records)
	var esaSummary string
	var err error
	if len(*esaLogs) > 0 {
		esaSummary, err = matchESA(records, *esaLogs, *esaTZ)
		if err != nil {
			fmt.Fprintf(stderr, "smtpcap: %v\n", err)
			return exitError
		}
	} else if *icid != "" || *mid != "" {
		fmt.Fprintln(stderr, "smtpcap analyze: --icid and --mid need --esa-log")
		return exitUsage
	}
	records = selectRecords(records, *icid, *mid)
	loc := time.UTC
	if !*utc {
		loc = time.Local
	}
	if *jsonOut {
		err = report.JSONLines(stdout, records)
		writeSummary(stderr, esaSummary)
	} else {
		err = report.Text(stdout, records, loc)
		if esaSummary != "" {
			fmt.Fprint(stdout, "\n"+esaSummary)
		}
	}
	return outcome(stderr, err, readErr)
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

// classify sets the ending of a finished record with the run's timers.
func classify(r *smtpstate.Record, p ending.Params) { r.Ending = ending.Classify(r, p) }
