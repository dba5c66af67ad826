package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The truth of which log connection a session is comes from the packets
// (tshark) and the log text, never from smtpcap's own output: a session's
// Message-ID (tshark's imf dissector) names its MIDs through the log's
// "MID n Message-ID" lines, and "Start MID n ICID i" names the ICID. A
// session without a message is the one whose "New SMTP ICID" line falls in
// the second of its SYN (tshark) - accepted as truth only when exactly one
// log connection from that client does - or, where the server's own log
// names the client port (the lab's Postfix logs it, the ESA never does),
// the log connection of that port.

type wireSession struct {
	port   int
	syn    float64 // epoch seconds
	msgIDs []string
}

// tsharkSessions lists the client port, SYN time and Message-IDs of every
// session in a capture.
func tsharkSessions(t *testing.T, pcap string) map[int]*wireSession {
	t.Helper()
	tshark := needTool(t, "tshark")
	out := map[int]*wireSession{}
	syn, err := exec.Command(tshark, "-r", pcap, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields", "-e", "tcp.srcport", "-e", "frame.time_epoch").Output()
	require.NoError(t, err)
	for _, l := range strings.Split(strings.TrimSpace(string(syn)), "\n") {
		f := strings.Fields(l)
		require.Len(t, f, 2, l)
		port, _ := strconv.Atoi(f[0])
		ts, _ := strconv.ParseFloat(f[1], 64)
		if _, dup := out[port]; !dup {
			out[port] = &wireSession{port: port, syn: ts}
		}
	}
	imf, err := exec.Command(tshark, "-r", pcap, "-Y", "imf", "-T", "fields", "-e", "tcp.srcport", "-e", "imf.message_id").Output()
	require.NoError(t, err)
	for _, l := range strings.Split(strings.TrimSpace(string(imf)), "\n") {
		port, id, _ := strings.Cut(l, "\t")
		p, _ := strconv.Atoi(port)
		if s := out[p]; s != nil && strings.TrimSpace(id) != "" {
			s.msgIDs = append(s.msgIDs, strings.TrimSpace(id))
		}
	}
	return out
}

type logTruth struct {
	icidOfMID  map[string]string
	midOfID    map[string]string
	icidStart  map[string]time.Time // "New SMTP ICID" line, UTC
	icidOrder  []string             // ICIDs in the order of their "New SMTP ICID" lines
	icidOfPort map[int]string       // from the server's own log, where it names the port
}

var (
	reLogStamp = regexp.MustCompile(`^\w{3} (\w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) \w+: (.*)$`)
	reOffset   = regexp.MustCompile(`^Time offset from UTC: (-?\d+) seconds`)
	reNewICID  = regexp.MustCompile(`^New SMTP ICID (\d+) `)
	reStartMID = regexp.MustCompile(`^Start MID (\d+) ICID (\d+)`)
	reMsgID    = regexp.MustCompile(`^MID (\d+) Message-ID '([^']*)'`)
)

// readLogTruth reads the log files' text with regular expressions (each
// file with its own offset header).
func readLogTruth(t *testing.T, files ...string) logTruth {
	t.Helper()
	lt := logTruth{icidOfMID: map[string]string{}, midOfID: map[string]string{}, icidStart: map[string]time.Time{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		off := 0
		for _, l := range strings.Split(string(b), "\n") {
			m := reLogStamp.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			ts, err := time.Parse("Jan _2 15:04:05 2006", m[1])
			require.NoError(t, err, l)
			msg := m[2]
			if o := reOffset.FindStringSubmatch(msg); o != nil {
				off, _ = strconv.Atoi(o[1])
			} else if n := reNewICID.FindStringSubmatch(msg); n != nil {
				lt.icidStart[n[1]] = ts.Add(-time.Duration(off) * time.Second)
				lt.icidOrder = append(lt.icidOrder, n[1])
			} else if s := reStartMID.FindStringSubmatch(msg); s != nil {
				lt.icidOfMID[s[1]] = s[2]
			} else if s := reMsgID.FindStringSubmatch(msg); s != nil {
				lt.midOfID[s[2]] = s[1]
			}
		}
	}
	return lt
}

var rePostfixConnect = regexp.MustCompile(`postfix/smtpd\[\d+\]: connect from \S+\[[^\]]+\](?::(\d+))?$`)

// withPostfixPorts reads the Postfix log the ESA-style log was derived from:
// its n-th "connect from" line is the n-th "New SMTP ICID" line, and where
// it names the client port (smtpd_client_port_logging) that port's session
// is that ICID. A port Postfix logs twice names no ICID.
func (lt logTruth) withPostfixPorts(t *testing.T, postfixLog string) logTruth {
	t.Helper()
	b, err := os.ReadFile(postfixLog)
	require.NoError(t, err)
	var ports []string
	for _, l := range strings.Split(string(b), "\n") {
		if m := rePostfixConnect.FindStringSubmatch(l); m != nil {
			ports = append(ports, m[1])
		}
	}
	require.Len(t, ports, len(lt.icidOrder), "%s: one \"connect from\" line per \"New SMTP ICID\" line", postfixLog)
	lt.icidOfPort = map[int]string{}
	twice := map[int]bool{}
	for i, ps := range ports {
		if ps == "" {
			continue
		}
		p, _ := strconv.Atoi(ps)
		if _, dup := lt.icidOfPort[p]; dup {
			twice[p] = true
		}
		lt.icidOfPort[p] = lt.icidOrder[i]
	}
	for p := range twice {
		delete(lt.icidOfPort, p)
	}
	return lt
}

// truth gives each session's true ICID and the MIDs its Message-IDs name.
func truth(t *testing.T, ws map[int]*wireSession, lt logTruth, skew float64) map[int][2]string {
	t.Helper()
	out := map[int][2]string{}
	claimed := map[string]bool{}
	for p, s := range ws {
		var icid string
		var mids []string
		for _, id := range s.msgIDs {
			mid, ok := lt.midOfID[id]
			require.True(t, ok, "port %d: Message-ID %s is not in the log", p, id)
			require.True(t, icid == "" || icid == lt.icidOfMID[mid], "port %d: its Message-IDs name two ICIDs", p)
			icid = lt.icidOfMID[mid]
			mids = append(mids, mid)
		}
		if icid != "" {
			out[p] = [2]string{icid, strings.Join(mids, ",")}
			claimed[icid] = true
		}
	}
	for p, s := range ws {
		if _, done := out[p]; done {
			continue
		}
		if icid, ok := lt.icidOfPort[p]; ok {
			require.False(t, claimed[icid], "port %d: the server's log names ICID %s, which a Message-ID names for another session", p, icid)
			out[p] = [2]string{icid, ""}
			continue
		}
		second := math.Floor(s.syn + skew)
		var cands []string
		for icid, st := range lt.icidStart {
			if !claimed[icid] && float64(st.Unix()) == second {
				cands = append(cands, icid)
			}
		}
		require.Len(t, cands, 1, "port %d: the SYN's second does not name exactly one ICID: %v", p, cands)
		out[p] = [2]string{cands[0], ""}
	}
	return out
}

// onTruth checks one session's ESA part against its truth (ICID, MIDs):
// the ICID, every MID, and no ambiguity mark.
func onTruth(t *testing.T, port int, w [2]string, icid string, mids, ambiguous []string, how string) bool {
	t.Helper()
	ok := assert.Equal(t, w[0], icid, "port %d: ICID (%s)", port, how)
	for _, mid := range strings.Split(w[1], ",") {
		if mid != "" {
			ok = assert.Contains(t, mids, mid, "port %d: MID", port) && ok
		}
	}
	return assert.Empty(t, ambiguous, "port %d: ambiguous", port) && ok
}

// checkTruth runs smtpcap and compares every session with the truth: the
// ICID, the MIDs its Message-IDs name, and no ambiguity mark.
func checkTruth(t *testing.T, pcap string, want map[int][2]string, args ...string) string {
	t.Helper()
	rs, summary := analyzeESA(t, append([]string{"-r", pcap}, args...)...)
	require.Len(t, rs, len(want), summary)
	right := 0
	for _, r := range rs {
		w := want[r.OrigP]
		require.NotNil(t, r.ESA, "port %d", r.OrigP)
		if onTruth(t, r.OrigP, w, r.ESA.ICID, r.ESA.MIDs, r.ESA.Ambiguous, "match "+r.ESA.Match+", "+r.ESA.Note) {
			right++
		}
	}
	t.Logf("%s %v: %d/%d sessions on their true ICID", filepath.Base(pcap), args, right, len(rs))
	return summary
}

// TestESADemoTruth: all 29 demo sessions carry their true ICID and MIDs.
func TestESADemoTruth(t *testing.T) {
	pcap := "../../testdata/lab/captures/all-server.pcapng"
	logPath := "../../testdata/lab/captures/mail.current"
	want := truth(t, tsharkSessions(t, pcap), readLogTruth(t, logPath), 0)
	require.Len(t, want, 29)
	checkTruth(t, pcap, want, "--esa-log", logPath)

	// The table line carries no ambiguity mark either.
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"analyze", "-q", "-r", pcap, "--esa-log", logPath}, &out, &errb), errb.String())
	assert.NotContains(t, out.String(), "?  ")
	assert.Regexp(t, "  icid="+want[42922][0]+" mid="+want[42922][1]+`(\n|  )`, out.String(), "the issue's first line")
}

