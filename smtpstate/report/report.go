package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/ending"
)

// Sort orders records by start time, then uid: the order of every report.
func Sort(rs []*smtpstate.Record) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if !a.TS.Equal(b.TS.Time) {
			return a.TS.Before(b.TS.Time)
		}
		if a.FirstFrame != b.FirstFrame {
			return a.FirstFrame < b.FirstFrame
		}
		return a.UID < b.UID
	})
}

// JSONLines writes one JSON object per record.
func JSONLines(w io.Writer, rs []*smtpstate.Record) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// Text writes the table: one line per session.
func Text(w io.Writer, rs []*smtpstate.Record, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	for _, r := range rs {
		if _, err := io.WriteString(w, Line(r, loc)+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// Line renders one session: start, client → server, helo, messages, the
// verdict with who and confidence, the reason and the key evidence frames.
func Line(r *smtpstate.Record, loc *time.Location) string {
	var b strings.Builder
	b.WriteString(r.TS.In(loc).Format("2006-01-02 15:04:05.000"))
	b.WriteString("  ")
	b.WriteString(hostPort(r.OrigH, r.OrigP))
	b.WriteString(" -> ")
	b.WriteString(hostPort(r.RespH, r.RespP))
	helo := r.Helo
	if helo == "" {
		helo = "-"
	}
	fmt.Fprintf(&b, "  helo=%s  msgs=%s", clip(helo, 40), messages(r))
	if r.TLS {
		b.WriteString("  tls=" + r.TLSMode)
	}
	if r.ESA != nil {
		if r.ESA.ICID != "" {
			b.WriteString("  icid=" + r.ESA.ICID)
		}
		if r.ESA.DCID != "" {
			b.WriteString("  dcid=" + r.ESA.DCID)
		}
		if len(r.ESA.MIDs) > 0 {
			b.WriteString("  mid=" + strings.Join(r.ESA.MIDs, ","))
		}
	}
	if e := r.Ending; e != nil {
		fmt.Fprintf(&b, "  %s (%s, %s)", e.Verdict, e.Who, e.Confidence)
		if _, ok := ending.Lookup(e.Verdict); !ok {
			b.WriteString(" [verdict not in the catalogue]") // a record from another version
		}
		if e.MessageLost {
			b.WriteString(" MESSAGE LOST")
		}
		b.WriteString(": " + e.Reason)
		if ev := keyEvidence(e); ev != "" {
			b.WriteString(" [" + ev + "]")
		}
	}
	return b.String()
}

func hostPort(h string, p uint16) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + strconv.Itoa(int(p))
	}
	return h + ":" + strconv.Itoa(int(p))
}

// messages is "accepted/total" transactions.
func messages(r *smtpstate.Record) string {
	acc := 0
	for _, t := range r.Trans {
		if t.Outcome == "accepted" {
			acc++
		}
	}
	return strconv.Itoa(acc) + "/" + strconv.Itoa(len(r.Trans))
}

func keyEvidence(e *smtpstate.Ending) string {
	var parts []string
	for _, ev := range e.Evidence {
		if ev.Frame == 0 {
			continue
		}
		parts = append(parts, "#"+strconv.FormatUint(ev.Frame, 10)+" "+clip(ev.Text, 60))
		if len(parts) == 3 {
			break
		}
	}
	return strings.Join(parts, "; ")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
