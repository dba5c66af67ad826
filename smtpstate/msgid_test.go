package smtpstate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/smtpcap/smtpcap/smtpstate/internal/split"
	"github.com/stretchr/testify/require"
)

// msgIDCase is a transcript: client lines (C:), raw client bytes (C+) and
// server lines (S:); want is the msg_id of each transaction in order.
type msgIDCase struct {
	name  string
	steps []string
	want  []string
}

func msgIDCases() []msgIDCase {
	hello := []string{"S: 220 mx ESMTP", "C: EHLO c", "S: 250 mx"}
	txn := func(body string) []string {
		return []string{"C: MAIL FROM:<a@x>", "S: 250 ok", "C: RCPT TO:<b@y>", "S: 250 ok", "C: DATA", "S: 354 go ahead", "C+ " + body, "S: 250 ok: Message 7 accepted"}
	}
	join := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return append(out, "C: QUIT", "S: 221 bye")
	}
	return []msgIDCase{
		{"plain", join(hello, txn("From: a@x\r\nMessage-ID: <1@x>\r\nSubject: s\r\n\r\nbody\r\n.\r\n")), []string{"<1@x>"}},
		{"case_and_obsolete_wsp", join(hello, txn("message-id  :   <2@x>  \r\n\r\nb\r\n.\r\n")), []string{"<2@x>"}},
		{"folded", join(hello, txn("Subject: s\r\nMessage-Id:\r\n <3@\r\n\tx>\r\nTo: b@y\r\n\r\n.\r\n")), []string{"<3@\tx>"}},
		{"folded_last_field", join(hello, txn("Message-ID:\r\n <4@x>\r\n\r\n.\r\n")), []string{"<4@x>"}},
		{"body_lookalike_ignored", join(hello, txn("From: a@x\r\n\r\nMessage-ID: <body@x>\r\n.\r\n")), []string{""}},
		{"no_message_id", join(hello, txn("From: a@x\r\nSubject: none\r\n\r\nMessage-ID: <no@x>\r\n.\r\n")), []string{""}},
		{"no_header_at_all", join(hello, txn("just text\r\nMessage-ID: <no@x>\r\n.\r\n")), []string{""}},
		{"header_ends_at_dot", join(hello, txn("Message-ID: <5@x>\r\n.\r\n")), []string{"<5@x>"}},
		{"dot_stuffed_header_line", join(hello, txn("..X-Dot: y\r\nMessage-ID: <6@x>\r\n\r\n.\r\n")), []string{"<6@x>"}},
		{"first_of_two_wins", join(hello, txn("Message-ID: <7@x>\r\nMessage-ID: <8@x>\r\n\r\n.\r\n")), []string{"<7@x>"}},
		{"bare_lf_header", join(hello, txn("Message-ID: <9@x>\nSubject: s\n\nMessage-ID: <body@x>\r\n.\r\n")), []string{"<9@x>"}},
		{"too_long_line_dropped", join(hello, txn("Message-ID: <"+strings.Repeat("a", 1200)+"@x>\r\n\r\n.\r\n")), []string{""}},
		{"two_messages", join(hello, txn("Message-ID: <10@x>\r\n\r\n.\r\n"), txn("Subject: second\r\n\r\n.\r\n"), txn("Message-ID: <11@x>\r\n\r\n.\r\n")), []string{"<10@x>", "", "<11@x>"}},
		{"bdat_chunks", join(hello, []string{"C: MAIL FROM:<a@x>", "S: 250 ok", "C: RCPT TO:<b@y>", "S: 250 ok",
			"C: BDAT 20", "C+ Subject: s\\r\\nMessage-", "S: 250 ok", "C: BDAT 32 LAST", "C+ ID: <12@x>\\r\\n\\r\\n.Message-ID: <n@x>", "S: 250 ok"}), []string{"<12@x>"}},
		{"bdat_no_unstuffing", join(hello, []string{"C: MAIL FROM:<a@x>", "S: 250 ok", "C: BDAT 23 LAST", "C+ .Message-ID: <13@x>\\r\\n\\r\\n", "S: 250 ok"}), []string{""}},
	}
}

