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

// msg is one accepted message on the wire.
type msg struct {
	from, to, msgID, midReply string
	body                      int64
}

func session(port uint16, start time.Time, helo string, tls bool, msgs ...msg) *smtpstate.Record {
	r := rec("192.0.2.10", "198.51.100.25", 25, start, "quit_after_message")
	r.OrigP, r.Helo, r.TLS, r.Commands = port, helo, tls, 4
	for _, m := range msgs {
		final := "250 ok"
		if m.midReply != "" {
			final = "250 ok: Message " + m.midReply + " accepted"
		}
		r.Trans = append(r.Trans, smtpstate.Transaction{MailFrom: m.from, MailReply: "250 ok", Rcpts: []smtpstate.Rcpt{{Addr: m.to, Reply: "250 ok"}},
			BodyBytes: m.body, MsgID: m.msgID, MID: m.midReply, FinalReply: final, Outcome: "accepted"})
	}
	return r
}

// logConn writes the log lines of one ICID with its messages.
func logConn(b *strings.Builder, at string, icid, mid int, tls bool, msgs ...msg) {
	fmt.Fprintf(b, "Thu Nov 26 %s 2026 Info: New SMTP ICID %d interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no\n", at, icid)
	if tls {
		fmt.Fprintf(b, "Thu Nov 26 %s 2026 Info: ICID %d TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384\n", at, icid)
	}
	for i, m := range msgs {
		fmt.Fprintf(b, "Thu Nov 26 %s 2026 Info: Start MID %d ICID %d\n", at, mid+i, icid)
		fmt.Fprintf(b, "Thu Nov 26 %s 2026 Info: MID %d ICID %d From: <%s>\n", at, mid+i, icid, m.from)
		fmt.Fprintf(b, "Thu Nov 26 %s 2026 Info: MID %d ICID %d RID 0 To: <%s>\n", at, mid+i, icid, m.to)
		if m.msgID != "" {
			fmt.Fprintf(b, "Thu Nov 26 %s 2026 Info: MID %d Message-ID '%s'\n", at, mid+i, m.msgID)
		}
		fmt.Fprintf(b, "Thu Nov 26 %s 2026 Info: MID %d ready %d bytes from <%s>\n", at, mid+i, m.body, m.from)
	}
	fmt.Fprintf(b, "Thu Nov 26 %s 2026 Info: ICID %d close\n", at, icid)
}

const hdr = "Thu Nov 26 11:00:00 2026 Info: Time offset from UTC: 3600 seconds\n"

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 200e6, time.UTC)

// Two TLS sessions in the same second from the same client, with the same
// envelope and size and no Message-ID: nothing tells them apart. Both are
// matched (SYN order = ICID order) and both say so.
func TestMatchIndistinguishableTLS(t *testing.T) {
	var b strings.Builder
	b.WriteString(hdr)
	logConn(&b, "11:00:00", 21, 500, true, msg{from: "a@x", to: "b@y", body: 900})
	logConn(&b, "11:00:00", 22, 501, true, msg{from: "a@x", to: "b@y", body: 900})
	first := session(40001, t0, "c.example", true)
	second := session(40002, t0.Add(30*time.Millisecond), "c.example", true)
	res := Match([]*smtpstate.Record{second, first}, logOf(t, b.String()), MatchOptions{})
	require.Equal(t, 2, res.Matched)
	assert.Equal(t, "21", first.ESA.ICID, "SYN order = ICID order")
	assert.Equal(t, "22", second.ESA.ICID)
	for _, r := range []*smtpstate.Record{first, second} {
		assert.ElementsMatch(t, []string{"ICID 21", "ICID 22"}, r.ESA.Ambiguous)
		assert.Equal(t, "tls+time+order+address", r.ESA.Match)
		assert.Contains(t, r.ESA.Note, "ambiguous: 2 log connections")
	}
	assert.Equal(t, 2, res.Ambiguous)
}

// The Message-ID decides where address and time cannot, whatever the order.
func TestMatchByMessageID(t *testing.T) {
	var b strings.Builder
	b.WriteString(hdr)
	logConn(&b, "11:00:00", 21, 500, false, msg{from: "a@x", to: "b@y", body: 900, msgID: "<second@x>"})
	logConn(&b, "11:00:00", 22, 501, false, msg{from: "a@x", to: "b@y", body: 900, msgID: "<first@x>"})
	first := session(40001, t0, "c", false, msg{from: "a@x", to: "b@y", body: 900, msgID: " <first@x> (comment)"})
	second := session(40002, t0.Add(30*time.Millisecond), "c", false, msg{from: "a@x", to: "b@y", body: 900, msgID: "<second@x>"})
	Match([]*smtpstate.Record{first, second}, logOf(t, b.String()), MatchOptions{})
	assert.Equal(t, "22", first.ESA.ICID)
	assert.Equal(t, "21", second.ESA.ICID)
	for _, r := range []*smtpstate.Record{first, second} {
		assert.Equal(t, "message_id", r.ESA.Match)
		assert.Empty(t, r.ESA.Ambiguous)
	}
}

