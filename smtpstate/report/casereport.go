package report

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// Case is everything a case report shows: what was analysed and the
// selected sessions. It is filled by the command; the renderers
// (casereport_md.go, casereport_html.go) are pure functions of it.
type Case struct {
	Tool      string // tool version
	Files     []CaseFile
	Loc       *time.Location // zone of the session times
	Selection string         // the selection in words ("abnormal endings")
	// ESA is the matching summary (zone, skew, figures), "" without logs.
	ESA     string
	ESAZone string // the appliance's zone, for the quoted log lines
	// Summary is the summary table over every session analysed.
	Summary  string
	Total    int // sessions analysed
	Sessions []*smtpstate.Record
	// Packets are the arrows of each session (uid → events) collected from
	// the capture; a session without them is drawn from the Record alone.
	Packets map[string][]Event
	// Frame names a frame ("b.pcap:34" when several files were read).
	Frame  func(uint64) string
	Redact bool
	// PcapNote says what sessions.pcapng holds.
	PcapNote string
}

// CaseFile is one capture file read.
type CaseFile struct {
	Name   string
	Size   int64
	SHA256 string
}

func (c *Case) frame(n uint64) string {
	return Table{Frame: c.Frame}.frame(n)
}

func (c *Case) loc() *time.Location {
	if c.Loc == nil {
		return time.UTC
	}
	return c.Loc
}

// TimeRange is the first and last packet time over the selected sessions.
func (c *Case) timeRange() (time.Time, time.Time) {
	var a, b time.Time
	for _, r := range c.Sessions {
		if a.IsZero() || r.TS.Before(a) {
			a = r.TS.Time
		}
		if r.EndTS.After(b) {
			b = r.EndTS.Time
		}
	}
	return a, b
}

// capturePoints are the capture points the sessions' TTLs show.
func (c *Case) capturePoints() string {
	n := map[string]int{}
	for _, r := range c.Sessions {
		if r.Ending != nil && r.Ending.CapturePoint != "" {
			n[r.Ending.CapturePoint]++
		}
	}
	var out []string
	for k, v := range n {
		out = append(out, fmt.Sprintf("%s (%d sessions)", strings.ReplaceAll(k, "_", " "), v))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "unknown"
	}
	return strings.Join(out, ", ")
}

// caseSession is one session as both renderers show it. Every string is
// attacker-controlled data made printable with Safe (and redacted); the
// HTML renderer escapes it again, in context.
type caseSession struct {
	UID, Title, Start, Verdict, Who, Confidence, Reason string
	Lost                                                bool
	Facts                                               []string
	Evidence                                            []string
	ESALines                                            []string
	ESANote                                             string
	Confirm, RunnerUp, Next, Filter                     string
	Events                                              []Event
	Record                                              *smtpstate.Record
}

func (c *Case) session(r *smtpstate.Record) caseSession {
	s := caseSession{UID: Safe(r.UID), Record: r}
	s.Title = Safe(hostPort(r.OrigH, r.OrigP) + " -> " + hostPort(r.RespH, r.RespP))
	s.Start = r.TS.In(c.loc()).Format("2006-01-02 15:04:05.000 Z07:00")
	if e := r.Ending; e != nil {
		s.Verdict, s.Who, s.Confidence = Safe(fmt.Sprint(e.Verdict)), Safe(e.Who), Safe(e.Confidence)
		s.Reason, s.Lost = Safe(redactLine(e.Reason, r, c.Redact)), e.MessageLost
		s.Confirm, s.RunnerUp = Safe(e.Confirm), Safe(e.RunnerUp)
		t := Table{Loc: c.loc(), Frame: c.Frame}
		for _, ev := range e.Evidence {
			ev.Text = redactLine(ev.Text, r, c.Redact)
			l := t.evidence(r, ev)
			if !ev.TS.IsZero() {
				l += " (" + ev.TS.In(c.loc()).Format("15:04:05.000 Z07:00") + ")"
			}
			s.Evidence = append(s.Evidence, Safe(l))
		}
	}
	s.Facts = c.facts(r)
	if a := r.ESA; a != nil {
		for _, l := range a.Lines {
			s.ESALines = append(s.ESALines, Safe(redactLine(l, r, c.Redact)))
		}
		var n []string
		if a.ICID != "" {
			n = append(n, "ICID "+a.ICID)
		}
		if a.DCID != "" {
			n = append(n, "DCID "+a.DCID)
		}
		if len(a.MIDs) > 0 {
			n = append(n, "MID "+strings.Join(a.MIDs, ", "))
		}
		if a.Match != "" {
			n = append(n, "matched by "+a.Match)
		}
		if len(a.Ambiguous) > 0 {
			n = append(n, "AMBIGUOUS: also fits "+strings.Join(a.Ambiguous, ", "))
		}
		if a.Note != "" {
			n = append(n, a.Note)
		}
		s.ESANote = Safe(strings.Join(n, "; "))
	}
	s.Next = Safe(nextStep(r))
	s.Filter = tsharkFilter(r)
	if ev, ok := c.Packets[r.UID]; ok && len(ev) > 0 {
		s.Events = ev
	} else {
		s.Events = Events(r, c.Redact)
	}
	for i := range s.Events {
		s.Events[i].Label = Safe(s.Events[i].Label)
	}
	return s
}

