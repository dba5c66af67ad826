package reassembly

import (
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// DefaultPorts are the ports on which a TCP connection is an SMTP session
// whatever it carries.
var DefaultPorts = []uint16{25, 465, 587, 2525}

// Options configure an Analyzer.
type Options struct {
	Ports []uint16 // SMTP ports; DefaultPorts if nil
	// IdleTimeout finalizes a session that saw no packet for this long
	// (capture time). It must exceed the firewall timers we want to see
	// expire (an hour is common), so the default is two hours.
	IdleTimeout time.Duration
	// Linger keeps a closed session (RST, or FIN both ways) open this long
	// for the trailing ACKs and RSTs.
	Linger time.Duration
	// MaxSessions bounds the table; the least recently active session is
	// finalized ("evicted") when it is full.
	MaxSessions int
}

// Stats count what the analyzer saw.
type Stats struct {
	Frames       uint64
	TCP          uint64
	NonTCP       uint64
	DecodeErrors uint64
	Fragments    uint64
	Sessions     uint64 // finalized sessions handed to emit
	NotSMTP      uint64 // connections on other ports that were not SMTP
	Strays       uint64 // packets of a session already finalized
	Evicted      uint64
}

// Analyzer consumes frames and emits one smtpstate.Record per session.
type Analyzer struct {
	opt       Options
	ports     [65536 / 64]uint64 // bitmap of SMTP ports
	dec       *decoder
	asm       *reassembly.Assembler
	pool      *reassembly.StreamPool
	ctx       *pktCtx
	detach    bool
	flushReq  bool // a packet was held back until queued data is flushed
	replaying bool // the held packet is being fed again
	table     map[connKey]*session
	active    list // by last packet, open sessions
	closed    list // by last packet, closed sessions
	tombs     map[connKey]time.Time
	tombQ     []tomb // tombstones in finalization (= capture time) order
	now       time.Time
	start     time.Time
	lastTck   time.Time
	emit      func(*smtpstate.Record)
	stats     Stats
}

type connKey [2]gopacket.Flow

// tomb remembers a finalized 4-tuple so that its stray packets are not
// taken for a new session.
type tomb struct {
	key connKey
	at  time.Time
}

const tombLife = 2 * time.Minute

// pktCtx travels with each packet through gopacket's assembler.
type pktCtx struct {
	ci      gopacket.CaptureInfo
	frame   uint64
	ttl     uint8
	ipid    uint16
	hasIPID bool
	mac     [6]byte
	hasMAC  bool
}

func (c *pktCtx) GetCaptureInfo() gopacket.CaptureInfo { return c.ci }

// New returns an Analyzer that calls emit for every finished session.
func New(opt Options, emit func(*smtpstate.Record)) *Analyzer {
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 2 * time.Hour
	}
	if opt.Linger <= 0 {
		opt.Linger = 5 * time.Second
	}
	if opt.MaxSessions <= 0 {
		opt.MaxSessions = 1 << 20
	}
	a := &Analyzer{opt: opt, dec: newDecoder(), table: map[connKey]*session{}, tombs: map[connKey]time.Time{}, emit: emit, ctx: new(pktCtx)}
	ports := opt.Ports
	if ports == nil {
		ports = DefaultPorts
	}
	for _, p := range ports {
		a.ports[p/64] |= 1 << (p % 64)
	}
	a.pool = reassembly.NewStreamPool(a)
	a.asm = reassembly.NewAssembler(a.pool)
	a.asm.MaxBufferedPagesPerConnection = 256
	a.asm.MaxBufferedPagesTotal = 65536
	return a
}

func (a *Analyzer) isSMTPPort(p uint16) bool { return a.ports[p/64]&(1<<(p%64)) != 0 }

// Stats returns the counters so far.
func (a *Analyzer) Stats() Stats { return a.stats }

// Frame processes one frame. data is not retained.
func (a *Analyzer) Frame(number uint64, lt layers.LinkType, ci gopacket.CaptureInfo, data []byte) {
	a.stats.Frames++
	if a.start.IsZero() {
		a.start = ci.Timestamp
	}
	if ci.Timestamp.After(a.now) {
		a.now = ci.Timestamp
	}
	isTCP, err := a.dec.decode(lt, data)
	if !isTCP {
		if err != nil {
			a.stats.DecodeErrors++
		} else {
			a.stats.NonTCP++
		}
		a.tick()
		return
	}
	a.stats.TCP++
	d := a.dec
	c := a.ctx
	c.ci, c.frame = ci, number
	c.hasMAC = d.hasMAC
	if d.hasMAC {
		copy(c.mac[:], d.eth.SrcMAC)
	}
	var flow gopacket.Flow
	if d.ipv6 {
		c.ttl, c.hasIPID, c.ipid = d.ip6.HopLimit, false, 0
		flow = d.ip6.NetworkFlow()
	} else {
		c.ttl, c.hasIPID, c.ipid = d.ip4.TTL, true, d.ip4.Id
		flow = d.ip4.NetworkFlow()
	}
	tcp := &d.tcp
	a.asm.AssembleWithContext(flow, tcp, c)
	if a.flushReq {
		// Capture loss acknowledged by the peer: flush what waits behind
		// holes (it will never be filled), then feed the held packet again.
		a.flushReq = false
		a.asm.FlushWithOptions(reassembly.FlushOptions{T: ci.Timestamp.Add(time.Nanosecond)})
		a.replaying = true
		a.asm.AssembleWithContext(flow, tcp, c)
		a.replaying = false
	}
	if a.detach {
		// A queued page keeps this context: never overwrite it.
		a.ctx, a.detach = new(pktCtx), false
	}
	a.tick()
}

