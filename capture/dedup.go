package capture

import (
	"encoding/binary"
	"hash/maphash"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Dedup recognises the copies a SPAN port makes when both directions of two
// ports are mirrored (or a bridge and its member are both captured): the
// same IP packet seen again within a short window, whatever its link layer,
// TTL, DSCP or IP checksum. Two packets are the same when their addresses,
// protocol, IPv4 identification and the whole transport segment (TCP
// header with seq, ack, flags, window, checksum, options, and the payload)
// are equal. A retransmission is not a copy: it carries a new IP ID (Linux,
// Windows) or comes later than the window. A TCP segment without payload
// and without an IP ID (0, or IPv6) is never taken for a copy: a RST or
// ACK resent at once would look the same.
//
// Copies are the same packet stamped within Window of each other, but they
// may reach Duplicate much further apart: several interfaces read through
// separate handles deliver in batches, so one handle's frames can run
// ahead of another's by more than the window. A packet is therefore
// remembered for Retain (1 s) of the newest stamp seen, not for the window.
// Memory is bounded: at most MaxEntries packets are remembered, the
// oldest forgotten first.
type Dedup struct {
	Window     time.Duration
	Retain     time.Duration // how long a packet is remembered (at least Window)
	MaxEntries int
	Dropped    uint64 // copies recognised and dropped
	seed       maphash.Seed
	seen       map[uint64]time.Time
	fifo       []dedupEntry
	head       int
	newest     time.Time
}

type dedupEntry struct {
	key uint64
	at  time.Time
}

// NewDedup returns a Dedup with this window (50 ms if 0).
func NewDedup(window time.Duration) *Dedup {
	if window <= 0 {
		window = 50 * time.Millisecond
	}
	return &Dedup{Window: window, Retain: time.Second, MaxEntries: 1 << 16, seed: maphash.MakeSeed(), seen: map[uint64]time.Time{}}
}

// Duplicate reports whether the frame is a copy of one seen within the
// window, and remembers it if not. Frames that are not IP are never copies.
func (d *Dedup) Duplicate(lt layers.LinkType, ts time.Time, data []byte) bool {
	key, ok := d.key(lt, data)
	if !ok {
		return false
	}
	d.expire(ts)
	if at, ok := d.seen[key]; ok && absDur(ts.Sub(at)) <= d.Window {
		d.Dropped++
		return true
	}
	if len(d.seen) >= d.MaxEntries {
		d.pop()
	}
	d.seen[key] = ts
	d.fifo = append(d.fifo, dedupEntry{key, ts})
	return false
}

func absDur(x time.Duration) time.Duration {
	if x < 0 {
		return -x
	}
	return x
}

func (d *Dedup) expire(ts time.Time) {
	if ts.After(d.newest) {
		d.newest = ts
	}
	keep := max(d.Retain, d.Window)
	for d.head < len(d.fifo) && d.newest.Sub(d.fifo[d.head].at) > keep {
		d.pop()
	}
	if d.head > 4096 && d.head*2 > len(d.fifo) {
		n := copy(d.fifo, d.fifo[d.head:])
		clear(d.fifo[n:])
		d.fifo, d.head = d.fifo[:n], 0
	}
}

func (d *Dedup) pop() {
	e := d.fifo[d.head]
	d.head++
	if at, ok := d.seen[e.key]; ok && at.Equal(e.at) {
		delete(d.seen, e.key)
	}
}

// key hashes the invariant part of the IP packet inside the frame - the
// innermost one: a remote mirror's tunnel (ERSPAN, GRE, VXLAN) gives each
// copy its own outer IP ID and sequence number.
func (d *Dedup) key(lt layers.LinkType, b []byte) (uint64, bool) {
	ip, ok := ipPayload(lt, b)
	for depth := 0; ok && depth < 3; depth++ {
		inner, isTunnel := tunnelInner(ip)
		if !isTunnel {
			break
		}
		ip, ok = inner, len(inner) > 0
	}
	if !ok || len(ip) < 20 {
		return 0, false
	}
	var h maphash.Hash
	h.SetSeed(d.seed)
	switch ip[0] >> 4 {
	case 4:
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if ihl < 20 || total < ihl || len(ip) < ihl {
			return 0, false
		}
		end := min(total, len(ip)) // a trailer (Ethernet padding) is not the packet's
		if ip[4] == 0 && ip[5] == 0 && emptyTCP(ip[9], ip[ihl:end]) {
			return 0, false // no IP ID to tell a resent RST or ACK from a copy
		}
		h.Write(ip[4:6])   // identification
		h.Write(ip[6:8])   // flags, fragment offset
		h.Write(ip[9:10])  // protocol
		h.Write(ip[12:20]) // addresses
		h.Write(ip[ihl:end])
	case 6:
		if len(ip) < 40 {
			return 0, false
		}
		end := min(40+int(binary.BigEndian.Uint16(ip[4:6])), len(ip))
		if emptyTCP(ip[6], ip[40:end]) {
			return 0, false // IPv6 has no IP ID: a bare RST or ACK may be resent alike
		}
		h.Write(ip[4:7]) // payload length, next header
		h.Write(ip[8:40])
		h.Write(ip[40:end])
	default:
		return 0, false
	}
	return h.Sum64(), true
}

// emptyTCP reports whether l4 is a TCP segment without payload.
func emptyTCP(proto byte, l4 []byte) bool {
	if proto != 6 || len(l4) < 20 {
		return false
	}
	return len(l4) <= int(l4[12]>>4)*4
}

// ipPayload finds the IP packet in a frame: Ethernet with any number of
// 802.1Q/802.1ad tags, Linux cooked (SLL, SLL2), raw IP, BSD loopback.
func ipPayload(lt layers.LinkType, b []byte) ([]byte, bool) {
	var et uint16
	switch lt {
	case layers.LinkTypeEthernet:
		if len(b) < 14 {
			return nil, false
		}
		et, b = binary.BigEndian.Uint16(b[12:14]), b[14:]
		for (et == 0x8100 || et == 0x88a8 || et == 0x9100) && len(b) >= 4 {
			et, b = binary.BigEndian.Uint16(b[2:4]), b[4:]
		}
	case layers.LinkTypeLinuxSLL:
		if len(b) < 16 {
			return nil, false
		}
		et, b = binary.BigEndian.Uint16(b[14:16]), b[16:]
	case layers.LinkType(276): // LINUX_SLL2
		if len(b) < 20 {
			return nil, false
		}
		et, b = binary.BigEndian.Uint16(b[0:2]), b[20:]
	case layers.LinkTypeRaw, layers.LinkType(228), layers.LinkType(229):
		return b, len(b) > 0
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(b) < 4 {
			return nil, false
		}
		return b[4:], true
	default:
		return nil, false
	}
	return b, et == 0x0800 || et == 0x86dd
}

// transport is an IP packet's protocol and payload; frag says it is a
// fragment (an IPv4 one; IPv6 extension headers are not followed).
func transport(ip []byte) (proto byte, l4 []byte, frag, ok bool) {
	if len(ip) < 20 {
		return 0, nil, false, false
	}
	switch ip[0] >> 4 {
	case 4:
		ihl := int(ip[0]&0x0f) * 4
		if ihl < 20 || len(ip) < ihl {
			return 0, nil, false, false
		}
		return ip[9], ip[ihl:], binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0, true
	case 6:
		if len(ip) < 40 {
			return 0, nil, false, false
		}
		return ip[6], ip[40:], false, true
	}
	return 0, nil, false, false
}

// Encapsulated reports whether a frame carries a tunnel the analysis opens
// (GRE, ERSPAN over GRE, VXLAN on UDP 4789): its outer headers are not the
// flow's, so a kernel's fanout hash of them does not keep the flow's two
// directions together. Every UDP or GRE fragment counts (a later one has
// no port to tell, and all must reach the same defragmenter).
func Encapsulated(lt layers.LinkType, b []byte) bool {
	if lt == 12 { // raw IP on some systems
		lt = layers.LinkTypeRaw
	}
	ip, ok := ipPayload(lt, b)
	if !ok {
		return false
	}
	proto, l4, frag, ok := transport(ip)
	switch {
	case !ok:
		return false
	case frag:
		return proto == 17 || proto == 47
	case proto == 47:
		return true
	}
	return proto == 17 && len(l4) >= 8 && binary.BigEndian.Uint16(l4[2:4]) == 4789
}

// tunnelInner returns the IP packet a GRE (plain, ERSPAN II or III,
// transparent Ethernet) or VXLAN (UDP 4789) packet carries, if ip is one.
func tunnelInner(ip []byte) ([]byte, bool) {
	proto, l4, frag, ok := transport(ip)
	if !ok || frag {
		return nil, false // a fragment: not followed
	}
	eth := func(b []byte) ([]byte, bool) {
		inner, ok := ipPayload(layers.LinkTypeEthernet, b)
		return inner, ok
	}
	switch proto {
	case 47:
		if len(l4) < 4 {
			return nil, false
		}
		flags, et, n := binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4]), 4
		for _, bit := range []uint16{0x8000, 0x2000, 0x1000} { // checksum, key, sequence
			if flags&bit != 0 {
				n += 4
			}
		}
		if len(l4) < n {
			return nil, false
		}
		g := l4[n:]
		switch et {
		case 0x0800, 0x86dd:
			return g, true
		case 0x6558: // transparent Ethernet bridging
			return eth(g)
		case 0x88be: // ERSPAN II
			if len(g) < 8 {
				return nil, false
			}
			return eth(g[8:])
		case 0x22eb: // ERSPAN III, and its platform subheader when O is set
			if len(g) < 12 {
				return nil, false
			}
			h := 12
			if g[11]&1 != 0 {
				h += 8
			}
			if len(g) < h {
				return nil, false
			}
			return eth(g[h:])
		}
	case 17:
		if len(l4) >= 16 && binary.BigEndian.Uint16(l4[2:4]) == 4789 {
			return eth(l4[16:])
		}
	}
	return nil, false
}
