package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// TableWidth is the width every default table line fits in.
const TableWidth = 120

// Table configures the terminal table. The zero value prints one line per
// session in UTC with frame numbers as #N.
type Table struct {
	Loc *time.Location
	// Verbose: 0 one line; 1 adds the reason and the evidence, whole,
	// wrapped to Width; 2 adds the dialogue transcript.
	Verbose int
	// Width wraps the -v lines (0: TableWidth).
	Width int
	// Frame names a frame for the reader ("#57", or "b.pcap:34" when
	// several files were read); nil means "#N".
	Frame func(uint64) string
}

func (t Table) frame(n uint64) string {
	if t.Frame != nil {
		return t.Frame(n)
	}
	return "#" + strconv.FormatUint(n, 10)
}

// frames names a range: "#1-#21", "a.pcap:1-21".
func (t Table) frames(a, b uint64) string {
	fa, fb := t.frame(a), t.frame(b)
	if i := strings.LastIndexByte(fa, ':'); i > 0 && strings.HasPrefix(fb, fa[:i+1]) {
		return fa + "-" + fb[i+1:]
	}
	return fa + "-" + fb
}

// Session renders one session: the line, and with Verbose the indented
// lines under it. There is no trailing newline.
func (t Table) Session(r *smtpstate.Record) string {
	if t.Loc == nil {
		t.Loc = time.UTC
	}
	line := t.line(r)
	if t.Verbose == 0 {
		return line
	}
	w := t.Width
	if w <= 0 {
		w = TableWidth
	}
	var b strings.Builder
	b.WriteString(line)
	for _, l := range t.details(r) {
		for _, wl := range wrap(l, w, "    ", "      ") {
			b.WriteString("\n" + wl)
		}
	}
	if t.Verbose >= 2 {
		for _, e := range Events(r, false) {
			for _, wl := range wrap(t.eventLine(r, e), w, "    ", "                  ") {
				b.WriteString("\n" + wl)
			}
		}
	}
	return b.String()
}

// line is the one-line view: time with zone, client -> server, verdict,
// who/confidence, ICID (a ? when another log connection fits as well) and
// the first MID with +N for the others, and LOST when a message was lost.
// Columns are padded for alignment; a line that would pass TableWidth
// loses its padding, then the middle of its addresses.
func (t Table) line(r *smtpstate.Record) string {
	ts := r.TS.In(t.Loc).Format("2006-01-02 15:04:05Z07:00")
	cli, srv := hostPort(r.OrigH, r.OrigP), hostPort(r.RespH, r.RespP)
	verdict, who := "-", "-"
	lost := ""
	if e := r.Ending; e != nil {
		verdict = fmt.Sprint(e.Verdict) // a string or a typed catalogue value
		who = e.Who + "/" + e.Confidence
		if e.MessageLost {
			lost = "LOST"
		}
	}
	esa := esaColumn(r)
	cols := []string{ts, cli + " -> " + srv, verdict, who, esa, lost}
	widths := []int{0, 36, 20, 16, 0, 0}
	l := joinCols(cols, widths)
	// Too long: give up padding from the right (who, verdict, addresses),
	// then shorten the addresses in their middle (-v prints them whole).
	for i := 3; i >= 1; i-- {
		over := utf8.RuneCountInString(l) - TableWidth
		if over <= 0 {
			break
		}
		pad := widths[i] - utf8.RuneCountInString(cols[i])
		if pad > 0 {
			widths[i] -= min(pad, over)
			l = joinCols(cols, widths)
		}
	}
	if over := utf8.RuneCountInString(l) - TableWidth; over > 0 {
		half := (over + 1) / 2
		cli, srv = clipMiddle(cli, half+1), clipMiddle(srv, half+1)
		cols[1] = cli + " -> " + srv
		l = joinCols(cols, nil)
	}
	return Safe(l)
}

func esaColumn(r *smtpstate.Record) string {
	if r.ESA == nil {
		return ""
	}
	unsure := "" // another log connection fits as well: -v lists them
	if len(r.ESA.Ambiguous) > 0 {
		unsure = "?"
	}
	var parts []string
	if r.ESA.ICID != "" {
		parts = append(parts, "icid="+r.ESA.ICID+unsure)
	}
	if r.ESA.DCID != "" {
		parts = append(parts, "dcid="+r.ESA.DCID+unsure)
	}
	if n := len(r.ESA.MIDs); n > 0 {
		m := "mid=" + r.ESA.MIDs[0]
		if n > 1 {
			m += "+" + strconv.Itoa(n-1)
		}
		parts = append(parts, m)
	}
	return strings.Join(parts, " ")
}

// joinCols joins non-empty columns with two spaces, padding column i to
// widths[i] runes when widths is given.
func joinCols(cols []string, widths []int) string {
	var b strings.Builder
	for i, c := range cols {
		if c == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("  ")
		}
		b.WriteString(c)
		if widths != nil && i < len(widths) {
			if pad := widths[i] - utf8.RuneCountInString(c); pad > 0 && hasMore(cols[i+1:]) {
				b.WriteString(strings.Repeat(" ", pad))
			}
		}
	}
	return b.String()
}

