package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/smtpcap/smtpcap/capture"
	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/report"
)

// collector re-reads the capture for the selected sessions: it draws each
// packet as a ladder event and writes it to sessions.pcapng. A packet
// belongs to a session by 4-tuple within the session's first..last frame.
// Labels name SMTP commands and reply lines only: message data, AUTH
// exchanges and TLS are shown as byte counts, never as content.
type collector struct {
	byTuple map[string][]*collected
	redact  bool
	pcap    *capture.NgWriter
	trunc   bool // --redact-pcap
	frames  func(uint64) string
	err     error
}

type collected struct {
	r        *smtpstate.Record
	deciding map[uint64]bool
	events   []report.Event
	clipped  int
	// dialogue state, to tell commands from data
	inBody, inAuth, tls, startTLS bool
}

const maxEventsPerSession = 2000

func tupleKey(a string, ap uint16, b string, bp uint16) string {
	x, y := a+"|"+strconv.Itoa(int(ap)), b+"|"+strconv.Itoa(int(bp))
	if x > y {
		x, y = y, x
	}
	return x + "|" + y
}

func newCollector(rs []*smtpstate.Record, redact bool) *collector {
	c := &collector{byTuple: map[string][]*collected{}, redact: redact}
	for _, r := range rs {
		k := tupleKey(r.OrigH, r.OrigP, r.RespH, r.RespP)
		c.byTuple[k] = append(c.byTuple[k], &collected{r: r, deciding: report.DecidingFrames(r)})
	}
	return c
}

