package esalog

import (
	"math"
	"sort"
	"strings"
)

// The assignment is global: one log connection to at most one capture
// session and back. Pairs an exact key ties are fixed first. The others are
// assigned in tiers of strength (the set of keys that agree), strongest
// first; inside a tier the pairs that tie on every key are assigned by a
// monotone matching - SYN order to ICID order, the order in which the
// appliance accepted the connections - that keeps the most pairs
// (a weighted longest chain), nearest in time only as the last tie-break.
// Pairs the chain had to leave out (accept order differs from SYN order)
// are then taken greedily, so no session is lost for the sake of order.

// chainBase makes the number of pairs dominate the chain's weight: the
// time closeness of a pair is at most maxCloseness, so up to a million
// pairs' closeness sums to less than one pair (and 3e15 stays exact).
const (
	chainBase    = 1e12
	maxCloseness = 1e6
)

type assignment struct {
	byRec  map[int]*pair // record index -> chosen pair
	byConn map[int]*pair // conn index -> chosen pair
}

func assign(pairs []*pair) *assignment {
	a := &assignment{byRec: map[int]*pair{}, byConn: map[int]*pair{}}
	// 1. exact keys: nearest in time first when a key ties several.
	var exact []*pair
	for _, p := range pairs {
		if p.exact != "" {
			exact = append(exact, p)
		}
	}
	sort.SliceStable(exact, func(i, j int) bool {
		if exact[i].exact != exact[j].exact {
			return exact[i].exact == keyMIDReply
		}
		return math.Abs(exact[i].dt+0.5) < math.Abs(exact[j].dt+0.5)
	})
	for _, p := range exact {
		a.take(p)
	}
	// 2. the rest, in tiers of strength.
	tiers := map[int][]*pair{}
	var levels []int
	for _, p := range pairs {
		if p.exact != "" {
			continue
		}
		if _, ok := tiers[p.strength]; !ok {
			levels = append(levels, p.strength)
		}
		tiers[p.strength] = append(tiers[p.strength], p)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(levels)))
	for _, lv := range levels {
		var free []*pair
		for _, p := range tiers[lv] {
			if a.free(p) {
				free = append(free, p)
			}
		}
		for _, p := range chain(free) {
			a.take(p)
		}
		sort.SliceStable(free, func(i, j int) bool { return closeness(free[i]) > closeness(free[j]) })
		for _, p := range free {
			a.take(p)
		}
	}
	return a
}

func (a *assignment) free(p *pair) bool {
	return a.byRec[p.ri] == nil && a.byConn[p.ci] == nil
}

func (a *assignment) take(p *pair) {
	if a.free(p) {
		a.byRec[p.ri], a.byConn[p.ci] = p, p
	}
}

// closeness is higher for a first log line that falls where the SYN's
// second would put it (the log truncates: about -0.5 s).
func closeness(p *pair) float64 {
	return maxCloseness - math.Min(math.Abs(p.dt+0.5)*1000, maxCloseness-1)
}

// chain returns the heaviest set of pairs increasing in both record (SYN)
// order and connection (ICID) order, per appliance interface: a weighted
// longest increasing subsequence over the pairs, O(n log n) with a Fenwick
// tree of prefix maxima.
func chain(ps []*pair) []*pair {
	groups := map[string][]*pair{}
	for _, p := range ps {
		k := p.c.Iface
		if p.c.Outbound {
			k = "out " + k
		}
		groups[k] = append(groups[k], p)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []*pair
	for _, k := range keys {
		out = append(out, chainGroup(groups[k])...)
	}
	return out
}

func chainGroup(ps []*pair) []*pair {
	if len(ps) == 0 {
		return nil
	}
	// Records ascending; within one record connections descending, so one
	// record never contributes two pairs to a chain.
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].ri != ps[j].ri {
			return ps[i].ri < ps[j].ri
		}
		return ps[i].ci > ps[j].ci
	})
	// Compress connection positions.
	var cs []int
	for _, p := range ps {
		cs = append(cs, p.ci)
	}
	sort.Ints(cs)
	rank := map[int]int{}
	for _, c := range cs {
		if _, ok := rank[c]; !ok {
			rank[c] = len(rank) + 1
		}
	}
	n := len(rank)
	tree := make([]int, n+1) // index into best/prev of the heaviest chain ending at or below
	best := make([]float64, len(ps))
	prev := make([]int, len(ps))
	query := func(i int) int {
		at := -1
		for ; i > 0; i -= i & -i {
			if j := tree[i] - 1; j >= 0 && (at < 0 || best[j] > best[at]) {
				at = j
			}
		}
		return at
	}
	update := func(i, idx int) {
		for ; i <= n; i += i & -i {
			if j := tree[i] - 1; j < 0 || best[idx] > best[j] {
				tree[i] = idx + 1
			}
		}
	}
	top := -1
	for i, p := range ps {
		r := rank[p.ci]
		w := chainBase + closeness(p)
		prev[i] = query(r - 1)
		best[i] = w
		if prev[i] >= 0 {
			best[i] += best[prev[i]]
		}
		update(r, i)
		if top < 0 || best[i] > best[top] {
			top = i
		}
	}
	var out []*pair
	for i := top; i >= 0; i = prev[i] {
		out = append(out, ps[i])
	}
	return out
}

// rivals lists, for the chosen pair p, the other log connections that fit
// the session on every key as well as the chosen one and could be
// swapped in: free, or held by a session that fits the chosen one equally.
func rivals(p *pair, bySession map[int][]*pair, a *assignment) []*Conn {
	if p.exact != "" {
		var out []*Conn
		for _, q := range bySession[p.ri] {
			if q.c != p.c && q.exact != "" && a.byConn[q.ci] == nil {
				out = append(out, q.c) // the same exact key in two connections
			}
		}
		return out
	}
	var out []*Conn
	for _, q := range bySession[p.ri] {
		if q.c == p.c || q.exact != "" || !ties(p, q) {
			continue
		}
		holder := a.byConn[q.ci]
		if holder == nil {
			out = append(out, q.c)
			continue
		}
		if holder.exact != "" {
			continue
		}
		for _, h := range bySession[holder.ri] {
			if h.c == p.c && h.exact == "" && ties(h, holder) {
				out = append(out, q.c)
				break
			}
		}
	}
	return out
}

// ties says q fits its session as well as p: the same keys agree, or the
// same keys but the time key, with both first lines within a second of
// where the SYN puts them (the time key alone is too weak to exclude).
func ties(p, q *pair) bool {
	if p.strength == q.strength {
		return true
	}
	t := keyWeight[keyTime]
	near := func(x *pair) bool { return x.dt >= timeKeyLo-1 && x.dt <= timeKeyHi+1 }
	return p.strength&^t == q.strength&^t && near(p) && near(q)
}

// matchKeys names what decided a pair.
func matchKeys(p *pair, ordered bool) string {
	if p.exact != "" {
		return p.exact
	}
	keys := append([]string(nil), p.keys...)
	if ordered {
		keys = append(keys, keyOrder)
	}
	keys = append(keys, keyAddress)
	return strings.Join(keys, "+")
}
