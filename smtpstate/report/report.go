package report

import (
	"bytes"
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
	// The order of the streamed output (reassembly.ByStart): by the frame
	// that opened the session, which unlike its timestamp cannot go back.
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.FirstFrame != b.FirstFrame {
			return a.FirstFrame < b.FirstFrame
		}
		return a.UID < b.UID
	})
}

// AppendJSON appends r as one JSON line, exactly as JSONLines writes it.
func AppendJSON(dst []byte, r *smtpstate.Record) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(r)
	out := buf.Bytes()
	return append(out[:len(dst)], safeJSON(out[len(dst):])...), err
}

// JSONLines writes one JSON object per record.
func JSONLines(w io.Writer, rs []*smtpstate.Record) error {
	var b []byte
	for _, r := range rs {
		var err error
		if b, err = AppendJSON(b[:0], r); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
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
	b.WriteString(r.TS.In(loc).Format("2006-01-02 15:04:05.000Z07:00")) // every time printed says its zone
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
		unsure := "" // another log connection fits as well: esa.ambiguous lists them
		if len(r.ESA.Ambiguous) > 0 {
			unsure = "?"
		}
		if r.ESA.ICID != "" {
			b.WriteString("  icid=" + r.ESA.ICID + unsure)
		}
		if r.ESA.DCID != "" {
			b.WriteString("  dcid=" + r.ESA.DCID + unsure)
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
	return Safe(b.String())
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
