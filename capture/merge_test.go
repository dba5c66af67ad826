package capture

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// genFrame is one generated frame: its file and place in it.
type genFrame struct {
	ts   time.Time
	data []byte
	file int
	no   uint64
}

// writePcap writes frames as a pcap with gopacket's writer.
func writePcap(t testing.TB, p string, frames []genFrame) {
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	require.NoError(t, w.WriteFileHeader(65535, layers.LinkTypeEthernet))
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(f.data), Length: len(f.data)}
		require.NoError(t, w.WritePacket(ci, f.data))
	}
	require.NoError(t, os.WriteFile(p, b.Bytes(), 0o644))
}

// rotated generates n files of per frames each, one after the other in
// time like tcpdump -C/-G output; the last frame of a file has the same
// timestamp as the first of the next (ties go to the earlier file).
func rotated(t testing.TB, dir string, n, per int) ([]string, []genFrame) {
	base := time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC)
	var names []string
	var all []genFrame
	for i := 0; i < n; i++ {
		var fr []genFrame
		for j := 0; j < per; j++ {
			ts := base.Add(time.Duration(i)*time.Second + time.Duration(j)*time.Second/time.Duration(per-1))
			d := []byte(fmt.Sprintf("file %04d frame %03d %s", i, j, bytes.Repeat([]byte{byte(i)}, 60+j)))
			fr = append(fr, genFrame{ts.Truncate(time.Microsecond), d, i, uint64(j + 1)})
		}
		p := filepath.Join(dir, fmt.Sprintf("rot-%04d.pcap", i))
		writePcap(t, p, fr)
		names = append(names, p)
		all = append(all, fr...)
	}
	return names, all
}

