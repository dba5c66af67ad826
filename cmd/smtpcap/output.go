package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/report"
)

// outFlags are the output and selection flags shared by the commands that
// print sessions.
type outFlags struct {
	json, csv, stream, summary *bool
	verdicts                   *[]string
	abnormal                   *bool
	client, from, until        *string
	verbose                    *int
}

func addOutFlags(fs *pflag.FlagSet) *outFlags {
	return &outFlags{
		json:     fs.Bool("json", false, "write JSON lines (Zeek field names) instead of the table"),
		csv:      fs.Bool("csv", false, "write CSV, one row per session, with a fixed header"),
		stream:   fs.Bool("stream", false, "write JSON lines in the order sessions end, flushed per line (with --esa-log: once matched, 30 s of capture time after the SYN at the earliest)"),
		summary:  fs.Bool("summary", false, "print the summary (sessions per verdict, abnormal endings by client, losses) also when stdout is a terminal"),
		verdicts: fs.StringArray("verdict", nil, "show only sessions with this verdict (repeatable)"),
		abnormal: fs.Bool("abnormal", false, "show only sessions that did not end with a normal QUIT"),
		client:   fs.String("client", "", "show only sessions from this client address or prefix (192.0.2.7, 2001:db8::/32)"),
		from:     fs.String("from", "", "show only sessions that began at or after this time (RFC 3339, or 2006-01-02 15:04:05 in UTC)"),
		until:    fs.String("until", "", "show only sessions that began before this time"),
		verbose:  fs.CountP("verbose", "v", "-v: under each line the reason and the evidence, whole, wrapped to $COLUMNS (else 120); -vv: also the dialogue (never bodies or AUTH data)"),
	}
}

// selector keeps the sessions the selection flags ask for.
type selector struct {
	verdicts    map[string]bool
	abnormal    bool
	prefix      netip.Prefix
	from, until time.Time
}

func (o *outFlags) selector() (*selector, error) {
	s := &selector{abnormal: *o.abnormal}
	for _, v := range *o.verdicts {
		if s.verdicts == nil {
			s.verdicts = map[string]bool{}
		}
		s.verdicts[strings.TrimSpace(v)] = true
	}
	if c := *o.client; c != "" {
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("--client %q: not an address or a prefix", c)
			}
			c = a.String() + "/" + fmt.Sprint(a.BitLen())
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("--client %q: not an address or a prefix", *o.client)
		}
		s.prefix = p.Masked()
	}
	var err error
	if s.from, err = parseWhen(*o.from, "--from"); err != nil {
		return nil, err
	}
	if s.until, err = parseWhen(*o.until, "--until"); err != nil {
		return nil, err
	}
	if *o.json && *o.csv {
		return nil, fmt.Errorf("--json and --csv: choose one")
	}
	return s, nil
}

func parseWhen(s, flag string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: not a time such as 2026-11-26T20:00:00+01:00 or 2026-11-26 19:00:00 (UTC)", flag, s)
}

// keep reports whether a record is selected.
func (s *selector) keep(r *smtpstate.Record) bool {
	if s.abnormal && !report.Abnormal(r) {
		return false
	}
	if s.verdicts != nil && (r.Ending == nil || !s.verdicts[r.Ending.Verdict]) {
		return false
	}
	if s.prefix.IsValid() {
		a, err := netip.ParseAddr(r.OrigH)
		if err != nil || !s.prefix.Contains(a.Unmap()) {
			return false
		}
	}
	if !s.from.IsZero() && r.TS.Before(s.from) {
		return false
	}
	if !s.until.IsZero() && !r.TS.Before(s.until) {
		return false
	}
	return true
}

// printer writes selected sessions as they come (prepare runs on the
// workers, emit in output order) and keeps the summary's counts.
type printer struct {
	o       *outFlags
	sel     *selector
	loc     *time.Location
	w       *bufio.Writer
	err     error
	sum     report.Summary
	headers bool
	frames  func(uint64) string // file:frame when several files are read
}

// prepared is a session encoded for output, with its summary facts.
type prepared struct {
	line []byte
	fact report.Fact
}

func newPrinter(o *outFlags, sel *selector, loc *time.Location, stdout io.Writer) *printer {
	return &printer{o: o, sel: sel, loc: loc, w: bufio.NewWriterSize(stdout, 256<<10)}
}

func (p *printer) encode(r *smtpstate.Record) []byte {
	switch {
	case *p.o.csv:
		return report.AppendCSV(nil, r)
	case *p.o.json || *p.o.stream:
		b, _ := report.AppendJSON(nil, r)
		return b
	}
	t := report.Table{Loc: p.loc, Verbose: *p.o.verbose, Width: termWidth(), Frame: p.frames}
	return append([]byte(t.Session(r)), '\n')
}

func (p *printer) prepare(r *smtpstate.Record) any {
	if !p.sel.keep(r) {
		return nil
	}
	return prepared{p.encode(r), report.FactOf(r)}
}

func (p *printer) emit(v any) {
	pr, ok := v.(prepared)
	if !ok {
		return
	}
	p.sum.Add(pr.fact)
	p.write(pr.line)
	if *p.o.stream && p.err == nil {
		p.err = p.w.Flush()
	}
}

func (p *printer) write(b []byte) {
	if p.err != nil {
		return
	}
	if *p.o.csv && !p.headers {
		p.headers = true
		p.err = report.WriteCSVHeader(p.w)
	}
	if p.err == nil {
		_, p.err = p.w.Write(b)
	}
}

// records prints kept records (the ESA path) through the same encoders.
func (p *printer) records(rs []*smtpstate.Record) {
	for _, r := range rs {
		if v := p.prepare(r); v != nil {
			p.emit(v)
		}
	}
}

// finish flushes and prints the summary: after the table on a terminal
// when asked, else on stderr unless quiet.
func (p *printer) finish(stdout, stderr io.Writer, quiet bool, extra string) error {
	if *p.o.csv && !p.headers {
		p.write(nil)
	}
	if p.err == nil {
		p.err = p.w.Flush()
	}
	tableOnTTY := !*p.o.json && !*p.o.csv && !*p.o.stream && isTerminal(stdout)
	switch {
	case tableOnTTY && (*p.o.summary || !quiet):
		fmt.Fprintln(stdout)
		_ = p.sum.Write(stdout, p.loc)
		if extra != "" {
			fmt.Fprint(stdout, "\n"+extra)
		}
	case *p.o.summary || !quiet:
		_ = p.sum.Write(stderr, p.loc)
		if extra != "" {
			fmt.Fprint(stderr, extra)
		}
	case extra != "" && !*p.o.json && !*p.o.csv:
		fmt.Fprint(stdout, "\n"+extra)
	case extra != "":
		fmt.Fprint(stderr, extra)
	}
	return p.err
}

// termWidth is $COLUMNS, else report.TableWidth.
func termWidth() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 40 {
		return n
	}
	return report.TableWidth
}
