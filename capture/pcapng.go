package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// pcapng block types read; others are skipped (and counted when unknown).
const (
	ngSHB = 0x0A0D0D0A // section header
	ngIDB = 1          // interface description
	ngOPB = 2          // packet block (obsolete)
	ngSPB = 3          // simple packet block
	ngNRB = 4          // name resolution
	ngISB = 5          // interface statistics
	ngEPB = 6          // enhanced packet block
	ngDSB = 0x0A       // decryption secrets
)

// maxInterfaces bounds the interface table a section may describe.
const maxInterfaces = 1 << 16

// ngIface is one interface description of the current section.
type ngIface struct {
	lt      layers.LinkType
	snaplen uint32
	binary  bool   // if_tsresol is a power of 2
	exp     uint8  // if_tsresol exponent
	div     uint64 // 10^exp for decimal resolutions
	offset  int64  // if_tsoffset, seconds
}

// ngState is the current section of a pcapng file.
type ngState struct {
	order  binary.ByteOrder
	ifaces []ngIface
}

func (i *ngIface) time(ts uint64) time.Time {
	var sec, ns uint64
	if i.binary {
		sec = ts >> i.exp
		hi, lo := bits.Mul64(ts&(1<<i.exp-1), 1e9)
		ns = hi<<(64-i.exp) | lo>>i.exp
	} else {
		sec = ts / i.div
		if frac := ts % i.div; i.exp <= 9 {
			ns = frac * (1e9 / i.div)
		} else {
			ns = frac / (i.div / 1e9)
		}
	}
	return time.Unix(int64(sec)+i.offset, int64(ns)).UTC()
}

// openNg reads the section header block that must open the file.
func (f *file) openNg() error {
	f.ng.order = binary.LittleEndian
	_, err := f.ngBlock(false)
	if err == nil && f.ng.ifaces != nil {
		return nil
	}
	var de *DamageError
	var te *TruncatedError
	switch {
	case err == nil:
		return fmt.Errorf("capture: %s: pcapng file does not start with a section header: %w", f.name, ErrFormat)
	case errors.As(err, &de):
		return fmt.Errorf("capture: %s: pcapng section header: %s: %w", f.name, de.Detail, ErrFormat)
	case errors.As(err, &te) && te.Codec != "":
		return fmt.Errorf("capture: %s: %s: truncated inside the pcapng section header: %w", f.name, te.Codec, ErrFormat)
	case errors.As(err, &te):
		return fmt.Errorf("capture: %s: file ends inside the pcapng section header: %w", f.name, ErrFormat)
	}
	return f.headerErr("pcapng section header", err)
}

// nextNg reads blocks up to the next packet.
func (f *file) nextNg(probe bool) error {
	for {
		pkt, err := f.ngBlock(probe)
		if err != nil || pkt {
			return err
		}
	}
}

// ngBlock reads one block: 4 bytes type, 4 bytes total length, the body,
// the total length again. At most maxRec bytes of a packet are kept; the
// rest of a longer block is skipped unread. It reports whether the block
// was a packet. With probe set, it returns at the first packet's
// timestamp without reading the rest of the block.
func (f *file) ngBlock(probe bool) (bool, error) {
	start := f.off
	n, err := f.readFull(f.hdr[:8])
	if err != nil {
		if n == 0 && err == io.EOF {
			return false, io.EOF
		}
		return false, f.readErr(start, err)
	}
	f.blocks++
	typ := f.ng.order.Uint32(f.hdr[:])
	pre := int64(0)
	if typ == ngSHB {
		if _, err := f.readFull(f.hdr[8:12]); err != nil {
			return false, f.readErr(start, err)
		}
		switch binary.LittleEndian.Uint32(f.hdr[8:]) {
		case 0x1A2B3C4D:
			f.ng.order = binary.LittleEndian
		case 0x4D3C2B1A:
			f.ng.order = binary.BigEndian
		default:
			return false, f.damage(start, fmt.Sprintf("section header with a bad byte-order magic % x", f.hdr[8:12]))
		}
		pre = 4
	} else if f.blocks == 1 {
		return false, nil // not a section header: openNg says so
	}
	length := f.ng.order.Uint32(f.hdr[4:])
	if length < 12 || length%4 != 0 || (typ == ngSHB && length < 28) {
		return false, f.damage(start, fmt.Sprintf("block of type %#x has an impossible length %d", typ, length))
	}
	bodyLen := int64(length) - 12 - pre
	body := f.grow(int(min(bodyLen, int64(f.maxRec)+32)))
	if n, err := f.readFull(body); err != nil {
		return false, f.truncatedNg(start, length, 8+int(pre), body[:n], err)
	}
	pkt, err := f.ngParse(start, typ, bodyLen, body)
	if err != nil || (pkt && probe) {
		return pkt, err
	}
	if err := f.skip(bodyLen - int64(len(body))); err != nil {
		return false, f.truncatedNg(start, length, 8+int(pre), body, err)
	}
	if _, err := f.readFull(f.hdr[12:16]); err != nil {
		return false, f.truncatedNg(start, length, 8+int(pre), body, err)
	}
	if t := f.ng.order.Uint32(f.hdr[12:]); t != length {
		return false, f.damage(start, fmt.Sprintf("block length %d does not match the length %d at its end", length, t))
	}
	if pkt {
		f.packets++
		f.recOff = start
	}
	return pkt, nil
}

