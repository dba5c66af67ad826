package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The walkers below find record and block boundaries the simplest way, as
// the reference for offsets and counts (checked once with capinfos -c on
// the mutated files).

// pcapOffsets returns the offset of every complete record of a
// little-endian pcap (and the offset after the last).
func pcapOffsets(b []byte) []int {
	var offs []int
	for o := 24; o+16 <= len(b); {
		n := 16 + int(binary.LittleEndian.Uint32(b[o+8:]))
		if o+n > len(b) {
			break
		}
		offs = append(offs, o)
		o += n
	}
	return offs
}

type ngBlk struct{ off, typ, len int }

// ngBlocks lists the blocks of a little-endian pcapng.
func ngBlocks(b []byte) []ngBlk {
	var l []ngBlk
	for o := 0; o+12 <= len(b); {
		bl := ngBlk{o, int(binary.LittleEndian.Uint32(b[o:])), int(binary.LittleEndian.Uint32(b[o+4:]))}
		l = append(l, bl)
		o += bl.len
	}
	return l
}

// epbsBefore counts the packet blocks before block k.
func epbsBefore(bl []ngBlk, k int) int {
	n := 0
	for _, b := range bl[:k] {
		if b.typ == ngEPB {
			n++
		}
	}
	return n
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

func gz(t testing.TB, b []byte) []byte {
	var o bytes.Buffer
	w := gzip.NewWriter(&o)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return o.Bytes()
}

// zst compresses b in blocks of 500 bytes, so that a cut or damaged
// stream still yields its first blocks.
func zst(t testing.TB, b []byte) []byte {
	var o bytes.Buffer
	w, err := zstd.NewWriter(&o)
	require.NoError(t, err)
	for len(b) > 0 {
		n := min(len(b), 500)
		_, err = w.Write(b[:n])
		require.NoError(t, err)
		require.NoError(t, w.Flush())
		b = b[n:]
	}
	require.NoError(t, w.Close())
	return o.Bytes()
}

func setLE(b []byte, off int, v uint32) []byte {
	c := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(c[off:], v)
	return c
}

// decompressedPrefix is what a decompressor yields of a cut stream.
func decompressedPrefix(t testing.TB, b []byte, codec string) []byte {
	var r io.Reader
	if codec == "gzip" {
		z, err := gzip.NewReader(bytes.NewReader(b))
		require.NoError(t, err)
		r = z
	} else {
		z, err := zstd.NewReader(bytes.NewReader(b))
		require.NoError(t, err)
		defer z.Close()
		r = z
	}
	out, err := io.ReadAll(r)
	require.Error(t, err)
	return out
}

type badCase struct {
	name   string
	data   []byte // the file; nil with dir set for a directory
	dir    bool
	open   string // substring of the Open error
	err    string // substring of Err after reading
	warn   string // substring of a warning
	frames int    // frames delivered
}

func runBad(t *testing.T, cases []badCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "in.cap")
			if c.dir {
				require.NoError(t, os.Mkdir(p, 0o755))
			} else {
				require.NoError(t, os.WriteFile(p, c.data, 0o644))
			}
			got, warn, err := readAll(t, []string{p}, Options{})
			if c.open != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.open)
				assert.Contains(t, err.Error(), p, "the error names the file")
				assert.True(t, errors.Is(err, ErrFormat), "%v", err)
				return
			}
			assert.Equal(t, c.frames, len(got), "frames delivered")
			if c.err == "" {
				assert.NoError(t, err)
			} else if assert.Error(t, err) {
				assert.Contains(t, err.Error(), c.err)
				assert.Contains(t, err.Error(), p)
				assert.True(t, errors.Is(err, ErrCorrupt), "%v", err)
				assert.NotContains(t, err.Error(), "truncated")
			}
			if c.warn == "" {
				assert.Empty(t, warn)
			} else if assert.Len(t, warn, 1) {
				assert.Contains(t, warn[0], c.warn)
				assert.Contains(t, warn[0], p)
			}
		})
	}
}