// frame takes one frame of the capture.
func (c *collector) frame(f *capture.Frame) {
	p := gopacket.NewPacket(f.Data, f.LinkType, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	// The innermost IP header before TCP (a GRE, ERSPAN or VXLAN tunnel has
	// an outer one).
	var src, dst string
	var ttl int
	var tcp *layers.TCP
	for _, l := range p.Layers() {
		switch x := l.(type) {
		case *layers.IPv4:
			src, dst, ttl = x.SrcIP.String(), x.DstIP.String(), int(x.TTL)
		case *layers.IPv6:
			src, dst, ttl = x.SrcIP.String(), x.DstIP.String(), int(x.HopLimit)
		case *layers.TCP:
			tcp = x
		}
		if tcp != nil {
			break
		}
	}
	if tcp == nil || src == "" {
		return
	}
	var s *collected
	for _, cand := range c.byTuple[tupleKey(src, uint16(tcp.SrcPort), dst, uint16(tcp.DstPort))] {
		if f.Number >= cand.r.FirstFrame && f.Number <= cand.r.LastFrame {
			s = cand
			break
		}
	}
	if s == nil {
		return
	}
	fromClient := src == s.r.OrigH && uint16(tcp.SrcPort) == s.r.OrigP
	payload := tcp.Payload
	ev := report.Event{Frame: f.Number, TS: f.CI.Timestamp, FromClient: fromClient, TTL: ttl, Deciding: s.deciding[f.Number]}
	safeLen := 0
	switch {
	case tcp.SYN && tcp.ACK:
		ev.Kind, ev.Label = "synack", "SYN-ACK"
	case tcp.SYN:
		ev.Kind, ev.Label = "syn", "SYN"
	case tcp.RST:
		ev.Kind, ev.Label = "rst", "RST"
		if tcp.ACK {
			ev.Label = "RST-ACK"
		}
	case len(payload) > 0:
		ev.Kind, ev.Label, safeLen = s.label(fromClient, payload, c.redact)
		if tcp.FIN {
			ev.Label += " +FIN"
		}
	case tcp.FIN:
		ev.Kind, ev.Label = "fin", "FIN"
	default:
		ev.Kind = "ack"
	}
	if c.pcap != nil && c.err == nil {
		keep := 0
		if c.trunc {
			keep = len(f.Data) - len(payload) + safeLen
			if keep == 0 {
				keep = len(f.Data) - len(payload)
			}
		}
		com := []string{"smtpcap session " + s.r.UID + " " + dirName(fromClient)}
		if ev.Deciding && s.r.Ending != nil {
			com = append(com, fmt.Sprintf("smtpcap verdict %v (%s, %s): %s", s.r.Ending.Verdict, s.r.Ending.Who, s.r.Ending.Confidence, evidenceAt(s.r, f.Number)))
		}
		c.err = c.pcap.Write(f.LinkType, f.CI, f.Data, keep, com...)
	}
	if ev.Kind == "ack" && !ev.Deciding {
		return // pure ACKs are in the pcapng, not on the ladder
	}
	if len(s.events) >= maxEventsPerSession {
		s.clipped++
		return
	}
	s.events = append(s.events, ev)
}

func dirName(fromClient bool) string {
	if fromClient {
		return "client->server"
	}
	return "server->client"
}

func evidenceAt(r *smtpstate.Record, frame uint64) string {
	var t []string
	for _, e := range r.Ending.Evidence {
		if e.Frame == frame {
			t = append(t, e.Text)
		}
	}
	return report.Safe(strings.Join(t, "; "))
}

var smtpVerbs = map[string]bool{"HELO": true, "EHLO": true, "MAIL": true, "RCPT": true, "DATA": true, "BDAT": true, "RSET": true,
	"QUIT": true, "NOOP": true, "STARTTLS": true, "AUTH": true, "VRFY": true, "EXPN": true, "HELP": true, "ETRN": true, "XCLIENT": true, "XFORWARD": true}

// label names a data segment and returns how many of its bytes are SMTP
// commands or replies (what --redact-pcap keeps).
func (s *collected) label(fromClient bool, p []byte, redact bool) (kind, label string, safe int) {
	n := strconv.Itoa(len(p))
	if s.tls {
		return "tls", "TLS (" + n + " bytes)", 0
	}
	if fromClient {
		if s.inBody {
			return "data", "message data (" + n + " bytes, not shown)", 0
		}
		if s.inAuth {
			return "data", "AUTH data (" + n + " bytes, not shown)", 0
		}
		return s.clientLabel(p, redact)
	}
	return s.serverLabel(p, redact)
}

// clientLabel names a client segment by its command lines (pipelined
// commands are one arrow); it stops at DATA, BDAT and AUTH, whose following
// bytes are never shown.
func (s *collected) clientLabel(p []byte, redact bool) (kind, label string, safe int) {
	n := strconv.Itoa(len(p))
	var cmds []string
	off := 0
	for off < len(p) {
		end := indexCRLF(p[off:])
		if end < 0 {
			break
		}
		line := string(p[off : off+end])
		f := strings.Fields(line)
		if len(f) == 0 || !smtpVerbs[strings.ToUpper(f[0])] {
			break
		}
		verb := strings.ToUpper(f[0])
		lab := line
		lineEnd := off + end + 2
		switch verb {
		case "AUTH":
			lab = "AUTH"
			if len(f) > 1 {
				lab += " " + f[1]
			}
			if len(f) > 2 {
				lab += " (initial response not shown)"
			}
			s.inAuth = true
			lineEnd = off + len(f[0])
			if len(f) > 1 {
				lineEnd = off + strings.Index(line, f[1]) + len(f[1])
			}
		case "EHLO", "HELO":
			if redact {
				lab = verb + " [redacted]"
			}
		case "MAIL", "RCPT":
			if redact {
				lab = redactCmd(line)
			}
		case "DATA", "BDAT":
			s.inBody = true
		case "STARTTLS":
			s.startTLS = true
		}
		cmds = append(cmds, lab)
		safe = lineEnd
		off += end + 2
		if s.inBody || s.inAuth {
			break
		}
	}
	if len(cmds) == 0 {
		return "data", "data (" + n + " bytes)", 0
	}
	if off < len(p) && !s.inBody && !s.inAuth {
		cmds = append(cmds, "…")
	}
	return "cmd", strings.Join(cmds, " | "), safe
}

// serverLabel names a server segment by its replies (a multi-line reply
// by its first line and a count; a 334 challenge is not shown).
func (s *collected) serverLabel(p []byte, redact bool) (kind, label string, safe int) {
	n := strconv.Itoa(len(p))
	var replies []string
	var firstLine string
	more := 0
	off := 0
	for off < len(p) {
		end := indexCRLF(p[off:])
		if end < 0 {
			break
		}
		line := string(p[off : off+end])
		off += end + 2
		if len(line) < 3 {
			break
		}
		code := line[:3]
		last := len(line) == 3 || line[3] != '-'
		if !last {
			if more == 0 {
				firstLine = line
			}
			more++
			safe = off
			continue // multi-line: drawn as its first line and a count
		}
		lab := line
		if more > 0 {
			lab = firstLine + " (+" + strconv.Itoa(more) + " lines)"
			more = 0
		}
		switch {
		case code == "334":
			lab = "334 (challenge not shown)"
			safe = off - end - 2 + 3
		case redact:
			lab = code + " [text redacted]"
		}
		if code != "334" {
			safe = off
			s.inAuth = false
		}
		if code != "354" {
			s.inBody = false
		}
		if s.startTLS && code == "220" {
			s.tls = true
		}
		s.startTLS = false
		replies = append(replies, lab)
	}
	if len(replies) == 0 {
		return "data", "data (" + n + " bytes)", 0
	}
	return "reply", strings.Join(replies, " | "), safe
}

func redactCmd(line string) string {
	i, j := strings.IndexByte(line, '<'), strings.IndexByte(line, '>')
	if i < 0 || j < i {
		return strings.Fields(line)[0] + " [redacted]"
	}
	return line[:i+1] + report.RedactAddr(line[i+1:j], true) + line[j:]
}

func indexCRLF(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return i
		}
	}
	return -1
}
