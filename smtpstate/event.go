package smtpstate

import "time"

// Dir is the direction of a segment or of stream bytes.
type Dir uint8

const (
	// FromClient is the SMTP client (the side that connects) speaking.
	FromClient Dir = iota
	// FromServer is the SMTP server (the side that listens) speaking.
	FromServer
)

func (d Dir) String() string {
	if d == FromClient {
		return "client"
	}
	return "server"
}

// Other returns the opposite direction.
func (d Dir) Other() Dir { return 1 - d }

// Flags are TCP header flags, bit for bit as on the wire (FIN = 0x01 …).
type Flags uint8

// TCP flag bits.
const (
	FlagFIN Flags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// Has reports whether all bits of f2 are set.
func (f Flags) Has(f2 Flags) bool { return f&f2 == f2 }

// String renders flags tcpdump style: S, SA, FA, R, RA, P ….
func (f Flags) String() string {
	var b []byte
	for _, x := range []struct {
		f Flags
		c byte
	}{{FlagSYN, 'S'}, {FlagFIN, 'F'}, {FlagRST, 'R'}, {FlagPSH, 'P'}, {FlagACK, 'A'}, {FlagURG, 'U'}, {FlagECE, 'E'}, {FlagCWR, 'C'}} {
		if f&x.f != 0 {
			b = append(b, x.c)
		}
	}
	if len(b) == 0 {
		return "."
	}
	return string(b)
}

// Packet is the TCP-level fact of one captured segment. Packets are given in
// capture order, before the stream bytes they carry are delivered.
type Packet struct {
	Frame      uint64 // 1-based frame number in the (merged) input
	Time       time.Time
	Dir        Dir
	Flags      Flags
	Seq, Ack   uint32
	Window     uint16
	TTL        uint8 // IPv4 TTL or IPv6 hop limit
	IPID       uint16
	HasIPID    bool // IPv4 only
	PayloadLen int
	SrcMAC     [6]byte
	HasMAC     bool
	// Payload is the first bytes of a RST's payload (a vendor's reset cause);
	// nil otherwise. It is copied if kept.
	Payload []byte
}