// Sizes decide against order once exact pairs have shown how the log
// counts (here: 150 bytes more than body_bytes, like a Received: header).
func TestMatchBySizeAgainstOrder(t *testing.T) {
	var b strings.Builder
	b.WriteString(hdr)
	var rs []*smtpstate.Record
	for i := 0; i < 3; i++ { // anchors: the MID is in the end-of-data reply
		at := fmt.Sprintf("11:00:%02d", 10+i)
		logConn(&b, at, 10+i, 400+i, false, msg{from: "a@x", to: "b@y", body: int64(500 + 150 + i)})
		rs = append(rs, session(uint16(41000+i), t0.Add(time.Duration(10+i)*time.Second), "c", false,
			msg{from: "a@x", to: "b@y", body: int64(500 + i), midReply: fmt.Sprint(400 + i)}))
	}
	logConn(&b, "11:00:00", 21, 500, false, msg{from: "a@x", to: "b@y", body: 1050})
	logConn(&b, "11:00:00", 22, 501, false, msg{from: "a@x", to: "b@y", body: 450})
	small := session(40001, t0, "c", false, msg{from: "a@x", to: "b@y", body: 300})
	big := session(40002, t0.Add(30*time.Millisecond), "c", false, msg{from: "a@x", to: "b@y", body: 900})
	res := Match(append(rs, small, big), logOf(t, b.String()), MatchOptions{})
	assert.True(t, res.Size.Calibrated)
	assert.Equal(t, int64(150), res.Size.D)
	assert.Equal(t, "22", small.ESA.ICID, "450 bytes logged = 300 on the wire + 150")
	assert.Equal(t, "21", big.ESA.ICID)
	for _, r := range []*smtpstate.Record{small, big} {
		assert.Equal(t, "size+envelope+time+address", r.ESA.Match)
		assert.Empty(t, r.ESA.Ambiguous)
	}
	for _, r := range rs {
		assert.Equal(t, "mid_reply", r.ESA.Match)
	}
}

// The envelope decides: different senders in the same second.
func TestMatchByEnvelope(t *testing.T) {
	var b strings.Builder
	b.WriteString(hdr)
	logConn(&b, "11:00:00", 21, 500, false, msg{from: "carol@x", to: "b@y", body: 900})
	logConn(&b, "11:00:00", 22, 501, false, msg{from: "alice@x", to: "b@y", body: 900})
	alice := session(40001, t0, "c", false, msg{from: "alice@x", to: "b@y", body: 700})
	carol := session(40002, t0.Add(30*time.Millisecond), "c", false, msg{from: "carol@x", to: "b@y", body: 700})
	Match([]*smtpstate.Record{alice, carol}, logOf(t, b.String()), MatchOptions{})
	assert.Equal(t, "22", alice.ESA.ICID)
	assert.Equal(t, "21", carol.ESA.ICID)
	assert.Empty(t, alice.ESA.Ambiguous)
	assert.Contains(t, alice.ESA.Match, "envelope")
}

// The injection debug log's dialogue decides between two TLS-less
// sessions that differ only in their EHLO name.
func TestMatchByInjectionDebug(t *testing.T) {
	var b strings.Builder
	b.WriteString(hdr)
	for _, c := range []struct {
		icid int
		helo string
	}{{21, "second.example"}, {22, "first.example"}} {
		fmt.Fprintf(&b, "Thu Nov 26 11:00:00 2026 Info: New SMTP ICID %d interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no\n", c.icid)
		fmt.Fprintf(&b, "Thu Nov 26 11:00:00 2026 Info: %d Rcvd: '220 mx ESMTP'\n", c.icid)
		fmt.Fprintf(&b, "Thu Nov 26 11:00:00 2026 Info: %d Sent: 'EHLO %s'\n", c.icid, c.helo)
		fmt.Fprintf(&b, "Thu Nov 26 11:00:00 2026 Info: %d Sent: 'QUIT'\n", c.icid)
		fmt.Fprintf(&b, "Thu Nov 26 11:00:00 2026 Info: ICID %d close\n", c.icid)
	}
	first := session(40001, t0, "first.example", false)
	second := session(40002, t0.Add(30*time.Millisecond), "second.example", false)
	Match([]*smtpstate.Record{first, second}, logOf(t, b.String()), MatchOptions{})
	assert.Equal(t, "22", first.ESA.ICID)
	assert.Equal(t, "21", second.ESA.ICID)
	assert.Equal(t, "injection+time+address", first.ESA.Match)
	assert.Empty(t, first.ESA.Ambiguous)
}

// A session whose Message-ID the log names under another connection is
// never tied to a connection whose messages are named otherwise.
func TestMessageIDConflict(t *testing.T) {
	var b strings.Builder
	b.WriteString(hdr)
	logConn(&b, "11:00:00", 21, 500, false, msg{from: "a@x", to: "b@y", body: 900, msgID: "<other@x>"})
	r := session(40001, t0, "c", false, msg{from: "a@x", to: "b@y", body: 750, msgID: "<mine@x>"})
	res := Match([]*smtpstate.Record{r}, logOf(t, b.String()), MatchOptions{})
	assert.Empty(t, r.ESA.ICID)
	assert.Len(t, res.CaptOnly, 1)
	assert.Len(t, res.LogOnly, 1)
}