// replayMsgID runs a case through a Conn; split cuts each payload.
func replayMsgID(t *testing.T, steps []string, split func([]byte) [][]byte) *Record {
	t.Helper()
	c := NewConn(Endpoint{"192.0.2.10", 40000}, Endpoint{"198.51.100.25", 25}, "syn", Config{})
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for i, s := range steps {
		now = now.Add(time.Millisecond)
		d, payload := FromClient, ""
		switch {
		case strings.HasPrefix(s, "C: "):
			payload = s[3:] + "\r\n"
		case strings.HasPrefix(s, "S: "):
			d, payload = FromServer, s[3:]+"\r\n"
		case strings.HasPrefix(s, "C+ "):
			payload = strings.NewReplacer(`\r`, "\r", `\n`, "\n").Replace(s[3:])
		default:
			t.Fatalf("bad step %q", s)
		}
		for _, part := range split([]byte(payload)) {
			c.Deliver(d, part, uint64(i+1), now)
		}
	}
	return c.Finish("end_of_input", now.Add(time.Second))
}

// TestMsgID: the Message-ID of each message, read from its header block
// only; whole, byte by byte and split at every offset agree.
func TestMsgID(t *testing.T) {
	for _, tc := range msgIDCases() {
		t.Run(tc.name, func(t *testing.T) {
			ref := replayMsgID(t, tc.steps, split.Whole)
			require.Len(t, ref.Trans, len(tc.want))
			for i, w := range tc.want {
				require.Equal(t, w, ref.Trans[i].MsgID, "transaction %d", i)
			}
			want := mustJSON(t, ref)
			require.Equal(t, want, mustJSON(t, replayMsgID(t, tc.steps, split.ByteByByte)), "byte by byte")
			maxLen := 0
			for _, s := range tc.steps {
				maxLen = max(maxLen, len(s))
			}
			for k := 1; k < maxLen; k++ {
				require.Equal(t, want, mustJSON(t, replayMsgID(t, tc.steps, split.At(k))), "split at %d", k)
			}
		})
	}
}

// TestMsgIDBounded: a header block that never ends stops being read at the
// limit, and the scanner keeps no more than one header line of value.
func TestMsgIDBounded(t *testing.T) {
	var s msgIDScanner
	var tr Transaction
	line := []byte("X-Filler: " + strings.Repeat("y", 80) + "\r\n")
	for i := 0; i < 2*maxHeaderBlock/len(line); i++ {
		s.feed(&tr, 0, line, true)
	}
	require.True(t, s.done, "the header block limit ends the scan")
	s.feed(&tr, 0, []byte("Message-ID: <late@x>\r\n\r\n"), true)
	require.Empty(t, tr.MsgID, "nothing is read past the limit")
	require.LessOrEqual(t, cap(s.val), 2*maxHeaderLine)

	// A gap inside the header: the field may be cut, so nothing is kept.
	s, tr = msgIDScanner{}, Transaction{}
	s.feed(&tr, 0, []byte("Message-ID: <cut"), true)
	s.gap()
	s.feed(&tr, 0, []byte("@x>\r\n\r\n"), true)
	require.Empty(t, tr.MsgID)
}

// FuzzMsgID: whatever the message, the scanner keeps at most one header
// line of value, never a line break, and cutting the input anywhere gives
// the same result as feeding it whole.
func FuzzMsgID(f *testing.F) {
	for _, tc := range msgIDCases() {
		for _, s := range tc.steps {
			if strings.HasPrefix(s, "C+ ") {
				f.Add([]byte(s[3:]), uint16(7), true)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, cut uint16, data bool) {
		var one, two msgIDScanner
		var tw, ts Transaction
		one.feed(&tw, 0, b, data)
		k := int(cut) % (len(b) + 1)
		two.feed(&ts, 0, b[:k], data)
		two.feed(&ts, 0, b[k:], data)
		if tw.MsgID != ts.MsgID {
			t.Fatalf("whole %q, split at %d %q", tw.MsgID, k, ts.MsgID)
		}
		if len(tw.MsgID) > maxHeaderLine || strings.ContainsAny(tw.MsgID, "\r\n") {
			t.Fatalf("kept %q", tw.MsgID)
		}
	})
}

func mustJSON(t *testing.T, r *Record) string {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
