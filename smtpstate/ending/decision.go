package ending

import (
	"fmt"
	"sort"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// Decision is what a rule concludes: a value, never a change to shared
// state. Classify copies it into the record's Ending.
type Decision struct {
	Rule       string
	Verdict    Verdict
	Who        string // client, server, middlebox, unknown
	Mechanism  string // quit, fin, rst, reply, none, timeout
	Confidence string // high, medium, low
	Reason     string
	RunnerUp   string
	Confirm    string
	Evidence   []smtpstate.Evidence
	Flags      []string
	Origin     *smtpstate.Score
	// closeTTL is the closing FIN whose TTL the ttl_anomaly downgrade
	// compares with its sender's other packets (nil: not checked).
	closeTTL *ttlProbe
}

type ttlProbe struct {
	dir  dir
	ttl  uint8
	what string
}

func decision(v Verdict, who, mech, conf, reason string) Decision {
	return Decision{Verdict: v, Who: who, Mechanism: mech, Confidence: conf, Reason: reason}
}

// ev appends a checkable fact (frame 0: not tied to one packet).
func (d *Decision) ev(frame uint64, ts smtpstate.Time, format string, a ...any) {
	d.Evidence = append(d.Evidence, smtpstate.Evidence{Frame: frame, TS: ts, Text: fmt.Sprintf(format, a...)})
}

// evs is a rule's evidence before its verdict is known: rules that share
// a preamble build it once and pass it on.
type evs []smtpstate.Evidence

func (e *evs) add(frame uint64, ts smtpstate.Time, format string, a ...any) {
	*e = append(*e, smtpstate.Evidence{Frame: frame, TS: ts, Text: fmt.Sprintf(format, a...)})
}

func (d Decision) with(e evs) Decision {
	d.Evidence = append(append([]smtpstate.Evidence(nil), e...), d.Evidence...)
	return d
}

// Classify computes the ending of a finished record: the first rule of
// Rules that matches decides, the downgrades lower its confidence where
// the capture is weak, and the consequences (message lost, what the ESA
// should log) follow from the verdict.
func Classify(r *smtpstate.Record, p Params) *smtpstate.Ending {
	f := derive(r, p)
	d := decide(f)
	for i := range d.Evidence {
		d.Evidence[i].Rule = d.Rule
	}
	e := &smtpstate.Ending{
		Verdict: string(d.Verdict), Who: d.Who, Mechanism: d.Mechanism, Phase: r.PhaseAtEnd,
		Confidence: d.Confidence, Reason: d.Reason, Rule: d.Rule, Evidence: d.Evidence,
		RunnerUp: d.RunnerUp, Confirm: d.Confirm, CapturePoint: f.capturePoint, Origin: d.Origin,
	}
	e.Flags = baseFlags(r)
	for _, fl := range d.Flags {
		e.Flags = appendFlag(e.Flags, fl)
	}
	applyDowngrades(f, d, e)
	consequences(f, e)
	sort.SliceStable(e.Evidence, func(i, j int) bool {
		a, b := e.Evidence[i].Frame, e.Evidence[j].Frame
		return a != 0 && (b == 0 || a < b)
	})
	return e
}

// decide runs the rule table: the first rule whose When holds decides.
func decide(f *facts) Decision {
	for _, rl := range Rules {
		if rl.When(f) {
			d := rl.Then(f)
			d.Rule = rl.ID
			return d
		}
	}
	// Unreachable: the last rules cover every first close. Kept so that a
	// gap in the table shows as an honest undetermined, not a panic.
	d := decision(Undetermined, "unknown", "none", "low", "no rule of the ending table applies")
	d.Rule = "none"
	return d
}