// heapInuse is the heap in use after a collection.
func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// 1,000 rotated files merge in the order of one concatenated file, with
// at most two open at once and a heap that stays a few MB (it was 810 MB
// with every file open).
func TestMergeThousandFiles(t *testing.T) {
	dir := t.TempDir()
	names, all := rotated(t, dir, 1000, 40)
	one := filepath.Join(dir, "one.pcap")
	writePcap(t, one, all)
	want, _, err := readAll(t, []string{one}, Options{})
	require.NoError(t, err)
	require.Len(t, want, 40000)

	before := heapInuse()
	var m0, m runtime.MemStats
	runtime.ReadMemStats(&m0)
	s, err := Open(names, Options{})
	require.NoError(t, err)
	var peak uint64
	i := 0
	for ; ; i++ {
		f, ok := s.Next()
		if !ok {
			break
		}
		g := all[i]
		if !assert.Equal(t, want[i], rec{f.CI.Timestamp, string(f.Data), f.LinkType, f.CI.Length}, "frame %d", i+1) {
			break
		}
		assert.Equal(t, uint64(i+1), f.Number)
		if f.File != g.file || f.FileName != names[g.file] || f.FileFrame != g.no {
			t.Fatalf("frame %d: file %d %s frame %d, want %d %s %d", i+1, f.File, f.FileName, f.FileFrame, g.file, names[g.file], g.no)
		}
		if i%500 == 0 {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
	}
	require.NoError(t, s.Err())
	assert.Equal(t, 40000, i)
	runtime.ReadMemStats(&m)
	peak = max(peak, m.HeapInuse)
	st := s.Stats()
	require.NoError(t, s.Close())
	assert.LessOrEqual(t, st.MaxOpen, 2)
	assert.Equal(t, uint64(2000), st.FilesOpened, "each file probed once and opened once")
	grew := int64(peak) - int64(before)
	assert.Less(t, grew, int64(16<<20), "heap in use grew by %d bytes", grew)
	t.Logf("1000 files, checking every frame: heap in use %d MB before, peak %d MB; %d MB allocated in all; at most %d open",
		before>>20, peak>>20, (m.TotalAlloc-m0.TotalAlloc)>>20, st.MaxOpen)

	// The reader alone, without the checks' own garbage.
	before = heapInuse()
	runtime.ReadMemStats(&m0)
	s, err = Open(names, Options{})
	require.NoError(t, err)
	peak = 0
	for i = 0; ; i++ {
		if _, ok := s.Next(); !ok {
			break
		}
		if i%500 == 0 {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
	}
	s.Close()
	runtime.ReadMemStats(&m)
	alloc := m.TotalAlloc - m0.TotalAlloc
	assert.Equal(t, 40000, i)
	assert.Less(t, alloc, uint64(4<<20))
	assert.Less(t, int64(peak)-int64(before), int64(4<<20))
	t.Logf("1000 files, reading only: %d KB allocated in all, heap in use %d KB before, peak %d KB", alloc>>10, before>>10, peak>>10)
}

// Handing out a frame allocates nothing.
func TestNextAllocatesNothing(t *testing.T) {
	for _, p := range []string{filepath.Join(labDir, "all-server.pcapng"), filepath.Join(labDir, "load/server.pcap")} {
		s, err := Open([]string{p}, Options{})
		require.NoError(t, err)
		s.Next()
		assert.Zero(t, testing.AllocsPerRun(100, func() { s.Next() }), p)
		s.Close()
	}
}

// Files that all overlap in time need all of them open: past MaxOpenFiles
// that is an error naming the limit, the frames before it delivered; with
// room enough they merge in time order.
func TestMergeOverlapping(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC)
	var names []string
	var all []genFrame
	for i := 0; i < 100; i++ {
		var fr []genFrame
		for j := 0; j < 10; j++ {
			// file 99 starts first, file 0 last, all interleaved
			ts := base.Add(time.Duration(j*1000+(99-i)) * time.Millisecond)
			fr = append(fr, genFrame{ts, []byte(fmt.Sprintf("f%d-%d", i, j)), i, uint64(j + 1)})
		}
		p := filepath.Join(dir, fmt.Sprintf("ov-%03d.pcap", i))
		writePcap(t, p, fr)
		names = append(names, p)
		all = append(all, fr...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].ts.Before(all[j].ts) })

	s, err := Open(names, Options{MaxOpenFiles: 100})
	require.NoError(t, err)
	n := 0
	for f, ok := s.Next(); ok; f, ok = s.Next() {
		require.Equal(t, string(all[n].data), string(f.Data), "frame %d", n+1)
		n++
	}
	require.NoError(t, s.Err())
	assert.Equal(t, 1000, n)
	assert.Equal(t, 100, s.Stats().MaxOpen)
	s.Close()

	got, _, err := readAll(t, names, Options{MaxOpenFiles: 64})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrLimit))
	assert.Contains(t, err.Error(), "more than 64 files overlap in time")
	assert.Contains(t, err.Error(), names[35], "the 65th file to start is named")
	assert.Len(t, got, 64, "the first frame of each file open")
}

// Standard input merges with files; its frames say "<stdin>".
func TestMergeStdin(t *testing.T) {
	a := filepath.Join(labDir, "quit_one/server.pcap")
	b := filepath.Join(labDir, "quit_multi/server.pcap")
	in, err := os.Open(b)
	require.NoError(t, err)
	defer in.Close()
	s, err := Open([]string{a, "-"}, Options{Stdin: in})
	require.NoError(t, err)
	defer s.Close()
	per := map[string]uint64{}
	var last time.Time
	for f, ok := s.Next(); ok; f, ok = s.Next() {
		per[f.FileName]++
		assert.Equal(t, per[f.FileName], f.FileFrame)
		assert.False(t, f.CI.Timestamp.Before(last))
		last = f.CI.Timestamp
	}
	require.NoError(t, s.Err())
	assert.Equal(t, map[string]uint64{a: 21, "<stdin>": 36}, per, "capinfos -c")
	assert.Equal(t, []Format{{Container: "pcap"}, {Container: "pcap"}}, s.Formats())
}