// Two sessions 0.7 s apart in one second, their log lines
// in consecutive seconds: the first session's line could be the next one
// (a late reverse-DNS lookup), so time alone is not allowed to decide.
func TestMatchTimeAloneIsMarked(t *testing.T) {
	var b strings.Builder
	b.WriteString(hdr)
	logConn(&b, "11:00:00", 21, 500, false, msg{from: "a@x", to: "b@y", body: 900})
	logConn(&b, "11:00:01", 22, 501, false, msg{from: "a@x", to: "b@y", body: 900})
	first := session(40001, t0, "c", false, msg{from: "a@x", to: "b@y", body: 700})
	second := session(40002, t0.Add(700*time.Millisecond), "c", false, msg{from: "a@x", to: "b@y", body: 700})
	Match([]*smtpstate.Record{first, second}, logOf(t, b.String()), MatchOptions{})
	assert.Equal(t, "21", first.ESA.ICID)
	assert.Equal(t, "22", second.ESA.ICID)
	assert.ElementsMatch(t, []string{"ICID 21", "ICID 22"}, first.ESA.Ambiguous)
	assert.ElementsMatch(t, []string{"ICID 21", "ICID 22"}, second.ESA.Ambiguous)
}

// FuzzMatch: whatever the log holds, every session gets an esa part, no
// log connection is given to two sessions, matched + capture-only is every
// session, a match says how it was made, and an ambiguous list starts
// with the connection chosen.
func FuzzMatch(f *testing.F) {
	var b strings.Builder
	b.WriteString(hdr)
	logConn(&b, "11:00:00", 21, 500, true, msg{from: "a@x", to: "b@y", body: 900})
	logConn(&b, "11:00:00", 22, 501, false, msg{from: "a@x", to: "b@y", body: 900, msgID: "<m@x>"})
	logConn(&b, "11:00:01", 23, 502, false, msg{from: "c@x", to: "b@y", body: 300})
	f.Add(b.String())
	f.Add(twoICIDs)
	f.Fuzz(func(t *testing.T, text string) {
		rs := []*smtpstate.Record{
			session(40001, t0, "c", true),
			session(40002, t0.Add(10*time.Millisecond), "c", false, msg{from: "a@x", to: "b@y", body: 750, msgID: "<m@x>"}),
			session(40003, t0.Add(900*time.Millisecond), "c", false, msg{from: "c@x", to: "b@y", body: 150, midReply: "502"}),
			session(40004, t0.Add(950*time.Millisecond), "c", false),
		}
		res := Match(rs, logOf(t, text), MatchOptions{})
		if res.Matched+len(res.CaptOnly) != len(rs) {
			t.Fatalf("matched %d + capture-only %d != %d", res.Matched, len(res.CaptOnly), len(rs))
		}
		seen := map[*Conn]bool{}
		for _, r := range rs {
			if r.ESA == nil {
				t.Fatal("a session without an esa part")
			}
			if c, ok := res.ByRecord[r]; ok {
				if seen[c] {
					t.Fatalf("%s given to two sessions", connName(c))
				}
				seen[c] = true
				if r.ESA.Match == "" {
					t.Fatal("matched without saying how")
				}
				if len(r.ESA.Ambiguous) > 0 && r.ESA.Ambiguous[0] != connName(c) {
					t.Fatalf("ambiguous list %v does not start with the chosen %s", r.ESA.Ambiguous, connName(c))
				}
			}
		}
	})
}

// A Message-ID the log broke across lines is cut short: it still ties the
// session as a prefix, and never rules a connection out.
func TestMessageIDBrokenInLog(t *testing.T) {
	log := hdr +
		"Thu Nov 26 11:00:00 2026 Info: New SMTP ICID 21 interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no\n" +
		"Thu Nov 26 11:00:00 2026 Info: Start MID 500 ICID 21\n" +
		"Thu Nov 26 11:00:00 2026 Info: MID 500 Message-ID '<20261126.abcdef\n" +
		"   .ghijk@example.com>'\n" +
		"Thu Nov 26 11:00:00 2026 Info: New SMTP ICID 22 interface Data 1 (198.51.100.25) address 192.0.2.10 reverse dns host unknown verified no\n" +
		"Thu Nov 26 11:00:00 2026 Info: Start MID 501 ICID 22\n"
	r := session(40001, t0.Add(20*time.Millisecond), "c", false, msg{body: 10, msgID: "<20261126.abcdef.ghijk@example.com>"})
	Match([]*smtpstate.Record{r}, logOf(t, log), MatchOptions{})
	assert.Equal(t, "21", r.ESA.ICID)
	assert.Equal(t, "message_id", r.ESA.Match)
}
