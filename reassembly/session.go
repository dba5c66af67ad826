package reassembly

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// session is our table's entry for one TCP connection; gopacket's streams
// are thin wrappers pointing at it.
type session struct {
	key        connKey
	conn       *smtpstate.Conn
	clientNet  gopacket.Endpoint
	clientPort gopacket.Endpoint
	smtpPort   bool
	finalized  bool
	// pos is the next stream sequence number delivered per direction, so
	// bytes are never delivered twice when gopacket re-creates a connection.
	pos      [2]uint32
	posValid [2]bool
	// intrusive list links
	prev, next *session
	list       *list
}

func (a *Analyzer) newSession(k connKey, tcp *layers.TCP) *session {
	src, dst := k[0].Src(), k[0].Dst()
	sp, dp := k[1].Src(), k[1].Dst()
	srcPort, dstPort := uint16(tcp.SrcPort), uint16(tcp.DstPort)
	senderIsClient, basis := true, "first_packet"
	switch {
	case tcp.SYN && !tcp.ACK:
		basis = "syn"
	case tcp.SYN && tcp.ACK:
		senderIsClient, basis = false, "synack"
	case a.isSMTPPort(dstPort) && !a.isSMTPPort(srcPort):
		basis = "port"
	case a.isSMTPPort(srcPort) && !a.isSMTPPort(dstPort):
		senderIsClient, basis = false, "port"
	case a.isSMTPPort(dstPort) && a.isSMTPPort(srcPort):
		basis = "port"
		if srcPort < dstPort {
			senderIsClient = false
		}
	}
	s := &session{key: k}
	cli, srv := endpoint(src, sp), endpoint(dst, dp)
	s.clientNet, s.clientPort = src, sp
	if !senderIsClient {
		cli, srv = srv, cli
		s.clientNet, s.clientPort = dst, dp
	}
	s.smtpPort = a.isSMTPPort(srv.Port)
	s.conn = smtpstate.NewConn(cli, srv, basis, smtpstate.Config{ImplicitTLS: srv.Port == 465})
	a.table[k] = s
	a.table[connKey{k[0].Reverse(), k[1].Reverse()}] = s
	a.active.pushBack(s)
	return s
}

func (s *session) isClient(n, t gopacket.Endpoint) bool {
	return n == s.clientNet && t == s.clientPort
}

// stream implements reassembly.Stream for one gopacket connection.
type stream struct {
	a         *Analyzer
	s         *session
	stray     bool
	aIsClient bool // gopacket's "client" (first packet's sender) is our client
	start     [2]uint32
	begun     [2]bool
}

func (w *stream) dir(d reassembly.TCPFlowDirection) smtpstate.Dir {
	fromA := d == reassembly.TCPDirClientToServer
	if fromA == w.aIsClient != w.s.conn.Swapped() {
		return smtpstate.FromClient
	}
	return smtpstate.FromServer
}

// Accept records the segment's TCP facts and always accepts it (checksums
// are not validated); it forces the start of a half without SYN, so
// sessions whose beginning is not captured are analysed too.
func (w *stream) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, gd reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, ac reassembly.AssemblerContext) bool {
	a := w.a
	if w.stray || w.s.finalized {
		a.stats.Strays++
		return false
	}
	s := w.s
	d := w.dir(gd)
	c := ac.(*pktCtx)
	if a.replaying {
		return w.acceptBytes(tcp, d, nextSeq, start)
	}
	p := smtpstate.Packet{Frame: c.frame, Time: ci.Timestamp, Dir: d, Flags: tcpFlags(tcp), Seq: tcp.Seq, Ack: tcp.Ack,
		Window: tcp.Window, TTL: c.ttl, IPID: c.ipid, HasIPID: c.hasIPID, PayloadLen: len(tcp.Payload), SrcMAC: c.mac, HasMAC: c.hasMAC}
	if tcp.RST && len(tcp.Payload) > 0 {
		p.Payload = tcp.Payload
	}
	s.conn.Packet(&p)
	s.list.moveToBack(s)
	if s.list == &a.active && s.conn.Closed() {
		a.active.remove(s)
		a.closed.pushBack(s)
	}
	// The peer acknowledges bytes we have not delivered: they are queued
	// behind a hole the capture lost (the peer got them). Deliver them now,
	// with the gap, before this packet's own bytes: hold it back, flush,
	// and replay it (see Analyzer.Frame).
	if o := d.Other(); tcp.ACK && s.posValid[o] && int32(tcp.Ack-s.pos[o]) > 1 && s.conn.Ahead(o, tcp.Ack) {
		a.flushReq = true
		return false
	}
	return w.acceptBytes(tcp, d, nextSeq, start)
}

