package esalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFollowerTailF: a log read as the appliance writes it - a line in two
// writes, a rotation (the name moves to the rolled file, a new file with
// its header takes the name) with lines still written to the old one
// before it was renamed, a truncation - gives every line once, in order,
// with each file's offset header.
func TestFollowerTailF(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, "mail.current")
	line := func(sec int, msg string) string {
		return time.Date(2026, 11, 26, 11, 0, sec, 0, time.UTC).Format("Mon Jan _2 15:04:05 2006") + " Info: " + msg + "\n"
	}
	appendTo := func(p, s string) {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		_, err = f.WriteString(s)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	fw := NewFollower(cur, Options{Year: 2026})
	defer fw.Close()
	var got []string
	poll := func() {
		ls, errs, err := fw.Poll()
		require.NoError(t, err)
		require.Empty(t, errs)
		for _, l := range ls {
			got = append(got, l.Msg)
		}
	}
	poll() // not there yet
	require.Empty(t, got)
	appendTo(cur, line(0, "Time offset from UTC: 3600 seconds")+line(1, "New SMTP ICID 1 interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no"))
	half := line(2, "ICID 1 close")
	appendTo(cur, half[:20])
	poll()
	require.Equal(t, []string{"Time offset from UTC: 3600 seconds", "New SMTP ICID 1 interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no"}, got)
	assert.True(t, fw.HasOffset)
	assert.Equal(t, 3600, fw.Offset)
	appendTo(cur, half[20:]+line(3, "New SMTP ICID 2 interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no"))
	// Rotation: the old file gets one more line, is renamed, a new one begins.
	appendTo(cur, line(4, "ICID 2 close"))
	require.NoError(t, os.Rename(cur, filepath.Join(dir, "mail.@20261126T110005.s")))
	appendTo(cur, line(5, "Time offset from UTC: 7200 seconds")+line(6, "New SMTP ICID 3 interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no"))
	poll()
	require.Len(t, got, 7)
	assert.Equal(t, "ICID 1 close", got[2])
	assert.Equal(t, "ICID 2 close", got[4], "the rest of the rolled file first")
	assert.Equal(t, "Time offset from UTC: 7200 seconds", got[5])
	assert.Equal(t, 7200, fw.Offset)
	assert.Equal(t, 1, fw.Rotations)
	// Truncated in place and written again.
	require.NoError(t, os.Truncate(cur, 0))
	appendTo(cur, line(7, "ICID 3 close"))
	poll()
	require.Len(t, got, 8)
	assert.Equal(t, "ICID 3 close", got[7])
	assert.Equal(t, 2, fw.Rotations)
	assert.False(t, strings.Contains(strings.Join(got, "\n"), "\x00"))
}

// TestLiveMatchesAcrossBatches: sessions of a busy gateway matched as
// they end, against a log fed as it grows, each when its SYN is a horizon
// old: every session lands on its true ICID (as a Stream puts it), and a
// log connection taken once is not given again.
func TestLiveMatchesAcrossBatches(t *testing.T) {
	rs, lg, want := gateway(800, 10)
	lm := NewLive([]string{"mail.current"}, MatchOptions{})
	next, added := 0, 0
	var out []string
	matched := map[string]bool{}
	start := rs[0].TS.Time
	for now := start; added < len(rs) || lm.Waiting() > 0; now = now.Add(700 * time.Millisecond) {
		final := added == len(rs)
		// The log holds what the appliance wrote up to now.
		k := next
		for k < len(lg.Lines) && !lg.Lines[k].Local.After(now.Add(time.Hour)) {
			k++
		}
		lm.Feed("mail.current", lg.Lines[next:k], 3600, true)
		next = k
		for added < len(rs) && !rs[added].EndTS.After(now) {
			lm.Add(rs[added])
			added++
		}
		for _, r := range lm.Match(now, final) {
			require.NotNil(t, r.ESA)
			out = append(out, r.ESA.ICID)
			if r.ESA.ICID != "" {
				assert.False(t, matched[r.ESA.ICID], "ICID %s given twice", r.ESA.ICID)
				matched[r.ESA.ICID] = true
			}
		}
		require.Less(t, now.Sub(start), time.Hour, "bounded")
	}
	require.Len(t, out, len(rs))
	for i, r := range rs {
		assert.Equal(t, want[i], r.ESA.ICID, "session %d", i)
	}
	assert.Equal(t, len(rs), lm.Matched)
}
