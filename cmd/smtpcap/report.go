package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/smtpcap/smtpcap/capture"
	"github.com/smtpcap/smtpcap/reassembly"
	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/ending"
	"github.com/smtpcap/smtpcap/smtpstate/report"
)

// runReport writes the case report folder: report.md, report.html,
// sessions.pcapng and summary.json for the selected sessions.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("report", pflag.ContinueOnError)
	fs.Usage = func() {}
	files := fs.StringArrayP("read", "r", nil, "capture file (pcap, pcapng, .gz, .zst); repeat to merge files in time order")
	esaLogs := fs.StringArray("esa-log", nil, "ESA mail_logs file; repeat for several")
	esaTZ := fs.String("esa-tz", "", "the appliance's time zone (IANA name or offset like +01:00); default: the log header, else inferred")
	tz := fs.String("tz", "utc", "zone of the session times: utc, local, esa or a zone name/offset")
	out := fs.StringP("output", "o", "", "folder to write the report into (created)")
	all := fs.Bool("all", false, "report every session (default: --abnormal)")
	redact := fs.Bool("redact", false, "hash address local parts, drop HELO names, greetings and reply texts")
	redactPcap := fs.Bool("redact-pcap", false, "truncate sessions.pcapng payloads after the SMTP commands and replies (no bodies, no AUTH data)")
	quiet := fs.BoolP("quiet", "q", false, "print nothing but errors")
	icid := fs.String("icid", "", "report only the session of this ICID (or DCID); needs --esa-log")
	mid := fs.String("mid", "", "report only the session that carried this MID; needs --esa-log")
	of := addOutFlags(fs)
	for _, n := range []string{"json", "csv", "stream", "summary", "verbose"} {
		_ = fs.MarkHidden(n)
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if len(*files) == 0 || *out == "" {
		fmt.Fprintln(stderr, "smtpcap report: -r CAPTURE and -o DIR are required")
		return exitUsage
	}
	if len(*esaLogs) == 0 && (*icid != "" || *mid != "") {
		fmt.Fprintln(stderr, "smtpcap report: --icid and --mid need --esa-log")
		return exitUsage
	}
	selWords := reportSelection(of, *all, *icid, *mid)
	sel, err := of.selector()
	if err != nil {
		fmt.Fprintf(stderr, "smtpcap report: %v\n", err)
		return exitUsage
	}
	loc, err := sessionZone(*tz, true, esaMatch{Zone: time.UTC, Logs: len(*esaLogs)})
	if err != nil {
		fmt.Fprintf(stderr, "smtpcap report: %v\n", err)
		return exitUsage
	}
	for _, f := range *files {
		if f == "-" {
			fmt.Fprintln(stderr, "smtpcap report: -r - is not supported (the capture is read twice)")
			return exitUsage
		}
	}
	// Pass 1: every session, classified.
	fm := newFrameMap(*files)
	records, readErr := analyzeAll(ctx, *files, fm)
	report.Sort(records)
	c := &report.Case{Tool: toolVersion(), Loc: loc, Selection: selWords, Total: len(records), Frame: fm.fn(), Redact: *redact}
	var esa esaMatch
	if len(*esaLogs) > 0 {
		var esaErr error
		esa, esaErr = matchESA(records, *esaLogs, *esaTZ)
		if esaErr != nil {
			fmt.Fprintf(stderr, "smtpcap: %v\n", esaErr)
		}
		c.ESA, c.ESAZone = esa.Summary, esa.Zone.String()
		if strings.EqualFold(*tz, "esa") && esa.Zone != nil {
			c.Loc = esa.Zone
		}
	}
	var sum report.Summary
	for _, r := range records {
		sum.Add(report.FactOf(r))
	}
	pool, err := selectRecords(records, esa.Result, *icid, *mid)
	if err != nil {
		fmt.Fprintf(stderr, "smtpcap report: %v\n", err)
		return exitError
	}
	var selected []*smtpstate.Record
	for _, r := range pool {
		if *all || sel.keep(r) {
			selected = append(selected, r)
		}
	}
	var sb bytes.Buffer
	_ = sum.Write(&sb, c.Loc)
	c.Summary = sb.String()
	if err := writeCase(c, *files, *out, selected, *redact, *redactPcap); err != nil {
		fmt.Fprintf(stderr, "smtpcap report: %v\n", err)
		return exitError
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s: %d of %d sessions (%s): report.md report.html sessions.pcapng summary.json\n", *out, len(selected), len(records), selWords)
	}
	if readErr != nil {
		fmt.Fprintf(stderr, "smtpcap: %v (sessions before it are reported)\n", readErr)
		return exitError
	}
	return exitOK
}