// reZone rewrites a log into another zone with a skewed clock: the header
// says off, every stamp moves by (off - 3600) + skew seconds.
func reZone(t *testing.T, src, dst string, off, skew int) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	stamp := regexp.MustCompile(`(?m)^(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})`)
	s := stamp.ReplaceAllStringFunc(string(b), func(s string) string {
		tm, err := time.Parse("Mon Jan _2 15:04:05 2006", s)
		require.NoError(t, err)
		return tm.Add(time.Duration(off-3600+skew) * time.Second).Format("Mon Jan _2 15:04:05 2006")
	})
	s = strings.ReplaceAll(s, "Time offset from UTC: 3600 seconds", fmt.Sprintf("Time offset from UTC: %d seconds", off))
	require.NoError(t, os.WriteFile(dst, []byte(s), 0o644))
}

// TestESALoadTruth: 100 sessions from one address, 10 at a time, with
// identical envelopes and sizes: every one matches its true ICID and MID,
// at the server and at the SPAN, with the log in the appliance's zone, in
// another zone with a skewed clock, and without its zone header.
func TestESALoadTruth(t *testing.T) {
	dir := "../../testdata/lab/captures/load"
	logPath := filepath.Join(dir, "mail_logs")
	tmp := t.TempDir()
	skewed := filepath.Join(tmp, "mail.skewed")
	reZone(t, logPath, skewed, -5*3600, 37) // New York winter time, clock 37 s fast
	noHeader := filepath.Join(tmp, "mail.noheader")
	b, err := os.ReadFile(skewed)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(noHeader, regexp.MustCompile(`(?m)^.*Time offset from UTC.*\n`).ReplaceAll(b, nil), 0o644))
	for _, point := range []string{"server", "span"} {
		pcap := filepath.Join(dir, point+".pcap")
		ws := tsharkSessions(t, pcap)
		require.GreaterOrEqual(t, len(ws), 100)
		want := truth(t, ws, readLogTruth(t, logPath), 0)
		for _, c := range []struct{ name, log, zone string }{
			{"header", logPath, `ESA zone: UTC\+01:00 \(header`},
			{"other zone, skewed", skewed, `ESA zone: UTC-05:00 \(header.*appliance clock \+3[67]\.\ds`},
			{"inferred zone", noHeader, `ESA zone: UTC-05:00 \(inferred.*appliance clock \+3[67]\.\ds`},
		} {
			t.Run(point+"/"+c.name, func(t *testing.T) {
				assert.Regexp(t, c.zone, checkTruth(t, pcap, want, "--esa-log", c.log))
			})
		}
	}
}

