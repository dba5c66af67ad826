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
	// Offsets is the offset used for each file; Files says why, per file.
	Offsets map[string]int
	Files   []FileZone
}

// Result is what Match found.
type Result struct {
	Zone       ZoneInfo
	Matched    int
	Ambiguous  int
	LogOnly    []*Conn                       // log connections with no capture session
	Unmatched  int                           // capture sessions with no log connection
	CaptOnly   []*smtpstate.Record           // those sessions (Match only: a Stream lets them go)
	Size       SizeCal                       // how logged sizes relate to the wire's
	Conns      []*Conn                       // every log connection read
	ByRecord   map[*smtpstate.Record]*Conn   // Match only
	Candidates map[*smtpstate.Record][]*Conn // Match only
	// Windows is how many windows of sessions were matched (each estimates
	// the zone and the clock skew again).
	Windows int
	// Forced counts windows decided early because more sessions than the
	// window's bound began within a Horizon.
	Forced int
	// MaxWaiting is the most sessions a Stream held at once.
	MaxWaiting int
}

// Match ties records to log connections and fills Record.ESA. Every key
// the log and the wire share is used, strongest first (keys.go); the
// assignment is global and order-preserving among ties (assign.go); each
// record says which keys decided and, when another log connection fits as
// well, lists the candidates as ambiguous. Match holds every record; a
// Stream (window.go) matches in windows of SYN time and lets them go.
func Match(rs []*smtpstate.Record, lg *Log, opt MatchOptions) *Result {
	s := &Stream{opt: opt, keep: true}
	s.start(rs, lg)
	s.pend = rs
	s.batch(true)
	return s.res
}

// start reads the log's connections and fixes the zone, the clock skew and
// the orders the chain keeps monotone, from the first sessions.
func (s *Stream) start(first []*smtpstate.Record, lg *Log) {
	opt := s.opt
	if opt.Tolerance <= 0 {
		opt.Tolerance = 2
	}
	s.opt, s.lg = opt, lg
	conns := Build(lg.Lines)
	res := &Result{Conns: conns}
	if s.keep {
		res.ByRecord, res.Candidates = map[*smtpstate.Record]*Conn{}, map[*smtpstate.Record][]*Conn{}
	}
	s.byAddr = indexByAddr(conns)
	res.Zone = zone(first, conns, s.byAddr, lg, opt)
	// SYN order and ICID (DCID) order: the positions the chain keeps monotone.
	m := &matcher{zone: res.Zone, tol: opt.Tolerance}
	m.order = append([]*Conn(nil), conns...)
	sort.SliceStable(m.order, func(i, j int) bool { return connID(m.order[i]) < connID(m.order[j]) })
	m.ix = newConnIndex(m.order, res.Zone)
	// Exact keys fix the clock skew (and, per window, the size relation).
	m.setRecs(first)
	if sk, ok := anchorSkew(m.exactPairs(), m.zone.Skew); ok {
		res.Zone.Skew, m.zone.Skew = sk, sk
	}
	s.m, s.res = m, res
}

// setRecs makes rs, in SYN order, the sessions matched next.
func (m *matcher) setRecs(rs []*smtpstate.Record) {
	m.recs = append(m.recs[:0], rs...)
	sort.SliceStable(m.recs, func(i, j int) bool { return m.recs[i].TS.Before(m.recs[j].TS.Time) })
}

// window matches the sessions in m.recs against the log connections still
// free and applies the result to those settle says are final; the others
// are left untouched, to be matched again with the sessions that follow.
//
// Unless final, the log connections of a second the newest session has not
// passed yet are no candidates: the log truncates to the second, so some of
// them belong to the sessions still to come, and a connection taken by
// the wrong session here would shift every session after it.
//
// at, when set, is the present instead (Live: the sessions still open are
// not among the records): the connections of a second not yet over.
func (s *Stream) window(settle func(*smtpstate.Record) bool, final bool, at time.Time) {
	m, res := s.m, s.res
	if s.windows > 0 {
		s.rezone()
	}
	exact := m.exactPairs()
	m.cands = make([][]int, len(m.recs))
	until := 0.0
	switch {
	case final:
	case !at.IsZero():
		until = float64(at.UnixNano())/1e9 + m.zone.Skew - 1
	case len(m.recs) > 0:
		until = float64(m.recs[len(m.recs)-1].TS.UnixNano())/1e9 + m.zone.Skew - 1
	}
	for ri, r := range m.recs {
		m.cands[ri] = m.ix.candidates(r, m.zone.Skew, -m.tol-1, m.tol+lateDNS, until, m.order)
	}
	m.calibrate(exact)
	if s.windows == 0 {
		res.Size = m.cal
	}
	s.windows++
	pairs, bySession := m.allPairs(res)
	a := assign(pairs)
	for ri, r := range m.recs {
		if !settle(r) {
			continue
		}
		if p := a.byRec[ri]; p != nil {
			res.record(p, rivals(p, bySession, a))
			continue
		}
		res.Unmatched++
		if s.keep {
			res.CaptOnly = append(res.CaptOnly, r)
		}
		r.ESA = &smtpstate.ESARefs{Note: "no log connection matches (address, time, keys)"}
	}
}