func (c *Case) facts(r *smtpstate.Record) []string {
	f := []string{"uid " + r.UID, "frames " + Table{Frame: c.Frame}.frames(r.FirstFrame, r.LastFrame),
		"duration " + strconv.FormatFloat(r.Duration, 'f', 3, 64) + " s", "messages " + messages(r) + " accepted"}
	if r.Helo != "" && !c.Redact {
		f = append(f, "HELO "+r.Helo)
	}
	if r.TLS {
		f = append(f, "TLS ("+r.TLSMode+")")
	}
	if r.Auth != nil {
		f = append(f, "AUTH "+r.Auth.Mechanism+" (credentials never shown)")
	}
	for _, t := range r.Trans {
		l := "message from <" + RedactAddr(t.MailFrom, c.Redact) + "> to"
		for _, rc := range t.Rcpts {
			l += " <" + RedactAddr(rc.Addr, c.Redact) + ">"
		}
		if len(t.Rcpts) == 0 {
			l += " no recipient yet"
		}
		l += ": " + t.Outcome
		if t.FinalReply != "" {
			l += " (" + redactReply(t.FinalReply, c.Redact) + ")"
		}
		f = append(f, l)
	}
	if r.Ending != nil && r.Ending.CapturePoint != "" {
		f = append(f, "capture point "+strings.ReplaceAll(r.Ending.CapturePoint, "_", " "))
	}
	if r.MissedBytes > 0 {
		f = append(f, strconv.FormatInt(r.MissedBytes, 10)+" bytes missed by the capture")
	}
	for i := range f {
		f[i] = Safe(f[i])
	}
	return f
}

// redactLine hides, in a quoted log line, what --redact hides elsewhere:
// the addresses' local parts and the HELO name.
func redactLine(l string, r *smtpstate.Record, redact bool) string {
	if !redact {
		return l
	}
	for _, t := range r.Trans {
		l = replaceAddr(l, t.MailFrom)
		for _, rc := range t.Rcpts {
			l = replaceAddr(l, rc.Addr)
		}
	}
	if r.Helo != "" {
		l = replaceHelo(l, r.Helo)
	}
	if r.Greeting != "" {
		l = strings.ReplaceAll(l, r.Greeting, "[greeting redacted]")
	}
	return l
}

// replaceHelo hides the HELO name except where it is an address's domain
// (alice@client.example keeps its domain when the HELO is client.example).
func replaceHelo(l, helo string) string {
	var b strings.Builder
	for {
		i := strings.Index(l, helo)
		if i < 0 {
			b.WriteString(l)
			return b.String()
		}
		b.WriteString(l[:i])
		if i > 0 && l[i-1] == '@' {
			b.WriteString(helo)
		} else {
			b.WriteString("[helo redacted]")
		}
		l = l[i+len(helo):]
	}
}

func replaceAddr(l, a string) string {
	if a == "" {
		return l
	}
	return strings.ReplaceAll(l, a, RedactAddr(a, true))
}