// ngParse interprets the kept part of a block body.
func (f *file) ngParse(start int64, typ uint32, bodyLen int64, body []byte) (bool, error) {
	ng := &f.ng
	switch typ {
	case ngSHB:
		if major := ng.order.Uint16(body); major != 1 {
			return false, f.damage(start, fmt.Sprintf("unknown pcapng version %d.%d", major, ng.order.Uint16(body[2:])))
		}
		ng.ifaces = ng.ifaces[:0:0]
		if ng.ifaces == nil {
			ng.ifaces = []ngIface{}
		}
		return false, nil
	case ngIDB:
		return false, f.ngInterface(start, body)
	case ngEPB, ngOPB:
		if bodyLen < 20 {
			return false, f.damage(start, fmt.Sprintf("packet block of %d bytes is too short", bodyLen+12))
		}
		id := ng.order.Uint32(body)
		if typ == ngOPB {
			id = uint32(ng.order.Uint16(body))
		}
		caplen, origlen := ng.order.Uint32(body[12:]), ng.order.Uint32(body[16:])
		if id >= uint32(len(ng.ifaces)) {
			return false, f.damage(start, fmt.Sprintf("packet of interface %d, but %d interfaces are described", id, len(ng.ifaces)))
		}
		if int64(caplen) > bodyLen-20 {
			return false, f.damage(start, fmt.Sprintf("captured length %d does not fit in its block of %d bytes", caplen, bodyLen+12))
		}
		ifc := &ng.ifaces[id]
		f.ci.Timestamp = ifc.time(uint64(ng.order.Uint32(body[4:]))<<32 | uint64(ng.order.Uint32(body[8:])))
		f.setPacket(body[20:], caplen, origlen, int(id), ifc.lt)
		return true, nil
	case ngSPB:
		if bodyLen < 4 || len(ng.ifaces) == 0 {
			return false, f.damage(start, "simple packet block without an interface or a length")
		}
		origlen := ng.order.Uint32(body)
		caplen := uint32(min(int64(origlen), bodyLen-4))
		if s := ng.ifaces[0].snaplen; s != 0 && caplen > s {
			caplen = s
		}
		// No timestamp: it keeps the previous packet's.
		f.setPacket(body[4:], caplen, origlen, 0, ng.ifaces[0].lt)
		return true, nil
	case ngNRB, ngISB, ngDSB, 9, 0xBAD, 0x40000BAD:
		return false, nil
	}
	f.unknown++
	return false, nil
}

// setPacket makes the packet in data (kept bytes of a block) the current
// frame, cut at maxRec.
func (f *file) setPacket(data []byte, caplen, origlen uint32, iface int, lt layers.LinkType) {
	keep := int(min(caplen, uint32(f.maxRec)))
	if caplen > uint32(keep) {
		f.cut, f.cutLen = 1, caplen
	}
	f.data = data[:keep]
	f.ci.CaptureLength, f.ci.Length, f.ci.InterfaceIndex = keep, int(origlen), iface
	f.lt = lt
}

// ngInterface reads an interface description: link type, snaplen and the
// if_tsresol and if_tsoffset options.
func (f *file) ngInterface(start int64, body []byte) error {
	ng := &f.ng
	if len(body) < 8 {
		return f.damage(start, "interface description block too short")
	}
	if len(ng.ifaces) >= maxInterfaces {
		return f.damage(start, fmt.Sprintf("more than %d interfaces described", maxInterfaces))
	}
	ifc := ngIface{lt: layers.LinkType(ng.order.Uint16(body)), snaplen: ng.order.Uint32(body[4:]), exp: 6}
	for o := body[8:]; len(o) >= 4; {
		code, olen := ng.order.Uint16(o), int(ng.order.Uint16(o[2:]))
		if code == 0 || 4+olen > len(o) {
			break
		}
		v := o[4 : 4+olen]
		switch {
		case code == 9 && olen >= 1:
			ifc.binary, ifc.exp = v[0]&0x80 != 0, v[0]&0x7f
		case code == 14 && olen >= 8:
			ifc.offset = int64(ng.order.Uint64(v))
		}
		o = o[min(len(o), 4+(olen+3)&^3):]
	}
	if (ifc.binary && ifc.exp > 63) || (!ifc.binary && ifc.exp > 19) {
		return f.damage(start, fmt.Sprintf("impossible timestamp resolution option %#x", body))
	}
	if !ifc.binary {
		ifc.div = 1
		for range ifc.exp {
			ifc.div *= 10
		}
	}
	ng.ifaces = append(ng.ifaces, ifc)
	return nil
}

// truncatedNg tells a block cut by the end of the file from one whose
// length was damaged so that it swallows the rest of the file: if the
// bytes read hold a block end (a trailer equal to its distance from the
// block start) followed by a whole well-formed block, the length is wrong.
func (f *file) truncatedNg(start int64, length uint32, base int, got []byte, err error) error {
	e := f.readErr(start, err)
	if _, ok := e.(*TruncatedError); !ok {
		return e
	}
	o := f.ng.order
	for l := 12; l-base+8 <= len(got); l += 4 {
		i := l - base // index in got of the block that would follow
		if i < 4 || o.Uint32(got[i-4:]) != uint32(l) {
			continue
		}
		t2, l2 := o.Uint32(got[i:]), int(o.Uint32(got[i+4:]))
		if !knownBlock(t2) || l2 < 12 || l2%4 != 0 || i+l2 > len(got) || o.Uint32(got[i+l2-4:]) != uint32(l2) {
			continue
		}
		return f.damage(start, fmt.Sprintf("block length %d runs past the end of the file, but the block ends after %d bytes and a well-formed block follows: the length is damaged", length, l))
	}
	return e
}

func knownBlock(t uint32) bool {
	switch t {
	case ngSHB, ngIDB, ngOPB, ngSPB, ngNRB, ngISB, ngEPB, ngDSB:
		return true
	}
	return false
}