// acceptBytes is the part of Accept that concerns stream positions.
func (w *stream) acceptBytes(tcp *layers.TCP, d smtpstate.Dir, nextSeq reassembly.Sequence, start *bool) bool {
	a := w.a
	if nextSeq == invalidSeq {
		*start = true
		w.start[d] = tcp.Seq
		if tcp.SYN {
			w.start[d]++
		}
		w.begun[d] = false
	} else if len(tcp.Payload) > 0 && nextSeq.Difference(reassembly.Sequence(tcp.Seq)) > 0 {
		a.detach = true // queued out of order: its context must survive
	}
	return true
}

const invalidSeq = reassembly.Sequence(-1)

// tcpFlags reads the header's flags byte: smtpstate.Flags are defined bit
// for bit as on the wire (FIN 0x01 … CWR 0x80).
func tcpFlags(t *layers.TCP) smtpstate.Flags {
	if len(t.Contents) >= 14 {
		return smtpstate.Flags(t.Contents[13])
	}
	return 0
}

// ReassembledSG delivers in-order bytes, trimming what an earlier gopacket
// connection of the same session already delivered and reporting gaps.
func (w *stream) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	if w.stray || w.s.finalized {
		return
	}
	s := w.s
	gd, _, _, skip := sg.Info()
	d := w.dir(gd)
	n, _ := sg.Lengths()
	c, _ := ac.(*pktCtx)
	var frame uint64
	ts := w.a.now
	if c != nil {
		frame, ts = c.frame, c.ci.Timestamp
	}
	begin := s.pos[d]
	if !w.begun[d] {
		// The first chunk of this gopacket half starts where the half was
		// started (a new half of a re-created connection may overlap what
		// the session already has, or leave a hole).
		w.begun[d], begin = true, w.start[d]
		if !s.posValid[d] {
			s.pos[d], s.posValid[d] = begin, true
		}
	}
	if skip > 0 {
		begin += uint32(skip)
	}
	if int32(begin-s.pos[d]) > 0 {
		s.conn.Gap(d, int64(begin-s.pos[d]), frame, ts)
		s.pos[d] = begin
	}
	if n == 0 {
		return
	}
	data := sg.Fetch(n)
	if int32(s.pos[d]-begin) > 0 {
		trim := int(s.pos[d] - begin)
		if trim >= len(data) {
			return
		}
		data, begin = data[trim:], s.pos[d]
	}
	s.pos[d], s.posValid[d] = begin+uint32(len(data)), true
	s.conn.Deliver(d, data, frame, ts)
}

// ReassemblyComplete lets gopacket drop its connection; our table keeps the
// session until it is finalized by capture time.
func (w *stream) ReassemblyComplete(ac reassembly.AssemblerContext) bool { return true }

// list is an intrusive doubly linked list of sessions ordered by activity.
type list struct {
	head, tail *session
	n          int
}

func (l *list) front() *session { return l.head }

func (l *list) pushBack(s *session) {
	s.list, s.prev, s.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
	l.n++
}

func (l *list) remove(s *session) {
	if s.list != l {
		return
	}
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next, s.list = nil, nil, nil
	l.n--
}

func (l *list) moveToBack(s *session) {
	if l == nil || l.tail == s {
		return
	}
	l.remove(s)
	l.pushBack(s)
}
