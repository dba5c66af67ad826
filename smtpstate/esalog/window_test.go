package esalog

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// gateway builds a busy appliance's day in miniature: a big sender opening
// perSec sessions a second with identical envelopes and sizes (nothing but
// time and order tells them apart), and a second sender every 0.7 s whose
// messages carry a Message-ID. Session i is, by construction, ICID
// 100000+i; the log is in UTC+01:00 with its header.
func gateway(n, perSec int) ([]*smtpstate.Record, *Log, []string) {
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var lb strings.Builder
	lb.WriteString(hdr)
	type ev struct {
		at   time.Time
		addr string
		id   string
	}
	var evs []ev
	big, other := 0, 0
	for len(evs) < n {
		tb := base.Add(time.Duration(big) * time.Second / time.Duration(perSec))
		to := base.Add(time.Duration(other) * 700 * time.Millisecond)
		if tb.Before(to) || !to.Before(tb) && big <= other {
			evs = append(evs, ev{at: tb, addr: "192.0.2.10"})
			big++
		} else {
			evs = append(evs, ev{at: to, addr: "203.0.113.7", id: fmt.Sprintf("<%d@other.example>", other)})
			other++
		}
	}
	var rs []*smtpstate.Record
	var want []string
	for i, e := range evs {
		syn := e.at.Add(20 * time.Millisecond)
		icid, mid := 100000+i, 500000+i
		at := e.at.Add(time.Hour).Format("Mon Jan _2 15:04:05 2006")
		fmt.Fprintf(&lb, "%s Info: New SMTP ICID %d interface Data 1 (198.51.100.25) address %s reverse dns host unknown verified no\n", at, icid, e.addr)
		fmt.Fprintf(&lb, "%s Info: Start MID %d ICID %d\n%s Info: MID %d ICID %d From: <a@x>\n%s Info: MID %d ICID %d RID 0 To: <b@y>\n", at, mid, icid, at, mid, icid, at, mid, icid)
		if e.id != "" {
			fmt.Fprintf(&lb, "%s Info: MID %d Message-ID '%s'\n", at, mid, e.id)
		}
		fmt.Fprintf(&lb, "%s Info: MID %d ready 500 bytes from <a@x>\n%s Info: ICID %d close\n", at, mid, at, icid)
		rs = append(rs, &smtpstate.Record{OrigH: e.addr, OrigP: uint16(10000 + i%40000), RespH: "198.51.100.25", RespP: 25,
			TS: smtpstate.Time{Time: syn}, EndTS: smtpstate.Time{Time: syn.Add(50 * time.Millisecond)}, Commands: 5,
			Trans: []smtpstate.Transaction{{MailFrom: "a@x", MailReply: "250 ok", Rcpts: []smtpstate.Rcpt{{Addr: "b@y", Reply: "250 ok"}}, BodyBytes: 350, Outcome: "accepted", MsgID: e.id}}})
		want = append(want, fmt.Sprint(icid))
	}
	r := NewReader(strings.NewReader(lb.String()), "mail.current", Options{Year: 2026})
	lg := &Log{Offsets: map[string]int{}, Files: []string{"mail.current"}}
	for {
		l, err := r.Next()
		if err != nil {
			break
		}
		lg.Lines = append(lg.Lines, l)
	}
	lg.Offsets["mail.current"] = 3600
	return rs, lg, want
}

// TestStreamBoundedAndTrue: 12,000 sessions of a busy gateway (10 a second
// from one sender with nothing but time to tell them apart) matched in
// windows hold at most a window of sessions at once, hand each on in
// arrival order, and put every session on its true ICID - with the same
// ambiguity marks (if not the same rivals listed) as the global assignment over all of them.
func TestStreamBoundedAndTrue(t *testing.T) {
	const n = 12000
	rs, lg, want := gateway(n, 10)
	var out []*smtpstate.Record
	loads := 0
	s := NewStream(func(first time.Time) *Log {
		loads++
		assert.Equal(t, rs[0].TS.Time, first)
		return lg
	}, MatchOptions{}, func(r *smtpstate.Record) {
		require.NotNil(t, r.ESA, "handed on before it was matched")
		out = append(out, r)
	})
	s.Window = 1000
	for i, r := range rs {
		s.Add(r)
		// A session is handed on within a window (and a horizon) of its SYN.
		require.GreaterOrEqual(t, len(out), i+1-4*s.Window, "session %d: too many waiting", i)
	}
	res, _ := s.Close()
	require.Len(t, out, n)
	for i, r := range out {
		require.Same(t, rs[i], r, "arrival order kept")
		assert.Equal(t, want[i], r.ESA.ICID, "session %d (%s)", i, r.OrigH)
		// Ten a second alike in all but time, in a log that truncates to
		// the second: the big sender's sessions are marked ambiguous
		// (honestly), the other's Message-IDs tie them exactly.
		assert.Equal(t, r.OrigH == "192.0.2.10", len(r.ESA.Ambiguous) > 0, "session %d (%s): ambiguity mark", i, r.OrigH)
	}
	assert.Equal(t, 1, loads)
	assert.Equal(t, n, res.Matched)
	assert.Zero(t, res.Unmatched)
	assert.Empty(t, res.LogOnly)
	assert.Greater(t, res.Windows, 10)
	assert.Zero(t, res.Forced)
	assert.LessOrEqual(t, res.MaxWaiting, s.Window)
	assert.Equal(t, "header", res.Zone.Source)
	assert.Equal(t, 3600, res.Zone.Offset)

	// The global assignment agrees session by session, marks included.
	rs2, lg2, _ := gateway(n, 10)
	Match(rs2, lg2, MatchOptions{})
	for i := range rs2 {
		require.Equal(t, rs2[i].ESA.ICID, rs[i].ESA.ICID, "session %d", i)
		// The rivals listed may differ (each window learns the size
		// relation from its own exact pairs), the mark may not.
		require.Equal(t, len(rs2[i].ESA.Ambiguous) > 0, len(rs[i].ESA.Ambiguous) > 0, "session %d", i)
	}
}

// TestStreamForcedWindows: more sessions within a horizon than four windows
// hold: windows are decided early (and counted), memory stays bounded, and
// still no session lands on a wrong ICID without a mark.
func TestStreamForcedWindows(t *testing.T) {
	rs, lg, want := gateway(3000, 200)
	var out []*smtpstate.Record
	s := NewStream(func(time.Time) *Log { return lg }, MatchOptions{}, func(r *smtpstate.Record) { out = append(out, r) })
	s.Window = 100
	for _, r := range rs {
		s.Add(r)
	}
	res, _ := s.Close()
	require.Len(t, out, len(rs))
	assert.Positive(t, res.Forced)
	assert.LessOrEqual(t, res.MaxWaiting, 4*s.Window)
	right := 0
	for i, r := range out {
		if r.ESA.ICID == want[i] {
			right++
		} else {
			assert.NotEmpty(t, r.ESA.Ambiguous, "session %d: ICID %s for %s without a mark", i, r.ESA.ICID, want[i])
		}
	}
	t.Logf("200 sessions/s, windows of 100: %d/%d on their true ICID, %d windows decided early", right, len(rs), res.Forced)
}

// TestStreamEmpty: no session at all still reads the log once and lists
// its connections as log-only.
func TestStreamEmpty(t *testing.T) {
	_, lg, _ := gateway(5, 10)
	s := NewStream(func(time.Time) *Log { return lg }, MatchOptions{}, nil)
	res, got := s.Close()
	require.Same(t, lg, got)
	assert.Len(t, res.LogOnly, 5)
	assert.Zero(t, res.Matched)
}
