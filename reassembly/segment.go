package reassembly

import (
	"net/netip"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// addr16 is an IP address as 16 bytes (IPv4 mapped into IPv6), comparable
// and cheap to hash.
type addr16 [16]byte

// fkey names a TCP connection by its 4-tuple in a canonical order (the
// smaller address:port first), so both directions find the same entry.
type fkey struct {
	a, b   addr16
	pa, pb uint16
}

// canon returns the key of the segment's connection and whether the
// segment's sender is the key's endpoint a.
func canon(src addr16, sport uint16, dst addr16, dport uint16) (fkey, bool) {
	if c := cmp16(src, dst); c < 0 || (c == 0 && sport <= dport) {
		return fkey{src, dst, sport, dport}, true
	}
	return fkey{dst, src, dport, sport}, false
}

func cmp16(x, y addr16) int {
	for i := range x {
		if x[i] != y[i] {
			if x[i] < y[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// hash is a symmetric flow hash (FNV-1a over the canonical key): both
// directions of a connection land on the same worker.
func (k *fkey) hash() uint32 {
	h := uint32(2166136261)
	for _, b := range k.a {
		h = (h ^ uint32(b)) * 16777619
	}
	for _, b := range k.b {
		h = (h ^ uint32(b)) * 16777619
	}
	h = (h ^ uint32(k.pa)) * 16777619
	h = (h ^ uint32(k.pb)) * 16777619
	return h
}

func endpointOf(a addr16, port uint16) smtpstate.Endpoint {
	return smtpstate.Endpoint{Addr: netip.AddrFrom16(a).Unmap().String(), Port: port}
}

// segment is one decoded TCP segment: everything the session table, the
// reorder buffer and smtpstate need, with no gopacket type in it, so that a
// worker on another goroutine can own it.
type segment struct {
	tick    bool      // not a packet: capture-time housekeeping at now
	badsum  bool      // its checksum is wrong: note it, never use it
	frame   uint64    // 1-based frame number in the (merged) input
	ts      time.Time // the frame's timestamp
	now     time.Time // the latest timestamp of the input so far
	src     addr16
	dst     addr16
	sport   uint16
	dport   uint16
	seq     uint32
	ack     uint32
	window  uint16
	flags   smtpstate.Flags
	ttl     uint8
	ipid    uint16
	hasIPID bool
	hasMAC  bool
	mac     [6]byte
	payload []byte
}
