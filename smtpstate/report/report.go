package report

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
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

// Line renders one session as the default table line (table.go).
func Line(r *smtpstate.Record, loc *time.Location) string {
	return Table{Loc: loc}.Session(r)
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
