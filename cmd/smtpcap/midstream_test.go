package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// TestCaptureStartsInsideDATA: a capture that begins in a message body (no
// SYN, no 354) whose lines look like commands, then sees the end of data,
// 250, QUIT and 221: the body is not read as commands, and the ending is a
// normal QUIT.
func TestCaptureStartsInsideDATA(t *testing.T) {
	g := newDialogue()
	g.open("250 mx.example\r\n")
	g.seg(true, "PA", "MAIL FROM:<real@sender.example>\r\n", 0, false)
	g.seg(false, "PA", "250 ok\r\n", 0, false)
	g.seg(true, "PA", "RCPT TO:<rcpt@dest.example>\r\n", 0, false)
	g.seg(false, "PA", "250 ok\r\n", 0, false)
	g.seg(true, "PA", "DATA\r\n", 0, false)
	g.seg(false, "PA", "354 go ahead\r\n", 0, false)
	start := len(g.ps)
	g.seg(true, "PA", "Subject: hello\r\n\r\nMAIL FROM:<evil@body.example>\r\nRCPT TO:<also@body.example>\r\n", 0, false)
	var words []string
	for i := 0; i < 300; i++ {
		words = append(words, "bodyword"+strings.Repeat("x", i%5))
	}
	g.seg(true, "PA", strings.Join(words, " ")+"\r\n", 0, false)
	g.seg(true, "PA", "AUTH PLAIN notacredential\r\n.\r\n", 0, false)
	g.seg(false, "PA", "250 2.0.0 Ok: queued as 4F2A1C0\r\n", 0, false)
	g.seg(true, "PA", "QUIT\r\n", 0, false)
	g.seg(false, "PA", "221 bye\r\n", 0, false)
	g.seg(false, "FA", "", 0, false)
	g.seg(true, "FA", "", 0, false)
	f := filepath.Join(t.TempDir(), "middata.pcap")
	writePcap(t, f, layers.LinkTypeEthernet, g.ps[start:], false)
	rs := analyze(t, "-r", f)
	require.Len(t, rs, 1)
	var r struct {
		MailFrom   string   `json:"mailfrom"`
		Unanswered []string `json:"unanswered"`
		LastCmd    string   `json:"last_command"`
		Trans      []struct {
			MailFrom string `json:"mailfrom"`
			Outcome  string `json:"outcome"`
		} `json:"transactions"`
	}
	require.NoError(t, json.Unmarshal([]byte(rs[0].raw), &r))
	require.NotContains(t, rs[0].raw, "evil@body.example", "a body line became MAIL FROM")
	require.NotContains(t, rs[0].raw, "bodyword", "body words became commands")
	require.NotContains(t, rs[0].raw, "notacredential")
	require.Less(t, len(r.Unanswered), 3, "unanswered: %v", r.Unanswered)
	require.True(t, strings.HasPrefix(rs[0].Ending.Verdict, "quit_"), "verdict %s (%s)", rs[0].Ending.Verdict, rs[0].Ending.Confidence)
	require.NotEqual(t, "quit_mid_transaction", rs[0].Ending.Verdict, "the message was accepted (250 queued as), then QUIT")
}
