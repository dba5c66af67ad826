package reassembly

import (
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/layers"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// decoder holds the layer instances shared by the per-link-type parsers,
// so decoding allocates nothing in the steady state.
type decoder struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	sll2    layers.LinuxSLL2
	loop    layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	ip6ext  layers.IPv6ExtensionSkipper
	gre     layers.GRE
	erspan  layers.ERSPANII
	erspan3 erspanIII
	udp     layers.UDP
	vxlan   layers.VXLAN
	etag    etag
	tcp     layers.TCP
	payload gopacket.Payload
	parsers map[layers.LinkType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	defrag  *ip4defrag.IPv4Defragmenter
	fragTCP layers.TCP

	// facts of the last decode
	hasMAC bool
	ipv6   bool
	ts     time.Time // the frame's timestamp (fragments age by it)

	frags        map[fragKey]fragHeld
	fragBytes    int
	maxFragBytes int
	stats        struct{ Fragments, FragmentsDropped uint64 }
}

func newDecoder() *decoder {
	d := &decoder{parsers: map[layers.LinkType]*gopacket.DecodingLayerParser{}, decoded: make([]gopacket.LayerType, 0, 16),
		frags: map[fragKey]fragHeld{}, maxFragBytes: 32 << 20}
	d.defrag = ip4defrag.NewIPv4Defragmenter()
	return d
}

func (d *decoder) parser(lt layers.LinkType) *gopacket.DecodingLayerParser {
	if p, ok := d.parsers[lt]; ok {
		return p
	}
	var first gopacket.LayerType
	switch lt {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		first = layers.LayerTypeLinuxSLL2
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		first = layers.LayerTypeLoopback
	case layers.LinkTypeIPv4:
		first = layers.LayerTypeIPv4
	case layers.LinkTypeIPv6:
		first = layers.LayerTypeIPv6
	default: // raw IP (101, 12): the version nibble decides, see decode
		first = layers.LayerTypeIPv4
	}
	p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.dot1q, &d.sll, &d.sll2, &d.loop, &d.ip4, &d.ip6, &d.ip6ext,
		&d.gre, &d.erspan, &d.erspan3, &d.udp, &d.vxlan, &d.etag, &d.tcp, &d.payload)
	p.IgnoreUnsupported = true
	d.parsers[lt] = p
	return p
}

var rawIP6 = layers.LinkType(229)

// decode fills the layers; it reports whether a TCP segment was found.
func (d *decoder) decode(lt layers.LinkType, data []byte) (tcp bool, err error) {
	if (lt == layers.LinkTypeRaw || lt == 12) && len(data) > 0 && data[0]>>4 == 6 {
		lt = rawIP6
	}
	if lt == rawIP6 {
		lt = layers.LinkTypeIPv6
	}
	p := d.parser(lt)
	err = p.DecodeLayers(data, &d.decoded)
	d.hasMAC, d.ipv6 = false, false
	ip := false
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeEthernet:
			d.hasMAC = true
		case layers.LayerTypeIPv4:
			d.ipv6, ip = false, true
		case layers.LayerTypeIPv6:
			d.ipv6, ip = true, true
		case layers.LayerTypeTCP:
			tcp = true
		}
	}
	if !ip {
		return false, err
	}
	if !tcp && !d.ipv6 && (d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0) && d.ip4.Protocol == layers.IPProtocolTCP {
		return d.reassembleFragment()
	}
	if tcp {
		return true, nil
	}
	return false, err
}

// Fragments wait at most fragLife of capture time for the rest of their
// datagram; past maxFragBytes held in all, every unfinished datagram is
// dropped (a flood of fragments that never complete must not hold memory).
const fragLife = 5 * time.Second

type fragKey struct {
	src, dst addr16
	id       uint16
}

type fragHeld struct {
	bytes int
	last  time.Time
}

