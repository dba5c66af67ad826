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
