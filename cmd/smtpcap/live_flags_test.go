package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smtpcap/smtpcap/capture"
)

// TestLiveUsageErrors: live's flag mistakes exit 2 with a message naming
// the flag, before any interface is opened.
func TestLiveUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "-i IFACE is required"},
		{[]string{"-i", "x", "-C", "10"}, "need -w DIR"},
		{[]string{"-i", "x", "-B", "lots"}, "--buffer-size"},
		{[]string{"-i", "x", "-s", "0"}, "--snaplen"},
		{[]string{"-i", "x", "--workers", "0"}, "--workers"},
		{[]string{"-i", "x", "--idle-timeout", "0s"}, "--idle-timeout"},
		{[]string{"-i", "x", "--json", "--csv"}, "choose one"},
		{[]string{"-i", "x", "--port", "70000"}, "bad port"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"live"}, c.args...), &out, &errb)
		require.Equal(t, exitUsage, code, "%v: %s", c.args, errb.String())
		require.Contains(t, errb.String(), c.want, "%v", c.args)
		require.Empty(t, out.String())
	}
	var out, errb bytes.Buffer
	require.Equal(t, exitError, run(context.Background(), []string{"live", "-i", "nosuch0smtpcap"}, &out, &errb))
	require.Contains(t, errb.String(), "nosuch0smtpcap")
}

// TestLiveStatsLine: the text line and the JSON object carry the same
// counters; open is summed over the queues, and unknown (omitted) when a
// queue cannot tell.
func TestLiveStatsLine(t *testing.T) {
	mk := func(js bool, open ...int64) (*liveStats, *bytes.Buffer) {
		var b bytes.Buffer
		st := &liveStats{w: &b, json: js, src: &capture.Live{}}
		st.open = make([]atomic.Int64, len(open))
		st.dups = make([]atomic.Uint64, len(open))
		st.qn = make([]atomic.Uint64, len(open))
		for i, o := range open {
			st.open[i].Store(o)
			st.dups[i].Store(uint64(i + 1))
			st.qn[i].Store(10)
		}
		st.frames.Store(20)
		st.ended.Store(3)
		st.missed.Store(1448)
		return st, &b
	}
	st, b := mk(false, 2, 1)
	st.print(false)
	require.Equal(t, "smtpcap: stats: packets=0 bytes=0 kernel_drops=0 if_drops=0 duplicates=3 frames=20 sessions=3 missed_bytes=1448 open=3 heap=",
		b.String()[:strings.Index(b.String(), "heap=")+5])
	st, b = mk(true, 2, -1)
	st.print(false)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &m))
	require.NotContains(t, m, "open", "one queue cannot tell")
	require.Equal(t, float64(3), m["duplicates"])
	require.Equal(t, float64(1448), m["missed_bytes"])
	require.Equal(t, []any{float64(10), float64(10)}, m["frames_per_socket"])
	require.Equal(t, false, m["final"])
	st, b = mk(true, 1)
	st.print(true)
	m = nil
	require.NoError(t, json.Unmarshal(b.Bytes(), &m))
	require.Equal(t, true, m["final"])
	require.NotContains(t, m, "frames_per_socket")
}
