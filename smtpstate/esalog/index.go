package esalog

import (
	"sort"
	"strconv"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// connIndex finds a session's candidate log connections without looking
// at every connection: by exact key (MID, Message-ID) and by time window,
// so matching stays O(sessions × candidates) on big logs.
type connIndex struct {
	byMID   map[string][]int
	byMsgID map[string][]int
	byTime  []int     // positions in the ICID-ordered list, by UTC start
	utc     []float64 // their UTC start, seconds (before skew)
}

func newConnIndex(order []*Conn, zi ZoneInfo) *connIndex {
	ix := &connIndex{byMID: map[string][]int{}, byMsgID: map[string][]int{}}
	for ci, c := range order {
		for _, m := range c.MIDs {
			if !c.Outbound {
				k := strconv.FormatInt(m.MID, 10)
				ix.byMID[k] = append(ix.byMID[k], ci)
			}
			if m.MsgID != "" {
				ix.byMsgID[m.MsgID] = append(ix.byMsgID[m.MsgID], ci)
			}
		}
		ix.byTime = append(ix.byTime, ci)
	}
	utc := make([]float64, len(order))
	for ci, c := range order {
		off := zi.Offset
		if o, ok := zi.Offsets[c.File]; ok {
			off = o
		}
		utc[ci] = float64(c.Start.Unix() - int64(off))
	}
	sort.SliceStable(ix.byTime, func(i, j int) bool { return utc[ix.byTime[i]] < utc[ix.byTime[j]] })
	for _, ci := range ix.byTime {
		ix.utc = append(ix.utc, utc[ci])
	}
	return ix
}

// exact lists the connections holding one of r's MIDs or Message-IDs.
func (ix *connIndex) exact(r *smtpstate.Record) []int {
	var out []int
	seen := map[int]bool{}
	add := func(cs []int) {
		for _, ci := range cs {
			if !seen[ci] {
				seen[ci] = true
				out = append(out, ci)
			}
		}
	}
	for _, t := range r.Trans {
		if t.MID != "" {
			add(ix.byMID[t.MID])
		}
		if t.MsgID != "" {
			add(ix.byMsgID[normMsgID(t.MsgID)])
		}
	}
	return out
}

// candidates lists the exact ones and every connection whose first line
// falls in the time window around r's start (lo, hi seconds, skew applied)
// that no earlier window's session has taken.
//
// until (UTC seconds, skew applied; 0: none) leaves out the connections
// the appliance accepted after the newest session seen so far: while the
// sessions that follow are not here, those belong to them.
func (ix *connIndex) candidates(r *smtpstate.Record, skew, lo, hi, until float64, order []*Conn) []int {
	var out []int
	seen := map[int]bool{}
	for _, ci := range ix.exact(r) {
		seen[ci] = true
		if !order[ci].matched {
			out = append(out, ci)
		}
	}
	ts := float64(r.TS.UnixNano())/1e9 + skew
	i := sort.SearchFloat64s(ix.utc, ts+lo-1)
	end := ts + hi + 1
	if until != 0 {
		end = min(end, until)
	}
	for ; i < len(ix.utc) && ix.utc[i] <= end; i++ {
		if ci := ix.byTime[i]; !seen[ci] && !order[ci].matched {
			out = append(out, ci)
		}
	}
	sort.Ints(out)
	return out
}
