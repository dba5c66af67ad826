package capture

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/stretchr/testify/require"
)

type keptFrame struct {
	ts   time.Time
	data []byte
}

func readFrames(t *testing.T, files ...string) []keptFrame {
	t.Helper()
	src, err := Open(files, Options{})
	require.NoError(t, err)
	defer src.Close()
	var out []keptFrame
	for {
		f, ok := src.Next()
		if !ok {
			break
		}
		out = append(out, keptFrame{f.CI.Timestamp, append([]byte(nil), f.Data...)})
	}
	require.NoError(t, src.Err())
	return out
}

// TestRotatorRing: a real capture written with -C (size) and -W (count)
// leaves the newest W files, each under the size plus one packet, which
// read back (with our reader) as exactly the input's last frames, bytes
// and times; with -G (seconds) each file spans less than the period.
func TestRotatorRing(t *testing.T) {
	in := readFrames(t, "../testdata/lab/captures/all-server.pcapng")
	require.Greater(t, len(in), 500)
	src, err := Open([]string{"../testdata/lab/captures/all-server.pcapng"}, Options{})
	require.NoError(t, err)
	lt := func() RotateIface {
		defer src.Close()
		f, ok := src.Next()
		require.True(t, ok)
		return RotateIface{Name: "s0", LinkType: f.LinkType, SnapLen: 262144}
	}()

	dir := filepath.Join(t.TempDir(), "ring")
	r, err := NewRotator(RotateOptions{Dir: dir, MaxBytes: 20000, Count: 3, Ifaces: []RotateIface{lt}, UID: -1}, in[0].ts)
	require.NoError(t, err)
	for _, f := range in {
		require.NoError(t, r.Write(Frame{Data: f.data, CI: ciOf(f)}))
	}
	require.NoError(t, r.Close())
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcapng"))
	sort.Strings(files)
	require.Len(t, files, 3)
	require.Equal(t, files, r.Files())
	var back []keptFrame
	for _, f := range files {
		st, err := os.Stat(f)
		require.NoError(t, err)
		require.Less(t, st.Size(), int64(20000+2000), "%s", f)
		back = append(back, readFrames(t, f)...)
	}
	tail := in[len(in)-len(back):]
	for i := range back {
		require.True(t, back[i].ts.Equal(tail[i].ts), "frame %d time", i)
		require.True(t, bytes.Equal(back[i].data, tail[i].data), "frame %d bytes", i)
	}

	// -G: by capture time.
	dir = filepath.Join(t.TempDir(), "timed")
	r, err = NewRotator(RotateOptions{Dir: dir, Every: 2 * time.Second, Ifaces: []RotateIface{lt}, UID: -1}, in[0].ts)
	require.NoError(t, err)
	for _, f := range in {
		require.NoError(t, r.Write(Frame{Data: f.data, CI: ciOf(f)}))
	}
	require.NoError(t, r.Close())
	total := 0
	for _, f := range r.Files() {
		fr := readFrames(t, f)
		total += len(fr)
		if len(fr) > 0 {
			require.Less(t, fr[len(fr)-1].ts.Sub(fr[0].ts), 2*time.Second, "%s", f)
		}
	}
	require.Equal(t, len(in), total, "nothing lost without -W")
	require.Greater(t, len(r.Files()), 1, "the capture spans more than one period")
}

func ciOf(f keptFrame) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(f.data), Length: len(f.data)}
}
