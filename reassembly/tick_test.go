package reassembly

import (
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// TestTickEndsIdleSessionsWithoutFrames: on a quiet link the live reader's
// wall-clock ticks alone end an idle session (emitted at once under ByEnd,
// before Close), with one session table and with several.
func TestTickEndsIdleSessionsWithoutFrames(t *testing.T) {
	for _, workers := range []int{1, 2} {
		var mu sync.Mutex
		var got []*smtpstate.Record
		a := NewPipeline(Options{IdleTimeout: 10 * time.Second, Order: ByEnd, Workers: workers}, nil, func(v any) {
			mu.Lock()
			got = append(got, v.(*smtpstate.Record))
			mu.Unlock()
		})
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
		if workers > 1 {
			require.Equal(t, -1, a.Open(), "unknown with several tables")
		}
		a.Tick(time.Unix(1700000000, 0)) // before any frame: no time yet
		m := &frameMaker{buf: gopacket.NewSerializeBuffer(), cseq: 1000, sseq: 90000, ts: time.Unix(1700000000, 0)}
		n := uint64(0)
		feed := func(c, syn bool, p string) {
			d, ci := m.frame(c, syn, false, p)
			n++
			a.Frame(n, layers.LinkTypeEthernet, ci, d)
		}
		feed(true, true, "")
		feed(false, true, "")
		feed(true, false, "")
		feed(false, false, "220 mx.example ESMTP\r\n")
		feed(true, false, "EHLO c.example\r\n")
		if workers == 1 {
			require.Equal(t, 1, a.Open())
		}
		start := m.ts
		a.Tick(start.Add(5 * time.Second)) // not idle long enough
		waitFor(t, func() bool { return count() == 0 }, 200*time.Millisecond)
		a.Tick(start.Add(12 * time.Second))
		require.Eventually(t, func() bool { return count() == 1 }, 2*time.Second, 10*time.Millisecond, "workers=%d: the idle session is emitted on the tick", workers)
		if workers == 1 {
			require.Equal(t, 0, a.Open())
		}
		a.Close()
		require.Equal(t, 1, count(), "nothing more at Close")
		mu.Lock()
		r := got[0]
		mu.Unlock()
		require.Equal(t, "idle", r.EndReason)
		require.Equal(t, uint64(1), a.Stats().Sessions)
	}
}

// waitFor checks that cond stays true for d.
func waitFor(t *testing.T, cond func() bool, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		require.True(t, cond())
		time.Sleep(10 * time.Millisecond)
	}
}
