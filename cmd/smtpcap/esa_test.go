package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type esaRecord struct {
	OrigP  int `json:"id.orig_p"`
	Ending struct {
		Verdict string `json:"verdict"`
	} `json:"ending"`
	ESA *struct {
		ICID       string   `json:"icid"`
		MIDs       []string `json:"mids"`
		Lines      []string `json:"lines"`
		Match      string   `json:"match"`
		Ambiguous  []string `json:"ambiguous"`
		Consistent *bool    `json:"consistent"`
		Note       string   `json:"note"`
	} `json:"esa"`
}

func analyzeESA(t *testing.T, args ...string) ([]esaRecord, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"analyze", "-q", "--json"}, args...), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	var rs []esaRecord
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var r esaRecord
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		rs = append(rs, r)
	}
	return rs, errb.String()
}

// TestESAMatchLab: every lab session matches its ICID (and MIDs) in the
// ESA-style log derived from Postfix's, the log's abort line is the one the
// lab expects, and the log's story agrees with the verdict.
func TestESAMatchLab(t *testing.T) { checkESALab(t, "../../testdata/lab/captures") }

func checkESALab(t *testing.T, root string) {
	files, err := filepath.Glob(filepath.Join(root, "*", "expected.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	icidLine := regexp.MustCompile(`New SMTP ICID (\d+) `)
	for _, f := range files {
		var e labExpect
		b, _ := os.ReadFile(f)
		require.NoError(t, json.Unmarshal(b, &e))
		dir := filepath.Dir(f)
		logText, err := os.ReadFile(filepath.Join(dir, "mail_logs"))
		require.NoError(t, err)
		icids := icidLine.FindAllStringSubmatch(string(logText), -1)
		rs, summary := analyzeESA(t, "-r", filepath.Join(dir, "server.pcap"), "--esa-log", filepath.Join(dir, "mail_logs"))
		require.Len(t, rs, len(icids), "%s: one ICID per session", e.Scenario)
		seen := map[string]bool{}
		for _, r := range rs {
			require.NotNil(t, r.ESA, e.Scenario)
			assert.NotEmpty(t, r.ESA.ICID, "%s: session %d unmatched: %s\n%s", e.Scenario, r.OrigP, r.ESA.Note, summary)
			// load: 100 sessions from one client, 59 in one second, identical
			// envelopes and sizes - their Message-IDs tell them apart.
			assert.Empty(t, r.ESA.Ambiguous, "%s: ambiguous", e.Scenario)
			assert.False(t, seen[r.ESA.ICID], "%s: ICID %s used twice", e.Scenario, r.ESA.ICID)
			seen[r.ESA.ICID] = true
			if e.ESAAbort != "" {
				assert.Contains(t, strings.Join(r.ESA.Lines, "\n"), "Receiving "+strings.TrimPrefix(e.ESAAbort, "Receiving "), e.Scenario)
			}
			if r.ESA.Consistent != nil {
				assert.True(t, *r.ESA.Consistent, "%s: log and capture disagree: %s", e.Scenario, r.ESA.Note)
			}
		}
		assert.Contains(t, summary, "UTC+01:00 (header", e.Scenario)
		// Each session on its true ICID: truth from tshark and the log's text.
		want := truth(t, tsharkSessions(t, filepath.Join(dir, "server.pcap")), readLogTruth(t, filepath.Join(dir, "mail_logs")).withPostfixPorts(t, filepath.Join(dir, "postfix.log")), 0)
		for _, r := range rs {
			assert.Equal(t, want[r.OrigP][0], r.ESA.ICID, "%s: port %d", e.Scenario, r.OrigP)
		}
	}
}

// TestESAZoneInferredAndChecked: without the header the zone is inferred
// from the data; a wrong --esa-tz is detected; a skewed appliance clock is
// estimated and matching still works.
func TestESAZoneInferredAndChecked(t *testing.T) {
	pcap := "../../testdata/lab/captures/all-server.pcapng"
	logPath := "../../testdata/lab/captures/mail.current"
	b, err := os.ReadFile(logPath)
	require.NoError(t, err)
	dir := t.TempDir()

	noHeader := regexp.MustCompile(`(?m)^.*Time offset from UTC.*\n`).ReplaceAllString(string(b), "")
	p := filepath.Join(dir, "mail.noheader")
	require.NoError(t, os.WriteFile(p, []byte(noHeader), 0o644))
	rs, summary := analyzeESA(t, "-r", pcap, "--esa-log", p)
	assert.Contains(t, summary, "ESA zone: UTC+01:00 (inferred", summary)
	matched := 0
	for _, r := range rs {
		if r.ESA != nil && r.ESA.ICID != "" {
			matched++
		}
	}
	assert.Equal(t, len(rs), matched, "every capture session matched with an inferred zone:\n%s", summary)

	_, summary = analyzeESA(t, "-r", pcap, "--esa-log", p, "--esa-tz", "+05:00")
	assert.Contains(t, summary, "WARNING: the flag says UTC+05:00 but UTC+01:00 explains", summary)

	// Shift every log time by +47 s: a skewed appliance clock.
	stamp := regexp.MustCompile(`(?m)^(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})`)
	skewed := stamp.ReplaceAllStringFunc(noHeader, func(s string) string {
		tm, err := time.Parse("Mon Jan _2 15:04:05 2006", s)
		require.NoError(t, err)
		return tm.Add(47 * time.Second).Format("Mon Jan _2 15:04:05 2006")
	})
	p2 := filepath.Join(dir, "mail.skewed")
	require.NoError(t, os.WriteFile(p2, []byte(skewed), 0o644))
	rs, summary = analyzeESA(t, "-r", pcap, "--esa-log", p2)
	assert.Regexp(t, `appliance clock \+4[67]\.\ds from the capture's`, summary)
	matched = 0
	for _, r := range rs {
		if r.ESA != nil && r.ESA.ICID != "" {
			matched++
		}
	}
	assert.Equal(t, len(rs), matched, "every session matched despite the skew:\n%s", summary)
}

// TestESASelect: --icid and --mid select one session.
func TestESASelect(t *testing.T) {
	pcap := "../../testdata/lab/captures/all-server.pcapng"
	logPath := "../../testdata/lab/captures/mail.current"
	all, _ := analyzeESA(t, "-r", pcap, "--esa-log", logPath)
	var icid, mid string
	for _, r := range all {
		if r.ESA != nil && len(r.ESA.MIDs) > 0 {
			icid, mid = r.ESA.ICID, r.ESA.MIDs[0]
			break
		}
	}
	require.NotEmpty(t, mid)
	one, _ := analyzeESA(t, "-r", pcap, "--esa-log", logPath, "--icid", icid)
	require.Len(t, one, 1)
	assert.Equal(t, icid, one[0].ESA.ICID)
	one, _ = analyzeESA(t, "-r", pcap, "--esa-log", logPath, "--mid", mid)
	require.Len(t, one, 1)
	assert.Contains(t, one[0].ESA.MIDs, mid)
}