// rezone estimates the zone and the clock skew again on the window's
// sessions (a log may begin after the capture, a clock drift): a window
// with fewer than minRezone sessions that have a log connection from their
// client keeps what the one before found (a few sessions are too few to
// tell a clock). The index is rebuilt only when an offset changes.
func (s *Stream) rezone() {
	m := s.m
	zi := zone(m.recs, s.res.Conns, s.byAddr, s.lg, s.opt)
	if zi.Of < minRezone {
		return
	}
	same := zi.Offset == m.zone.Offset && len(zi.Offsets) == len(m.zone.Offsets)
	for f, o := range zi.Offsets {
		same = same && m.zone.Offsets[f] == o
	}
	m.zone = zi
	if !same {
		m.ix = newConnIndex(m.order, zi)
	}
	if sk, ok := anchorSkew(m.exactPairs(), zi.Skew); ok {
		m.zone.Skew = sk
	}
	s.res.Zone = m.zone
}

const minRezone = 64

// finish lists the log connections no session took; a Stream, which read
// the log from a day before its first session on, only those that began
// before a day after its last session ended (as Match's callers read it).
func (s *Stream) finish() {
	late := time.Time{}
	if s.load != nil && !s.lastEnd.IsZero() {
		late = s.lastEnd.Add(24 * time.Hour)
	}
	for _, c := range s.res.Conns {
		if !c.matched && (late.IsZero() || !c.Start.After(late)) {
			s.res.LogOnly = append(s.res.LogOnly, c)
		}
	}
	s.res.Windows = s.windows
}

// exactPairs are the pairs a MID in the end-of-data reply or a Message-ID
// ties.
func (m *matcher) exactPairs() []pair {
	var exact []pair
	for ri, r := range m.recs {
		for _, ci := range m.ix.exact(r) {
			c := m.order[ci]
			if c.matched || !sameEnds(r, c) {
				continue
			}
			if k, _ := exactKey(r, c); k != "" {
				exact = append(exact, pair{r: r, c: c, ri: ri, ci: ci, exact: k, dt: m.dt(r, c)})
			}
		}
	}
	return exact
}

// calibrate learns the size relation from the exact pairs, else from all
// candidates (every size accepted while learning).
func (m *matcher) calibrate(exact []pair) {
	m.cal = calibrate(exact, nil)
	if m.cal.Anchors > 0 {
		return
	}
	var loose []pair
	for ri, r := range m.recs {
		for _, ci := range m.cands[ri] {
			if p, ok := m.evaluate(r, m.order[ci], ri, ci, SizeCal{Tol: math.MaxInt32}); ok && p.exact == "" {
				loose = append(loose, *p)
			}
		}
	}
	m.cal = calibrate(nil, loose)
}

// allPairs evaluates every candidate pair with the calibrated sizes.
func (m *matcher) allPairs(res *Result) ([]*pair, map[int][]*pair) {
	var pairs []*pair
	bySession := map[int][]*pair{}
	for ri, r := range m.recs {
		for _, ci := range m.cands[ri] {
			c := m.order[ci]
			if p, ok := m.evaluate(r, c, ri, ci, m.cal); ok {
				pairs = append(pairs, p)
				bySession[ri] = append(bySession[ri], p)
				if res.Candidates != nil {
					res.Candidates[r] = append(res.Candidates[r], c)
				}
			}
		}
	}
	return pairs, bySession
}

// record fills the session's esa part from its pair and its rivals.
func (res *Result) record(p *pair, riv []*Conn) {
	r := p.r
	n := len(riv) + 1
	if len(riv) > maxRivals {
		// nearest in ICID order first: the likeliest swaps
		sort.SliceStable(riv, func(i, j int) bool {
			return abs64(connID(riv[i])-connID(p.c)) < abs64(connID(riv[j])-connID(p.c))
		})
		riv = riv[:maxRivals]
	}
	refs := refsFor(p.c, matchKeys(p, len(riv) > 0))
	if len(riv) > 0 {
		names := []string{connName(p.c)}
		for _, c := range riv {
			names = append(names, connName(c))
		}
		sort.Strings(names[1:])
		refs.Ambiguous = names
		refs.Note = "ambiguous: " + strconv.Itoa(n) + " log connections fit on every key (" + matchKeys(p, false) + ")"
		if n > len(names) {
			refs.Note += ", " + strconv.Itoa(len(names)) + " listed"
		}
		refs.Note += "; the one shown keeps SYN order = ICID order"
		res.Ambiguous++
	}
	if res.ByRecord != nil {
		res.ByRecord[r] = p.c
	}
	p.c.matched = true
	consistency(r, p.c, refs)
	r.ESA = refs
	res.Matched++
}

