package esalog

import (
	"math"
	"sort"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// maxResiduals bounds the residuals kept per file and offset for the skew
// estimate: enough for the densest bin to stand out, bounded on big logs.
const maxResiduals = 1 << 16

// FileZone is the UTC offset used for one log file and why.
type FileZone struct {
	File   string
	Offset int
	Source string // "header", "flag", "inferred", "none"
	// Better is another offset that explains more of this file's sessions.
	Better     *int
	BetterSupp int
	Support    int
}

// zone decides each file's UTC offset: its own "Time offset" header, else
// the flag, else the offset (in quarter hours) that explains most sessions.
// Files keep their own offsets (a DST change between rolled files, two
// appliances). Every choice is checked against the data, and the clock
// skew all files share is estimated.
//
// byAddr is indexByAddr(conns), built once by the caller.
func zone(rs []*smtpstate.Record, conns []*Conn, byAddr map[string]*addrConns, lg *Log, opt MatchOptions) ZoneInfo {
	// Votes per file: for each session and each log connection of that
	// file from the same client, the quarter-hour offset aligning them.
	votes := map[string]map[int]int{}
	resid := map[string]map[int][]float64{}
	all := map[int]int{}
	with := 0
	for _, r := range rs {
		seen := map[string]map[int]bool{}
		has := false
		ts := float64(r.TS.UnixNano()) / 1e9
		a := byAddr[r.OrigH]
		if a == nil {
			a = &addrConns{}
		}
		for _, i := range a.byStart {
			if c := conns[i]; c.Iface == "" || c.Iface == r.RespH {
				has = true
				break
			}
		}
		// Only connections within 120 s of a quarter-hour offset of the
		// SYN vote: look those up instead of every connection.
		for q := -14 * 3600; q <= 14*3600; q += 900 {
			lo := sort.SearchFloat64s(a.start, ts+float64(q)-120)
			for j := lo; j < len(a.start) && a.start[j] <= ts+float64(q)+120; j++ {
				c := conns[a.byStart[j]]
				if c.Iface != "" && c.Iface != r.RespH {
					continue
				}
				d := a.start[j] - ts
				if math.Abs(d-float64(q)) > 120 {
					continue
				}
				if seen[c.File] == nil {
					seen[c.File] = map[int]bool{}
				}
				seen[c.File][q] = true
				if resid[c.File] == nil {
					resid[c.File] = map[int][]float64{}
				}
				if len(resid[c.File][q]) < maxResiduals {
					resid[c.File][q] = append(resid[c.File][q], d-float64(q))
				}
			}
		}
		qs := map[int]bool{}
		for f, m := range seen {
			if votes[f] == nil {
				votes[f] = map[int]int{}
			}
			for q := range m {
				votes[f][q]++
				qs[q] = true
			}
		}
		for q := range qs {
			all[q]++
		}
		if has {
			with++
		}
	}
	files := append([]string(nil), lg.Files...)
	for _, c := range conns {
		if !contains(files, c.File) {
			files = append(files, c.File)
		}
	}
	overall, _ := bestVote(all)
	zi := ZoneInfo{Source: "none", Of: with, Offsets: map[string]int{}}
	var rv []float64
	for i, f := range files {
		fz := fileZone(f, votes[f], lg, opt, rs, overall)
		zi.Offsets[f] = fz.Offset
		rv = append(rv, resid[f][fz.Offset]...)
		if i == 0 {
			zi.Offset, zi.Source, zi.Support = fz.Offset, fz.Source, fz.Support
			zi.Better, zi.BetterSupp = fz.Better, fz.BetterSupp
		} else {
			zi.Support += fz.Support
			if zi.Better == nil && fz.Better != nil {
				zi.Better, zi.BetterSupp = fz.Better, fz.BetterSupp
			}
		}
		zi.Files = append(zi.Files, fz)
	}
	if len(files) == 0 {
		if b, n := bestVote(all); n > 0 {
			zi.Offset, zi.Source, zi.Support = b, "inferred", n
		}
	}
	zi.Skew = skew(rv)
	return zi
}

// addrConns are one client address's inbound log connections by start
// (appliance-local clock read as UTC, seconds).
type addrConns struct {
	byStart []int
	start   []float64
}

func indexByAddr(conns []*Conn) map[string]*addrConns {
	out := map[string]*addrConns{}
	for i, c := range conns {
		if c.Outbound {
			continue
		}
		a := out[c.Addr]
		if a == nil {
			a = &addrConns{}
			out[c.Addr] = a
		}
		a.byStart = append(a.byStart, i)
	}
	for _, a := range out {
		sort.SliceStable(a.byStart, func(i, j int) bool { return conns[a.byStart[i]].Start.Before(conns[a.byStart[j]].Start) })
		for _, i := range a.byStart {
			a.start = append(a.start, float64(conns[i].Start.UnixNano())/1e9)
		}
	}
	return out
}

func fileZone(f string, votes map[int]int, lg *Log, opt MatchOptions, rs []*smtpstate.Record, overall int) FileZone {
	fz := FileZone{File: f, Source: "none"}
	best, bestN := bestVote(votes)
	given, source := 0, ""
	switch off, ok := lg.Offsets[f]; {
	case ok:
		given, source = off, "header"
	case opt.Zone != nil && len(rs) > 0:
		_, given = rs[0].TS.In(opt.Zone).Zone()
		source = "flag"
	case opt.Zone != nil:
		_, given = time.Now().In(opt.Zone).Zone()
		source = "flag"
	}
	switch {
	case source != "":
		fz.Offset, fz.Source, fz.Support = given, source, votes[given]
		if bestN > votes[given] {
			b := best
			fz.Better, fz.BetterSupp = &b, bestN
		}
	case bestN > 0:
		fz.Offset, fz.Source, fz.Support = best, "inferred", bestN
	default:
		fz.Offset, fz.Source = overall, "inferred"
	}
	return fz
}

func bestVote(votes map[int]int) (int, int) {
	best, bestN := 0, 0
	for q, n := range votes {
		if n > bestN || n == bestN && (abs(q) < abs(best) || abs(q) == abs(best) && q < best) {
			best, bestN = q, n
		}
	}
	return best, bestN
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
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
	// Ties go to the bin a correct clock fills (-1: the log truncates the
	// second), then to the nearer one, then to the earlier: deterministic.
	best, bestN := 0, -1
	for b, n := range bins {
		db, dbest := abs(b+1), abs(best+1)
		if n > bestN || n == bestN && (db < dbest || db == dbest && b < best) {
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
