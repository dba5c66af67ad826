package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// Event is one arrow of a session: a packet or an SMTP command or reply,
// in the direction it travelled. Labels never hold a message body or AUTH
// data: the Record does not keep them, and Packets labels only commands and
// reply lines (see PacketLabel).
type Event struct {
	Frame      uint64    `json:"frame,omitempty"`
	TS         time.Time `json:"-"`
	FromClient bool      `json:"from_client"`
	// Kind is syn, synack, cmd, reply, data, tls, ack, fin or rst.
	Kind  string `json:"kind"`
	Label string `json:"label"`
	TTL   int    `json:"ttl,omitempty"`
	// Deciding marks the arrows the verdict's evidence names.
	Deciding bool `json:"deciding,omitempty"`
}

// Events reconstructs the dialogue from the Record's fields: handshake,
// greeting, HELO, each transaction, QUIT, unsolicited replies, FINs and
// RSTs, in frame order (items the Record keeps no frame for stay after the
// item before them). With redact, addresses' local parts are hashed and
// HELO names and greetings dropped.
func Events(r *smtpstate.Record, redact bool) []Event {
	var ev []Event
	add := func(frame uint64, ts time.Time, fromClient bool, kind, label string, ttl int) {
		ev = append(ev, Event{Frame: frame, TS: ts, FromClient: fromClient, Kind: kind, Label: label, TTL: ttl})
	}
	if r.Client.SYNFrame != 0 {
		add(r.Client.SYNFrame, r.Client.FirstTS.Time, true, "syn", "SYN", firstTTL(r.Client))
	}
	if r.Server.SYNFrame != 0 {
		add(r.Server.SYNFrame, r.Server.FirstTS.Time, false, "synack", "SYN-ACK", firstTTL(r.Server))
	}
	if r.Greeting != "" {
		add(0, time.Time{}, false, "reply", redactReply(r.Greeting, redact), 0)
	}
	if r.Helo != "" {
		h := "EHLO " + r.Helo
		if redact {
			h = "EHLO [redacted]"
		}
		add(0, time.Time{}, true, "cmd", h, 0)
	}
	if r.Auth != nil {
		add(0, time.Time{}, true, "cmd", "AUTH "+r.Auth.Mechanism+" (credentials not shown)", 0)
		if r.Auth.Reply != "" {
			add(0, time.Time{}, false, "reply", redactReply(r.Auth.Reply, redact), 0)
		}
	}
	if r.TLSMode == "starttls" {
		add(0, time.Time{}, true, "cmd", "STARTTLS (the rest is encrypted)", 0)
	}
	ev = append(ev, transEvents(r, redact)...)
	for _, u := range r.Unsolicited {
		add(u.ReplyFrame, u.ReplyTS.Time, false, "reply", redactReply(u.Reply, redact)+" (unsolicited)", 0)
	}
	if q := r.Quit; q != nil {
		add(q.CmdFrame, q.CmdTS.Time, true, "cmd", "QUIT", 0)
		if q.Reply != "" {
			add(q.ReplyFrame, q.ReplyTS.Time, false, "reply", redactReply(q.Reply, redact), 0)
		}
	}
	for _, side := range []struct {
		d          smtpstate.DirFacts
		fromClient bool
	}{{r.Client, true}, {r.Server, false}} {
		if f := side.d.FIN; f != nil {
			add(f.Frame, f.TS.Time, side.fromClient, "fin", "FIN", int(f.TTL))
		}
		for _, rst := range side.d.RSTs {
			l := "RST"
			if rst.HasACK {
				l = "RST-ACK"
			}
			add(rst.Frame, rst.TS.Time, side.fromClient, "rst", l, int(rst.TTL))
		}
	}
	markDeciding(r, ev)
	// Items without a frame sort just after the item before them.
	key := make([]uint64, len(ev))
	var last uint64
	for i, e := range ev {
		if e.Frame != 0 {
			last = e.Frame
		}
		key[i] = last
	}
	idx := make([]int, len(ev))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return key[idx[a]] < key[idx[b]] })
	out := make([]Event, len(ev))
	for i, j := range idx {
		out[i] = ev[j]
	}
	return out
}

// transEvents are the commands and replies of each transaction.
func transEvents(r *smtpstate.Record, redact bool) []Event {
	var ev []Event
	add := func(frame uint64, ts time.Time, fromClient bool, kind, label string, ttl int) {
		ev = append(ev, Event{Frame: frame, TS: ts, FromClient: fromClient, Kind: kind, Label: label, TTL: ttl})
	}
	for _, t := range r.Trans {
		add(t.MailFrame, time.Time{}, true, "cmd", "MAIL FROM:<"+RedactAddr(t.MailFrom, redact)+">", 0)
		if t.MailReply != "" {
			add(0, time.Time{}, false, "reply", redactReply(t.MailReply, redact), 0)
		}
		for _, rc := range t.Rcpts {
			add(0, time.Time{}, true, "cmd", "RCPT TO:<"+RedactAddr(rc.Addr, redact)+">", 0)
			if rc.Reply != "" {
				add(0, time.Time{}, false, "reply", redactReply(rc.Reply, redact), 0)
			}
		}
		if t.DataCmd != "" {
			add(0, time.Time{}, true, "cmd", t.DataCmd, 0)
		}
		if t.DataReply != "" {
			add(0, time.Time{}, false, "reply", redactReply(t.DataReply, redact), 0)
		}
		if t.EndFrame != 0 {
			add(t.EndFrame, t.EndTS.Time, true, "data", "end of data ("+strconv.FormatInt(t.BodyBytes, 10)+" body bytes, not shown)", 0)
		}
		if t.FinalReply != "" {
			add(t.FinalFrame, t.FinalTS.Time, false, "reply", redactReply(t.FinalReply, redact), 0)
		}
	}
	return ev
}

// markDeciding sets Deciding on the events whose frame the evidence names.
func markDeciding(r *smtpstate.Record, ev []Event) {
	d := DecidingFrames(r)
	for i := range ev {
		if ev[i].Frame != 0 && d[ev[i].Frame] {
			ev[i].Deciding = true
		}
	}
}

// DecidingFrames are the frames the verdict's evidence names.
func DecidingFrames(r *smtpstate.Record) map[uint64]bool {
	m := map[uint64]bool{}
	if r.Ending != nil {
		for _, e := range r.Ending.Evidence {
			if e.Frame != 0 {
				m[e.Frame] = true
			}
		}
	}
	return m
}

func firstTTL(d smtpstate.DirFacts) int {
	if len(d.TTLs) > 0 {
		return int(d.TTLs[0].TTL)
	}
	return 0
}

// redactReply drops a reply's text when redacting (it may name hosts),
// keeping the code and the enhanced status code.
func redactReply(s string, redact bool) string {
	if !redact {
		return s
	}
	f := strings.Fields(s)
	switch {
	case len(f) >= 2 && strings.Count(f[1], ".") == 2 && len(f[1]) <= 9:
		return f[0] + " " + f[1] + " [text redacted]"
	case len(f) >= 1:
		return f[0] + " [text redacted]"
	}
	return s
}

// RedactAddr hashes an address's local part when redact is set:
// alice@example.org becomes u-3b1f0c2a@example.org. The same local part
// always gives the same token, so sessions can still be compared.
func RedactAddr(a string, redact bool) string {
	if !redact || a == "" {
		return a
	}
	local, domain := a, ""
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		local, domain = a[:i], a[i:]
	}
	return fmt.Sprintf("u-%08x%s", fnv32(local), domain)
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
