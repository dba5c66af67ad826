package smtpstate

// Zeek's connection vocabulary (conn.log's conn_state, history, orig_pkts,
// resp_pkts, orig_bytes, resp_bytes), so a session can be compared with a
// Zeek log of the same traffic. The client is Zeek's originator.

// History bits, one set per direction (Zeek's HIST_* masks).
const (
	histSYN uint16 = 1 << iota
	histFIN
	histRST
	histData
	histACK
	histMulti
	histFinRst
)

// maxHistory bounds the history string (Zeek's is unbounded, but only
// repeated S/H/F/R at new sequence numbers and the scaled T/W/G letters
// can make it grow).
const maxHistory = 128

// Scaled letters: recorded at the 1st, 10th, 100th … occurrence.
const (
	scaledRetrans = iota // T
	scaledZeroWin        // W
	scaledGap            // G
	nScaled
)

var scaledCode = [nScaled]byte{'T', 'W', 'G'}

// histTracker builds the history as packets come, as Zeek's TCP analyzer
// does: uppercase for the client, lowercase for the server, each letter in
// the order it first happened.
type histTracker struct {
	b                         []byte
	seen                      [2]uint16
	lastSYN, lastFIN, lastRST [2]uint32
	cnt, thresh               [2][nScaled]uint32
}

func (h *histTracker) add(d Dir, code byte) {
	if d == FromServer {
		code += 'a' - 'A'
	}
	if len(h.b) < maxHistory {
		h.b = append(h.b, code)
	}
}

// check records code the first time mask is seen in direction d and
// reports whether it had been seen before.
func (h *histTracker) check(d Dir, mask uint16, code byte) bool {
	if h.seen[d]&mask != 0 {
		return true
	}
	h.seen[d] |= mask
	h.add(d, code)
	return false
}

func (h *histTracker) scaled(d Dir, k int) {
	if h.thresh[d][k] == 0 {
		h.thresh[d][k] = 1
	}
	h.cnt[d][k]++
	if h.cnt[d][k] == h.thresh[d][k] {
		h.add(d, scaledCode[k])
		if h.thresh[d][k] < 1e9 {
			h.thresh[d][k] *= 10
		}
	}
}

// packet follows Zeek's update_history for one segment.
func (h *histTracker) packet(p *Packet) {
	d := p.Dir
	syn, fin, rst := p.Flags.Has(FlagSYN), p.Flags.Has(FlagFIN), p.Flags.Has(FlagRST)
	bits := 0
	for _, b := range []bool{syn, fin, rst} {
		if b {
			bits++
		}
	}
	switch {
	case bits > 1 && fin && rst:
		h.check(d, histFinRst, 'I')
	case bits > 1:
		h.check(d, histMulti, 'Q')
	case syn:
		code := byte('S')
		if p.Flags.Has(FlagACK) {
			code = 'H'
		}
		if h.check(d, histSYN, code) && p.Seq != h.lastSYN[d] {
			h.add(d, code)
		}
		h.lastSYN[d] = p.Seq
	case fin:
		end := p.Seq + uint32(p.PayloadLen)
		if h.check(d, histFIN, 'F') && end != h.lastFIN[d] {
			h.add(d, 'F')
		}
		h.lastFIN[d] = end
	case rst:
		if h.check(d, histRST, 'R') && p.Seq != h.lastRST[d] {
			h.add(d, 'R')
		}
		h.lastRST[d] = p.Seq
	case p.PayloadLen > 0:
		h.check(d, histData, 'D')
	case p.Flags.Has(FlagACK):
		h.check(d, histACK, 'A')
	}
}

// swap exchanges the directions (SwapRoles).
func (h *histTracker) swap() {
	h.seen[0], h.seen[1] = h.seen[1], h.seen[0]
	h.lastSYN[0], h.lastSYN[1] = h.lastSYN[1], h.lastSYN[0]
	h.lastFIN[0], h.lastFIN[1] = h.lastFIN[1], h.lastFIN[0]
	h.lastRST[0], h.lastRST[1] = h.lastRST[1], h.lastRST[0]
	h.cnt[0], h.cnt[1] = h.cnt[1], h.cnt[0]
	h.thresh[0], h.thresh[1] = h.thresh[1], h.thresh[0]
	for i, c := range h.b {
		switch {
		case c >= 'A' && c <= 'Z':
			h.b[i] = c + 'a' - 'A'
		case c >= 'a' && c <= 'z':
			h.b[i] = c - ('a' - 'A')
		}
	}
}