// maxRivals bounds the candidates listed per ambiguous session.
const maxRivals = 15

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func connID(c *Conn) int64 {
	if c.Outbound {
		return c.DCID
	}
	return c.ICID
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

// The one-second window a first log line falls in when log and capture
// agree: the log truncates to the second (-1..0 s), plus the skew
// estimate's error and a few hundred milliseconds of accept latency.
const timeKeyLo, timeKeyHi = -1.5, 0.5

type matcher struct {
	zone  ZoneInfo
	tol   float64
	cal   SizeCal
	recs  []*smtpstate.Record // in SYN order
	order []*Conn             // in ICID/DCID order
	ix    *connIndex
	cands [][]int // per record: candidate positions in order
}

// dt is the log's first line minus the session's SYN, in seconds, after
// the file's offset and the appliance's skew.
func (m *matcher) dt(r *smtpstate.Record, c *Conn) float64 {
	off := float64(m.zone.Offset)
	if o, ok := m.zone.Offsets[c.File]; ok {
		off = float64(o)
	}
	return c.Start.Sub(r.TS.Time).Seconds() - off - m.zone.Skew
}

// sameEnds: the log connection has the session's client and appliance
// addresses (and, outbound, the remote port).
func sameEnds(r *smtpstate.Record, c *Conn) bool {
	if c.Outbound {
		return r.RespH == c.Addr && (c.Iface == "" || r.OrigH == c.Iface) && (c.Port == 0 || int(r.RespP) == c.Port)
	}
	return r.OrigH == c.Addr && (c.Iface == "" || r.RespH == c.Iface)
}

// evaluate says whether r and c may be the same connection and what agrees.
func (m *matcher) evaluate(r *smtpstate.Record, c *Conn, ri, ci int, cal SizeCal) (*pair, bool) {
	if !sameEnds(r, c) {
		return nil, false
	}
	p := &pair{r: r, c: c, ri: ri, ci: ci, dt: m.dt(r, c)}
	k, conflict := exactKey(r, c)
	if conflict {
		return nil, false
	}
	p.exact = k
	inWindow := p.dt >= -m.tol-1 && p.dt <= m.tol+lateDNS
	if k == keyMIDReply || k == keyMessageID && math.Abs(p.dt) < 86400 {
		return p, true // exact: the time does not have to fit
	}
	if !inWindow {
		return nil, false
	}
	keys, bad := contentKeys(r, c, cal)
	if bad {
		return nil, false
	}
	if p.dt >= timeKeyLo && p.dt <= timeKeyHi {
		keys = append(keys, keyTime)
	}
	p.keys = keys
	for _, k := range keys {
		p.strength += keyWeight[k]
	}
	return p, true
}

// anchorSkew is the appliance clock's offset measured on the pairs an
// exact key ties (more precise than the densest-bin estimate).
func anchorSkew(exact []pair, prior float64) (float64, bool) {
	var v []float64
	for _, p := range exact {
		if d := p.dt + prior; math.Abs(d) < 120 {
			v = append(v, d)
		}
	}
	if len(v) < 2 {
		return 0, false
	}
	return median(v), true
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
		// A transaction whose recipients were all refused stays open
		// until the QUIT: the ESA logs that as aborted by the sender too.
		ok = v == string(ending.QuitMidTransaction) || v == string(ending.QuitAfterRejection)
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
	// A QUIT inferred inside TLS from record sizes is settled by the log:
	// an orderly close (no "lost", no abort) says the QUIT was there.
	if ok && story == "close" && quit && hasString(r.Ending.Flags, "tls_inferred") && r.Ending.Confidence == "medium" {
		r.Ending.Confidence = "high"
		r.Ending.Reason += "; the ESA log agrees (ICID close without lost, no message aborted)"
	}
	if !ok {
		refs.Note = strings.TrimPrefix(refs.Note+"; ", "; ") + why
	}
	if len(c.MIDs) != len(r.Trans) && !c.Outbound {
		refs.Note = strings.TrimPrefix(refs.Note+"; ", "; ") + fmt.Sprintf("the log has %d MIDs, the capture %d transactions", len(c.MIDs), len(r.Trans))
	}
}

// Find returns the log connection with this ICID or DCID (id) or carrying
// this MID, nil if the log does not hold it.
func (res *Result) Find(id, mid string) *Conn {
	for _, c := range res.Conns {
		if id != "" && (!c.Outbound && strconv.FormatInt(c.ICID, 10) == id || c.Outbound && strconv.FormatInt(c.DCID, 10) == id) {
			return c
		}
		if mid != "" {
			for _, m := range c.MIDs {
				if strconv.FormatInt(m.MID, 10) == mid {
					return c
				}
			}
		}
	}
	return nil
}

func hasString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
