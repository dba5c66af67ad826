package capture

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/stretchr/testify/require"
)

// TestTimeOrderMergesBatches: two sockets' batches, the second socket's
// 100 ms late, come out in stamp order; a quiet link's last frames leave
// after Hold of wall-clock time; past MaxHeld the earliest leaves at once.
func TestTimeOrderMergesBatches(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fr := func(ms int) Frame {
		return Frame{CI: gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(ms) * time.Millisecond)}}
	}
	o := &TimeOrder{Hold: 200 * time.Millisecond, MaxHeld: 1000}
	wall := t0
	var out []int
	pop := func(final bool) {
		for {
			f, ok := o.Pop(wall, final)
			if !ok {
				return
			}
			out = append(out, int(f.CI.Timestamp.Sub(t0)/time.Millisecond))
		}
	}
	// socket A: 0, 20, 40 ... 180 ms; socket B's 10, 30 ... 190 arrive after.
	for ms := 0; ms < 200; ms += 20 {
		o.Push(fr(ms), wall)
		pop(false)
	}
	wall = wall.Add(100 * time.Millisecond)
	for ms := 10; ms < 200; ms += 20 {
		o.Push(fr(ms), wall)
		pop(false)
	}
	require.Empty(t, out, "nothing is 200 ms old yet")
	o.Push(fr(250), wall)
	pop(false)
	require.Equal(t, []int{0, 10, 20, 30, 40, 50}, out, "frames stamped Hold before the newest leave, in order")
	wall = wall.Add(200 * time.Millisecond)
	pop(false)
	require.Len(t, out, 21, "a quiet link: Hold of wall-clock time")
	for i := 1; i < len(out); i++ {
		require.LessOrEqual(t, out[i-1], out[i])
	}
	o2 := &TimeOrder{Hold: time.Hour, MaxHeld: 2}
	for ms := 0; ms < 5; ms++ {
		o2.Push(fr(ms), t0)
	}
	f, ok := o2.Pop(t0, false)
	require.True(t, ok, "more than MaxHeld: the earliest leaves")
	require.Equal(t, t0, f.CI.Timestamp)
	require.Equal(t, 4, o2.Held())
}