// size is Zeek's endpoint size: the sequence space the direction used (or
// the peer acknowledged, when the capture missed packets), without the SYN
// and FIN octets.
func size(f *DirFacts, t, peer *dirTracker) int64 {
	if !t.seqInit {
		return 0
	}
	last := t.nextSeq
	if peer.ackInit && seqGT(peer.ackMax, last) {
		last = peer.ackMax
	}
	n := seqDiff(last, t.startSeq)
	if n < 0 {
		return 0
	}
	if n != 0 {
		n-- // the SYN octet (Zeek counts a midstream start as if it had one)
	}
	if f.FINCount > 0 && n != 0 {
		n--
	}
	return n
}

// Zeek's TCP endpoint states, as far as the record's facts tell them.
type endpointState uint8

const (
	epInactive endpointState = iota
	epSYNSent
	epSYNACKSent
	epPartial
	epEstablished
	epClosed
	epReset
)

func endpointOf(f *DirFacts) endpointState {
	switch {
	case f.Packets == 0:
		return epInactive
	case len(f.RSTs) > 0:
		return epReset
	case f.FIN != nil:
		return epClosed
	case f.SYNFrame == 0:
		return epPartial
	case f.Packets == int64(f.SYNs):
		return epSYNSent // only SYNs (or only SYN-ACKs, for the server)
	}
	return epEstablished
}

// connState is Zeek's conn_state (base/protocols/conn/main.zeek), in its
// order of precedence:
//
//	S0      connection attempt seen, no reply
//	S1      established, not terminated
//	SF      normal establishment and termination
//	REJ     connection attempt rejected
//	S2      established, the originator's close seen (no reply)
//	S3      established, the responder's close seen (no reply)
//	RSTO    established, the originator aborted (RST)
//	RSTR    the responder sent a RST
//	RSTOS0  the originator sent a SYN then a RST, no SYN-ACK seen
//	RSTRH   the responder sent a SYN-ACK then a RST, no SYN seen
//	SH      the originator sent a SYN then a FIN, no SYN-ACK seen
//	SHR     the responder sent a SYN-ACK then a FIN, no SYN seen
//	OTH     no SYN seen, midstream traffic
func connState(r *Record) string {
	os, rs := endpointOf(&r.Client), endpointOf(&r.Server)
	if rs == epSYNSent {
		rs = epSYNACKSent
	}
	oInactive := os == epInactive || os == epPartial
	rInactive := rs == epInactive || rs == epPartial
	switch {
	case rs == epReset:
		switch {
		case os == epSYNSent || os == epSYNACKSent || os == epReset && r.OrigBytes == 0 && r.RespBytes == 0:
			return "REJ"
		case oInactive:
			return "RSTRH"
		}
		return "RSTR"
	case os == epReset:
		if rInactive {
			if rstAfterSYNOnly(r.History) {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == epClosed && os == epClosed:
		return "SF"
	case os == epClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == epClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == epSYNSent && rs == epInactive:
		return "S0"
	case os == epEstablished && rs == epEstablished:
		return "S1"
	}
	return "OTH"
}

// rstAfterSYNOnly matches Zeek's /\^?S[^HAFGIQ]*R.*/ on the history.
func rstAfterSYNOnly(h string) bool {
	if len(h) > 0 && h[0] == '^' {
		h = h[1:]
	}
	if len(h) == 0 || h[0] != 'S' {
		return false
	}
	for i := 1; i < len(h); i++ {
		switch h[i] {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}

// finishZeek fills the Zeek fields at Finish.
func (c *Conn) finishZeek() {
	r := &c.rec
	r.History = string(c.hist.b)
	r.OrigPkts, r.RespPkts = r.Client.Packets, r.Server.Packets
	r.OrigBytes = size(&r.Client, &c.trk[FromClient], &c.trk[FromServer])
	r.RespBytes = size(&r.Server, &c.trk[FromServer], &c.trk[FromClient])
	r.ConnState = connState(r)
	if r.SMTP {
		r.Service = "smtp"
	}
}
