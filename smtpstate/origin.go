package smtpstate

import (
	"fmt"
	"math"
)

// RST origin tests (classification.md §1.4) and the TTL facts they use.

// origin scores the RST x in d's name (classification.md §1.4, §6.4).
func (k *classifier) origin(d Dir, x *RST) *Score {
	r := k.r
	f, peer := dirOf(r, d), dirOf(r, d.Other())
	s := &Score{Endpoint: 1}
	add := func(mb, ep int, text string, a ...any) {
		s.Middlebox += mb
		s.Endpoint += ep
		s.Items = append(s.Items, fmt.Sprintf(text, a...))
	}
	if base, n, stable := ttlBaseline(f); n >= 2 {
		delta := int(x.TTL) - int(base)
		if delta < 0 {
			delta = -delta
		}
		switch {
		case delta >= 2 && initialTTL(x.TTL) != initialTTL(base):
			add(4, 0, "F1 ttl %d comes from another initial ttl (%d) than the %s's packets (ttl %d from %d, %d packets): another device", x.TTL, initialTTL(x.TTL), d, base, initialTTL(base), n)
		case delta >= 2:
			add(3, 0, "F1 ttl %d differs by %d from the %s's ttl %d (%d packets)", x.TTL, delta, d, base, n)
		case delta == 1 && stable && isInitialTTL(x.TTL) && !isInitialTTL(base):
			add(3, 0, "F1 ttl %d is an initial ttl (sent from the capture's own segment) while the %s's packets arrive one hop away with ttl %d (%d packets)", x.TTL, d, base, n)
		case delta == 1 && stable && n >= 5:
			add(3, 0, "F1 ttl %d differs by 1 from the %s's constant ttl %d (%d packets): sent from one hop closer or farther", x.TTL, d, base, n)
		case delta == 1 && stable && n >= 3:
			add(2, 0, "F1 ttl %d differs by 1 from the %s's constant ttl %d (%d packets): one hop closer or farther", x.TTL, d, base, n)
		case delta == 0:
			add(0, 2, "F1 ttl %d equals the %s's ttl", x.TTL, d)
		}
	}
	if x.IPIDKnown && x.IPIDStep > 64 {
		add(1, 0, "F2 ip id %d does not follow the %s's last ip id %d", x.IPID, d, (int(x.IPID)-x.IPIDStep+65536)%65536)
	}
	if x.SeqKnown {
		switch {
		case x.SeqDelta == 0:
			add(0, 1, "F3 sequence number exactly where the %s's stream is", d)
		case x.SeqDelta > 0 && x.SeqDelta < 65536 && !x.HasACK && x.SeqIsPeerAck:
			add(0, 0, "F5 sequence from the peer's ACK (a no-state answer)")
		case x.SeqDelta != 0:
			add(2, 0, "F3 sequence off by %d from the %s's stream", x.SeqDelta, d)
		}
	}
	if f.DataAfterRST != 0 {
		add(5, -5, "F4 the %s kept sending at/after the RST's sequence (frame %d): it did not send this RST", d, f.DataAfterRST)
	}
	if pr := peer.RSTs; len(pr) > 0 && f.FIN == nil && peer.FIN == nil {
		dt := math.Abs(pr[0].TS.Sub(x.TS.Time).Seconds())
		if dt <= 0.010 {
			add(4, 0, "F9 RSTs towards both ends within %.1f ms", dt*1000)
		}
	}
	// F7: the RST answers the other side faster than the purported sender
	// could: it was generated between the capture point and that sender.
	rtt := r.RTTServer
	if d == FromClient {
		rtt = r.RTTClient
	}
	if rtt >= 0.001 && x.TriggerDelay > 0 && x.TriggerDelay < 0.5*rtt {
		add(4, 0, "F7 RST %.3f ms after the %s's last packet, faster than half the %s's round trip (%.3f ms)", x.TriggerDelay*1000, d.Other(), d, rtt*1000)
	}
	if x.ChallengeACK != 0 {
		add(2, 0, "F6 the %s answered with a challenge ACK (frame %d): the RST was not exactly in sequence", d.Other(), x.ChallengeACK)
	}
	if x.Payload != "" {
		add(3, 0, "F11 RST carries text %q", x.Payload)
	}
	if x.MAC != "" {
		add(2, 0, "F12 source MAC %s differs from the %s's %s", x.MAC, d, f.MAC)
	}
	if !x.HasACK && f.FIN == nil && x.AfterIdle < 2 && f.Packets > 0 && !f.LastTS.IsZero() && x.TS.Sub(f.LastTS.Time).Seconds() < 2 {
		add(1, 0, "F5 RST without ACK (a no-state reply) while the %s was active", d)
	}
	return s
}

func seqNote(x *RST) string {
	if !x.SeqKnown {
		return "unknown"
	}
	return fmt.Sprintf("%+d", x.SeqDelta)
}

// ttlBaseline is the most common TTL of a direction, the packets that carry
// it, and whether it is the only value seen.
func ttlBaseline(f *DirFacts) (uint8, int, bool) {
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

func ttlNote(f *DirFacts, ttl uint8) string {
	base, n, _ := ttlBaseline(f)
	if n == 0 {
		return fmt.Sprintf("%d", ttl)
	}
	if base == ttl {
		return fmt.Sprintf("%d, same as its other packets", ttl)
	}
	return fmt.Sprintf("%d, its other packets %d", ttl, base)
}

func (k *classifier) ttlCheck(d Dir, ttl uint8, what string) {
	f := dirOf(k.r, d)
	base, n, _ := ttlBaseline(f)
	if n >= 2 && base != ttl {
		k.e.Flags = appendFlag(k.e.Flags, "ttl_anomaly")
		k.ev(0, Time{}, "%s ttl %d differs from the %s's ttl %d: a proxy may have closed in its name", what, ttl, d, base)
		if k.e.Confidence == "high" {
			k.e.Confidence = "medium"
		}
	}
}

// capturePoint infers where the capture was taken: a host's own outgoing
// packets carry an initial TTL (64, 128, 255).
func capturePoint(r *Record) string {
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
