package smtpstate

import (
	"time"
)

// Limits that keep one session's memory bounded whatever the input.
const (
	maxLine       = 2048 // longest command or reply line kept (RFC 5321: 512/1000)
	maxPending    = 256  // pipelined commands awaiting a reply
	maxTrans      = 64   // transactions kept per connection (later ones counted)
	maxRcpts      = 128  // recipients kept per transaction
	maxRSTs       = 8
	maxAnomalies  = 32
	maxExtensions = 32
	maxUnsolic    = 8
)

// Config tunes recognition. The zero value is usable.
type Config struct {
	// ImplicitTLS is set when the server port is 465 (SMTPS).
	ImplicitTLS bool
}

// Conn follows one TCP connection. Create it with NewConn, feed it Packet,
// Deliver and Gap calls in capture order, and call Finish once.
type Conn struct {
	rec Record
	cfg Config

	trk       [2]dirTracker // TCP working state per Dir
	hist      histTracker
	cli, srv  lineBuf
	mode      clientMode
	dataDot   dotState
	chunkRem  int64 // BDAT bytes still to skip
	bdatLast  bool
	pending   []pendingCmd
	state     State
	tls       tlsScanner // [0] client, [1] server
	tlsSrv    tlsScanner
	curIdx    int // index of the open transaction in rec.Trans, -1 if none
	reply     replyAcc
	bareLF    bool
	cliPre    bool  // inside a client's HTTP CONNECT preamble
	srvPre    int   // bytes of server preamble skipped
	cliPreN   int   // bytes of client binary preamble skipped
	dataBytes int64 // bytes consumed in DATA mode since the last DATA command
	swapped   bool
	preAuth   State
	bdatFrame uint64
	bdatTS    time.Time
	closeAt   State
	closed    bool // first FIN/RST seen
	lastPkt   time.Time
	prevGap   float64 // idle gap before the last non-RST packet
	synAt     time.Time
	synAckAt  time.Time
	lastFrom  [2]time.Time // last non-RST packet per direction
	anomSeen  map[string]bool
	sawData   [2]bool
	rstSeen   [2]bool
	rstSeq    [2]uint32
	lastRST   *RST // most recent RST, for challenge-ACK detection
	lastRSTd  Dir
	msgid     msgIDScanner // Message-ID hook (msgid.go): header block of DATA/BDAT
	desync    desyncState  // a dialogue that began before the capture (desync.go)
}

type clientMode uint8

const (
	modeCommand clientMode = iota
	modeData               // DATA body, scanning for CRLF.CRLF
	modeChunk              // BDAT chunk bytes
	modeAuth               // AUTH credential lines
	modeTLS                // opaque
	modeIgnore             // not SMTP: count only
)

// Endpoint names one side of the connection.
type Endpoint struct {
	Addr string
	Port uint16
}

// NewConn starts a session. client and server are the decided roles; basis
// says how they were decided ("syn", "synack", "port", "first_packet").
func NewConn(client, server Endpoint, basis string, cfg Config) *Conn {
	c := &Conn{cfg: cfg, curIdx: -1}
	c.rec.OrigH, c.rec.OrigP = client.Addr, client.Port
	c.rec.RespH, c.rec.RespP = server.Addr, server.Port
	c.rec.RoleBasis = basis
	if cfg.ImplicitTLS {
		c.update(&pendingCmd{verb: vTLS, arg: "implicit"}, nil)
	}
	return c
}

// SwapRoles exchanges client and server. Only valid before any byte was
// delivered; reassembly uses it when a greeting shows it guessed wrong.
func (c *Conn) SwapRoles(basis string) {
	r := &c.rec
	r.OrigH, r.RespH = r.RespH, r.OrigH
	r.OrigP, r.RespP = r.RespP, r.OrigP
	r.Client, r.Server = r.Server, r.Client
	c.trk[0], c.trk[1] = c.trk[1], c.trk[0]
	c.hist.swap()
	r.RoleBasis = basis
}

// Record gives read access to the record being built (for matching and
// tests); it is complete only after Finish.
func (c *Conn) Record() *Record { return &c.rec }

// State is the current dialogue phase.
func (c *Conn) State() State { return c.state }

// IsSMTP reports whether an SMTP dialogue has been recognised so far.
func (c *Conn) IsSMTP() bool { return c.rec.SMTP }