// reassembleFragment feeds an IPv4 fragment to the defragmenter; when the
// datagram is complete its TCP segment is decoded into d.tcp.
func (d *decoder) reassembleFragment() (bool, error) {
	d.stats.Fragments++
	k := fragKey{v4mapped(d.ip4.SrcIP), v4mapped(d.ip4.DstIP), d.ip4.Id}
	// The defragmenter keeps the layer until the datagram is complete, and
	// frame buffers are reused: give it its own copy.
	ip := new(layers.IPv4)
	*ip = d.ip4
	ip.Payload = append([]byte(nil), d.ip4.Payload...)
	ip.Contents, ip.Options = nil, nil
	whole, err := d.defrag.DefragIPv4WithTimestamp(ip, d.ts)
	if err != nil || whole == nil {
		if err == nil {
			h := d.frags[k]
			h.bytes += len(ip.Payload)
			h.last = d.ts
			d.frags[k] = h
			d.fragBytes += len(ip.Payload)
			if d.fragBytes > d.maxFragBytes {
				d.dropFragments(time.Time{})
			}
		}
		return false, err
	}
	d.fragBytes -= d.frags[k].bytes
	delete(d.frags, k)
	d.ip4 = *whole
	if err := d.tcp.DecodeFromBytes(whole.Payload, gopacket.NilDecodeFeedback); err != nil {
		return false, err
	}
	return true, nil
}

// dropFragments forgets unfinished datagrams last seen before t (all of
// them if t is zero) and counts them.
func (d *decoder) dropFragments(t time.Time) {
	if len(d.frags) == 0 {
		return
	}
	cut := t
	if t.IsZero() {
		cut = d.ts.Add(time.Hour)
	}
	d.defrag.DiscardOlderThan(cut)
	for k, h := range d.frags {
		if t.IsZero() || h.last.Before(t) {
			d.stats.FragmentsDropped++
			d.fragBytes -= h.bytes
			delete(d.frags, k)
		}
	}
}

// segment copies the decoded TCP segment's facts into sg; the payload
// still points into the frame.
func (d *decoder) segment(sg *segment, frame uint64, ts, now time.Time) {
	tcp := &d.tcp
	*sg = segment{frame: frame, ts: ts, now: now, sport: uint16(tcp.SrcPort), dport: uint16(tcp.DstPort),
		seq: tcp.Seq, ack: tcp.Ack, window: tcp.Window, payload: tcp.Payload}
	if len(tcp.Contents) >= 14 {
		// smtpstate.Flags are defined bit for bit as on the wire.
		sg.flags = smtpstate.Flags(tcp.Contents[13])
	}
	if d.hasMAC {
		sg.hasMAC = true
		copy(sg.mac[:], d.eth.SrcMAC)
	}
	if d.ipv6 {
		sg.ttl = d.ip6.HopLimit
		copy(sg.src[:], d.ip6.SrcIP.To16())
		copy(sg.dst[:], d.ip6.DstIP.To16())
		return
	}
	sg.ttl, sg.hasIPID, sg.ipid = d.ip4.TTL, true, d.ip4.Id
	sg.src, sg.dst = v4mapped(d.ip4.SrcIP), v4mapped(d.ip4.DstIP)
}

func v4mapped(ip []byte) addr16 {
	a := addr16{10: 0xff, 11: 0xff}
	if len(ip) == 4 {
		copy(a[12:], ip)
	} else if len(ip) == 16 {
		copy(a[:], ip)
	}
	return a
}

// checksumOK validates the decoded TCP segment's checksum (RFC 9293 3.1:
// the one's complement sum over the pseudo-header, header and payload).
func (d *decoder) checksumOK() bool {
	t := &d.tcp
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	n := len(t.Contents) + len(t.Payload)
	if d.ipv6 {
		add(d.ip6.SrcIP.To16())
		add(d.ip6.DstIP.To16())
		sum += uint32(n>>16) + uint32(n&0xffff) + 6
	} else {
		add(d.ip4.SrcIP.To4())
		add(d.ip4.DstIP.To4())
		sum += 6 + uint32(n)
	}
	add(t.Contents) // a TCP header is a whole number of 32-bit words
	add(t.Payload)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum) == 0xffff
}