// writeCase hashes the captures, collects the selected sessions' packets
// (sessions.pcapng, the ladders) and writes the report files.
func writeCase(c *report.Case, files []string, out string, selected []*smtpstate.Record, redact, redactPcap bool) error {
	names := shortNames(files)
	for i, f := range files {
		cf, err := hashFile(f)
		if err != nil {
			return err
		}
		cf.Name = names[i]
		c.Files = append(c.Files, cf)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// Pass 2: the selected sessions' packets, drawn and written out.
	col := newCollector(selected, redact)
	pcapNote := "the packets of the selected sessions, each commented with its session uid; the deciding packets also with the verdict"
	if redactPcap {
		pcapNote += "; payloads truncated after the SMTP commands and replies (message bodies and AUTH data removed)"
	}
	c.PcapNote = pcapNote
	if err := collectPackets(files, col, filepath.Join(out, "sessions.pcapng"), pcapNote, redactPcap); err != nil {
		return err
	}
	c.Packets = map[string][]report.Event{}
	for _, ss := range col.byTuple {
		for _, s := range ss {
			c.Packets[s.r.UID] = s.events
		}
	}
	shown := selected
	if redact {
		shown = nil
		for _, r := range selected {
			shown = append(shown, report.Redacted(r))
		}
	}
	c.Sessions = selected // the renderers redact (c.Redact); the JSON is redacted here
	return writeReportFiles(out, c, shown)
}

// reportSelection applies the default selection (--abnormal unless --all
// or another selection is given) and says in words what is selected.
func reportSelection(of *outFlags, all bool, icid, mid string) string {
	explicit := icid != "" || mid != "" || *of.abnormal || len(*of.verdicts) > 0 || *of.client != "" || *of.from != "" || *of.until != ""
	switch {
	case all:
		return "all sessions"
	case !explicit:
		*of.abnormal = true
		return "abnormal endings (everything but a normal QUIT)"
	}
	return "as selected: " + strings.Join(selectionWords(of, icid, mid), ", ")
}

func selectionWords(of *outFlags, icid, mid string) []string {
	var w []string
	if icid != "" {
		w = append(w, "--icid "+icid)
	}
	if mid != "" {
		w = append(w, "--mid "+mid)
	}
	if *of.abnormal {
		w = append(w, "--abnormal")
	}
	for _, v := range *of.verdicts {
		w = append(w, "--verdict "+v)
	}
	for _, p := range [][2]string{{"--client", *of.client}, {"--from", *of.from}, {"--until", *of.until}} {
		if p[1] != "" {
			w = append(w, p[0]+" "+p[1])
		}
	}
	return w
}

// analyzeAll runs the analysis over files and returns every record.
func analyzeAll(ctx context.Context, files []string, fm *frameMap) ([]*smtpstate.Record, error) {
	src, err := capture.Open(files, capture.Options{})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	params := ending.DefaultParams
	opt := reassembly.Options{IdleTimeout: 2 * time.Hour, HalfOpenTimeout: time.Minute, MaxSessions: 1 << 20,
		MaxBufferedPerConn: 1 << 20, MaxBufferedTotal: 256 << 20, Workers: runtime.NumCPU()}
	var records []*smtpstate.Record
	an := reassembly.NewPipeline(opt, func(r *smtpstate.Record) any { classify(r, params); return r }, func(v any) { records = append(records, v.(*smtpstate.Record)) })
	for ctx.Err() == nil {
		f, ok := src.Next()
		if !ok {
			break
		}
		fm.add(f)
		an.Frame(f.Number, f.LinkType, f.CI, f.Data)
	}
	an.Close()
	return records, src.Err()
}

func collectPackets(files []string, col *collector, path, note string, trunc bool) error {
	src, err := capture.Open(files, capture.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	col.trunc = trunc
	for {
		f, ok := src.Next()
		if !ok {
			break
		}
		if col.pcap == nil {
			if col.pcap, err = capture.NewNgWriter(out, f.LinkType, "smtpcap "+version(), "smtpcap case report: "+note); err != nil {
				return err
			}
		}
		col.frame(f)
	}
	if col.pcap == nil {
		return fmt.Errorf("%s: no frame to write", strings.Join(files, ", "))
	}
	if col.err != nil {
		return fmt.Errorf("%s: %w", path, col.err)
	}
	if err := col.pcap.Flush(); err != nil {
		return err
	}
	return out.Close()
}

func writeReportFiles(dir string, c *report.Case, rs []*smtpstate.Record) error {
	var md, html, js bytes.Buffer
	if err := c.Markdown(&md); err != nil {
		return err
	}
	if err := c.HTML(&html); err != nil {
		return err
	}
	if err := report.JSONLines(&js, rs); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"report.md": md.Bytes(), "report.html": html.Bytes(), "summary.json": js.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func hashFile(name string) (report.CaseFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return report.CaseFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return report.CaseFile{}, fmt.Errorf("%s: %w", name, err)
	}
	return report.CaseFile{Name: filepath.Base(name), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// toolVersion names the tool in reports (tests fix it for byte-stable goldens).
var toolVersion = version
