package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // --esa-tz accepts IANA names on machines without zoneinfo

	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/esalog"
)

// parseZone accepts an IANA name (Europe/Zurich), UTC, or an offset:
// +01:00, -0600, +2, or seconds east of UTC as in the log header (3600).
func parseZone(s string) (*time.Location, error) {
	if s == "" {
		return nil, nil
	}
	if m := regexp.MustCompile(`^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$`).FindStringSubmatch(s); m != nil {
		h, _ := strconv.Atoi(m[2])
		mi, _ := strconv.Atoi(m[3])
		off := h*3600 + mi*60
		if m[1] == "-" {
			off = -off
		}
		return time.FixedZone(s, off), nil
	}
	if v, err := strconv.Atoi(s); err == nil && v > -50400 && v < 50400 && (v%900 == 0) {
		return time.FixedZone(s, v), nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("%q: not an IANA zone or an offset like +01:00: %w", s, err)
	}
	return loc, nil
}

// esaMatch is what matching against the ESA logs produced.
type esaMatch struct {
	Summary string
	Result  *esalog.Result
	// Zone is the appliance's zone (--esa-tz if given, else the offset in
	// use), for --tz esa.
	Zone *time.Location
	Logs int // log files given
}

// esaStream ties every session to its ICID/DCID as the sessions come
// (esalog.Stream: in windows of SYN time), then hands it to the printer,
// keeping only those --icid/--mid select: the sessions leave memory once
// matched. A log that cannot be read is an error, but what could be read
// is still matched: nothing in a log stops the session output.
type esaStream struct {
	s         *esalog.Stream
	files     []string
	flagZone  *time.Location
	icid, mid string
	pr        *printer
	tzESA     bool // --tz esa: print in the appliance's zone
	readErr   error
	target    *esalog.Conn
	looked    bool // target looked up
	selected  int
}

func newESAStream(files []string, tz, icid, mid string, pr *printer, tzESA bool) (*esaStream, error) {
	loc, err := parseZone(tz)
	if err != nil {
		return nil, fmt.Errorf("--esa-tz %w", err)
	}
	e := &esaStream{files: files, flagZone: loc, icid: icid, mid: mid, pr: pr, tzESA: tzESA}
	e.s = esalog.NewStream(e.load, esalog.MatchOptions{Zone: loc}, e.out)
	e.s.Window = esaWindow
	return e, nil
}

