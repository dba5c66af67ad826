package smtpstate

import (
	"fmt"
	"sort"
	"time"
)

// Sequence-space comparisons (RFC 1982 serial arithmetic).
func seqDiff(a, b uint32) int64 { return int64(int32(a - b)) }
func seqLT(a, b uint32) bool    { return int32(a-b) < 0 }
func seqGT(a, b uint32) bool    { return int32(a-b) > 0 }

// dirTracker is the working state of one direction: what the next packet
// is compared with. It never leaves the Conn; what it proves is written into
// DirFacts and RST when it is proved.
type dirTracker struct {
	seqInit  bool
	startSeq uint32 // the ISN (or, midstream, the first seq - 1)
	hiSeq    uint32 // highest seq+len of any packet, pure ACKs included
	nextSeq  uint32 // highest seq+len (+1 for SYN/FIN) seen
	ackMax   uint32 // highest ACK sent by this direction
	ackInit  bool
	runSeq   uint32
	runLen   int
	runFirst uint64
	runT0    time.Time
	runAcked bool
	macFirst [6]byte
	hasMAC   bool
	hasIPID  bool
}

// challengeWindow is how soon after a RST a pure ACK from its receiver counts
// as an RFC 5961 challenge ACK.
const challengeWindow = time.Second

// Packet records the TCP facts of one segment. Call it before delivering the
// segment's bytes.
func (c *Conn) Packet(p *Packet) {
	r := &c.rec
	idle := 0.0
	if !c.lastPkt.IsZero() {
		idle = p.Time.Sub(c.lastPkt).Seconds()
	}
	if idle > r.MaxIdle {
		r.MaxIdle, r.MaxIdleFrame = round3(idle), p.Frame
	}
	if r.TS.IsZero() {
		r.TS = Time{p.Time}
		r.FirstFrame = p.Frame
	}
	if p.Time.After(c.lastPkt) {
		c.lastPkt = p.Time
		r.EndTS = Time{p.Time}
	}
	r.LastFrame = p.Frame
	f, t := c.dir(p.Dir), &c.trk[p.Dir]
	f.Packets++
	f.PayloadBytes += int64(p.PayloadLen)
	if f.FirstTS.IsZero() {
		f.FirstTS = Time{p.Time}
	}
	f.LastTS = Time{p.Time}
	if p.PayloadLen > 0 {
		f.LastDataTS = Time{p.Time}
		f.LastDataFrm = p.Frame
	}
	if p.HasMAC {
		if !t.hasMAC {
			t.hasMAC, t.macFirst = true, p.SrcMAC
			f.MAC = macString(p.SrcMAC)
		} else if p.SrcMAC != t.macFirst && !p.Flags.Has(FlagRST) {
			f.MACChanged = true
		}
	}
	rst := p.Flags.Has(FlagRST)
	if !rst {
		addTTL(f, p.TTL)
		if p.HasIPID {
			f.LastIPID, t.hasIPID = p.IPID, true
		}
	}
	c.hist.packet(p)
	c.trackRTT(p)
	c.trackSeq(f, t, p)
	if p.Flags.Has(FlagACK) && !rst {
		c.trackAck(p)
	}
	if p.Flags.Has(FlagFIN) && !rst {
		f.FINCount++
		if f.FIN == nil {
			f.FIN = &Segment{Frame: p.Frame, TS: Time{p.Time}, Seq: p.Seq + uint32(p.PayloadLen), TTL: p.TTL, Data: p.PayloadLen}
		}
		c.firstClose(p, "fin", idle)
	}
	if rst {
		c.recordRST(f, t, p, idle)
	} else {
		c.prevGap = idle
	}
	// A pure ACK from the receiver of a recent RST is a challenge ACK.
	if c.lastRST != nil && c.lastRST.ChallengeACK == 0 && p.Dir != c.lastRSTd &&
		p.Flags == FlagACK && p.PayloadLen == 0 && p.Time.Sub(c.lastRST.TS.Time) <= challengeWindow {
		c.lastRST.ChallengeACK = p.Frame
	}
}

