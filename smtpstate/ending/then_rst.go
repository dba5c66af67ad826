package ending

import "fmt"

// RST rules: the first close is a RST and no closing reply preceded it; the
// origin score (Factors) decides whose it was.

func rstEvidence(f *facts) evs {
	fc := f.firstClose
	x := fc.rst
	var e evs
	e.add(x.Frame, x.TS, "RST from the %s's address: ttl %d, seq delta %s, ack flag %v, window %d", fc.dir, x.TTL, seqNote(x), x.HasACK, x.Window)
	for _, it := range f.rstOrigin.Items {
		e.add(0, noTS, "%s", it)
	}
	return e
}

// middleboxConfidence: medium from marginMiddlebox, high from marginHigh;
// low when the capture is at the purported sender, where its own packets
// cannot be forged and TTL tests are unreliable.
func middleboxConfidence(f *facts) string {
	conf := "medium"
	if f.rstMargin >= marginHigh {
		conf = "high"
	}
	d := f.firstClose.dir
	if d == fromServer && f.capturePoint == "at_server" || d == fromClient && f.capturePoint == "at_client" {
		conf = "low"
	}
	return conf
}

func rstDecision(f *facts, d Decision) Decision {
	d.Origin = f.rstOrigin
	return d.with(rstEvidence(f))
}

func thenIdleThenRST(f *facts) Decision {
	fc := f.firstClose
	gap := fc.rst.ResumeGap
	d := decision(FirewallIdleExpiry, "middlebox", "rst", middleboxConfidence(f),
		fmt.Sprintf("after %.0fs idle a middlebox reset the connection in the %s's name: its state had expired", gap, fc.dir))
	d.ev(0, noTS, "the connection had been idle %.0fs before the traffic that drew this RST", gap)
	d.RunnerUp = string(endpointRST(fc.dir)) + ": the " + fc.dir.String() + " itself reset the connection"
	d.Confirm = "the firewall's idle timeout and its teardown log (e.g. ASA 302014 Conn-timeout) for this connection"
	return rstDecision(f, d)
}

func thenMiddleboxRST(f *facts) Decision {
	fc := f.firstClose
	d := decision(MiddleboxRST, "middlebox", "rst", middleboxConfidence(f),
		fmt.Sprintf("a middlebox reset the connection in the %s's name in phase %s", fc.dir, f.r.PhaseAtEnd))
	d.RunnerUp = string(endpointRST(fc.dir)) + ": the " + fc.dir.String() + " itself reset the connection"
	d.Confirm = "the firewall's log for this 4-tuple (e.g. ASA 302014 reason, IPS reset event)"
	return rstDecision(f, d)
}

func thenRSTInconclusive(f *facts) Decision {
	fc := f.firstClose
	d := decision(Undetermined, "unknown", "rst", "low",
		fmt.Sprintf("a RST in the %s's name in phase %s; the evidence of a middlebox is not conclusive", fc.dir, f.r.PhaseAtEnd))
	d.RunnerUp = string(MiddleboxRST) + " or " + string(endpointRST(fc.dir))
	d.Confirm = "a capture on the " + fc.dir.String() + "'s side of the firewall"
	return rstDecision(f, d)
}

func thenEndpointRST(f *facts) Decision {
	r, fc := f.r, f.firstClose
	s := f.rstOrigin
	conf := "medium"
	if s.Endpoint-s.Middlebox >= marginEndpointHigh && r.Client.Packets > 0 && r.Server.Packets > 0 {
		conf = "high"
	}
	d := decision(endpointRST(fc.dir), fc.dir.String(), "rst", conf, fmt.Sprintf("the %s reset the connection in phase %s", fc.dir, r.PhaseAtEnd))
	d.RunnerUp = string(MiddleboxRST) + ": an in-path device with exact sequence numbers and the same TTL"
	d.Confirm = "the " + fc.dir.String() + "'s application log"
	if !fc.rst.HasACK {
		d.Reason += fmt.Sprintf(": a no-state reply (RST without ACK) - the %s's host had no connection any more (its process died, or a middlebox had reset it on the other side)", fc.dir)
		d.RunnerUp = string(MiddleboxRST) + " towards the " + fc.dir.String() + ", invisible from this capture point"
	}
	return rstDecision(f, d)
}