// load reads the logs from a day before the first session on (the zone is
// not known yet: offsets are within ±14 h); --max-log-lines bounds them.
func (e *esaStream) load(first time.Time) *esalog.Log {
	opt := esalog.Options{Year: time.Now().Year(), MaxLines: esaMaxLines}
	if !first.IsZero() { // else no session: the whole log, to list it
		opt.Year, opt.From, opt.To = first.Year(), first.Add(-24*time.Hour), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	lg, err := esalog.ReadFiles(e.files, opt)
	e.readErr = err
	return lg
}

func (e *esaStream) add(r *smtpstate.Record) { e.s.Add(r) }

// zone is the appliance's zone: --esa-tz if given, else the offset in use.
func (e *esaStream) zone() *time.Location {
	if e.flagZone != nil {
		return e.flagZone
	}
	z := e.s.Result().Zone
	return time.FixedZone("UTC"+fmtOffset(z.Offset), z.Offset)
}

// out prints a matched session, if selected.
func (e *esaStream) out(r *smtpstate.Record) {
	if e.tzESA {
		e.pr.loc = e.zone()
	}
	if e.icid != "" || e.mid != "" {
		if !e.lookup() || !selects(r, e.target) {
			return
		}
		e.selected++
	}
	if e.pr == nil {
		return
	}
	if v := e.pr.prepare(r); v != nil {
		e.pr.emit(v)
	}
}

func (e *esaStream) lookup() bool {
	if !e.looked {
		e.looked = true
		if res := e.s.Result(); res != nil {
			e.target = res.Find(e.icid, e.mid)
		}
	}
	return e.target != nil
}

// close matches the sessions still waiting, prints them, and says what
// matching found; an ICID or MID the log does not hold, or that no session
// matched, is an error.
func (e *esaStream) close() (esaMatch, error) {
	res, lg := e.s.Close()
	m := esaMatch{Result: res, Logs: len(e.files)}
	if len(e.files) > 0 {
		m.Summary, m.Zone = summary(res, lg), e.zone()
	}
	err := e.readErr
	if e.icid == "" && e.mid == "" {
		return m, err
	}
	e.lookup()
	return m, errors.Join(err, selectionErr(e.icid, e.mid, e.target, e.selected))
}

// selectionErr says why --icid/--mid selected nothing: the log does not
// hold it (c nil), or no session matched it (n 0).
func selectionErr(icid, mid string, c *esalog.Conn, n int) error {
	what := "ICID " + icid
	if icid == "" {
		what = "MID " + mid
	}
	switch {
	case c == nil:
		return fmt.Errorf("%s is not in the ESA log", what)
	case n == 0:
		return fmt.Errorf("%s is in the ESA log (%s, %s %s) but no capture session matches it", what, connName(c), c.Start.Format("Jan _2 15:04:05"), c.Addr)
	}
	return nil
}

func summary(res *esalog.Result, lg *esalog.Log) string {
	var b strings.Builder
	z := res.Zone
	fmt.Fprintf(&b, "ESA log: %d files, %d lines kept", len(lg.Files), len(lg.Lines))
	if lg.Unknown > 0 {
		fmt.Fprintf(&b, ", %d of unknown type", lg.Unknown)
	}
	if lg.Broken > 0 {
		fmt.Fprintf(&b, ", %d unreadable (first: %v)", lg.Broken, lg.Errors[0])
	}
	if lg.Dropped > 0 {
		fmt.Fprintf(&b, ", %d more not kept at the cap of %d lines (raise --max-log-lines)", lg.Dropped, esaMaxLines)
	}
	if lg.Long > 0 {
		fmt.Fprintf(&b, ", %d over %d KiB skipped", lg.Long, esalog.MaxLineLen>>10)
	}
	b.WriteString("\n")
	for i, u := range lg.UnknownSamples {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "  unknown line %s:%d: %s\n", u.File, u.No, clipLine(u.Msg, 120))
	}
	for _, e := range lg.LongSamples {
		fmt.Fprintf(&b, "  long line %s:%d: %s (starts %q)\n", e.File, e.No, e.Why, clipLine(e.Text, 40))
	}
	for _, w := range lg.Warnings {
		fmt.Fprintf(&b, "ESA log WARNING: %s\n", w)
	}
	fmt.Fprintf(&b, "ESA zone: UTC%s (%s", fmtOffset(z.Offset), z.Source)
	if z.Of > 0 {
		fmt.Fprintf(&b, "; explains %d of %d sessions with a log candidate", z.Support, z.Of)
	}
	b.WriteString(")")
	if z.Skew != 0 {
		fmt.Fprintf(&b, ", appliance clock %+.1fs from the capture's", z.Skew)
	}
	b.WriteString("; log lines are quoted in appliance time\n")
	if len(z.Files) > 1 {
		for _, f := range z.Files {
			fmt.Fprintf(&b, "  %s: UTC%s (%s)\n", f.File, fmtOffset(f.Offset), f.Source)
		}
	}
	if z.Better != nil {
		fmt.Fprintf(&b, "ESA zone WARNING: the %s says UTC%s but UTC%s explains %d sessions (vs %d): the zone or the appliance clock is wrong\n",
			z.Source, fmtOffset(z.Offset), fmtOffset(*z.Better), z.BetterSupp, z.Support)
	}
	if res.Windows > 1 {
		fmt.Fprintf(&b, "ESA match in %d windows of sessions by SYN time (zone and clock estimated in each)", res.Windows)
		if res.Forced > 0 {
			fmt.Fprintf(&b, "; %d windows decided early: more than %d sessions began within %s", res.Forced, 4*esaWindow, esalog.DefaultHorizon)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "ESA match: %d sessions matched", res.Matched)
	if res.Ambiguous > 0 {
		fmt.Fprintf(&b, " (%d ambiguous, marked ? on their lines)", res.Ambiguous)
	}
	fmt.Fprintf(&b, ", %d capture sessions without a log connection, %d log connections without a capture session\n", res.Unmatched, len(res.LogOnly))
	for i, c := range res.LogOnly {
		if i == 20 {
			fmt.Fprintf(&b, "  … %d more\n", len(res.LogOnly)-20)
			break
		}
		id := "ICID " + strconv.FormatInt(c.ICID, 10)
		if c.Outbound {
			id = "DCID " + strconv.FormatInt(c.DCID, 10)
		}
		off := z.Offset
		if o, ok := z.Offsets[c.File]; ok {
			off = o
		}
		fmt.Fprintf(&b, "  log only: %s %s (UTC%s) %s (%s)\n", id, c.Start.Format("Jan _2 15:04:05"), fmtOffset(off), c.Addr, c.Story())
	}
	return b.String()
}

func clipLine(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func fmtOffset(s int) string {
	sign := "+"
	if s < 0 {
		sign, s = "-", -s
	}
	return fmt.Sprintf("%s%02d:%02d", sign, s/3600, s%3600/60)
}

// matchESA ties every record (in report.Sort order) to its ICID/DCID,
// for the case report, which holds its sessions anyway.
func matchESA(records []*smtpstate.Record, files []string, tz string) (esaMatch, error) {
	e, err := newESAStream(files, tz, "", "", nil, false)
	if err != nil {
		return esaMatch{}, err
	}
	for _, r := range records {
		e.add(r)
	}
	return e.close()
}

// selectRecords keeps the sessions with the given ICID or MID (and every
// session that could be it, when that match is ambiguous); an ICID or MID
// the log does not hold, or that no session matched, is an error.
func selectRecords(rs []*smtpstate.Record, res *esalog.Result, icid, mid string) ([]*smtpstate.Record, error) {
	if icid == "" && mid == "" {
		return rs, nil
	}
	var c *esalog.Conn
	if res != nil {
		c = res.Find(icid, mid)
	}
	var out []*smtpstate.Record
	for _, r := range rs {
		if c != nil && selects(r, c) {
			out = append(out, r)
		}
	}
	if err := selectionErr(icid, mid, c, len(out)); err != nil {
		return nil, err
	}
	return out, nil
}

func connName(c *esalog.Conn) string {
	if c.Outbound {
		return "DCID " + strconv.FormatInt(c.DCID, 10)
	}
	return "ICID " + strconv.FormatInt(c.ICID, 10)
}

// selects says whether r is the session of log connection c, or, when
// that match is ambiguous, one that could be it (marked icid=N? on its
// line).
func selects(r *smtpstate.Record, c *esalog.Conn) bool {
	if r.ESA == nil {
		return false
	}
	name, id := connName(c), strconv.FormatInt(c.ICID, 10)
	if c.Outbound {
		id = strconv.FormatInt(c.DCID, 10)
	}
	hit := !c.Outbound && r.ESA.ICID == id || c.Outbound && r.ESA.DCID == id
	for _, a := range r.ESA.Ambiguous {
		hit = hit || a == name
	}
	return hit
}

// sessionZone is where session times are printed: --tz utc (default),
// local, esa (the appliance's zone, to line up with its log), or a zone
// name or offset. --utc=false is the older spelling of --tz local.
func sessionZone(tz string, utc bool, esa esaMatch) (*time.Location, error) {
	switch strings.ToLower(tz) {
	case "", "utc":
		if !utc {
			return time.Local, nil
		}
		return time.UTC, nil
	case "local":
		return time.Local, nil
	case "esa":
		if esa.Zone == nil || esa.Logs == 0 {
			return nil, fmt.Errorf("--tz esa needs --esa-log (the appliance's zone comes from it or from --esa-tz)")
		}
		return esa.Zone, nil
	}
	loc, err := parseZone(tz)
	if err != nil {
		return nil, fmt.Errorf("--tz: %w", err)
	}
	return loc, nil
}

func writeSummary(w io.Writer, s string) {
	if s != "" {
		io.WriteString(w, s)
	}
}

// esaWindow is how many sessions wait for ESA matching before a window of
// them is matched (tests make it small to force many windows).
var esaWindow = esalog.DefaultWindow

// esaMaxLines is --max-log-lines: the ESA log lines held at most.
var esaMaxLines = esalog.DefaultMaxLines
