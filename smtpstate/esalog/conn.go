package esalog

import (
	"sort"
	"strings"
	"time"
)

// Conn is one log connection: an inbound ICID or an outbound DCID, with
// the messages it carried and how it ended.
type Conn struct {
	ICID, DCID int64
	Outbound   bool
	File       string
	Start, End time.Time // appliance-local
	Addr       string    // client (ICID) or server (DCID) address
	Iface      string    // the appliance's address
	Port       int       // DCID remote port
	HAT        string
	TLS        string
	MIDs       []*Msg
	Lost       bool
	Closed     bool
	Disconnect string
	Failed     []string // Receiving/Injection Failed reasons
	Lines      []*Line  // bounded
	// Inj is the injection debug log's dialogue of this ICID (FORMAT.md
	// §7.1), bounded; empty when that log was not given.
	Inj     []InjLine
	matched bool
}

// InjLine is one "<icid> Sent|Rcvd: '…'" line.
type InjLine struct {
	Dir  string // "Sent" or "Rcvd" as logged (the direction's meaning is not documented)
	Text string
}

const maxInjLines = 256

// Msg is one MID as seen on its connection.
type Msg struct {
	MID      int64
	From     string
	Rcpts    []string
	Rejected []string
	Ready    bool
	Bytes    int64
	Aborted  string // Message aborted reason
	Finished string // done or aborted
	MsgID    string
}

const maxConnLines = 64

// Build groups lines into connections. MIDs are attached to the ICID that
// started them; delivery MIDs to their DCID.
func Build(lines []*Line) []*Conn {
	icids := map[int64]*Conn{}
	dcids := map[int64]*Conn{}
	mids := map[int64]*Msg{}
	midConn := map[int64]*Conn{}
	var out []*Conn
	add := func(c *Conn, l *Line) {
		if len(c.Lines) < maxConnLines {
			c.Lines = append(c.Lines, l)
		}
		if l.Local.After(c.End) {
			c.End = l.Local
		}
	}
	icid := func(l *Line) *Conn {
		c, ok := icids[l.ICID]
		if !ok {
			c = &Conn{ICID: l.ICID, File: l.File, Start: l.Local, End: l.Local}
			icids[l.ICID] = c
			out = append(out, c)
		}
		return c
	}
	for _, l := range lines {
		switch l.Kind {
		case KindNewICID:
			c := &Conn{ICID: l.ICID, File: l.File, Start: l.Local, End: l.Local, Addr: l.Addr, Iface: l.Iface}
			icids[l.ICID] = c // a reused ICID number starts a new connection
			out = append(out, c)
			add(c, l)
		case KindHAT, KindICIDTLS, KindICIDLost, KindICIDClose, KindICIDDisconnect, KindReceivingFailed, KindInjectionFailed, KindICIDOther:
			if l.ICID == 0 {
				continue
			}
			c := icid(l)
			add(c, l)
			switch l.Kind {
			case KindHAT:
				c.HAT = l.Action
			case KindICIDTLS:
				c.TLS = l.Action
			case KindICIDLost:
				c.Lost = true
			case KindICIDClose:
				c.Closed = true
			case KindICIDDisconnect:
				c.Disconnect = l.Reason
			case KindReceivingFailed, KindInjectionFailed:
				c.Failed = append(c.Failed, l.Reason)
			}
		case KindStartMID:
			if l.ICID == 0 {
				continue // system-generated message
			}
			c := icid(l)
			m := &Msg{MID: l.MID}
			mids[l.MID], midConn[l.MID] = m, c
			c.MIDs = append(c.MIDs, m)
			add(c, l)
		case KindMailFrom, KindRcptTo, KindRcptRejected, KindReady, KindAborted, KindFinished, KindMessageID:
			m, ok := mids[l.MID]
			if !ok {
				continue
			}
			switch l.Kind {
			case KindMailFrom:
				m.From = l.Email
			case KindRcptTo:
				m.Rcpts = append(m.Rcpts, l.Email)
			case KindRcptRejected:
				m.Rejected = append(m.Rejected, l.Email)
			case KindReady:
				m.Ready, m.Bytes = true, l.Bytes
				if m.From == "" {
					m.From = l.Email
				}
			case KindAborted:
				m.Aborted = l.Reason
			case KindFinished:
				m.Finished = l.Action
			case KindMessageID:
				m.MsgID = normMsgID(l.Reason)
			}
			add(midConn[l.MID], l)
		case KindInjection:
			// a separate log subscription: attach to the ICID, never create one
			if c, ok := icids[l.ICID]; ok && len(c.Inj) < maxInjLines {
				c.Inj = append(c.Inj, InjLine{Dir: l.Action, Text: strings.Trim(l.Reason, "'")})
			}
		case KindNewDCID:
			c := &Conn{DCID: l.DCID, Outbound: true, File: l.File, Start: l.Local, End: l.Local, Addr: l.Addr, Iface: l.Iface, Port: l.Port}
			dcids[l.DCID] = c
			out = append(out, c)
			add(c, l)
		case KindDCIDTLS, KindDeliveryStart, KindMessageDone, KindDCIDClose, KindBounced, KindDelayed, KindConnError:
			c, ok := dcids[l.DCID]
			if !ok {
				continue
			}
			add(c, l)
			switch l.Kind {
			case KindDCIDTLS:
				c.TLS = l.Action
			case KindDCIDClose:
				c.Closed = true
			case KindDeliveryStart:
				dm := &Msg{MID: l.MID}
				if im, ok := mids[l.MID]; ok {
					dm.MsgID = im.MsgID // the delivered message carries the injected one's Message-ID
				}
				c.MIDs = append(c.MIDs, dm)
			case KindConnError:
				c.Disconnect = l.Reason
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Story summarises how the log says the connection ended.
func (c *Conn) Story() string {
	for _, m := range c.MIDs {
		if m.Aborted == "Receiving aborted by sender" {
			return "aborted_by_sender"
		}
	}
	for _, m := range c.MIDs {
		if m.Aborted == "Receiving aborted" {
			return "receiving_aborted"
		}
	}
	switch {
	case c.Disconnect != "":
		return "disconnected"
	case c.Lost:
		return "lost"
	case c.Closed:
		return "close"
	}
	return "open"
}

// normMsgID reduces a Message-ID as logged or as read from the header to
// its <…> part, so quoting, comments and folding whitespace do not matter.
func normMsgID(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i : i+j+1]
		}
	}
	if s == "<>" {
		return "" // "no Message-ID" as Postfix (and the lab's log) writes it
	}
	return s
}
