package esalog

import (
	"math"
	"sort"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// zone decides the appliance's UTC offset: the flag, else the file header,
// else the offset (in quarter hours) that explains most sessions; it always
// checks the choice against the data and estimates the clock skew.
func zone(rs []*smtpstate.Record, conns []*Conn, lg *Log, opt MatchOptions) ZoneInfo {
	// Votes: for each session and each log connection from the same
	// client, the quarter-hour offset that would align them.
	votes := map[int]int{}
	resid := map[int][]float64{}
	with := 0
	for _, r := range rs {
		nearest := map[int]float64{} // offsets this session votes for
		has := false
		for _, c := range conns {
			if c.Outbound || c.Addr != r.OrigH || (c.Iface != "" && c.Iface != r.RespH) {
				continue
			}
			has = true
			d := c.Start.Sub(r.TS.Time).Seconds()
			q := int(math.Round(d/900)) * 900
			if math.Abs(d-float64(q)) > 120 || q < -14*3600 || q > 14*3600 {
				continue
			}
			nearest[q] = 0
			resid[q] = append(resid[q], d-float64(q))
		}
		for q := range nearest {
			votes[q]++
		}
		if has {
			with++
		}
	}
	best, bestN := 0, -1
	for q, n := range votes {
		if n > bestN || n == bestN && abs(q) < abs(best) {
			best, bestN = q, n
		}
	}
	zi := ZoneInfo{Source: "none", Of: with}
	given, source := 0, ""
	switch {
	case opt.Zone != nil && len(rs) > 0:
		_, given = rs[0].TS.In(opt.Zone).Zone()
		source = "flag"
	case opt.Zone != nil:
		_, given = time.Now().In(opt.Zone).Zone()
		source = "flag"
	case len(lg.Offsets) > 0:
		for _, o := range lg.Offsets {
			given = o
		}
		source = "header"
	}
	if source != "" {
		zi.Offset, zi.Source, zi.Support = given, source, votes[given]
		if bestN > votes[given] {
			b := best
			zi.Better, zi.BetterSupp = &b, bestN
		}
	} else if bestN > 0 {
		zi.Offset, zi.Source, zi.Support = best, "inferred", bestN
	}
	zi.Skew = skew(resid[zi.Offset])
	return zi
}

// skew finds the clock difference every session shares: the densest
// one-second bin of all pair residuals (wrong pairs scatter, the right
// ones pile up), refined by the median of the residuals near it.
func skew(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	bins := map[int]int{}
	for _, x := range v {
		bins[int(math.Floor(x))]++
	}
	best, bestN := 0, -1
	for b, n := range bins {
		if n > bestN || n == bestN && math.Abs(float64(b)+0.5) < math.Abs(float64(best)+0.5) {
			best, bestN = b, n
		}
	}
	var near []float64
	for _, x := range v {
		if math.Abs(x-(float64(best)+0.5)) <= 1.5 {
			near = append(near, x)
		}
	}
	return median(near)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// median of the residuals, rounded to 0.1 s; the log truncates to the
// second, so a correct clock shows about -0.5 s.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if math.Abs(m+0.5) < 1 {
		return 0 // within the log's one-second resolution: no skew
	}
	return math.Round(m*10) / 10
}