// Closed reports whether a FIN or RST has been seen in both directions, or a
// RST in either; the caller may finalize after a linger delay.
func (c *Conn) Closed() bool {
	return c.rstSeen[0] || c.rstSeen[1] || (c.rec.Client.FIN != nil && c.rec.Server.FIN != nil)
}

// Ahead reports whether direction d has been seen (in capture) up to at
// least seq: bytes below it exist, even if not yet delivered in order.
func (c *Conn) Ahead(d Dir, seq uint32) bool {
	t := &c.trk[d]
	return t.seqInit && !seqLT(t.nextSeq, seq)
}

// LastSeen is the time of the last packet.
func (c *Conn) LastSeen() time.Time { return c.lastPkt }

func (c *Conn) dir(d Dir) *DirFacts {
	if d == FromClient {
		return &c.rec.Client
	}
	return &c.rec.Server
}

func (c *Conn) anomaly(name string) {
	if c.anomSeen == nil {
		c.anomSeen = make(map[string]bool)
	}
	if c.anomSeen[name] || len(c.rec.Anomalies) >= maxAnomalies {
		return
	}
	c.anomSeen[name] = true
	c.rec.Anomalies = append(c.rec.Anomalies, name)
}

// Gap reports n bytes of direction d that the capture does not have.
func (c *Conn) Gap(d Dir, n int64, frame uint64, ts time.Time) {
	if n <= 0 {
		return
	}
	f := c.dir(d)
	f.Gaps++
	f.GapBytes += n
	c.rec.MissedBytes += n
	c.anomaly("content_gap")
	c.hist.scaled(d, scaledGap)
	c.gapStream(d, n)
}

// Finish closes the record; it carries no Ending: the pipeline runs
// package ending on it afterwards. reason is "closed", "idle", "end_of_input" or
// "evicted"; captureEnd is the time of the input's last packet.
func (c *Conn) Finish(reason string, captureEnd time.Time) *Record {
	r := &c.rec
	r.EndReason = reason
	r.CaptureEnd = Time{captureEnd}
	if !c.closed {
		c.closeAt = c.state
	}
	r.PhaseAtEnd = c.closeAt
	for _, p := range c.pending {
		r.Unanswered = append(r.Unanswered, p.name)
	}
	for i := range r.Trans {
		if r.Trans[i].Outcome == "" {
			r.Trans[i].Outcome = "open"
		}
	}
	if len(r.Trans) > 0 {
		t := r.Trans[len(r.Trans)-1]
		r.MailFrom = t.MailFrom
		for _, rc := range t.Rcpts {
			r.RcptTo = append(r.RcptTo, rc.Addr)
		}
	}
	if !r.TS.IsZero() && !r.EndTS.IsZero() {
		r.Duration = r.EndTS.Sub(r.TS.Time).Seconds()
	}
	sortTTLs(&r.Client)
	sortTTLs(&r.Server)
	finishRun(&r.Client, &c.trk[FromClient])
	finishRun(&r.Server, &c.trk[FromServer])
	if r.TLSInfo != nil {
		r.TLSInfo.ClientRecords, r.TLSInfo.ClientBytes, r.TLSInfo.ClientAlerts = c.tls.records, c.tls.bytes, c.tls.alerts
		r.TLSInfo.ServerRecords, r.TLSInfo.ServerBytes, r.TLSInfo.ServerAlerts = c.tlsSrv.records, c.tlsSrv.bytes, c.tlsSrv.alerts
		r.TLSInfo.Garbled = c.tls.garbled || c.tlsSrv.garbled
		r.TLSInfo.ClientTail, r.TLSInfo.ServerTail = c.tls.last(), c.tlsSrv.last()
		r.TLSInfo.ClientMinApp, r.TLSInfo.ServerMinApp = c.tls.minApp, c.tlsSrv.minApp
		switch {
		case c.tls.lastAt.IsZero() && c.tlsSrv.lastAt.IsZero():
		case c.tls.lastAt.After(c.tlsSrv.lastAt):
			r.TLSInfo.LastRecordFrom = "client"
		default:
			r.TLSInfo.LastRecordFrom = "server"
		}
	}
	c.finishZeek()
	r.UID = UID(r)
	r.CommunityID = CommunityID(r.OrigH, r.OrigP, r.RespH, r.RespP)
	return r
}

// Anomaly adds a named anomaly found by the caller (reassembly), such as
// "active_connection_reuse".
func (c *Conn) Anomaly(name string) { c.anomaly(name) }
