package smtpstate

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
)

const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// UID is a Zeek-style connection id ("C" + base62) that depends only on the
// first timestamp and the 4-tuple, so re-runs give the same ids.
func UID(r *Record) string {
	h := sha1.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(r.TS.UnixNano()))
	h.Write(b[:])
	h.Write([]byte(r.OrigH))
	binary.BigEndian.PutUint16(b[:2], r.OrigP)
	h.Write(b[:2])
	h.Write([]byte(r.RespH))
	binary.BigEndian.PutUint16(b[:2], r.RespP)
	h.Write(b[:2])
	sum := h.Sum(nil)
	v := binary.BigEndian.Uint64(sum[:8])
	out := []byte{'C'}
	for i := 0; i < 17; i++ {
		out = append(out, b62[v%62])
		v /= 62
	}
	return string(out)
}

// CommunityID computes the Community ID v1 flow hash for TCP (seed 0).
func CommunityID(srcH string, srcP uint16, dstH string, dstP uint16) string {
	s, err1 := netip.ParseAddr(srcH)
	d, err2 := netip.ParseAddr(dstH)
	if err1 != nil || err2 != nil {
		return ""
	}
	s, d = s.Unmap(), d.Unmap()
	if c := s.Compare(d); c > 0 || (c == 0 && srcP > dstP) {
		s, d, srcP, dstP = d, s, dstP, srcP
	}
	h := sha1.New()
	h.Write([]byte{0, 0})
	sb, db := s.AsSlice(), d.AsSlice()
	h.Write(sb)
	h.Write(db)
	h.Write([]byte{6, 0})
	var p [4]byte
	binary.BigEndian.PutUint16(p[:2], srcP)
	binary.BigEndian.PutUint16(p[2:], dstP)
	h.Write(p[:])
	return "1:" + base64.StdEncoding.EncodeToString(h.Sum(nil))
}