func TestBadPcap(t *testing.T) {
	b := readFile(t, filepath.Join(labDir, "quit_multi/server.pcap"))
	offs := pcapOffsets(b)
	require.Len(t, offs, 36, "capinfos -c")
	r21 := offs[20]
	capOf := func(i int) uint32 { return binary.LittleEndian.Uint32(b[offs[i]+8:]) }
	damaged := setLE(b, r21+8, 0x7fffffff)
	swallow := setLE(setLE(b, r21+8, 200000), r21+12, 200000)
	gzb := gz(t, b)
	gzCut := gzb[:len(gzb)*2/3]
	gzFrames := len(pcapOffsets(decompressedPrefix(t, gzCut, "gzip")))
	zsb := zst(t, b)
	zsCut := zsb[:len(zsb)*2/3]
	zsFrames := len(pcapOffsets(decompressedPrefix(t, zsCut, "zstd")))
	badCRC := append([]byte(nil), gzb...)
	badCRC[len(badCRC)-8] ^= 0xff
	badDeflate := append([]byte(nil), gzb...)
	badDeflate[10] = 0x07 // final block of the reserved type 3
	badZstd := append([]byte(nil), zsb...)
	for i := len(badZstd) / 2; i < len(badZstd)/2+64; i++ {
		badZstd[i] ^= 0x5a
	}
	badZstdFrames := len(pcapOffsets(decompressedPrefix(t, badZstd, "zstd")))
	runBad(t, []badCase{
		{name: "cut inside the last record", data: b[:len(b)-20], warn: fmt.Sprintf("last record truncated at byte offset %d after 35 packets", offs[35]), frames: 35},
		{name: "cut inside a record header", data: b[:offs[29]+7], warn: fmt.Sprintf("last record truncated at byte offset %d after 29 packets", offs[29]), frames: 29},
		{name: "cut at a record boundary", data: b[:offs[29]], frames: 29},
		{name: "captured length above the original", data: damaged, err: fmt.Sprintf("record 21 at byte offset %d: captured length 2147483647 exceeds the original length %d", r21, binary.LittleEndian.Uint32(b[r21+12:])), frames: 20},
		{name: "captured length swallowing the rest", data: swallow, err: fmt.Sprintf("record 21 at byte offset %d: captured length 200000 runs past the end of the file, but a record header follows at byte offset %d", r21, r21+16+int(capOf(20))), frames: 20},
		{name: "damaged record in gzip", data: gz(t, damaged), err: fmt.Sprintf("record 21 at byte offset %d of the decompressed stream: captured length 2147483647", r21), frames: 20},
		{name: "damaged record in zstd", data: zst(t, damaged), err: fmt.Sprintf("record 21 at byte offset %d of the decompressed stream", r21), frames: 20},
		{name: "truncated gzip", data: gzCut, warn: "gzip: truncated", frames: gzFrames},
		{name: "truncated zstd", data: zsCut, warn: "zstd: truncated", frames: zsFrames},
		{name: "gzip checksum", data: badCRC, err: fmt.Sprintf("record 37 at byte offset %d of the decompressed stream: gzip: invalid checksum", len(b)), frames: 36},
		{name: "gzip corrupt deflate", data: badDeflate, open: "gzip: flate: corrupt input"},
		{name: "zstd corrupt", data: badZstd, err: "zstd: ", frames: badZstdFrames},
		{name: "zstd window of 1 GiB", data: zstdBigWindow(b[:24]), open: "zstd: window size exceeded (the file asks for a window larger than the 512 MiB accepted)"},
		{name: "directory", dir: true, open: "is a directory"},
		{name: "empty file", data: nil, open: "empty file"},
		{name: "empty gzip", data: gz(t, nil), open: "empty file (nothing inside the gzip stream)"},
		{name: "header only", data: b[:24], frames: 0},
		{name: "cut header", data: b[:20], open: "file ends inside the pcap file header"},
		{name: "bad version", data: setLE(b, 4, 7), open: "unknown pcap version 7.0"},
	})
	for _, n := range []int{gzFrames, zsFrames, badZstdFrames} {
		assert.Greater(t, n, 0)
		assert.Less(t, n, 36)
	}
}