// tick runs the capture-time housekeeping at most once per capture second.
func (a *Analyzer) tick() {
	if a.now.Sub(a.lastTck) < time.Second {
		return
	}
	a.lastTck = a.now
	a.asm.FlushWithOptions(reassembly.FlushOptions{T: a.now.Add(-3 * time.Second), TC: a.now.Add(-a.opt.IdleTimeout)})
	for s := a.closed.front(); s != nil && a.now.Sub(s.conn.LastSeen()) > a.opt.Linger; s = a.closed.front() {
		a.finalize(s, "closed")
	}
	for s := a.active.front(); s != nil && a.now.Sub(s.conn.LastSeen()) > a.opt.IdleTimeout; s = a.active.front() {
		a.finalize(s, "idle")
	}
	// Finalization times only grow: expire tombstones from the front.
	n := 0
	for n < len(a.tombQ) && a.now.Sub(a.tombQ[n].at) > tombLife {
		if t := a.tombQ[n]; a.tombs[t.key].Equal(t.at) {
			delete(a.tombs, t.key)
		}
		n++
	}
	a.tombQ = a.tombQ[n:]
}

// Close flushes everything and finalizes every open session, oldest first.
func (a *Analyzer) Close() {
	a.asm.FlushAll()
	for s := a.closed.front(); s != nil; s = a.closed.front() {
		a.finalize(s, "closed")
	}
	for s := a.active.front(); s != nil; s = a.active.front() {
		a.finalize(s, "end_of_input")
	}
}

func (a *Analyzer) finalize(s *session, reason string) {
	if s.finalized {
		return
	}
	s.finalized = true
	s.list.remove(s)
	delete(a.table, s.key)
	delete(a.table, connKey{s.key[0].Reverse(), s.key[1].Reverse()})
	a.tombs[s.key] = a.now
	a.tombQ = append(a.tombQ, tomb{s.key, a.now})
	r := s.conn.Finish(reason, a.now)
	if !s.smtpPort && !s.conn.IsSMTP() {
		a.stats.NotSMTP++
		return
	}
	a.stats.Sessions++
	a.emit(r)
}

// New implements reassembly.StreamFactory. A connection that gopacket
// re-creates (the final ACK after both FINs, or after a flush) is attached
// to the session still in our table; a SYN after close starts a new one.
func (a *Analyzer) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, ac reassembly.AssemblerContext) reassembly.Stream {
	k := connKey{netFlow, tcpFlow}
	if s, ok := a.table[k]; ok && !(tcp.SYN && !tcp.ACK && s.conn.Closed()) {
		return &stream{a: a, s: s, aIsClient: s.isClient(netFlow.Src(), tcpFlow.Src())}
	} else if ok {
		a.finalize(s, "closed")
	}
	if _, ok := a.tombs[k]; ok && !tcp.SYN {
		return &stream{a: a, stray: true}
	}
	if _, ok := a.tombs[connKey{netFlow.Reverse(), tcpFlow.Reverse()}]; ok && !tcp.SYN {
		return &stream{a: a, stray: true}
	}
	if a.active.n+a.closed.n >= a.opt.MaxSessions {
		if s := a.active.front(); s != nil {
			a.stats.Evicted++
			a.finalize(s, "evicted")
		}
	}
	s := a.newSession(k, tcp)
	return &stream{a: a, s: s, aIsClient: s.isClient(netFlow.Src(), tcpFlow.Src())}
}

func endpoint(n, t gopacket.Endpoint) smtpstate.Endpoint {
	var addr string
	if ip, ok := netip.AddrFromSlice(n.Raw()); ok {
		addr = ip.Unmap().String()
	} else {
		addr = n.String()
	}
	raw := t.Raw()
	var port uint16
	if len(raw) == 2 {
		port = uint16(raw[0])<<8 | uint16(raw[1])
	}
	return smtpstate.Endpoint{Addr: addr, Port: port}
}