// nextStep is what the reader should do next, in plain words.
func nextStep(r *smtpstate.Record) string {
	e := r.Ending
	if e == nil {
		return "no verdict: check that the capture holds both directions of this connection"
	}
	idle := ""
	if fc := r.FirstClose; fc != nil && fc.AfterIdle >= 1 {
		idle = fmt.Sprintf(": the connection was closed %s s after the last packet", strconv.FormatFloat(fc.AfterIdle, 'f', 1, 64))
	} else if r.MaxIdle >= 1 {
		idle = fmt.Sprintf(": the longest silence was %s s", strconv.FormatFloat(r.MaxIdle, 'f', 1, 64))
	}
	v := fmt.Sprint(e.Verdict)
	switch {
	case strings.Contains(v, "idle"):
		return "check the firewall's idle timeout for TCP/25 between these hosts" + idle + "; raise it above the server's timers or enable keepalives"
	case e.Who == "middlebox":
		return "ask the firewall/IPS team for their log of this 4-tuple at this time (reset or drop reason)" + idle
	case strings.HasPrefix(v, "quit"):
		return "nothing to fix in the network: the session ended as SMTP intends"
	case e.Who == "server":
		return "read the server's (ESA) log for this ICID around the end time: it says why it closed" + idle
	case e.Who == "client":
		return "look at the sending client's log for this connection: it ended the session" + idle
	}
	return "capture at a second point (client or server side) to tell who ended it" + idle
}

// tsharkFilter opens this session in Wireshark or tshark -Y.
func tsharkFilter(r *smtpstate.Record) string {
	ipf := "ip.addr"
	if ip := net.ParseIP(r.OrigH); ip != nil && ip.To4() == nil {
		ipf = "ipv6.addr"
	}
	if net.ParseIP(r.OrigH) == nil || net.ParseIP(r.RespH) == nil {
		return ""
	}
	return fmt.Sprintf("%s==%s && tcp.port==%d && %s==%s && tcp.port==%d", ipf, r.OrigH, r.OrigP, ipf, r.RespH, r.RespP)
}

// Redacted returns a copy of r for --redact: address local parts hashed,
// HELO name, greeting and reply texts dropped, also where the evidence and
// the quoted log lines name them. r is not changed.
func Redacted(r *smtpstate.Record) *smtpstate.Record {
	c := *r
	fix := func(s string) string { return redactLine(s, r, true) }
	c.Helo, c.Greeting = "", ""
	c.MailFrom = RedactAddr(r.MailFrom, true)
	c.RcptTo = nil
	for _, a := range r.RcptTo {
		c.RcptTo = append(c.RcptTo, RedactAddr(a, true))
	}
	c.LastReply = redactReply(r.LastReply, true)
	if r.LastReplyAt != nil {
		x := *r.LastReplyAt
		x.Reply = redactReply(x.Reply, true)
		c.LastReplyAt = &x
	}
	if r.Quit != nil {
		x := *r.Quit
		x.Reply = redactReply(x.Reply, true)
		c.Quit = &x
	}
	c.Unsolicited = nil
	for _, u := range r.Unsolicited {
		u.Reply = redactReply(u.Reply, true)
		c.Unsolicited = append(c.Unsolicited, u)
	}
	c.Trans = nil
	for _, t := range r.Trans {
		t.MailFrom = RedactAddr(t.MailFrom, true)
		t.MailReply, t.DataReply, t.FinalReply = redactReply(t.MailReply, true), redactReply(t.DataReply, true), redactReply(t.FinalReply, true)
		var rs []smtpstate.Rcpt
		for _, rc := range t.Rcpts {
			rs = append(rs, smtpstate.Rcpt{Addr: RedactAddr(rc.Addr, true), Reply: redactReply(rc.Reply, true)})
		}
		t.Rcpts = rs
		c.Trans = append(c.Trans, t)
	}
	if r.Ending != nil {
		e := *r.Ending
		e.Reason = fix(e.Reason)
		e.Evidence = nil
		for _, ev := range r.Ending.Evidence {
			ev.Text = fix(ev.Text)
			e.Evidence = append(e.Evidence, ev)
		}
		c.Ending = &e
	}
	if r.ESA != nil {
		a := *r.ESA
		a.Lines = nil
		for _, l := range r.ESA.Lines {
			a.Lines = append(a.Lines, fix(l))
		}
		c.ESA = &a
	}
	return &c
}