// trackRTT measures the handshake at the capture point.
func (c *Conn) trackRTT(p *Packet) {
	r := &c.rec
	switch {
	case p.Flags.Has(FlagSYN) && p.Flags.Has(FlagACK) && p.Dir == FromServer && r.RTTServer == 0 && !c.synAt.IsZero():
		r.RTTServer = round6(p.Time.Sub(c.synAt).Seconds())
		c.synAckAt = p.Time
	case p.Flags.Has(FlagSYN) && !p.Flags.Has(FlagACK) && p.Dir == FromClient && c.synAt.IsZero():
		c.synAt = p.Time
	case p.Dir == FromClient && p.Flags == FlagACK && r.RTTClient == 0 && !c.synAckAt.IsZero():
		r.RTTClient = round6(p.Time.Sub(c.synAckAt).Seconds())
	}
	if !p.Flags.Has(FlagRST) {
		c.lastFrom[p.Dir] = p.Time
	}
}

func round6(v float64) float64 { return float64(int64(v*1e6+0.5)) / 1e6 }

func (c *Conn) firstClose(p *Packet, kind string, idle float64) {
	if !c.closed {
		c.closed = true
		c.closeAt = c.state
		c.rec.FirstClose = &CloseFact{By: p.Dir.String(), Kind: kind, Frame: p.Frame, TS: Time{p.Time}, Phase: c.state, AfterIdle: round3(idle)}
	}
}

func (c *Conn) trackSeq(f *DirFacts, t *dirTracker, p *Packet) {
	fin := p.Flags.Has(FlagFIN)
	if p.Flags.Has(FlagSYN) {
		f.SYNs++
		if f.SYNFrame == 0 {
			f.SYNFrame, f.ISN = p.Frame, p.Seq
		}
		if !t.seqInit {
			t.seqInit, t.nextSeq, t.startSeq, t.hiSeq = true, p.Seq+1, p.Seq, p.Seq+1
		}
		return
	}
	end := p.Seq + uint32(p.PayloadLen)
	if fin {
		end++
	}
	if !t.seqInit {
		t.seqInit, t.nextSeq, t.startSeq, t.hiSeq = true, end, p.Seq-1, end
		return
	}
	if p.Flags.Has(FlagRST) {
		return
	}
	// Zeek's history 't': payload below the highest sequence seen, even
	// when a pure ACK (captured first) is what went ahead.
	if p.PayloadLen > 0 && seqLT(p.Seq, t.hiSeq) {
		c.hist.scaled(p.Dir, scaledRetrans)
	}
	if seqGT(end, t.hiSeq) {
		t.hiSeq = end
	}
	if c.rstSeen[p.Dir] && f.DataAfterRST == 0 && (p.PayloadLen > 0 || fin) && !seqLT(p.Seq, c.rstSeq[p.Dir]) {
		f.DataAfterRST = p.Frame
	}
	if p.PayloadLen <= 1 && !fin && p.Seq+1 == t.nextSeq {
		f.KeepAlives++
		return
	}
	if p.PayloadLen == 0 && !fin {
		return
	}
	switch {
	case seqLT(p.Seq, t.nextSeq):
		f.Retrans++
		if fin && f.FIN != nil && p.Seq+uint32(p.PayloadLen) == f.FIN.Seq {
			f.FINRetrans++
		}
		if t.runLen > 0 && p.Seq == t.runSeq {
			t.runLen++
		} else {
			finishRun(f, t)
			t.runSeq, t.runLen, t.runFirst, t.runT0, t.runAcked = p.Seq, 1, p.Frame, p.Time, false
		}
		if f.RetransRun == nil || t.runLen > f.RetransRun.Count || (f.RetransRun.Seq == t.runSeq && f.RetransRun.FirstFrame == t.runFirst) {
			f.RetransRun = &Run{Seq: t.runSeq, Count: t.runLen, FirstFrame: t.runFirst, Span: p.Time.Sub(t.runT0).Seconds(), Acked: t.runAcked}
		}
	case seqGT(p.Seq, t.nextSeq):
		f.OutOfOrder++
	}
	if seqGT(end, t.nextSeq) {
		t.nextSeq = end
	}
}

// finishRun folds the current run's acknowledgement state into RetransRun.
func finishRun(f *DirFacts, t *dirTracker) {
	if f.RetransRun != nil && f.RetransRun.Seq == t.runSeq && f.RetransRun.FirstFrame == t.runFirst {
		f.RetransRun.Acked = t.runAcked
	}
}

