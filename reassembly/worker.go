package reassembly

import (
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// session is our table's entry for one TCP connection: the table, not
// gopacket, decides when a connection begins and ends.
type session struct {
	key      fkey
	conn     *smtpstate.Conn
	first    uint64 // frame that opened it (the output order)
	cliIsA   bool   // the key's endpoint a is the client
	smtpPort bool
	h        [2]half // [0] sent by endpoint a, [1] by b
	isn      [2]uint32
	synSeen  [2]bool
	waiting  bool // in worker.waiting (bytes queued)
	// A session opened by a bare SYN stays light (no Conn) until its peer
	// answers or anything else arrives: a scan of SYNs that are never
	// answered costs a few hundred bytes each. pend holds its SYNs.
	pend []segment
	// the last segments' signatures per side, to drop a SPAN port's copies
	// (allocated with the Conn: a half-open session stays small)
	dups *dupState
	// activity list (active or closed, least recently active first)
	prev, next *session
	list       *list
	// open sessions in creation order (the oldest open bounds the output)
	oprev, onext *session
}

// dirOf maps a side of the key to the dialogue's direction now (a
// greeting may have swapped the roles).
func (s *session) dirOf(side int) smtpstate.Dir {
	if (side == 0) == s.cliIsA != (s.conn != nil && s.conn.Swapped()) {
		return smtpstate.FromClient
	}
	return smtpstate.FromServer
}

func (s *session) deliver(side int, b []byte, frame uint64, ts time.Time) {
	s.conn.Deliver(s.dirOf(side), b, frame, ts)
}

func (s *session) gap(side int, n int64, frame uint64, ts time.Time) {
	s.conn.Gap(s.dirOf(side), n, frame, ts)
}

// finished is a record with its place in the output.
type finished struct {
	k1, k2 uint64
	rec    *smtpstate.Record
}

// worker owns a session table. One runs inline, or one per goroutine with
// the sessions of its share of the flow hash.
type worker struct {
	opt     *Options
	ports   *[65536 / 64]uint64
	table   map[fkey]*session
	active  list // open sessions, by last packet
	closed  list // closed (FIN both ways or RST), lingering for trailing packets
	ohead   *session
	otail   *session
	waiting []*session
	halfo   list // half-open sessions (bare SYNs, no Conn yet), by last packet
	tombs   map[fkey]tombInfo
	tombQ   []tomb
	bufs    [][]byte
	queued  int
	now     time.Time
	frame   uint64 // the frame being processed (or the tick's position)
	out     []finished
	stats   Stats
}

// tomb remembers a finalized 4-tuple so that its stray packets (and a late
// retransmission of its SYN) are not taken for a new session.
type tomb struct {
	key fkey
	at  time.Time
}

type tombInfo struct {
	at     time.Time
	side   int // the side that sent the SYN
	isn    uint32
	hasISN bool
	// next sequence number of each side, to tell the next connection on
	// the 4-tuple, whose handshake the capture lost, from strays
	next    [2]uint32
	hasNext [2]bool
}

// foreign says a segment that is no SYN belongs to another connection on
// the same 4-tuple: its sequence number and its acknowledgment are both
// far (1 MiB: more than any data in flight after a close) from where
// either side of the old one stood - the next
// connection, whose SYN and SYN-ACK the capture lost. A RST never is (a
// middlebox's, out of window, would open a session of its own).
func foreign(sg *segment, side int, next [2]uint32, has [2]bool) bool {
	if sg.flags.Has(smtpstate.FlagRST) || !sg.flags.Has(smtpstate.FlagACK) || !has[side] || !has[1-side] {
		return false
	}
	return farSeq(sg.seq, next[side]) && farSeq(sg.ack, next[1-side])
}

func farSeq(a, b uint32) bool {
	d := int32(a - b)
	return d > 1<<20 || d < -(1<<20)
}

const tombLife = 2 * time.Minute

func newWorker(opt *Options, ports *[65536 / 64]uint64) *worker {
	return &worker{opt: opt, ports: ports, table: map[fkey]*session{}, tombs: map[fkey]tombInfo{}}
}

func (w *worker) isSMTPPort(p uint16) bool { return w.ports[p/64]&(1<<(p%64)) != 0 }

// packet handles one segment: the session it belongs to (a new one on a
// new SYN), its TCP facts, then its bytes.
func (w *worker) packet(sg *segment) {
	w.now, w.frame = sg.now, sg.frame
	k, fromA := canon(sg.src, sg.sport, sg.dst, sg.dport)
	side := 1
	if fromA {
		side = 0
	}
	if sg.badsum {
		// The receiver dropped it: it is no part of the conversation.
		if s := w.table[k]; s != nil && s.conn != nil {
			s.conn.BadChecksum()
		}
		return
	}
	syn := sg.flags.Has(smtpstate.FlagSYN)
	bareSYN := syn && !sg.flags.Has(smtpstate.FlagACK) && len(sg.payload) == 0
	s := w.table[k]
	if s != nil && s.conn == nil {
		if bareSYN && s.synSeen[side] && s.isn[side] == sg.seq && len(s.pend) < maxPendSYN {
			s.pend = append(s.pend, *sg) // a retransmitted SYN: still half-open
			s.list.moveToBack(s)
			return
		}
		w.materialize(s)
	}
	if s != nil && syn && w.newConnection(s, side, sg) {
		s = nil
	}
	fresh := false // the next connection, whose handshake was lost
	if s != nil && !syn && w.foreignToEnded(s, side, sg) {
		w.finalize(s, "closed")
		s, fresh = nil, true
	}
	if s == nil {
		if t, ok := w.tombs[k]; ok && !fresh && (!syn || (t.hasISN && t.side == side && t.isn == sg.seq)) {
			if syn || !foreign(sg, side, t.next, t.hasNext) {
				w.stats.Strays++
				return
			}
		}
		if w.active.n+w.closed.n+w.halfo.n >= w.opt.MaxSessions {
			w.evict()
		}
		if bareSYN {
			s = w.newSession(k, fromA, sg, false)
			s.synSeen[side], s.isn[side] = true, sg.seq
			s.pend = append(s.pend, *sg)
			w.halfo.pushBack(s)
			return
		}
		s = w.newSession(k, fromA, sg, true)
	}
	w.apply(s, side, sg)
}

// foreignToEnded: s has ended (closed, or a FIN seen) and sg belongs to
// the next connection on its 4-tuple (foreign).
func (w *worker) foreignToEnded(s *session, side int, sg *segment) bool {
	if !foreign(sg, side, [2]uint32{s.h[0].next, s.h[1].next}, [2]bool{s.h[0].started, s.h[1].started}) {
		return false
	}
	r := s.conn.Record()
	return s.conn.Closed() || r.Client.FIN != nil || r.Server.FIN != nil
}

// maxPendSYN is how many retransmissions of a bare SYN a half-open session
// keeps before it takes a Conn anyway.
const maxPendSYN = 8

// evict makes room in a full table: the oldest half-open session, else the
// least recently active one, else the oldest closed one.
func (w *worker) evict() {
	switch {
	case w.halfo.front() != nil:
		s := w.halfo.front()
		w.stats.Evicted++
		w.materialize(s)
		w.finalize(s, "evicted")
	case w.active.front() != nil:
		w.stats.Evicted++
		w.finalize(w.active.front(), "evicted")
	case w.closed.front() != nil:
		w.finalize(w.closed.front(), "closed")
	}
}

// materialize gives a half-open session its Conn and replays its SYNs.
func (w *worker) materialize(s *session) {
	if s.conn != nil {
		return
	}
	pend := s.pend
	s.pend = nil
	w.attach(s, &pend[0])
	w.halfo.remove(s)
	w.active.pushBack(s)
	for i := range pend {
		side := 1
		if k, fromA := canon(pend[i].src, pend[i].sport, pend[i].dst, pend[i].dport); fromA && k == s.key {
			side = 0
		}
		w.apply(s, side, &pend[i])
	}
}

// A mirror port that copies both directions of a link, or two mirrored
// ports, delivers each packet twice within microseconds. A copy has the
// same IP ID, sequence and acknowledgment numbers, flags, window, length
// and payload edges as a segment seen within dupWindow; a retransmission
// comes after a retransmission timeout (200 ms at the least) and, over
// IPv4, with a new IP ID. A RST or ACK without payload and without an IP
// ID (IPv6, or ID 0) is never taken for a copy.
const (
	dupKeep   = 4
	dupWindow = 30 * time.Millisecond
)

type dupSig struct {
	ts         time.Time
	seq, ack   uint32
	ipid       uint16
	window     uint16
	flags      smtpstate.Flags
	n          uint16
	head, tail uint64
}

type dupState struct {
	recent [2][dupKeep]dupSig
	next   [2]uint8
}

func sigOf(sg *segment) dupSig {
	d := dupSig{ts: sg.ts, seq: sg.seq, ack: sg.ack, ipid: sg.ipid, window: sg.window, flags: sg.flags, n: uint16(len(sg.payload))}
	p := sg.payload
	for i := 0; i < 8 && i < len(p); i++ {
		d.head = d.head<<8 | uint64(p[i])
		d.tail = d.tail<<8 | uint64(p[len(p)-1-i])
	}
	return d
}

// duplicate reports (and remembers) whether sg is a copy of a segment seen
// just before on the same side.
func (s *session) duplicate(side int, sg *segment) bool {
	if len(sg.payload) == 0 && (!sg.hasIPID || sg.ipid == 0) && (!sg.flags.Has(smtpstate.FlagFIN) || sg.flags.Has(smtpstate.FlagRST)) {
		// Nothing tells a copy from a second segment: a host answers two
		// late segments with two identical RSTs (IP ID 0) microseconds
		// apart, and duplicate ACKs are identical too. Only a FIN is never
		// sent twice within dupWindow.
		return false
	}
	sig := sigOf(sg)
	ds := s.dups
	for i := range ds.recent[side] {
		r := &ds.recent[side][i]
		if r.ts.IsZero() || sig.ts.Sub(r.ts) > dupWindow || sig.ts.Before(r.ts) {
			continue
		}
		t := *r
		t.ts = sig.ts
		if t == sig {
			return true
		}
	}
	ds.recent[side][ds.next[side]%dupKeep] = sig
	ds.next[side]++
	return false
}

// apply records one segment's TCP facts in the session, then its bytes.
func (w *worker) apply(s *session, side int, sg *segment) {
	if s.duplicate(side, sg) {
		w.stats.Duplicates++
		s.conn.Duplicate()
		return
	}
	d := s.dirOf(side)
	p := smtpstate.Packet{Frame: sg.frame, Time: sg.ts, Dir: d, Flags: sg.flags, Seq: sg.seq, Ack: sg.ack,
		Window: sg.window, TTL: sg.ttl, IPID: sg.ipid, HasIPID: sg.hasIPID, PayloadLen: len(sg.payload), SrcMAC: sg.mac, HasMAC: sg.hasMAC}
	if sg.flags.Has(smtpstate.FlagRST) && len(sg.payload) > 0 {
		p.Payload = sg.payload
	}
	s.conn.Packet(&p)
	s.list.moveToBack(s)
	if s.list == &w.active && s.conn.Closed() {
		w.active.remove(s)
		w.closed.pushBack(s)
	}
	// The peer acknowledges bytes we have queued behind a hole: the capture
	// lost what the peer got. Give the hole up now, before this segment's
	// own bytes, so that replies never outrun the commands they answer.
	if o := &s.h[1-side]; sg.flags.Has(smtpstate.FlagACK) && len(o.q) > 0 && seqLT(o.next, sg.ack) && s.conn.Ahead(d.Other(), sg.ack) {
		w.stats.AckFlushes++
		w.flush(o, 1-side, s, sg.ack, false)
	}
	w.feed(s, side, sg)
}

// newConnection decides whether a SYN on a known 4-tuple opens a new
// connection: a SYN with a new ISN does (a retransmitted one does not). The
// old session is finalized: "closed" if it had ended (FIN or RST either
// way), "reused" if it was still open (Zeek's active_connection_reuse).
func (w *worker) newConnection(s *session, side int, sg *segment) bool {
	synack := sg.flags.Has(smtpstate.FlagACK)
	if s.synSeen[side] && s.isn[side] == sg.seq {
		return false // retransmitted SYN or SYN-ACK
	}
	r := s.conn.Record()
	ended := s.conn.Closed() || r.Client.FIN != nil || r.Server.FIN != nil
	if synack && !(s.synSeen[side] && ended) {
		// A SYN-ACK answers the SYN that opened this session (or one we
		// missed): only a new ISN on an ended session is a new connection.
		return false
	}
	if ended {
		w.finalize(s, "closed")
	} else {
		w.stats.Reused++
		s.conn.Anomaly("active_connection_reuse")
		w.finalize(s, "reused")
	}
	return true
}

// roles decides client and server from a session's first segment: a SYN,
// a SYN-ACK, else the SMTP port, else the sender is the client.
func (w *worker) roles(sg *segment) (senderIsClient bool, basis string) {
	srcPort, dstPort := sg.sport, sg.dport
	senderIsClient, basis = true, "first_packet"
	switch syn, ack := sg.flags.Has(smtpstate.FlagSYN), sg.flags.Has(smtpstate.FlagACK); {
	case syn && !ack:
		basis = "syn"
	case syn && ack:
		senderIsClient, basis = false, "synack"
	case w.isSMTPPort(dstPort) && !w.isSMTPPort(srcPort):
		basis = "port"
	case w.isSMTPPort(srcPort) && !w.isSMTPPort(dstPort):
		senderIsClient, basis = false, "port"
	case w.isSMTPPort(dstPort) && w.isSMTPPort(srcPort):
		basis = "port"
		if srcPort < dstPort {
			senderIsClient = false
		}
	}
	return senderIsClient, basis
}

// newSession enters a session opened by sg in the table; withConn gives
// it its Conn at once (else it is half-open, see session.pend).
func (w *worker) newSession(k fkey, fromA bool, sg *segment, withConn bool) *session {
	senderIsClient, _ := w.roles(sg)
	s := &session{key: k, first: sg.frame, cliIsA: fromA == senderIsClient}
	srvPort := sg.dport
	if !senderIsClient {
		srvPort = sg.sport
	}
	s.smtpPort = w.isSMTPPort(srvPort)
	w.table[k] = s
	if withConn {
		w.attach(s, sg)
		w.active.pushBack(s)
	}
	s.oprev = w.otail
	if w.otail != nil {
		w.otail.onext = s
	} else {
		w.ohead = s
	}
	w.otail = s
	return s
}

// attach creates the session's Conn from its first segment.
func (w *worker) attach(s *session, sg *segment) {
	senderIsClient, basis := w.roles(sg)
	cli, srv := endpointOf(sg.src, sg.sport), endpointOf(sg.dst, sg.dport)
	if !senderIsClient {
		cli, srv = srv, cli
	}
	s.conn = smtpstate.NewConn(cli, srv, basis, smtpstate.Config{ImplicitTLS: srv.Port == 465})
	s.dups = new(dupState)
}

// wait puts a session with queued bytes on the list tick looks at.
func (w *worker) wait(s *session) {
	if !s.waiting {
		s.waiting = true
		w.waiting = append(w.waiting, s)
	}
}

// tick runs the capture-time housekeeping (once per capture second): holes
// waited for too long, lingering closed sessions, idle ones, tombstones.
func (w *worker) tick(now time.Time, frame uint64) {
	w.now, w.frame = now, frame
	t := now.Add(-reorderWait)
	n := 0
	for _, s := range w.waiting {
		for side := range s.h {
			if len(s.h[side].q) > 0 {
				w.flushOlder(&s.h[side], side, s, t)
			}
		}
		if len(s.h[0].q)+len(s.h[1].q) > 0 && s.list != nil {
			w.waiting[n] = s
			n++
		} else {
			s.waiting = false
		}
	}
	clear(w.waiting[n:])
	w.waiting = w.waiting[:n]
	for s := w.closed.front(); s != nil && now.Sub(s.conn.LastSeen()) > w.opt.Linger; s = w.closed.front() {
		w.finalize(s, "closed")
	}
	for s := w.active.front(); s != nil && now.Sub(s.conn.LastSeen()) > w.opt.IdleTimeout; s = w.active.front() {
		w.finalize(s, "idle")
	}
	for s := w.halfo.front(); s != nil && now.Sub(s.pend[len(s.pend)-1].ts) > w.opt.HalfOpenTimeout; s = w.halfo.front() {
		w.materialize(s)
		w.finalize(s, "idle")
	}
	// Finalization times only grow: expire tombstones from the front.
	i := 0
	for i < len(w.tombQ) && now.Sub(w.tombQ[i].at) > tombLife {
		if tb := w.tombQ[i]; w.tombs[tb.key].at.Equal(tb.at) {
			delete(w.tombs, tb.key)
		}
		i++
	}
	w.tombQ = w.tombQ[i:]
}

// close finalizes every session at the end of the input, in the order
// they began, calling flush every closeChunk sessions so that the caller
// can write them out as it goes.
func (w *worker) close(now time.Time, frame uint64, flush func()) {
	w.now, w.frame = now, frame
	n := 0
	for s := w.ohead; s != nil; s = w.ohead {
		reason := "end_of_input"
		if s.list == &w.closed {
			reason = "closed"
		}
		w.finalize(s, reason)
		if n++; n%closeChunk == 0 && flush != nil {
			flush()
		}
	}
}

const closeChunk = 256

// finalize ends a session: its holes become gaps, its record is finished
// and queued for the output, and it leaves every table at once.
func (w *worker) finalize(s *session, reason string) {
	if s.list == nil {
		return
	}
	w.materialize(s)
	for side := range s.h {
		w.flush(&s.h[side], side, s, 0, true)
		w.dropQueue(&s.h[side])
	}
	s.list.remove(s)
	if s.oprev != nil {
		s.oprev.onext = s.onext
	} else {
		w.ohead = s.onext
	}
	if s.onext != nil {
		s.onext.oprev = s.oprev
	} else {
		w.otail = s.oprev
	}
	s.oprev, s.onext = nil, nil
	delete(w.table, s.key)
	ti := tombInfo{at: w.now}
	for side := range s.h {
		ti.next[side], ti.hasNext[side] = s.h[side].next, s.h[side].started
	}
	for side := range s.synSeen {
		if s.synSeen[side] && side == s.clientSide() {
			ti.side, ti.isn, ti.hasISN = side, s.isn[side], true
		}
	}
	w.tombs[s.key] = ti
	w.tombQ = append(w.tombQ, tomb{s.key, w.now})
	r := s.conn.Finish(reason, w.now)
	if !s.smtpPort && !s.conn.IsSMTP() {
		w.stats.NotSMTP++
		return
	}
	w.stats.Sessions++
	w.out = append(w.out, finished{k1: s.first, k2: 0, rec: r})
	if w.opt.Order == ByEnd {
		w.out[len(w.out)-1].k1, w.out[len(w.out)-1].k2 = w.frame, s.first
	}
}

// bound is the smallest output key a record this worker has not yet
// finished can have, given that every frame up to upTo has been processed.
func (w *worker) bound(upTo uint64) uint64 {
	if w.opt.Order == ByStart && w.ohead != nil && w.ohead.first <= upTo {
		return w.ohead.first
	}
	return upTo + 1
}

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

// clientSide is the side of the key the client sends from.
func (s *session) clientSide() int {
	if s.cliIsA {
		return 0
	}
	return 1
}
