package capture

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const labDir = "../testdata/lab/captures"

// rec is what a test compares of a frame.
type rec struct {
	ts   time.Time
	data string
	lt   layers.LinkType
	orig int
}

// readAll reads every frame of names with a Source.
func readAll(t testing.TB, names []string, opt Options) ([]rec, []string, error) {
	t.Helper()
	s, err := Open(names, opt)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	var out []rec
	for {
		f, ok := s.Next()
		if !ok {
			break
		}
		out = append(out, rec{f.CI.Timestamp, string(f.Data), f.LinkType, f.CI.Length})
	}
	return out, s.Warnings(), s.Err()
}

// readGopacket reads a plain capture with gopacket's pcapgo, an
// independent reader, as the reference.
func readGopacket(t *testing.T, name string) []rec {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	var out []rec
	if bytes.HasPrefix(b, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.NgReaderOptions{WantMixedLinkType: true})
		require.NoError(t, err)
		for {
			d, ci, err := r.ReadPacketData()
			if err == io.EOF {
				return out
			}
			require.NoError(t, err)
			lt := r.LinkType()
			if len(ci.AncillaryData) > 0 {
				lt = ci.AncillaryData[0].(layers.LinkType)
			}
			out = append(out, rec{ci.Timestamp.UTC(), string(d), lt, ci.Length})
		}
	}
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	for {
		d, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, rec{ci.Timestamp.UTC(), string(d), r.LinkType(), ci.Length})
	}
}

// labFiles lists the lab's captures.
func labFiles(t *testing.T) []string {
	t.Helper()
	l, err := filepath.Glob(filepath.Join(labDir, "*", "*.pcap"))
	require.NoError(t, err)
	l = append(l, filepath.Join(labDir, "all-server.pcapng"))
	require.Greater(t, len(l), 50)
	return l
}

// Every lab capture reads frame for frame as gopacket reads it; the
// counts of two are those capinfos -c gives.
func TestReadsLabCaptures(t *testing.T) {
	for _, p := range labFiles(t) {
		got, warn, err := readAll(t, []string{p}, Options{})
		require.NoError(t, err, p)
		assert.Empty(t, warn, p)
		assert.Equal(t, readGopacket(t, p), got, p)
	}
	got, _, _ := readAll(t, []string{filepath.Join(labDir, "all-server.pcapng")}, Options{})
	assert.Len(t, got, 607, "capinfos -c all-server.pcapng")
	got, _, _ = readAll(t, []string{filepath.Join(labDir, "quit_multi/server.pcap")}, Options{})
	assert.Len(t, got, 36, "capinfos -c quit_multi/server.pcap")
}

// compressFile writes src compressed with codec to dst.
func compressFile(t testing.TB, src []byte, dst, codec string) {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	var err error
	if codec == "gzip" {
		w = gzip.NewWriter(&b)
	} else {
		w, err = zstd.NewWriter(&b)
		require.NoError(t, err)
	}
	_, err = w.Write(src)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, os.WriteFile(dst, b.Bytes(), 0o644))
}

// Compressed, rewritten as pcapng with nanosecond timestamps and interface
// statistics by gopacket's writer: the same frames.
func TestReadsVariants(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(labDir, "quit_multi/server.pcap")
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	want := readGopacket(t, src)
	compressFile(t, b, filepath.Join(dir, "a.pcap.gz"), "gzip")
	compressFile(t, b, filepath.Join(dir, "a.pcap.zst"), "zstd")

	var ng bytes.Buffer
	w, err := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	require.NoError(t, err)
	for i, r := range want {
		ci := gopacket.CaptureInfo{Timestamp: r.ts, CaptureLength: len(r.data), Length: r.orig}
		require.NoError(t, w.WritePacketWithOptions(ci, []byte(r.data), pcapgo.NgPacketOptions{Comments: []string{"x"}}))
		if i == 3 {
			require.NoError(t, w.WriteInterfaceStats(0, pcapgo.NgInterfaceStatistics{PacketsReceived: 4}))
		}
	}
	require.NoError(t, w.Flush())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.pcapng"), ng.Bytes(), 0o644))
	compressFile(t, ng.Bytes(), filepath.Join(dir, "a.pcapng.zst"), "zstd")

	for _, n := range []string{"a.pcap.gz", "a.pcap.zst", "a.pcapng", "a.pcapng.zst"} {
		got, warn, err := readAll(t, []string{filepath.Join(dir, n)}, Options{})
		require.NoError(t, err, n)
		assert.Empty(t, warn, n)
		assert.Equal(t, want, got, n)
	}
}
