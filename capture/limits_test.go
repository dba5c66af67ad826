package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gzMember is one gzip member holding b; members concatenate into one
// stream (RFC 1952), so a gigabyte of zeros costs one compression of 64 MiB.
func gzMember(t testing.TB, b []byte) []byte {
	var o bytes.Buffer
	w, err := gzip.NewWriterLevel(&o, gzip.BestSpeed)
	require.NoError(t, err)
	_, err = w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return o.Bytes()
}

var zeros64M []byte

// zeroMembers is n MiB of zeros as gzip members (n a multiple of 64).
func zeroMembers(t testing.TB, n int) []byte {
	if zeros64M == nil {
		zeros64M = gzMember(t, make([]byte, 64<<20))
	}
	return bytes.Repeat(zeros64M, n/64)
}

func le32(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// measure runs read and returns the bytes it allocated.
func measure(read func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	read()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// A header claiming snaplen 0xffffffff and a record of 1 GiB (really
// there, as zeros) in a 1 MB .pcap.gz: the record is cut to MaxRecord,
// the rest skipped unread, counted and said once; the frame after it is
// read; a few MB are allocated, not a gigabyte.
func TestGigabyteRecord(t *testing.T) {
	lab := readFile(t, filepath.Join(labDir, "quit_one/server.pcap"))
	small := lab[24 : 24+16+int(binary.LittleEndian.Uint32(lab[24+8:]))]
	dir := t.TempDir()
	hdr := append(le32(0xa1b2c3d4, 0x00040002, 0, 0, 0xffffffff, 1), le32(1, 0, 1<<30, 1<<30)...)
	var f bytes.Buffer
	f.Write(gzMember(t, hdr))
	f.Write(zeroMembers(t, 1024))
	f.Write(gzMember(t, small))
	pcapGz := filepath.Join(dir, "big.pcap.gz")
	require.NoError(t, os.WriteFile(pcapGz, f.Bytes(), 0o644))
	t.Logf("%s: %d bytes", pcapGz, f.Len())

	// pcapng: an enhanced packet block of 1 GiB, then a small one.
	shb := le32(0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0xffffffff, 0xffffffff, 28)
	idb := le32(1, 20, 1, 0, 20)
	epb := func(caplen uint32, data []byte) []byte {
		b := le32(6, 32+caplen, 0, 0, 1, caplen, caplen)
		return append(b, data...)
	}
	var g bytes.Buffer
	g.Write(gzMember(t, append(append(shb, idb...), epb(1<<30, nil)...)))
	g.Write(zeroMembers(t, 1024))
	d := small[16:]
	pad := (4 - len(d)%4) % 4
	second := append(epb(uint32(len(d)), d), make([]byte, pad)...)
	binary.LittleEndian.PutUint32(second[4:], uint32(len(second)+4))
	second = append(second, le32(uint32(len(second)+4))...)
	g.Write(gzMember(t, append(le32(32+1<<30), second...)))
	ngGz := filepath.Join(dir, "big.pcapng.gz")
	require.NoError(t, os.WriteFile(ngGz, g.Bytes(), 0o644))

	for _, p := range []string{pcapGz, ngGz} {
		var s *Source
		var frames []int
		var err error
		alloc := measure(func() {
			s, err = Open([]string{p}, Options{})
			require.NoError(t, err)
			for {
				fr, ok := s.Next()
				if !ok {
					break
				}
				frames = append(frames, len(fr.Data), fr.CI.Length)
			}
			s.Close()
		})
		require.NoError(t, s.Err(), p)
		assert.Equal(t, []int{DefaultMaxRecord, 1 << 30, len(d), len(d)}, frames, p)
		assert.Equal(t, uint64(1), s.Stats().RecordsCut, p)
		if assert.Len(t, s.Warnings(), 1, p) {
			assert.Contains(t, s.Warnings()[0], "record 1 at byte offset")
			assert.Contains(t, s.Warnings()[0], "of the decompressed stream: captured length 1073741824 cut to its first 262144 bytes")
		}
		assert.Less(t, alloc, uint64(8<<20), "%s: bytes allocated", p)
		t.Logf("%s: %d bytes allocated", p, alloc)
	}
}

// A record claiming 4 GiB, of which 256 MiB are there: a truncated last
// record, the frame before it kept, memory bounded.
func TestHugeRecordCutByEnd(t *testing.T) {
	lab := readFile(t, filepath.Join(labDir, "quit_one/server.pcap"))
	// the file header with snaplen 0xffffffff, the lab's first record
	first := append(le32(0xa1b2c3d4, 0x00040002, 0, 0, 0xffffffff, 1), lab[24:24+16+int(binary.LittleEndian.Uint32(lab[24+8:]))]...)
	var f bytes.Buffer
	f.Write(gzMember(t, append(append([]byte(nil), first...), le32(2, 0, 0xfffffff0, 0xfffffff0)...)))
	f.Write(zeroMembers(t, 256))
	p := filepath.Join(t.TempDir(), "huge.pcap.gz")
	require.NoError(t, os.WriteFile(p, f.Bytes(), 0o644))
	var got []rec
	var warn []string
	var err error
	alloc := measure(func() { got, warn, err = readAll(t, []string{p}, Options{}) })
	require.NoError(t, err)
	assert.Len(t, got, 1)
	if assert.Len(t, warn, 1) {
		assert.Contains(t, warn[0], "last record truncated at byte offset "+strconv.Itoa(len(first))+" of the decompressed stream after 1 packets")
	}
	assert.Less(t, alloc, uint64(8<<20))
	t.Logf("%d bytes allocated", alloc)
}

// MaxRecord cuts every longer record to its first bytes and counts them.
func TestMaxRecordOption(t *testing.T) {
	p := filepath.Join(labDir, "quit_multi/server.pcap")
	want := readGopacket(t, p)
	got, warn, err := readAll(t, []string{p}, Options{MaxRecord: 100})
	require.NoError(t, err)
	require.Len(t, got, len(want))
	cut := 0
	for i := range want {
		d := want[i].data
		if len(d) > 100 {
			d = d[:100]
			cut++
		}
		assert.Equal(t, d, got[i].data)
		assert.Equal(t, want[i].orig, got[i].orig)
	}
	require.Greater(t, cut, 0)
	assert.Len(t, warn, 1)
	s, err := Open([]string{p}, Options{MaxRecord: 100})
	require.NoError(t, err)
	for _, ok := s.Next(); ok; _, ok = s.Next() {
	}
	assert.Equal(t, uint64(cut), s.Stats().RecordsCut)
	s.Close()
}

func TestUsageErrors(t *testing.T) {
	p := filepath.Join(labDir, "quit_one/server.pcap")
	for _, c := range []struct {
		names []string
		opt   Options
		msg   string
	}{
		{[]string{"-", p, "-"}, Options{}, "standard input (-) given more than once"},
		{[]string{p}, Options{MaxRecord: -1}, "negative limit"},
		{[]string{p}, Options{MaxOpenFiles: -3}, "negative limit"},
		{nil, Options{}, "no input file"},
	} {
		_, err := Open(c.names, c.opt)
		if assert.Error(t, err) {
			assert.True(t, errors.Is(err, ErrUsage), "%v", err)
			assert.Contains(t, err.Error(), c.msg)
		}
	}
}

// ngBlockBytes builds a pcapng block in order bo: type, body (padded), trailer.
func ngBlockBytes(bo binary.AppendByteOrder, typ uint32, body []byte) []byte {
	body = append(body, make([]byte, (4-len(body)%4)%4)...)
	n := uint32(12 + len(body))
	b := bo.AppendUint32(bo.AppendUint32(nil, typ), n)
	return bo.AppendUint32(append(b, body...), n)
}

func u32s(bo binary.AppendByteOrder, v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = bo.AppendUint32(b, x)
	}
	return b
}

// Obsolete and simple packet blocks, nanosecond and binary timestamp
// resolutions, a second section in big-endian order: read as written; a
// simple packet block of 1 MiB is cut like any other record.
func TestPcapngBlockKinds(t *testing.T) {
	le, be := binary.AppendByteOrder(binary.LittleEndian), binary.AppendByteOrder(binary.BigEndian)
	shb := func(bo binary.AppendByteOrder) []byte {
		return ngBlockBytes(bo, ngSHB, append(bo.AppendUint16(bo.AppendUint16(u32s(bo, 0x1A2B3C4D), 1), 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	}
	idb := func(bo binary.AppendByteOrder, resol byte) []byte {
		b := u32s(bo, 1, 0)
		b = bo.AppendUint16(bo.AppendUint16(b[:0], 1), 0)
		b = bo.AppendUint32(b, 0)
		b = bo.AppendUint16(bo.AppendUint16(b, 9), 1)
		return ngBlockBytes(bo, ngIDB, append(b, resol, 0, 0, 0, 0, 0, 0, 0))
	}
	big := bytes.Repeat([]byte{0xab}, 1<<20)
	var f []byte
	f = append(f, shb(le)...)
	f = append(f, idb(le, 9)...) // nanoseconds
	ts := uint64(1764187088123456789)
	opb := le.AppendUint16(le.AppendUint16(nil, 0), 0)
	opb = append(opb, u32s(le, uint32(ts>>32), uint32(ts), 5, 5)...)
	f = append(f, ngBlockBytes(le, ngOPB, append(opb, "hello"...))...)
	f = append(f, ngBlockBytes(le, ngSPB, append(u32s(le, 3), "abc"...))...)
	f = append(f, ngBlockBytes(le, ngSPB, append(u32s(le, uint32(len(big))), big...))...)
	f = append(f, ngBlockBytes(le, 0x1234, []byte("unknown"))...)
	f = append(f, shb(be)...)
	f = append(f, idb(be, 0x80|20)...) // 2^-20 s
	tb := uint64(1764187090)<<20 | 1<<19
	f = append(f, ngBlockBytes(be, ngEPB, append(u32s(be, 0, uint32(tb>>32), uint32(tb), 2, 2), "be"...))...)
	p := filepath.Join(t.TempDir(), "kinds.pcapng")
	require.NoError(t, os.WriteFile(p, f, 0o644))

	s, err := Open([]string{p}, Options{})
	require.NoError(t, err)
	defer s.Close()
	t0 := time.Unix(0, int64(ts)).UTC()
	want := []rec{
		{t0, "hello", 1, 5},
		{t0, "abc", 1, 3},
		{t0, string(big[:DefaultMaxRecord]), 1, len(big)},
		{time.Unix(1764187090, 5e8).UTC(), "be", 1, 2},
	}
	var got []rec
	for fr, ok := s.Next(); ok; fr, ok = s.Next() {
		got = append(got, rec{fr.CI.Timestamp, string(fr.Data), fr.LinkType, fr.CI.Length})
	}
	require.NoError(t, s.Err())
	assert.Equal(t, want, got)
	assert.Equal(t, Stats{RecordsCut: 1, UnknownBlocks: 1, FilesOpened: 2, MaxOpen: 1}, s.Stats())
	assert.Len(t, s.Warnings(), 2, "one for the cut, one for the unknown block")
}