func (c *Conn) trackAck(p *Packet) {
	f, peer := &c.trk[p.Dir], c.dir(p.Dir.Other())
	pt := &c.trk[p.Dir.Other()]
	if !f.ackInit || seqGT(p.Ack, f.ackMax) {
		f.ackInit, f.ackMax = true, p.Ack
	}
	if pt.runLen > 0 && seqGT(p.Ack, pt.runSeq) {
		pt.runAcked = true
		finishRun(peer, pt)
	}
	if pt.seqInit && seqGT(p.Ack, pt.nextSeq) {
		// The peer's bytes were acknowledged but never captured.
		peer.AckedUnseen += seqDiff(p.Ack, pt.nextSeq)
		pt.nextSeq = p.Ack
		c.anomaly("capture_loss")
	}
	if p.Window == 0 && !p.Flags.Has(FlagSYN) {
		c.dir(p.Dir).ZeroWindows++
		c.hist.scaled(p.Dir, scaledZeroWin)
	}
}

func (c *Conn) recordRST(f *DirFacts, t *dirTracker, p *Packet, idle float64) {
	x := RST{Frame: p.Frame, TS: Time{p.Time}, Seq: p.Seq, Ack: p.Ack, HasACK: p.Flags.Has(FlagACK),
		TTL: p.TTL, IPID: p.IPID, Window: p.Window, AfterIdle: round3(idle), ResumeGap: round3(idle)}
	if idle < 1 {
		x.ResumeGap = round3(c.prevGap)
	}
	if t := c.lastFrom[p.Dir.Other()]; !t.IsZero() {
		x.TriggerDelay = round6(p.Time.Sub(t).Seconds())
	}
	if t.seqInit {
		x.SeqKnown = true
		x.SeqDelta = seqDiff(p.Seq, t.nextSeq)
	}
	// What the RST's numbers prove is decided now, against the state the
	// RST met: later packets must not change it.
	if pt := &c.trk[p.Dir.Other()]; pt.ackInit && p.Seq == pt.ackMax {
		x.SeqIsPeerAck = true
	}
	if p.HasIPID && t.hasIPID && f.LastIPID != 0 {
		x.IPIDKnown = true
		x.IPIDStep = (int(p.IPID) - int(f.LastIPID) + 65536) % 65536
	}
	if len(p.Payload) > 0 {
		x.Payload = printable(p.Payload)
	}
	if p.HasMAC && t.hasMAC && p.SrcMAC != t.macFirst {
		x.MAC = macString(p.SrcMAC)
	}
	if !c.rstSeen[p.Dir] {
		c.rstSeen[p.Dir], c.rstSeq[p.Dir] = true, p.Seq
	}
	c.firstClose(p, "rst", idle)
	if len(f.RSTs) < maxRSTs {
		f.RSTs = append(f.RSTs, x)
		c.lastRST, c.lastRSTd = &f.RSTs[len(f.RSTs)-1], p.Dir
	}
}

func addTTL(f *DirFacts, ttl uint8) {
	for i := range f.TTLs {
		if f.TTLs[i].TTL == ttl {
			f.TTLs[i].Count++
			return
		}
	}
	if len(f.TTLs) < 4 {
		f.TTLs = append(f.TTLs, TTLCount{TTL: ttl, Count: 1})
	}
}

func sortTTLs(f *DirFacts) {
	sort.SliceStable(f.TTLs, func(i, j int) bool { return f.TTLs[i].Count > f.TTLs[j].Count })
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

func round3(v float64) float64 {
	return float64(int64(v*1000+0.5)) / 1000
}

// printable escapes bytes for a report: printable ASCII kept, others \xNN.
func printable(b []byte) string {
	const hex = "0123456789abcdef"
	if len(b) > 128 {
		b = b[:128]
	}
	out := make([]byte, 0, len(b))
	for _, ch := range b {
		switch {
		case ch >= 0x20 && ch < 0x7f && ch != '\\':
			out = append(out, ch)
		default:
			out = append(out, '\\', 'x', hex[ch>>4], hex[ch&15])
		}
	}
	return string(out)
}
