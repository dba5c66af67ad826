package main

import (
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

// matchESA reads the logs around the capture's time range and ties every
// record to its ICID/DCID. A log that cannot be read is an error, but what
// could be read is still matched: nothing in a log stops the session output.
func matchESA(records []*smtpstate.Record, files []string, tz string) (esaMatch, error) {
	loc, err := parseZone(tz)
	if err != nil {
		return esaMatch{}, fmt.Errorf("--esa-tz %w", err)
	}
	opt := esalog.Options{Year: time.Now().Year(), MaxLines: esaMaxLines}
	if len(records) > 0 {
		first, last := records[0].TS.Time, records[0].EndTS.Time
		for _, r := range records {
			if r.TS.Before(first) {
				first = r.TS.Time
			}
			if r.EndTS.After(last) {
				last = r.EndTS.Time
			}
		}
		// Zone unknown yet: keep a day either side (offsets are within ±14 h).
		opt.Year = first.Year()
		opt.From, opt.To = first.Add(-24*time.Hour), last.Add(24*time.Hour)
	}
	lg, readErr := esalog.ReadFiles(files, opt)
	res := esalog.Match(records, lg, esalog.MatchOptions{Zone: loc})
	m := esaMatch{Summary: summary(res, lg), Result: res, Zone: loc, Logs: len(files)}
	if m.Zone == nil {
		m.Zone = time.FixedZone("UTC"+fmtOffset(res.Zone.Offset), res.Zone.Offset)
	}
	return m, readErr
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
	fmt.Fprintf(&b, "ESA match: %d sessions matched", res.Matched)
	if res.Ambiguous > 0 {
		fmt.Fprintf(&b, " (%d ambiguous, marked ? on their lines)", res.Ambiguous)
	}
	fmt.Fprintf(&b, ", %d capture sessions without a log connection, %d log connections without a capture session\n", len(res.CaptOnly), len(res.LogOnly))
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

// selectRecords keeps the sessions with the given ICID or MID, and, when
// that match is ambiguous, every session that could be it (each is marked
// icid=N? on its line). An ICID or MID the log does not hold, or that no
// session matched, is an error.
func selectRecords(rs []*smtpstate.Record, res *esalog.Result, icid, mid string) ([]*smtpstate.Record, error) {
	if icid == "" && mid == "" {
		return rs, nil
	}
	what := "ICID " + icid
	if icid == "" {
		what = "MID " + mid
	}
	var c *esalog.Conn
	if res != nil {
		c = res.Find(icid, mid)
	}
	if c == nil {
		return nil, fmt.Errorf("%s is not in the ESA log", what)
	}
	name := "ICID " + strconv.FormatInt(c.ICID, 10)
	id := strconv.FormatInt(c.ICID, 10)
	if c.Outbound {
		name, id = "DCID "+strconv.FormatInt(c.DCID, 10), strconv.FormatInt(c.DCID, 10)
	}
	var out []*smtpstate.Record
	for _, r := range rs {
		if r.ESA == nil {
			continue
		}
		hit := !c.Outbound && r.ESA.ICID == id || c.Outbound && r.ESA.DCID == id
		for _, a := range r.ESA.Ambiguous {
			hit = hit || a == name
		}
		if hit {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is in the ESA log (%s, %s %s) but no capture session matches it", what, name, c.Start.Format("Jan _2 15:04:05"), c.Addr)
	}
	return out, nil
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

// esaMaxLines is --max-log-lines: the ESA log lines held at most.
var esaMaxLines = esalog.DefaultMaxLines
