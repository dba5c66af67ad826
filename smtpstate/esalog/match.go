package esalog

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/ending"
)

// MatchOptions tune Match.
type MatchOptions struct {
	// Zone is the appliance's time zone from --esa-tz; nil means: use the
	// file's header, else infer it.
	Zone *time.Location
	// Tolerance is how far (seconds) a connection's first log line may be
	// from the capture session's start after zone and skew correction.
	Tolerance float64
}

// ZoneInfo says which appliance time zone was used and why.
type ZoneInfo struct {
	Offset  int    // seconds east of UTC
	Source  string // "header", "flag", "inferred", "none"
	Support int    // sessions the offset explains (for inferred, and as a check)
	Of      int    // sessions with a log candidate at all
	// Better is set when another offset explains more sessions than the
	// one given by the header or the flag: the zone or clock is wrong.
	Better     *int
	BetterSupp int
	Skew       float64 // median log-minus-capture seconds after the offset
}

// Result is what Match found.
type Result struct {
	Zone       ZoneInfo
	Matched    int
	Ambiguous  int
	LogOnly    []*Conn             // log connections with no capture session
	CaptOnly   []*smtpstate.Record // capture sessions with no log connection
	ByRecord   map[*smtpstate.Record]*Conn
	Candidates map[*smtpstate.Record][]*Conn
}

// Match ties records to log connections and fills Record.ESA.
func Match(rs []*smtpstate.Record, lg *Log, opt MatchOptions) *Result {
	if opt.Tolerance <= 0 {
		opt.Tolerance = 2
	}
	conns := Build(lg.Lines)
	res := &Result{ByRecord: map[*smtpstate.Record]*Conn{}, Candidates: map[*smtpstate.Record][]*Conn{}}
	res.Zone = zone(rs, conns, lg, opt)
	off := float64(res.Zone.Offset) + res.Zone.Skew
	// Every plausible pair, scored; best pairs first, each side used once.
	type pair struct {
		r     *smtpstate.Record
		c     *Conn
		score float64
		how   string
	}
	var pairs []pair
	for _, r := range rs {
		for _, c := range conns {
			if s, how, ok := score(r, c, off, opt.Tolerance); ok {
				pairs = append(pairs, pair{r, c, s, how})
				res.Candidates[r] = append(res.Candidates[r], c)
			}
		}
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].score > pairs[j].score })
	used := map[*Conn]bool{}
	for _, p := range pairs {
		if _, done := res.ByRecord[p.r]; done || used[p.c] {
			continue
		}
		// Ambiguous: another free candidate scores the same.
		var rivals []string
		for _, q := range pairs {
			if q.r == p.r && q.c != p.c && !used[q.c] && q.score >= p.score-0.5 {
				rivals = append(rivals, connName(q.c))
			}
		}
		res.ByRecord[p.r], used[p.c] = p.c, true
		p.c.matched = true
		refs := refsFor(p.c, p.how)
		if len(rivals) > 0 {
			refs.Ambiguous = rivals
			refs.Note = "ambiguous: " + strconv.Itoa(len(rivals)+1) + " log connections fit equally; the one shown is the closest in time"
			res.Ambiguous++
		}
		consistency(p.r, p.c, refs)
		p.r.ESA = refs
		res.Matched++
	}
	for _, r := range rs {
		if _, ok := res.ByRecord[r]; !ok {
			res.CaptOnly = append(res.CaptOnly, r)
			r.ESA = &smtpstate.ESARefs{Note: "no log connection matches (address, time)"}
		}
	}
	for _, c := range conns {
		if !c.matched {
			res.LogOnly = append(res.LogOnly, c)
		}
	}
	return res
}

func connName(c *Conn) string {
	if c.Outbound {
		return "DCID " + strconv.FormatInt(c.DCID, 10)
	}
	return "ICID " + strconv.FormatInt(c.ICID, 10)
}