// TestESAIndistinguishable: when the log carries no Message-ID, the load's
// sessions tie on every key (same second, address, size and envelope):
// each is still matched, its table line says icid=N?, and its candidates
// include its true ICID. Where order picked wrong, the mark is there.
func TestESAIndistinguishable(t *testing.T) {
	dir := "../../testdata/lab/captures/load"
	logPath := filepath.Join(dir, "mail_logs")
	pcap := filepath.Join(dir, "server.pcap")
	want := truth(t, tsharkSessions(t, pcap), readLogTruth(t, logPath), 0)
	b, err := os.ReadFile(logPath)
	require.NoError(t, err)
	noID := filepath.Join(t.TempDir(), "mail.noid")
	require.NoError(t, os.WriteFile(noID, regexp.MustCompile(`(?m)^.* Message-ID .*\n`).ReplaceAll(b, nil), 0o644))

	rs, summary := analyzeESA(t, "-r", pcap, "--esa-log", noID)
	require.Len(t, rs, len(want))
	right := 0
	for _, r := range rs {
		require.NotNil(t, r.ESA)
		require.NotEmpty(t, r.ESA.ICID, "port %d unmatched", r.OrigP)
		assert.NotEmpty(t, r.ESA.Ambiguous, "port %d: indistinguishable sessions must be marked", r.OrigP)
		assert.Contains(t, r.ESA.Match, "order", "port %d", r.OrigP)
		if r.ESA.ICID == want[r.OrigP][0] {
			right++
		} else {
			assert.Contains(t, r.ESA.Ambiguous, "ICID "+want[r.OrigP][0], "port %d: a wrong pick lists the true ICID", r.OrigP)
		}
	}
	t.Logf("order alone put %d of %d sessions on their true ICID; all are marked ambiguous\n%s", right, len(rs), summary)
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"analyze", "-q", "-r", pcap, "--esa-log", noID}, &out, &errb), errb.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	marked := 0
	for _, l := range lines {
		if regexp.MustCompile(`  icid=\d+\?( |$)`).MatchString(l) {
			marked++
		}
	}
	assert.Equal(t, len(rs), marked, "every table line shows icid=N?")

	// --mid on such a match shows every session that could be it, each
	// marked, the true one among them.
	ports := make([]int, 0, len(want))
	for port := range want {
		ports = append(ports, port)
	}
	sort.Ints(ports)
	for _, port := range ports[len(ports)/2:] { // one from the middle of the run
		w := want[port]
		if w[1] == "" {
			continue
		}
		out.Reset()
		errb.Reset()
		require.Equal(t, 0, run(t.Context(), []string{"analyze", "-q", "-r", pcap, "--esa-log", noID, "--mid", w[1]}, &out, &errb), errb.String())
		sel := strings.Split(strings.TrimSpace(strings.Split(out.String(), "\n\n")[0]), "\n")
		assert.Greater(t, len(sel), 1, "--mid %s: the candidates are shown", w[1])
		found := false
		for _, l := range sel {
			assert.Regexp(t, `  icid=\d+\?( |$)`, l)
			found = found || strings.Contains(l, ":"+strconv.Itoa(port)+" -> ")
		}
		assert.True(t, found, "--mid %s: the true session (port %d) is among those shown", w[1], port)
		break
	}
}

