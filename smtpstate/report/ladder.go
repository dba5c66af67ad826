package report

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// A ladder is the SVG sequence diagram of one session: a column per party
// (client, server, and a middlebox when one is suspected), an arrow per
// event, times after the SYN on the left, frames on the right. Rows are
// evenly spaced; a silence longer than gapMark is drawn as a marked gap.
// The template (casereport_html.go) writes it: this file only computes
// numbers and carries printable text, never markup.
type ladder struct {
	W, H   int
	Cols   []ladderCol
	Rows   []ladderRow
	Clip   int // events not drawn (beyond maxArrows)
	Legend string
}

type ladderCol struct {
	X          int
	Name, Addr string
}

type ladderRow struct {
	Y, X1, X2, TX int
	Label, Full   string
	Time, Frame   string
	Class         string // arrow kind, " deciding" when the verdict rests on it
	Gap           bool
}

const (
	maxArrows = 300
	gapMark   = time.Second
	rowH      = 24
	labelMax  = 56
)

func (c *Case) ladder(r *smtpstate.Record, evs []Event) ladder {
	mbox := r.Ending != nil && r.Ending.Who == "middlebox"
	l := ladder{W: 860}
	cx, sx, mx := 150, 710, 430
	l.Cols = []ladderCol{{X: cx, Name: "client", Addr: Safe(r.OrigH)}}
	if mbox {
		l.Cols = append(l.Cols, ladderCol{X: mx, Name: "middlebox?", Addr: "suspected"})
	}
	l.Cols = append(l.Cols, ladderCol{X: sx, Name: "server", Addr: Safe(r.RespH)})
	t0 := r.TS.Time
	if !r.Client.FirstTS.IsZero() && r.Client.SYNFrame != 0 {
		t0 = r.Client.FirstTS.Time
	}
	y := 70
	var prev time.Time
	for i, e := range evs {
		if i == maxArrows {
			l.Clip = len(evs) - i
			break
		}
		if !e.TS.IsZero() && !prev.IsZero() && e.TS.Sub(prev) >= gapMark {
			l.Rows = append(l.Rows, ladderRow{Y: y, Gap: true, Label: strconv.FormatFloat(e.TS.Sub(prev).Seconds(), 'f', 1, 64) + " s without packets"})
			y += rowH
		}
		if !e.TS.IsZero() {
			prev = e.TS
		}
		x1, x2 := cx, sx
		if !e.FromClient {
			x1, x2 = sx, cx
		}
		if mbox && e.Deciding && e.Kind == "rst" {
			x1 = mx // the reset that did not come from the endpoint whose address it bears
		}
		row := ladderRow{Y: y, X1: x1, X2: x2, TX: (x1 + x2) / 2, Class: e.Kind}
		if e.Deciding {
			row.Class += " deciding"
		}
		lab := e.Label
		if e.TTL != 0 && (e.Deciding || e.Kind == "syn" || e.Kind == "synack" || e.Kind == "fin" || e.Kind == "rst") {
			lab += " ttl " + strconv.Itoa(e.TTL)
		}
		row.Full = Safe(lab)
		row.Label = clip(row.Full, labelMax)
		if !e.TS.IsZero() {
			row.Time = "+" + strconv.FormatFloat(e.TS.Sub(t0).Seconds(), 'f', 3, 64) + " s"
		}
		if e.Frame != 0 {
			row.Frame = c.frame(e.Frame)
			if utf8.RuneCountInString(row.Frame) > 22 {
				row.Frame = clipMiddle(row.Frame, utf8.RuneCountInString(row.Frame)-22)
			}
		}
		l.Rows = append(l.Rows, row)
		y += rowH
	}
	l.H = y + 10
	return l
}
