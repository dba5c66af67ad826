package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Markdown writes report.md: pasteable into a support case. Text from the
// capture and the log is printable (Safe) and sits in code spans or code
// blocks, so Markdown never interprets it.
func (c *Case) Markdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# smtpcap case report\n\n## What was analysed\n\n")
	fmt.Fprintf(&b, "- tool: %s\n", code(c.Tool))
	for _, f := range c.Files {
		fmt.Fprintf(&b, "- capture %s: %d bytes, SHA-256 %s\n", code(f.Name), f.Size, code(f.SHA256))
	}
	a, z := c.timeRange()
	if !a.IsZero() {
		fmt.Fprintf(&b, "- time range of the selected sessions: %s to %s\n", a.In(c.loc()).Format("2006-01-02 15:04:05.000 Z07:00"), z.In(c.loc()).Format("2006-01-02 15:04:05.000 Z07:00"))
	}
	fmt.Fprintf(&b, "- session times are in %s; ESA log lines are quoted as the appliance wrote them (%s)\n", zoneName(c.loc(), a), orNone(c.ESAZone, "no ESA log given"))
	fmt.Fprintf(&b, "- capture point (from the TTLs): %s\n", c.capturePoints())
	fmt.Fprintf(&b, "- selection: %s: %d of %d sessions\n", c.Selection, len(c.Sessions), c.Total)
	if c.Redact {
		b.WriteString("- redacted: address local parts are hashed, HELO names, greetings and reply texts dropped\n")
	}
	if c.PcapNote != "" {
		fmt.Fprintf(&b, "- sessions.pcapng: %s\n", c.PcapNote)
	}
	if c.ESA != "" {
		b.WriteString("\n### ESA log matching\n\n```\n" + fence(c.ESA) + "\n```\n")
	}
	b.WriteString("\n## Summary\n\n```\n" + fence(c.Summary) + "\n```\n")
	if len(c.Sessions) > 0 {
		b.WriteString("\n| # | start | client -> server | verdict | who / confidence | ESA |\n|---|---|---|---|---|---|\n")
		for i, r := range c.Sessions {
			s := c.session(r)
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s / %s | %s |\n", i+1, s.Start, code(s.Title), code(s.Verdict), s.Who, s.Confidence, code(esaColumn(r)))
		}
	}
	for i, r := range c.Sessions {
		s := c.session(r)
		fmt.Fprintf(&b, "\n## %d. %s at %s\n\n", i+1, code(s.Title), s.Start)
		lost := ""
		if s.Lost {
			lost = " **A message was lost** (sent, never acknowledged)."
		}
		fmt.Fprintf(&b, "**Verdict: %s** (%s, %s confidence).%s\n\n", code(s.Verdict), s.Who, s.Confidence, lost)
		b.WriteString("Why: " + code(s.Reason) + "\n\n")
		for _, f := range s.Facts {
			b.WriteString("- " + code(f) + "\n")
		}
		if len(s.Evidence) > 0 {
			b.WriteString("\nEvidence (frame, time after the first packet):\n\n```\n")
			for _, e := range s.Evidence {
				b.WriteString(fence(e) + "\n")
			}
			b.WriteString("```\n")
		}
		if len(s.ESALines) > 0 || s.ESANote != "" {
			fmt.Fprintf(&b, "\nESA log (appliance time, %s): %s\n\n```\n", orNone(c.ESAZone, "zone unknown"), code(s.ESANote))
			for _, l := range s.ESALines {
				b.WriteString(fence(l) + "\n")
			}
			b.WriteString("```\n")
		}
		if s.RunnerUp != "" {
			b.WriteString("\nThe next most likely reading: " + code(s.RunnerUp) + "\n")
		}
		if s.Confirm != "" {
			b.WriteString("\nWhat would confirm it: " + code(s.Confirm) + "\n")
		}
		b.WriteString("\n**Next step:** " + code(s.Next) + "\n")
		if s.Filter != "" {
			b.WriteString("\nOpen it in Wireshark (display filter):\n\n```\n" + s.Filter + "\n```\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// code puts printable text in a Markdown code span that it cannot close.
func code(s string) string {
	if s == "" {
		return "-"
	}
	s = strings.ReplaceAll(Safe(s), "\n", " ")
	ticks := "`"
	for strings.Contains(s, ticks) {
		ticks += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return ticks + pad + strings.ReplaceAll(s, "|", `\|`) + pad + ticks
}

// fence keeps text inside a ``` block: a line of backticks cannot end it.
func fence(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(Safe(l), "```", "`\u200b``")
	}
	return strings.Join(lines, "\n")
}

// zoneName names the zone with its offset at the time t.
func zoneName(l *time.Location, t time.Time) string {
	if l == time.UTC {
		return "UTC"
	}
	return l.String() + " (UTC" + t.In(l).Format("-07:00") + ")"
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}
