package esalog

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smtpcap/smtpcap/smtpstate"
)

func logOf(t *testing.T, text string) *Log {
	r := NewReader(strings.NewReader(text), "mail.current", Options{Year: 2026})
	lg := &Log{Offsets: map[string]int{}}
	for {
		l, err := r.Next()
		if err != nil {
			break
		}
		lg.Lines = append(lg.Lines, l)
	}
	if off, ok := r.Offset(); ok {
		lg.Offsets["mail.current"] = off
	}
	return lg
}

func rec(client, server string, port uint16, start time.Time, verdict string, mids ...string) *smtpstate.Record {
	r := &smtpstate.Record{OrigH: client, OrigP: 40000, RespH: server, RespP: port, TS: smtpstate.Time{Time: start}, EndTS: smtpstate.Time{Time: start.Add(2 * time.Second)},
		Ending: &smtpstate.Ending{Verdict: verdict}}
	for _, m := range mids {
		r.Trans = append(r.Trans, smtpstate.Transaction{MID: m, Outcome: "accepted"})
	}
	return r
}

const twoICIDs = `Thu Nov 26 11:00:00 2026 Info: Time offset from UTC: 3600 seconds
Thu Nov 26 11:00:00 2026 Info: New SMTP ICID 7 interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no
Thu Nov 26 11:00:00 2026 Info: New SMTP ICID 8 interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no
Thu Nov 26 11:00:01 2026 Info: Start MID 1404 ICID 8
Thu Nov 26 11:00:01 2026 Info: MID 1404 ready 100 bytes from <a@x>
Thu Nov 26 11:00:01 2026 Info: Start MID 1405 ICID 7
Thu Nov 26 11:00:01 2026 Info: MID 1405 ready 100 bytes from <a@x>
Thu Nov 26 11:00:02 2026 Info: ICID 7 close
Thu Nov 26 11:00:02 2026 Info: ICID 8 close
`

// The MID in the ESA's end-of-data reply ("250 ok: Message 1404 accepted")
// decides even where address and time cannot.
func TestMatchByMID(t *testing.T) {
	start := time.Date(2026, 11, 26, 10, 0, 0, 300e6, time.UTC)
	a := rec("192.0.2.10", "198.51.100.25", 25, start, "quit_after_message", "1404")
	b := rec("192.0.2.10", "198.51.100.25", 25, start, "quit_after_message", "1405")
	res := Match([]*smtpstate.Record{a, b}, logOf(t, twoICIDs), MatchOptions{})
	require.Equal(t, 2, res.Matched)
	assert.Equal(t, "8", a.ESA.ICID)
	assert.Equal(t, "mid_reply", a.ESA.Match)
	assert.Equal(t, "7", b.ESA.ICID)
	assert.Empty(t, a.ESA.Ambiguous)
	assert.Equal(t, "header", res.Zone.Source)
}

// Without a key, two equal candidates are reported as ambiguous.
func TestMatchAmbiguous(t *testing.T) {
	start := time.Date(2026, 11, 26, 10, 0, 0, 300e6, time.UTC)
	a := rec("192.0.2.10", "198.51.100.25", 25, start, "quit_after_message")
	a.Trans = []smtpstate.Transaction{{Outcome: "accepted"}}
	res := Match([]*smtpstate.Record{a}, logOf(t, twoICIDs), MatchOptions{})
	require.Equal(t, 1, res.Matched)
	assert.NotEmpty(t, a.ESA.Ambiguous)
	assert.Contains(t, a.ESA.Note, "ambiguous")
	assert.Len(t, res.LogOnly, 1, "the other ICID is listed as log-only")
}

// Outbound: the appliance is the client; DCIDs match on the remote
// address and port.
func TestMatchOutboundDCID(t *testing.T) {
	log := `Thu Nov 26 11:00:00 2026 Info: Time offset from UTC: 3600 seconds
Thu Nov 26 11:00:00 2026 Info: New SMTP DCID 42 interface 198.51.100.25 address 203.0.113.9 port 25
Thu Nov 26 11:00:00 2026 Info: Delivery start DCID 42 MID 1404 to RID [0]
Thu Nov 26 11:00:01 2026 Info: Message done DCID 42 MID 1404 to RID [0]
Thu Nov 26 11:00:01 2026 Info: DCID 42 close
`
	r := rec("198.51.100.25", "203.0.113.9", 25, time.Date(2026, 11, 26, 10, 0, 0, 100e6, time.UTC), "quit_after_message")
	res := Match([]*smtpstate.Record{r}, logOf(t, log), MatchOptions{})
	require.Equal(t, 1, res.Matched)
	assert.Equal(t, "42", r.ESA.DCID)
	assert.Equal(t, []string{"1404"}, r.ESA.MIDs)
}

// The log says the sender aborted (QUIT mid-transaction) while the capture
// shows a FIN without QUIT: flagged, not hidden.
func TestConsistency(t *testing.T) {
	log := `Thu Nov 26 11:00:00 2026 Info: Time offset from UTC: 3600 seconds
Thu Nov 26 11:00:00 2026 Info: New SMTP ICID 9 interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no
Thu Nov 26 11:00:01 2026 Info: Start MID 1500 ICID 9
Thu Nov 26 11:00:02 2026 Info: Message aborted MID 1500 Receiving aborted by sender
Thu Nov 26 11:00:02 2026 Info: ICID 9 close
`
	r := rec("192.0.2.10", "198.51.100.25", 25, time.Date(2026, 11, 26, 10, 0, 0, 200e6, time.UTC), "client_fin_no_quit")
	r.Trans = []smtpstate.Transaction{{Outcome: "open"}}
	Match([]*smtpstate.Record{r}, logOf(t, log), MatchOptions{})
	require.NotNil(t, r.ESA.Consistent)
	assert.False(t, *r.ESA.Consistent)
	assert.Contains(t, r.ESA.Note, "the log says the sender aborted")
}

// A capture session with no log connection is listed, never guessed.
func TestCaptureOnly(t *testing.T) {
	r := rec("192.0.2.99", "198.51.100.25", 25, time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), "quit_after_message")
	res := Match([]*smtpstate.Record{r}, logOf(t, twoICIDs), MatchOptions{})
	assert.Equal(t, 0, res.Matched)
	assert.Len(t, res.CaptOnly, 1)
	assert.Empty(t, r.ESA.ICID)
	assert.Contains(t, r.ESA.Note, "no log connection")
}