// TestESAWindowedTruth: matched in windows far smaller than the capture
// (so small that windows are decided early), the load scenario's 100
// sessions from one client (59 in one second) and the demo's 29 still
// each land on their true ICID and MIDs without an ambiguity mark.
func TestESAWindowedTruth(t *testing.T) {
	defer func(w int) { esaWindow = w }(esaWindow)
	for _, c := range []struct {
		pcap, log, postfix string
		window             int
	}{
		{"../../testdata/lab/captures/load/server.pcap", "../../testdata/lab/captures/load/mail_logs", "../../testdata/lab/captures/load/postfix.log", 10},
		{"../../testdata/lab/captures/load/span.pcap", "../../testdata/lab/captures/load/mail_logs", "../../testdata/lab/captures/load/postfix.log", 25},
		{"../../testdata/lab/captures/all-server.pcapng", "../../testdata/lab/captures/mail.current", "", 4},
	} {
		lt := readLogTruth(t, c.log)
		if c.postfix != "" {
			lt = lt.withPostfixPorts(t, c.postfix)
		}
		want := truth(t, tsharkSessions(t, c.pcap), lt, 0)
		esaWindow = c.window
		summary := checkTruth(t, c.pcap, want, "--esa-log", c.log)
		assert.Contains(t, summary, "ESA match in ", "%s: matched in windows", c.pcap)
	}
}

// TestESAStreamedTruth: --stream with --esa-log writes each session once
// matched (in the order they end, held a horizon of capture time): the
// load scenario's 100 sessions from one client and the demo's 29 each
// land on their true ICID and MIDs, without an ambiguity mark.
func TestESAStreamedTruth(t *testing.T) {
	for _, c := range []struct{ pcap, log, postfix string }{
		{"../../testdata/lab/captures/load/server.pcap", "../../testdata/lab/captures/load/mail_logs", "../../testdata/lab/captures/load/postfix.log"},
		{"../../testdata/lab/captures/all-server.pcapng", "../../testdata/lab/captures/mail.current", ""},
	} {
		lt := readLogTruth(t, c.log)
		if c.postfix != "" {
			lt = lt.withPostfixPorts(t, c.postfix)
		}
		want := truth(t, tsharkSessions(t, c.pcap), lt, 0)
		summary := checkTruth(t, c.pcap, want, "--stream", "--esa-log", c.log)
		assert.Contains(t, summary, "ESA match (streamed): ", c.pcap)
	}
}
