package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var smtpPorts = map[int]bool{25: true, 465: true, 587: true, 2525: true}

func corpusFiles(t *testing.T, root string) []string {
	var files []string
	require.NoError(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		n := info.Name()
		if strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcapng") || strings.HasSuffix(n, ".pcap.gz") {
			files = append(files, p)
		}
		return nil
	}))
	sort.Strings(files)
	return files
}

var convLine = regexp.MustCompile(`(?m)^\S+:\d+\s+<->\s+\S+:\d+\s`)

// tsharkConversations counts TCP conversations on an SMTP port.
func tsharkConversations(t *testing.T, file string) int {
	out, err := exec.Command("tshark", "-r", file, "-q", "-z", "conv,tcp,tcp.port==25 || tcp.port==465 || tcp.port==587 || tcp.port==2525").Output()
	// tshark exits 2 on a damaged file but still reports what it read
	require.True(t, err == nil || bytes.Contains(out, []byte("TCP Conversations")), "tshark on %s: %v", file, err)
	return len(convLine.FindAll(out, -1))
}

// TestCorpusSessionCounts: every TCP connection on an SMTP port appears
// exactly once, as tshark counts them, on every peer capture and every
// capture in testdata/.
func TestCorpusSessionCounts(t *testing.T) {
	needTool(t, "tshark")
	files := corpusFiles(t, "../../testdata/lab/captures")
	if shared := sharedOrEmpty(); shared != "" {
		files = append(files, corpusFiles(t, filepath.Join(shared, "corpora"))...)
	} else {
		t.Log("peer corpora not found beside the repository; checking testdata only")
	}
	require.NotEmpty(t, files)
	for _, f := range files {
		want := tsharkConversations(t, f)
		var got int
		for _, r := range analyzeAllowPartial(t, f) {
			if smtpPorts[r.RespP] || smtpPorts[r.OrigP] {
				got++
			}
		}
		assert.Equal(t, want, got, "%s: sessions on SMTP ports", f)
	}
	t.Logf("%d captures checked against tshark -z conv,tcp", len(files))
}

func sharedOrEmpty() string {
	p, _ := filepath.Abs("../../../shared")
	if _, err := os.Stat(filepath.Join(p, "corpora", "expected.json")); err != nil {
		return ""
	}
	return p
}

// analyzeAllowPartial tolerates a damaged file (exit 1 with the sessions
// before the damage): one peer capture is corrupt after packet 18.
func analyzeAllowPartial(t *testing.T, file string, extra ...string) []record {
	var out, errb strings.Builder
	code := run(t.Context(), append([]string{"analyze", "-q", "--json", "-r", file}, extra...), &out, &errb)
	require.Contains(t, []int{0, 1}, code, "%s: %s", file, errb.String())
	if code == 1 {
		require.Contains(t, errb.String(), "byte offset", "%s: a damaged file must be reported with its position", file)
	}
	return parseRecords(t, out.String())
}

// corpusSession is the part of shared/corpora/expected.json compared here:
// facts established from the packets by tshark.
type corpusSession struct {
	File          string `json:"file"`
	ClientIP      string `json:"client_ip"`
	ClientPort    int    `json:"client_port"`
	ServerIP      string `json:"server_ip"`
	ServerPort    int    `json:"server_port"`
	FinClient     *int   `json:"fin_client_frame"`
	FinServer     *int   `json:"fin_server_frame"`
	RstClient     []int  `json:"rst_client_frames"`
	RstServer     []int  `json:"rst_server_frames"`
	QuitFrame     *int   `json:"quit_frame"`
	DataCompleted int    `json:"data_completed_count"`
	TLSAfterStart bool   `json:"tls_after_starttls"`
	EndAsSeen     string `json:"end_as_seen"`
}

// TestCorpusExpected compares roles, FIN/RST frames, QUIT frame, completed
// messages and STARTTLS with the peer corpus's packet-derived facts.
func TestCorpusExpected(t *testing.T) {
	shared := sharedDir(t)
	b, err := os.ReadFile(filepath.Join(shared, "corpora", "expected.json"))
	require.NoError(t, err)
	var sessions []corpusSession
	require.NoError(t, json.Unmarshal(b, &sessions))
	require.NotEmpty(t, sessions)
	cache := map[string][]map[string]any{}
	agree, verdicts := 0, 0
	for _, s := range sessions {
		recs, ok := cache[s.File]
		if !ok {
			// The corpus counts port 26 (an alternative submission port) as SMTP.
			for _, r := range analyzeAllowPartial(t, filepath.Join(shared, "corpora", s.File), "--port", "26") {
				var m map[string]any
				require.NoError(t, json.Unmarshal([]byte(r.raw), &m))
				recs = append(recs, m)
			}
			cache[s.File] = recs
		}
		key := fmt.Sprintf("%s:%d", s.File, s.ClientPort)
		var rec map[string]any
		for _, m := range recs {
			if m["id.orig_h"] == s.ClientIP && int(m["id.orig_p"].(float64)) == s.ClientPort &&
				m["id.resp_h"] == s.ServerIP && int(m["id.resp_p"].(float64)) == s.ServerPort {
				rec = m
			}
		}
		if !assert.NotNil(t, rec, "%s: session %s:%d -> %s:%d missing", s.File, s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort) {
			continue
		}
		diffs := compareCorpus(s, rec)
		if assert.Empty(t, diffs, "%s (%s)", key, s.EndAsSeen) {
			agree++
		}
		v := rec["ending"].(map[string]any)["verdict"].(string)
		if verdictAgrees(s, v) {
			verdicts++
		} else if gap := corpusVerdictGaps[s.File]; gap != "" {
			t.Logf("known gap %s (%s): %s: %s", key, s.EndAsSeen, v, gap)
		} else {
			assert.Fail(t, "verdict disagrees with how the session ended in its packets", "%s: ended %s with %d messages completed, verdict %s", key, s.EndAsSeen, s.DataCompleted, v)
		}
	}
	t.Logf("%d of %d corpus sessions agree on every compared fact; %d verdicts agree with how they ended in their packets", agree, len(sessions), verdicts)
}