func hasMore(cols []string) bool {
	for _, c := range cols {
		if c != "" {
			return true
		}
	}
	return false
}

// clipMiddle shortens s by n runes, replacing its middle with "…".
func clipMiddle(s string, n int) string {
	rs := []rune(s)
	if n <= 0 || len(rs) <= n+3 {
		return s
	}
	keep := len(rs) - n - 1
	head := keep / 2
	return string(rs[:head]) + "…" + string(rs[len(rs)-(keep-head):])
}

// details are the -v lines: reason, dialogue facts, evidence, ESA.
func (t Table) details(r *smtpstate.Record) []string {
	var out []string
	if e := r.Ending; e != nil {
		l := "reason: " + e.Reason
		if e.MessageLost {
			l += " (MESSAGE LOST: the client had sent a message that got no final reply)"
		}
		out = append(out, l)
	}
	facts := []string{"uid " + r.UID}
	if r.Helo != "" {
		facts = append(facts, "helo "+r.Helo)
	}
	facts = append(facts, "messages "+messages(r)+" accepted")
	if r.TLS {
		facts = append(facts, "tls "+r.TLSMode)
	}
	if r.Auth != nil {
		facts = append(facts, "auth "+r.Auth.Mechanism+" (credentials not shown)")
	}
	facts = append(facts, "frames "+t.frames(r.FirstFrame, r.LastFrame))
	if r.MissedBytes > 0 {
		facts = append(facts, strconv.FormatInt(r.MissedBytes, 10)+" bytes missed by the capture")
	}
	out = append(out, strings.Join(facts, "; "))
	if e := r.Ending; e != nil {
		for _, ev := range e.Evidence {
			out = append(out, "- "+t.evidence(r, ev))
		}
		if e.RunnerUp != "" {
			out = append(out, "runner-up: "+e.RunnerUp)
		}
		if e.Confirm != "" {
			out = append(out, "would confirm: "+e.Confirm)
		}
		if len(e.Flags) > 0 {
			out = append(out, "flags: "+strings.Join(e.Flags, ", "))
		}
	}
	if a := r.ESA; a != nil {
		l := "esa: "
		if a.Match != "" {
			l += "matched by " + a.Match
		}
		if len(a.MIDs) > 1 {
			l += "; mids " + strings.Join(a.MIDs, ", ")
		}
		if len(a.Ambiguous) > 0 {
			l += "; also fits: " + strings.Join(a.Ambiguous, ", ")
		}
		if a.Note != "" {
			l += "; " + a.Note
		}
		out = append(out, l)
	}
	for i := range out {
		out[i] = Safe(out[i])
	}
	return out
}

// evidence writes one evidence item: frame, time after the session start.
func (t Table) evidence(r *smtpstate.Record, ev smtpstate.Evidence) string {
	var pre []string
	if ev.Frame != 0 {
		pre = append(pre, t.frame(ev.Frame))
	}
	if !ev.TS.IsZero() {
		pre = append(pre, "+"+rel(r, ev.TS.Time))
	}
	if len(pre) == 0 {
		return ev.Text
	}
	return strings.Join(pre, " ") + " " + ev.Text
}

func (t Table) eventLine(r *smtpstate.Record, e Event) string {
	at := "       ." // the Record keeps no time for it: after the line above
	if !e.TS.IsZero() {
		at = padLeft("+"+rel(r, e.TS), 8)
	}
	dir := "C->S"
	if !e.FromClient {
		dir = "S->C"
	}
	fr := ""
	if e.Frame != 0 {
		fr = t.frame(e.Frame) + " "
	}
	ttl := ""
	if e.TTL != 0 && (e.Kind == "syn" || e.Kind == "synack" || e.Kind == "fin" || e.Kind == "rst") {
		ttl = " ttl=" + strconv.Itoa(e.TTL)
	}
	return Safe(at + " " + dir + " " + fr + e.Label + ttl)
}

func padLeft(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return strings.Repeat(" ", n-k) + s
	}
	return s
}

// rel is t after the session's first packet, as seconds with 3 decimals.
func rel(r *smtpstate.Record, t time.Time) string {
	return strconv.FormatFloat(t.Sub(r.TS.Time).Seconds(), 'f', 3, 64) + "s"
}

// wrap cuts s into lines of at most w runes at spaces, the first with
// indent first, the others with indent rest. A word longer than a line is
// kept whole.
func wrap(s string, w int, first, rest string) []string {
	var out []string
	lead := s[:len(s)-len(strings.TrimLeft(s, " "))] // alignment the caller made
	cur := first + lead
	empty := true
	for _, word := range strings.Fields(s) {
		if !empty && utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(word) > w {
			out = append(out, cur)
			cur, empty = rest, true
		}
		if !empty {
			cur += " "
		}
		cur += word
		empty = false
	}
	if !empty || len(out) == 0 {
		out = append(out, cur)
	}
	return out
}