// zstdBigWindow is a zstd frame whose header asks for a 1 GiB window,
// holding raw bytes.
func zstdBigWindow(raw []byte) []byte {
	o := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3}
	h := uint32(1) | uint32(len(raw))<<3 // last block, raw
	o = append(o, byte(h), byte(h>>8), byte(h>>16))
	return append(o, raw...)
}

func TestBadPcapng(t *testing.T) {
	b := readFile(t, filepath.Join(labDir, "all-server.pcapng"))
	bl := ngBlocks(b)
	require.Len(t, bl, 609)
	require.Equal(t, 607, epbsBefore(bl, len(bl)), "capinfos -c")
	k := 300
	blk := bl[k]
	at := fmt.Sprintf("block %d (record %d) at byte offset %d: ", k+1, epbsBefore(bl, k)+1, blk.off)
	n := epbsBefore(bl, k)
	sessions := func(d []byte) []byte { return d }
	runBad(t, []badCase{
		{name: "length +4", data: setLE(b, blk.off+4, uint32(blk.len+4)), err: at + fmt.Sprintf("block length %d does not match the length", blk.len+4), frames: n},
		{name: "length +400", data: setLE(b, blk.off+4, uint32(blk.len+400)), err: at + "block length", frames: n},
		{name: "length -4", data: setLE(b, blk.off+4, uint32(blk.len-4)), err: at, frames: n},
		{name: "length odd", data: setLE(b, blk.off+4, uint32(blk.len+1)), err: at + fmt.Sprintf("block of type 0x6 has an impossible length %d", blk.len+1), frames: n},
		{name: "length past the end", data: setLE(b, blk.off+4, 0x7ffffff0), err: at + "block length 2147483632 runs past the end of the file, but the block ends after", frames: n},
		{name: "length past the end, gzip", data: gz(t, setLE(b, blk.off+4, 0x00ffff00)), err: fmt.Sprintf("at byte offset %d of the decompressed stream: block length 16776960 runs past the end", blk.off), frames: n},
		{name: "trailer", data: setLE(b, blk.off+blk.len-4, 7), err: at + fmt.Sprintf("block length %d does not match the length 7 at its end", blk.len), frames: n},
		{name: "interface", data: setLE(b, blk.off+8, 3), err: at + "packet of interface 3, but 1 interfaces are described", frames: n},
		{name: "captured length", data: setLE(b, blk.off+20, uint32(blk.len)), err: at + fmt.Sprintf("captured length %d does not fit in its block of %d bytes", blk.len, blk.len), frames: n},
		{name: "cut inside a block", data: sessions(b[:blk.off+40]), warn: fmt.Sprintf("last record truncated at byte offset %d after %d packets", blk.off, n), frames: n},
		{name: "cut inside a block header", data: b[:blk.off+5], warn: fmt.Sprintf("last record truncated at byte offset %d", blk.off), frames: n},
		{name: "cut at a block boundary", data: b[:blk.off], frames: n},
		{name: "cut inside the section header", data: b[:20], open: "file ends inside the pcapng section header"},
		{name: "bad byte order", data: setLE(b, 8, 0x01020304), open: "bad byte-order magic"},
	})
}