// corpusVerdictGaps are peer captures whose verdict does not yet agree
// with how they ended, and why.
var corpusVerdictGaps = map[string]string{
	// None left. zeek/smtp-one-side-only.pcap (only the client's
	// direction: its ACKs show the server answered every command, 56
	// bytes after each end of data and 58 after QUIT) is quit_fate_unseen:
	// a QUIT after whole messages whose fate is in replies not captured.
}

// verdictAgrees: the verdict is one the corpus's end_as_seen (read from
// the packets) allows, and a message is only called accepted when the
// packets show one completed.
func verdictAgrees(s corpusSession, v string) bool {
	if v == "quit_after_message" && s.DataCompleted == 0 {
		return false
	}
	in := func(vs ...string) bool {
		for _, x := range vs {
			if x == v {
				return true
			}
		}
		return false
	}
	if s.TLSAfterStart && (s.EndAsSeen == "fin_server" || s.EndAsSeen == "fin_client") && strings.HasPrefix(v, "quit_") {
		return true // a QUIT inside TLS is not in the packets' plain text
	}
	switch s.EndAsSeen {
	case "quit", "quit_no_close":
		return strings.HasPrefix(v, "quit_")
	case "none/incomplete":
		return in("capture_ended", "undetermined", "handshake_failed")
	case "fin_server":
		return strings.HasPrefix(v, "server_") || in("undetermined", "tls_end", "firewall_idle_expiry")
	case "fin_client":
		return in("client_fin_no_quit", "tls_end", "undetermined", "quit_no_wait")
	case "rst_client":
		return in("client_rst", "middlebox_rst", "undetermined", "firewall_idle_expiry")
	case "rst_server":
		return in("server_rst", "middlebox_rst", "undetermined", "firewall_idle_expiry", "handshake_failed")
	}
	return false
}

func compareCorpus(s corpusSession, rec map[string]any) []string {
	var diffs []string
	dir := func(side string) map[string]any { m, _ := rec[side].(map[string]any); return m }
	finFrame := func(side string) *int {
		if f, ok := dir(side)["fin"].(map[string]any); ok {
			v := int(f["frame"].(float64))
			return &v
		}
		return nil
	}
	rsts := func(side string) []int {
		var out []int
		if l, ok := dir(side)["rsts"].([]any); ok {
			for _, x := range l {
				out = append(out, int(x.(map[string]any)["frame"].(float64)))
			}
		}
		return out
	}
	eqp := func(a, b *int) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }
	if !eqp(finFrame("client"), s.FinClient) {
		diffs = append(diffs, fmt.Sprintf("client FIN %v, corpus %v", deref(finFrame("client")), deref(s.FinClient)))
	}
	if !eqp(finFrame("server"), s.FinServer) {
		diffs = append(diffs, fmt.Sprintf("server FIN %v, corpus %v", deref(finFrame("server")), deref(s.FinServer)))
	}
	trim := func(l []int) []int {
		if len(l) > 8 {
			return l[:8] // we keep the first eight
		}
		return l
	}
	if fmt.Sprint(rsts("client")) != fmt.Sprint(trim(s.RstClient)) && !(len(rsts("client")) == 0 && len(s.RstClient) == 0) {
		diffs = append(diffs, fmt.Sprintf("client RSTs %v, corpus %v", rsts("client"), s.RstClient))
	}
	if fmt.Sprint(rsts("server")) != fmt.Sprint(trim(s.RstServer)) && !(len(rsts("server")) == 0 && len(s.RstServer) == 0) {
		diffs = append(diffs, fmt.Sprintf("server RSTs %v, corpus %v", rsts("server"), s.RstServer))
	}
	var quit *int
	if q, ok := rec["quit"].(map[string]any); ok {
		v := int(q["cmd_frame"].(float64))
		quit = &v
	}
	if !eqp(quit, s.QuitFrame) {
		diffs = append(diffs, fmt.Sprintf("QUIT frame %v, corpus %v", deref(quit), deref(s.QuitFrame)))
	}
	done := 0
	if ts, ok := rec["transactions"].([]any); ok {
		for _, x := range ts {
			if fr, _ := x.(map[string]any)["final_reply"].(string); strings.HasPrefix(fr, "2") {
				done++
			}
		}
	}
	if done != s.DataCompleted {
		diffs = append(diffs, fmt.Sprintf("completed messages %d, corpus %d", done, s.DataCompleted))
	}
	if st := rec["tls_mode"] == "starttls"; st != s.TLSAfterStart {
		diffs = append(diffs, fmt.Sprintf("starttls %v, corpus %v", st, s.TLSAfterStart))
	}
	return diffs
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
