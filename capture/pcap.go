package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// libpcapMaxSnaplen is libpcap's MAXIMUM_SNAPLEN: like libpcap, a record
// longer than both it and the file's snaplen is damage (a longer one
// within the snaplen is cut at Options.MaxRecord).
const libpcapMaxSnaplen = 262144

// pcapState is what the classic pcap file header says.
type pcapState struct {
	order   binary.ByteOrder
	nanos   bool
	snaplen uint32
	lt      layers.LinkType
}

func (f *file) openPcap() error {
	if _, err := f.readFull(f.hdr[:24]); err != nil {
		return f.headerErr("pcap file header", err)
	}
	h := f.hdr[:24]
	p := &f.pcap
	switch binary.LittleEndian.Uint32(h) {
	case 0xa1b2c3d4:
		p.order, p.nanos = binary.LittleEndian, false
	case 0xa1b23c4d:
		p.order, p.nanos = binary.LittleEndian, true
	case 0xd4c3b2a1:
		p.order, p.nanos = binary.BigEndian, false
	default:
		p.order, p.nanos = binary.BigEndian, true
	}
	if major, minor := p.order.Uint16(h[4:]), p.order.Uint16(h[6:]); major != 2 {
		return fmt.Errorf("capture: %s: unknown pcap version %d.%d: %w", f.name, major, minor, ErrFormat)
	}
	p.snaplen = p.order.Uint32(h[16:])
	p.lt = layers.LinkType(p.order.Uint32(h[20:]) & 0xffff)
	if _, err := checkLinkType(p.lt); err != nil {
		return fmt.Errorf("capture: %s: %w", f.name, err)
	}
	return nil
}

// nextPcap reads one record: a 16-byte header (seconds, micro- or
// nanoseconds, captured length, original length) and the captured bytes.
// A captured length above maxRec is cut: the first maxRec bytes are kept,
// the rest is skipped unread.
func (f *file) nextPcap(probe bool) error {
	start := f.off
	p := &f.pcap
	n, err := f.readFull(f.hdr[:16])
	if err != nil {
		if n == 0 && err == io.EOF {
			return err
		}
		return f.readErr(start, err)
	}
	h := f.hdr[:16]
	sec, frac := p.order.Uint32(h), p.order.Uint32(h[4:])
	caplen, origlen := p.order.Uint32(h[8:]), p.order.Uint32(h[12:])
	if caplen > origlen {
		return f.damage(start, fmt.Sprintf("captured length %d exceeds the original length %d", caplen, origlen))
	}
	if p.snaplen != 0 && caplen > p.snaplen && caplen > libpcapMaxSnaplen {
		return f.damage(start, fmt.Sprintf("captured length %d exceeds the file's snaplen %d", caplen, p.snaplen))
	}
	ns := int64(frac)
	if !p.nanos {
		ns *= 1000
	}
	f.ci.Timestamp = time.Unix(int64(sec), ns).UTC()
	if probe {
		return nil
	}
	keep := int(min(caplen, uint32(f.maxRec)))
	data := f.grow(keep)
	if n, err := f.readFull(data); err != nil {
		return f.truncatedPcap(start, caplen, data[:n], err)
	}
	if int64(caplen) > int64(keep) {
		if err := f.skip(int64(caplen) - int64(keep)); err != nil {
			return f.truncatedPcap(start, caplen, data, err)
		}
		f.cut, f.cutLen = 1, caplen
	}
	f.packets++
	f.recOff = start
	f.data = data
	f.ci.CaptureLength, f.ci.Length, f.ci.InterfaceIndex = keep, int(origlen), 0
	f.lt = p.lt
	return nil
}

// truncatedPcap tells a record cut by the end of the file from one whose
// captured length was damaged so that it swallows the rest of the file:
// if two well-formed record headers with timestamps close to this one's
// follow each other inside what was read, the length is wrong.
func (f *file) truncatedPcap(start int64, caplen uint32, got []byte, err error) error {
	e := f.readErr(start, err)
	if _, ok := e.(*TruncatedError); !ok {
		return e
	}
	for i := 0; i+32 <= len(got); i++ {
		if f.plausiblePcap(got[i:]) {
			j := i + 16 + int(f.pcap.order.Uint32(got[i+8:]))
			if j+16 <= len(got) && f.plausiblePcap(got[j:]) {
				return f.damage(start, fmt.Sprintf("captured length %d runs past the end of the file, but a record header follows at %s: the length is damaged",
					caplen, where(start+16+int64(i), f.decompressed())))
			}
		}
	}
	return e
}

func (f *file) plausiblePcap(h []byte) bool {
	p := &f.pcap
	sec, frac := p.order.Uint32(h), p.order.Uint32(h[4:])
	caplen, origlen := p.order.Uint32(h[8:]), p.order.Uint32(h[12:])
	lim := uint32(1e6)
	if p.nanos {
		lim = 1e9
	}
	d := int64(sec) - f.ci.Timestamp.Unix()
	return frac < lim && caplen <= origlen && caplen > 0 && origlen <= 1<<18 && d >= -3600 && d <= 3600
}
