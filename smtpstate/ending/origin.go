package ending

import (
	"fmt"
	"math"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// RST origin (classification.md §1.4, §6.4): each factor adds points for
// "a middlebox sent it" or "its purported sender did". The score starts
// with endpointPrior: a RST is the endpoint's unless the packets say
// otherwise.

// Margins on middlebox − endpoint points, and the points that count as
// strong.
const (
	endpointPrior = 1
	// marginMiddlebox: at or above, a middlebox sent the RST (medium).
	marginMiddlebox = 3
	// marginHigh: at or above, a middlebox sent it (high).
	marginHigh = 5
	// marginInconclusive: at or above (and below marginMiddlebox) the
	// evidence of a middlebox is not conclusive: undetermined.
	marginInconclusive = 1
	// strongMiddlebox points with a margin at or above conflictFloor are
	// strong evidence on both sides: undetermined.
	strongMiddlebox, conflictFloor = 4, -2
	// marginEndpointHigh: endpoint − middlebox at or above, with both
	// directions captured, the endpoint sent it (high).
	marginEndpointHigh = 3
	// Factor thresholds.
	ipidJump         = 64    // F2: an IP ID this far from the last one does not follow it
	bothWaysWindow   = 0.010 // F9: RSTs to both ends within this many seconds
	triggerFraction  = 0.5   // F7: an answer faster than this share of the round trip
	minRTT           = 0.001 // F7: round trips below this are too small to compare
	activeWindow     = 2.0   // F5: the sender had sent within this many seconds
	seqWindowForPeer = 65536 // F5: how far ahead a no-state RST's seq may be
)

// rstCase is what the factors look at for one RST in d's name.
type rstCase struct {
	r          *record
	d          dir
	x          *smtpstate.RST
	own, peer  *smtpstate.DirFacts
	base       uint8 // the sender's usual TTL
	n          int   // packets carrying it
	stable     bool  // the only TTL seen
	delta      int   // |RST TTL − base|
	rtt        float64
	bothWaysDT float64 // seconds between this RST and the peer's first RST (-1: none)
}

// Factor is one test of a RST's origin. Factors with the same Group are
// alternatives: only the first that holds counts.
type Factor struct {
	ID                  string
	Name                string
	Group               string
	Middlebox, Endpoint int
	// Text is the evidence line (a format for Args).
	Text string
	When func(c *rstCase) bool
	Args func(c *rstCase) []any
}

// Factors in the order they are tested and cited.
var Factors = []Factor{
	{"F1", "ttl_other_initial", "ttl", 4, 0, "F1 ttl %d comes from another initial ttl (%d) than the %s's packets (ttl %d from %d, %d packets): another device",
		func(c *rstCase) bool { return c.n >= 2 && c.delta >= 2 && initialTTL(c.x.TTL) != initialTTL(c.base) },
		func(c *rstCase) []any {
			return []any{c.x.TTL, initialTTL(c.x.TTL), c.d, c.base, initialTTL(c.base), c.n}
		}},
	{"F1", "ttl_differs", "ttl", 3, 0, "F1 ttl %d differs by %d from the %s's ttl %d (%d packets)",
		func(c *rstCase) bool { return c.n >= 2 && c.delta >= 2 },
		func(c *rstCase) []any { return []any{c.x.TTL, c.delta, c.d, c.base, c.n} }},
	{"F1", "ttl_initial_on_segment", "ttl", 3, 0, "F1 ttl %d is an initial ttl (sent from the capture's own segment) while the %s's packets arrive one hop away with ttl %d (%d packets)",
		func(c *rstCase) bool {
			return c.n >= 2 && c.delta == 1 && c.stable && isInitialTTL(c.x.TTL) && !isInitialTTL(c.base)
		},
		func(c *rstCase) []any { return []any{c.x.TTL, c.d, c.base, c.n} }},
	{"F1", "ttl_one_hop_many", "ttl", 3, 0, "F1 ttl %d differs by 1 from the %s's constant ttl %d (%d packets): sent from one hop closer or farther",
		func(c *rstCase) bool { return c.n >= 5 && c.delta == 1 && c.stable },
		func(c *rstCase) []any { return []any{c.x.TTL, c.d, c.base, c.n} }},
	{"F1", "ttl_one_hop", "ttl", 2, 0, "F1 ttl %d differs by 1 from the %s's constant ttl %d (%d packets): one hop closer or farther",
		func(c *rstCase) bool { return c.n >= 3 && c.delta == 1 && c.stable },
		func(c *rstCase) []any { return []any{c.x.TTL, c.d, c.base, c.n} }},
	{"F1", "ttl_equal", "ttl", 0, 2, "F1 ttl %d equals the %s's ttl",
		func(c *rstCase) bool { return c.n >= 2 && c.delta == 0 },
		func(c *rstCase) []any { return []any{c.x.TTL, c.d} }},
	{"F2", "ipid_jump", "", 1, 0, "F2 ip id %d does not follow the %s's last ip id %d",
		func(c *rstCase) bool { return c.x.IPIDKnown && c.x.IPIDStep > ipidJump },
		func(c *rstCase) []any { return []any{c.x.IPID, c.d, (int(c.x.IPID) - c.x.IPIDStep + 65536) % 65536} }},
	{"F3", "seq_exact", "seq", 0, 1, "F3 sequence number exactly where the %s's stream is",
		func(c *rstCase) bool { return c.x.SeqKnown && c.x.SeqDelta == 0 },
		func(c *rstCase) []any { return []any{c.d} }},
	{"F5", "seq_from_peer_ack", "seq", 0, 0, "F5 sequence from the peer's ACK (a no-state answer)",
		func(c *rstCase) bool {
			return c.x.SeqKnown && c.x.SeqDelta > 0 && c.x.SeqDelta < seqWindowForPeer && !c.x.HasACK && c.x.SeqIsPeerAck
		},
		func(c *rstCase) []any { return nil }},
	{"F3", "seq_off", "seq", 2, 0, "F3 sequence off by %d from the %s's stream",
		func(c *rstCase) bool { return c.x.SeqKnown && c.x.SeqDelta != 0 },
		func(c *rstCase) []any { return []any{c.x.SeqDelta, c.d} }},
	{"F4", "data_after_rst", "", 5, -5, "F4 the %s kept sending at/after the RST's sequence (frame %d): it did not send this RST",
		func(c *rstCase) bool { return c.own.DataAfterRST != 0 },
		func(c *rstCase) []any { return []any{c.d, c.own.DataAfterRST} }},
	{"F9", "rsts_both_ways", "", 4, 0, "F9 RSTs towards both ends within %.1f ms",
		func(c *rstCase) bool { return c.bothWaysDT >= 0 && c.bothWaysDT <= bothWaysWindow },
		func(c *rstCase) []any { return []any{c.bothWaysDT * 1000} }},
	{"F7", "faster_than_rtt", "", 4, 0, "F7 RST %.3f ms after the %s's last packet, faster than half the %s's round trip (%.3f ms)",
		func(c *rstCase) bool {
			return c.rtt >= minRTT && c.x.TriggerDelay > 0 && c.x.TriggerDelay < triggerFraction*c.rtt
		},
		func(c *rstCase) []any { return []any{c.x.TriggerDelay * 1000, c.d.Other(), c.d, c.rtt * 1000} }},
	{"F6", "challenge_ack", "", 2, 0, "F6 the %s answered with a challenge ACK (frame %d): the RST was not exactly in sequence",
		func(c *rstCase) bool { return c.x.ChallengeACK != 0 },
		func(c *rstCase) []any { return []any{c.d.Other(), c.x.ChallengeACK} }},
	{"F11", "payload_text", "", 3, 0, "F11 RST carries text %q",
		func(c *rstCase) bool { return c.x.Payload != "" },
		func(c *rstCase) []any { return []any{c.x.Payload} }},
	{"F12", "other_mac", "", 2, 0, "F12 source MAC %s differs from the %s's %s",
		func(c *rstCase) bool { return c.x.MAC != "" },
		func(c *rstCase) []any { return []any{c.x.MAC, c.d, c.own.MAC} }},
	{"F5", "no_ack_while_active", "", 1, 0, "F5 RST without ACK (a no-state reply) while the %s was active",
		func(c *rstCase) bool {
			return !c.x.HasACK && c.own.FIN == nil && c.x.AfterIdle < activeWindow && c.own.Packets > 0 && !c.own.LastTS.IsZero() &&
				c.x.TS.Sub(c.own.LastTS.Time).Seconds() < activeWindow
		},
		func(c *rstCase) []any { return []any{c.d} }},
}

func newRSTCase(r *record, d dir, x *smtpstate.RST) *rstCase {
	c := &rstCase{r: r, d: d, x: x, own: dirOf(r, d), peer: dirOf(r, d.Other()), bothWaysDT: -1}
	c.base, c.n, c.stable = ttlBaseline(c.own)
	c.delta = int(x.TTL) - int(c.base)
	if c.delta < 0 {
		c.delta = -c.delta
	}
	if pr := c.peer.RSTs; len(pr) > 0 && c.own.FIN == nil && c.peer.FIN == nil {
		c.bothWaysDT = math.Abs(pr[0].TS.Sub(x.TS.Time).Seconds())
	}
	c.rtt = r.RTTServer
	if d == fromClient {
		c.rtt = r.RTTClient
	}
	return c
}

// origin scores the RST x in d's name.
func origin(r *record, d dir, x *smtpstate.RST) *smtpstate.Score {
	s, _ := score(newRSTCase(r, d, x))
	return s
}

// score adds up the factors that hold; names lists them (for tests).
func score(c *rstCase) (s *smtpstate.Score, names []string) {
	s = &smtpstate.Score{Endpoint: endpointPrior}
	done := map[string]bool{}
	for _, f := range Factors {
		if f.Group != "" && done[f.Group] || !f.When(c) {
			continue
		}
		if f.Group != "" {
			done[f.Group] = true
		}
		s.Middlebox += f.Middlebox
		s.Endpoint += f.Endpoint
		s.Items = append(s.Items, fmt.Sprintf(f.Text, f.Args(c)...))
		names = append(names, f.Name)
	}
	return s, names
}

func seqNote(x *smtpstate.RST) string {
	if !x.SeqKnown {
		return "unknown"
	}
	return fmt.Sprintf("%+d", x.SeqDelta)
}

// ttlBaseline is the most common TTL of a direction, the packets that carry
// it, and whether it is the only value seen.
func ttlBaseline(f *smtpstate.DirFacts) (uint8, int, bool) {
	if len(f.TTLs) == 0 {
		return 0, 0, false
	}
	best := f.TTLs[0]
	for _, t := range f.TTLs {
		if t.Count > best.Count {
			best = t
		}
	}
	return best.TTL, best.Count, len(f.TTLs) == 1
}

func ttlNote(f *smtpstate.DirFacts, ttl uint8) string {
	base, n, _ := ttlBaseline(f)
	if n == 0 {
		return fmt.Sprintf("%d", ttl)
	}
	if base == ttl {
		return fmt.Sprintf("%d, same as its other packets", ttl)
	}
	return fmt.Sprintf("%d, its other packets %d", ttl, base)
}

// capturePoint infers where the capture was taken: a host's own outgoing
// packets carry an initial TTL (64, 128, 255).
func capturePoint(r *record) string {
	ci, cn, _ := ttlBaseline(&r.Client)
	si, sn, _ := ttlBaseline(&r.Server)
	if cn == 0 || sn == 0 {
		return "unknown"
	}
	ic, is := isInitialTTL(ci), isInitialTTL(si)
	switch {
	case ic && !is:
		return "at_client"
	case is && !ic:
		return "at_server"
	case !ic && !is:
		return "between"
	}
	return "unknown" // both initial: same host or same segment
}

// initialTTL is the nearest common initial TTL at or above t.
func initialTTL(t uint8) int {
	for _, i := range []int{32, 64, 128, 255} {
		if int(t) <= i {
			return i
		}
	}
	return 255
}

func isInitialTTL(t uint8) bool { return t == 64 || t == 128 || t == 255 || t == 32 || t == 60 }