// lateDNS is how much later than the TCP handshake a connection's first log
// line may be written (reverse-DNS lookup at connect, FORMAT.md §4.1).
const lateDNS = 8

// score rates how well a log connection fits a capture session, or says
// it cannot be the same connection.
func score(r *smtpstate.Record, c *Conn, off, tol float64) (float64, string, bool) {
	if c.Outbound {
		if r.RespH != c.Addr || (c.Iface != "" && r.OrigH != c.Iface) || (c.Port != 0 && int(r.RespP) != c.Port) {
			return 0, "", false
		}
	} else if r.OrigH != c.Addr || (c.Iface != "" && r.RespH != c.Iface) {
		return 0, "", false
	}
	// An exact key: the MID from the appliance's end-of-data reply.
	for _, t := range r.Trans {
		if t.MID == "" {
			continue
		}
		for _, m := range c.MIDs {
			if strconv.FormatInt(m.MID, 10) == t.MID {
				return 1000, "mid", true
			}
		}
	}
	dt := c.Start.Sub(r.TS.Time).Seconds() - off
	// Log lines are truncated to the second: the connection line may read
	// up to 1 s earlier than the capture. It may also come late: the
	// appliance logs the connection after its reverse-DNS lookup.
	if dt < -tol-1 || dt > tol+lateDNS {
		return 0, "", false
	}
	s := 100 - math.Abs(dt+0.5)*10
	if len(c.MIDs) == len(r.Trans) {
		s += 5
	}
	for i, t := range r.Trans {
		if i < len(c.MIDs) && c.MIDs[i].From == t.MailFrom && t.MailFrom != "" {
			s += 3
		}
	}
	if !r.EndTS.IsZero() {
		de := c.End.Sub(r.EndTS.Time).Seconds() - off
		if de > -tol-1 && de < tol+1 {
			s += 2
		}
	}
	return s, "address+time", true
}

func refsFor(c *Conn, how string) *smtpstate.ESARefs {
	refs := &smtpstate.ESARefs{Match: how}
	if c.Outbound {
		refs.DCID = strconv.FormatInt(c.DCID, 10)
	} else {
		refs.ICID = strconv.FormatInt(c.ICID, 10)
	}
	for _, m := range c.MIDs {
		refs.MIDs = append(refs.MIDs, strconv.FormatInt(m.MID, 10))
	}
	for _, l := range c.Lines {
		refs.Lines = append(refs.Lines, l.Local.Format("Mon Jan _2 15:04:05 2006")+" "+l.Level+": "+l.Msg)
	}
	return refs
}

// consistency compares the log's story with the capture's verdict.
func consistency(r *smtpstate.Record, c *Conn, refs *smtpstate.ESARefs) {
	if r.Ending == nil {
		return
	}
	v := r.Ending.Verdict
	story := c.Story()
	fam := ending.FamilyOf(v)
	quit := fam == ending.FamilyQuit
	ok, why := true, ""
	switch story {
	case "aborted_by_sender":
		ok = v == string(ending.QuitMidTransaction)
		why = "the log says the sender aborted (QUIT inside a transaction) but the capture shows " + v
	case "receiving_aborted", "lost":
		ok = !quit
		why = "the log says the connection was lost (no QUIT) but the capture shows " + v
	case "close":
		ok = quit || fam == ending.FamilyServer || fam == ending.FamilyTLS || fam == ending.FamilyHandshake
		why = "the log says an orderly close but the capture shows " + v
	}
	if fam == ending.FamilyOpen {
		return
	}
	refs.Consistent = &ok
	if !ok {
		refs.Note = strings.TrimPrefix(refs.Note+"; ", "; ") + why
	}
	if len(c.MIDs) != len(r.Trans) && !c.Outbound {
		refs.Note = strings.TrimPrefix(refs.Note+"; ", "; ") + fmt.Sprintf("the log has %d MIDs, the capture %d transactions", len(c.MIDs), len(r.Trans))
	}
}
