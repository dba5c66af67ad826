package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// normalEndings are the verdicts of sessions that ended as SMTP intends:
// with QUIT and its 221. Everything else is abnormal (--abnormal).
var normalEndings = map[string]bool{
	"quit_after_message": true, "quit_after_rejection": true, "quit_no_transaction": true, "quit_then_rst": true,
}

// Abnormal reports whether a record did not end with a normal QUIT.
func Abnormal(r *smtpstate.Record) bool {
	return r.Ending == nil || !normalEndings[r.Ending.Verdict]
}

// Fact is what the summary needs of one record; it is taken on the worker
// that finished the record, so that the record itself need not be kept.
type Fact struct {
	Verdict  string
	Client   string
	Abnormal bool
	Accepted int
	Lost     bool
	Missed   int64
	TS, End  time.Time
}

// FactOf takes a record's summary facts.
func FactOf(r *smtpstate.Record) Fact {
	f := Fact{Client: r.OrigH, Abnormal: Abnormal(r), Missed: r.MissedBytes, TS: r.TS.Time, End: r.EndTS.Time}
	if r.Ending != nil {
		f.Verdict, f.Lost = r.Ending.Verdict, r.Ending.MessageLost
	}
	for _, t := range r.Trans {
		if t.Outcome == "accepted" {
			f.Accepted++
		}
	}
	return f
}

// Summary is the triage view of many sessions: how they ended, who ended
// abnormally, what was lost. Add facts in output order; Write is pure.
type Summary struct {
	n, abnormal, accepted, lost, lossy int
	missed                             int64
	first, last                        time.Time
	verdicts                           map[string]int
	byClient                           map[string]map[string]int
}

// Add counts one session.
func (s *Summary) Add(f Fact) {
	if s.verdicts == nil {
		s.verdicts, s.byClient = map[string]int{}, map[string]map[string]int{}
	}
	s.n++
	s.verdicts[f.Verdict]++
	s.accepted += f.Accepted
	if f.Lost {
		s.lost++
	}
	if f.Missed > 0 {
		s.lossy++
		s.missed += f.Missed
	}
	if !f.TS.IsZero() && (s.first.IsZero() || f.TS.Before(s.first)) {
		s.first = f.TS
	}
	if f.End.After(s.last) {
		s.last = f.End
	}
	if f.Abnormal {
		s.abnormal++
		m := s.byClient[f.Client]
		if m == nil {
			m = map[string]int{}
			s.byClient[f.Client] = m
		}
		m[f.Verdict]++
	}
}

// Write prints the summary; times are in loc, and say so.
func (s *Summary) Write(w io.Writer, loc *time.Location) error {
	var b strings.Builder
	if s.n == 0 {
		b.WriteString("summary: no SMTP session\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	const tf = "2006-01-02 15:04:05 MST"
	fmt.Fprintf(&b, "summary: %d sessions from %s to %s\n", s.n, s.first.In(loc).Format(tf), s.last.In(loc).Format(tf))
	type kv struct {
		k string
		v int
	}
	var vs []kv
	for k, v := range s.verdicts {
		vs = append(vs, kv{k, v})
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].v > vs[j].v || (vs[i].v == vs[j].v && vs[i].k < vs[j].k) })
	for _, x := range vs {
		mark := ""
		if !normalEndings[x.k] {
			mark = "  abnormal"
		}
		fmt.Fprintf(&b, "  %-24s %7d %6.1f%%%s\n", Safe(x.k), x.v, 100*float64(x.v)/float64(s.n), mark)
	}
	fmt.Fprintf(&b, "  messages: %d accepted, %d lost (the session ended inside a message)\n", s.accepted, s.lost)
	if s.lossy > 0 {
		fmt.Fprintf(&b, "  capture loss: %d sessions miss %d bytes (verdicts there are weaker or undetermined)\n", s.lossy, s.missed)
	} else {
		b.WriteString("  capture loss: none\n")
	}
	if s.abnormal > 0 {
		fmt.Fprintf(&b, "  abnormal endings: %d of %d sessions; by client address (top 10):\n", s.abnormal, s.n)
		type cl struct {
			addr string
			n    int
			vs   map[string]int
		}
		var cs []cl
		for a, m := range s.byClient {
			c := cl{addr: a, vs: m}
			for _, v := range m {
				c.n += v
			}
			cs = append(cs, c)
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i].n > cs[j].n || (cs[i].n == cs[j].n && cs[i].addr < cs[j].addr) })
		for i, c := range cs {
			if i == 10 {
				fmt.Fprintf(&b, "    … %d more addresses\n", len(cs)-10)
				break
			}
			var parts []string
			for v, n := range c.vs {
				parts = append(parts, fmt.Sprintf("%s %d", v, n))
			}
			sort.Strings(parts)
			fmt.Fprintf(&b, "    %-39s %6d  %s\n", Safe(c.addr), c.n, Safe(strings.Join(parts, ", ")))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
