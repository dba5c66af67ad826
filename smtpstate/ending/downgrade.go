package ending

import (
	"fmt"
	"math"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// Downgrade lowers a high confidence to medium where the capture cannot
// carry it, and says why: "why only medium?" has an answer in the
// ending's downgrades list.
type Downgrade struct {
	Flag string
	Doc  string
	When func(f *facts, d *Decision) bool
	// Why is the sentence recorded in Ending.Downgrades (and, with
	// Evidence set, cited as evidence).
	Why      func(f *facts, d *Decision) string
	Evidence bool
	// ReasonSuffix is appended to the reason when the confidence drops.
	ReasonSuffix string
}

// Downgrades, applied in order after the rule decided.
var Downgrades = []Downgrade{
	{Flag: "ttl_anomaly", Doc: "the closing FIN's TTL differs from its sender's other packets: a proxy may have closed in its name",
		When: func(f *facts, d *Decision) bool {
			if d.closeTTL == nil {
				return false
			}
			base, n, _ := ttlBaseline(dirOf(f.r, d.closeTTL.dir))
			return n >= ttlBaselineMin && base != d.closeTTL.ttl
		},
		Why: func(f *facts, d *Decision) string {
			p := d.closeTTL
			base, _, _ := ttlBaseline(dirOf(f.r, p.dir))
			return fmt.Sprintf("%s ttl %d differs from the %s's ttl %d: a proxy may have closed in its name", p.what, p.ttl, p.dir, base)
		},
		Evidence: true},
	{Flag: "one_direction_only", Doc: "only one direction was captured",
		When: func(f *facts, d *Decision) bool {
			return (f.r.Client.Packets == 0 || f.r.Server.Packets == 0) && d.Verdict != CaptureEnded
		},
		Why: func(*facts, *Decision) string { return "only one direction was captured" }},
	{Flag: "capture_loss", Doc: "the capture lost bytes the endpoints exchanged",
		When: func(f *facts, d *Decision) bool { return f.captureLoss && d.Verdict != CaptureEnded },
		Why: func(f *facts, _ *Decision) string {
			return fmt.Sprintf("the capture lost bytes (%d missing, %d acknowledged but not seen)", f.r.MissedBytes, f.r.Client.AckedUnseen+f.r.Server.AckedUnseen)
		}},
	{Flag: "tls_opaque", Doc: "the end is inside TLS: judged from TCP facts only",
		When: func(f *facts, d *Decision) bool {
			return f.r.TLS && d.Verdict.Info().Family != FamilyHandshake && d.Verdict != CaptureEnded
		},
		Why:          func(*facts, *Decision) string { return "inside TLS the dialogue is not visible" },
		ReasonSuffix: " (inside TLS: judged from TCP facts only)"},
}

func applyDowngrades(f *facts, d Decision, e *smtpstate.Ending) {
	for _, g := range Downgrades {
		if !g.When(f, &d) {
			continue
		}
		why := g.Why(f, &d)
		e.Flags = appendFlag(e.Flags, g.Flag)
		if g.Evidence {
			e.Evidence = append(e.Evidence, smtpstate.Evidence{Text: why, Rule: g.Flag})
		}
		if e.Confidence == "high" {
			e.Confidence = "medium"
			e.Reason += g.ReasonSuffix
			e.Downgrades = append(e.Downgrades, g.Flag+": "+why)
		}
	}
}

// baseFlags are the record's notable facts, whatever the verdict.
func baseFlags(r *record) []string {
	var fs []string
	add := func(ok bool, f string) {
		if ok {
			fs = appendFlag(fs, f)
		}
	}
	add(r.Client.Packets == 0 || r.Server.Packets == 0, "one_direction_only")
	add(r.Client.SYNFrame == 0 && r.Server.SYNFrame == 0, "midstream_start")
	add(r.MissedBytes > 0 || r.Client.AckedUnseen > 0 || r.Server.AckedUnseen > 0, "capture_loss")
	add(r.Client.FINRetrans > 0 || r.Server.FINRetrans > 0, "fin_retransmitted")
	c, s := r.Client.FIN, r.Server.FIN
	add(c != nil && s != nil && math.Abs(c.TS.Sub(s.TS.Time).Seconds()) < simultaneousClose, "simultaneous_close")
	for _, d := range []dir{fromClient, fromServer} {
		f := dirOf(r, d)
		add(f.FIN != nil && len(f.RSTs) > 0 && f.RSTs[0].Frame > f.FIN.Frame, "rst_after_fin")
		add(f.ZeroWindows > 0, "zero_window")
		add(f.KeepAlives > 0, "keepalives")
	}
	add(hasAnomaly(r, "banner_masked") || hasAnomaly(r, "ehlo_keyword_masked") || hasAnomaly(r, "command_masked") || hasAnomaly(r, "masked_command_rejected"), "esmtp_inspection_suspected")
	add(hasAnomaly(r, "ehlo_keyword_masked") || (hasAnomaly(r, "starttls_refused") && !hasExt(r, "STARTTLS")), "starttls_stripped")
	add(hasAnomaly(r, "bare_lf_terminator") || hasAnomaly(r, "bare_lf_in_body") || hasAnomaly(r, "bare_lf_command"), "bare_lf")
	add(r.Pipelined, "pipelining")
	add(r.Auth != nil && !r.TLS, "auth_cleartext")
	add(r.TLS, "tls_opaque")
	return fs
}

// consequences: message lost, duplicate risk, and what the ESA should log
// (from the catalogue).
func consequences(f *facts, e *smtpstate.Ending) {
	v := Verdict(e.Verdict)
	// "Message lost" is a claim: never made when the verdict itself is
	// undetermined, nor when the replies are simply not in the capture.
	if open := f.openTx; open != nil && v != CaptureEnded && v != Undetermined && v != QuitFateUnseen {
		e.MessageLost = open.DataCmd != "" && open.Outcome == "open"
		e.DuplicateRisk = open.EndFrame != 0 && open.FinalReply == "" && open.Outcome == "open"
	}
	if e.MessageLost {
		e.Flags = appendFlag(e.Flags, "message_lost")
	}
	info := v.Info()
	// A server that ends the session itself aborts a transaction even when
	// the client had abandoned it with QUIT; otherwise only an open one
	// shows as aborted.
	open := f.messageOpen
	if v == ServerCloseReply || v == ServerTimeout || v == QuitAfterRejection {
		// A refused transaction left open until QUIT is aborted by the
		// sender in the ESA's words (FORMAT.md: a QUIT with a MID open).
		open = f.openTx != nil
	}
	e.ESAExpect = info.ESA
	if open {
		e.ESAExpect = info.ESAOpen
	}
	e.ESAExpect = append([]string(nil), e.ESAExpect...)
	if len(e.ESAExpect) == 0 {
		e.ESAExpect = nil
	}
}