// Changing the length of any block (but the last) to any other value is
// damage reported at that block, never a truncation, and the packets
// before it are all delivered.
func TestPcapngLengthMutations(t *testing.T) {
	b := readFile(t, filepath.Join(labDir, "all-server.pcapng"))
	bl := ngBlocks(b)
	dir := t.TempDir()
	tried, late := 0, 0
	for k := 2; k < len(bl)-1; k += 3 {
		for _, delta := range []int{4, 8, 64, -4, -8, 1 << 20, 1 << 30} {
			l := bl[k].len + delta
			p := filepath.Join(dir, "m.pcapng")
			require.NoError(t, os.WriteFile(p, setLE(b, bl[k].off+4, uint32(l)), 0o644))
			got, warn, err := readAll(t, []string{p}, Options{})
			tried++
			if !assert.Error(t, err, "block %d length %d", k+1, l) {
				continue
			}
			assert.True(t, errors.Is(err, ErrCorrupt))
			assert.Empty(t, warn)
			if bl[k].off+l <= len(b) && int(binary.LittleEndian.Uint32(b[bl[k].off+l-4:])) == l {
				// The word where the trailer would be happens to equal
				// the wrong length (the next block is that long): the
				// damage shows one block later.
				late++
				assert.GreaterOrEqual(t, len(got), epbsBefore(bl, k))
				continue
			}
			assert.Contains(t, err.Error(), fmt.Sprintf("block %d (record %d) at byte offset %d:", k+1, epbsBefore(bl, k)+1, bl[k].off))
			assert.Equal(t, epbsBefore(bl, k), len(got))
		}
	}
	assert.Greater(t, tried, 1000)
	assert.Less(t, late, tried/20)
	t.Logf("%d mutations, %d seen one block late", tried, late)
}

// A valid capture cut at any offset is never called damaged: it is fine
// (cut at a record boundary), truncated (a warning), or too short for its
// header; and its frames are the first frames of the whole file.
func TestCutAnywhere(t *testing.T) {
	for _, c := range []struct {
		name string
		max  int
	}{
		{"quit_one/server.pcap", 0},
		{"ipv6/any.pcap", 0},
		{"all-server.pcapng", 30000},
	} {
		b := readFile(t, filepath.Join(labDir, c.name))
		if c.max > 0 {
			// whole blocks only, so that the prefix is valid
			bl := ngBlocks(b)
			k := 0
			for k < len(bl) && bl[k].off+bl[k].len <= c.max {
				k++
			}
			b = b[:bl[k].off]
		}
		want, _, err := readAll(t, []string{"-"}, Options{Stdin: bytes.NewReader(b)})
		require.NoError(t, err)
		truncated := 0
		for n := 1; n < len(b); n++ {
			got, warn, err := readAll(t, []string{"-"}, Options{Stdin: bytes.NewReader(b[:n])})
			if errors.Is(err, ErrFormat) {
				require.Less(t, n, 200, "%s cut at %d: %v", c.name, n, err)
				continue
			}
			require.NoError(t, err, "%s cut at %d", c.name, n)
			require.LessOrEqual(t, len(got), len(want))
			for i := range got {
				require.Equal(t, want[i], got[i], "%s cut at %d", c.name, n)
			}
			if len(warn) > 0 {
				truncated++
				require.Contains(t, warn[0], "last record truncated at byte offset")
			}
		}
		t.Logf("%s: %d cuts, %d truncated, %d frames", c.name, len(b)-1, truncated, len(want))
		assert.Greater(t, truncated, len(b)/2)
	}
}

// A compressed capture cut at any offset is truncated ("gzip: truncated",
// "zstd: truncated"), never damaged.
func TestCutCompressedAnywhere(t *testing.T) {
	b := readFile(t, filepath.Join(labDir, "quit_multi/server.pcap"))
	want, _, err := readAll(t, []string{"-"}, Options{Stdin: bytes.NewReader(b)})
	require.NoError(t, err)
	for codec, z := range map[string][]byte{"gzip": gz(t, b), "zstd": zst(t, b)} {
		some := 0
		for n := 1; n < len(z); n++ {
			got, warn, err := readAll(t, []string{"-"}, Options{Stdin: bytes.NewReader(z[:n])})
			if errors.Is(err, ErrFormat) {
				if n >= 4 {
					require.Contains(t, err.Error(), codec+": ", "cut at %d", n)
				}
				continue
			}
			require.NoError(t, err, "%s cut at %d", codec, n)
			for i := range got {
				require.Equal(t, want[i], got[i], "%s cut at %d", codec, n)
			}
			if len(got) > 0 {
				some++
			}
			if assert.Len(t, warn, 1, "%s cut at %d", codec, n) {
				assert.Contains(t, warn[0], codec+": truncated")
			}
		}
		assert.Greater(t, some, len(z)/2, codec)
	}
}
