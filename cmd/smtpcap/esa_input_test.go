package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestESABadInput: whatever the log holds, the sessions are printed; an
// unusable log or a selection the log does not hold says so and exits 1;
// skipped lines and truncated files are counted and warned about.
func TestESABadInput(t *testing.T) {
	pcap := "../../testdata/lab/captures/all-server.pcapng"
	logPath := "../../testdata/lab/captures/mail.current"
	good, err := os.ReadFile(logPath)
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	lines := strings.SplitAfter(string(good), "\n")
	withLong := strings.Join(lines[:40], "") + "Thu Nov 26 20:58:20 2026 Info: MID 1407 Subject '" + strings.Repeat("x", 1<<20) + "'\n" + strings.Join(lines[40:], "")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(good)
	require.NoError(t, zw.Close())
	pcapBytes, err := os.ReadFile(pcap)
	require.NoError(t, err)
	binary := bytes.Repeat([]byte{0, 1, 2, 0xff, 'a', 0}, 2000)

	cases := []struct {
		name     string
		args     []string
		code     int
		sessions int    // table lines printed
		matched  int    // of them with an icid
		stdout   string // regexp
		stderr   string // regexp
	}{
		{"mid not in log", []string{"--esa-log", logPath, "--mid", "99999"}, 1, 0, 0, ``, `MID 99999 is not in the ESA log`},
		{"icid not in log", []string{"--esa-log", logPath, "--icid", "1"}, 1, 0, 0, ``, `ICID 1 is not in the ESA log`},
		{"mid in log, no session", []string{"--esa-log", logPath, "--mid", "1400"}, 1, 0, 0, ``, `MID 1400 is in the ESA log \(ICID 3101, .*\) but no capture session matches it`},
		{"mid selects one", []string{"--esa-log", logPath, "--mid", "1402"}, 0, 1, 1, `icid=3103 mid=1402`, `^$`},
		{"pcap as log", []string{"--esa-log", write("capture.log", pcapBytes)}, 1, 29, 0, `ESA match: 0 sessions matched`, `capture\.log: not a text mail log: it is a pcapng capture file`},
		{"binary as log", []string{"--esa-log", write("binary.log", binary)}, 1, 29, 0, ``, `binary\.log: not a text mail log: .* bytes are binary`},
		{"missing log", []string{"--esa-log", filepath.Join(dir, "nope.log")}, 1, 29, 0, ``, `nope\.log: no such file`},
		{"one bad file of two", []string{"--esa-log", write("binary2.log", binary), "--esa-log", logPath}, 1, 29, 29, ``, `binary2\.log: not a text mail log`},
		{"line over 64 KiB", []string{"--esa-log", write("long.log", []byte(withLong))}, 0, 29, 29, `1 over 64 KiB skipped\n  long line .*long\.log:41: line of 1048\d+ bytes`, `^$`},
		{"byte-order mark", []string{"--esa-log", write("bom.log", append([]byte("\xef\xbb\xbf"), good...))}, 0, 29, 29, `UTC\+01:00 \(header`, `^$`},
		{"gzip", []string{"--esa-log", write("mail.gz", gz.Bytes())}, 0, 29, 29, `UTC\+01:00 \(header`, `^$`},
		{"truncated gzip", []string{"--esa-log", write("cut.gz", gz.Bytes()[:gz.Len()*2/3])}, 0, 29, 0, `ESA log WARNING: .*cut\.gz.*unexpected EOF; the \d+ lines before it are used`, `^$`},
		{"tz esa without log", []string{"--tz", "esa"}, 2, 0, 0, ``, `--tz esa needs --esa-log`},
		{"tz esa", []string{"--esa-log", logPath, "--tz", "esa"}, 0, 29, 29, `^2026-11-26 20:58:08\+01:00  `, `^$`},
		{"tz name", []string{"--tz", "America/New_York"}, 0, 29, 0, `^2026-11-26 14:58:08-05:00  `, `^$`},
		{"utc by default", nil, 0, 29, 0, `^2026-11-26 19:58:08Z  `, `^$`},
		{"tz unknown", []string{"--tz", "Mars/Olympus"}, 2, 0, 0, ``, `--tz: "Mars/Olympus": not an IANA zone`},
		{"esa-tz unknown", []string{"--esa-log", logPath, "--esa-tz", "Mars/Olympus"}, 1, 29, 0, ``, `--esa-tz "Mars/Olympus": not an IANA zone`},
	}
	session := regexp.MustCompile(`(?m)^2026-\S+ \S+  \S+ -> `)
	icid := regexp.MustCompile(`(?m)^2026-.*  icid=\d+`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(t.Context(), append([]string{"analyze", "-q", "-r", pcap}, c.args...), &out, &errb)
			assert.Equal(t, c.code, code, "stderr: %s", errb.String())
			assert.Len(t, session.FindAllString(out.String(), -1), c.sessions, out.String())
			if c.name == "truncated gzip" {
				// what was read before the cut is used
				assert.Greater(t, len(icid.FindAllString(out.String(), -1)), 5)
			} else {
				assert.Len(t, icid.FindAllString(out.String(), -1), c.matched)
			}
			assert.Regexp(t, c.stdout, out.String())
			assert.NotContains(t, out.String(), "unreadable", "no line of these logs is unreadable")
			assert.Regexp(t, c.stderr, errb.String())
		})
	}
}

// TestESAFilesKeepTheirOffsets: a log rolled over at a DST change (or two
// appliances) - each file's own "Time offset" header converts its times.
func TestESAFilesKeepTheirOffsets(t *testing.T) {
	pcap := "../../testdata/lab/captures/all-server.pcapng"
	logPath := "../../testdata/lab/captures/mail.current"
	want := truth(t, tsharkSessions(t, pcap), readLogTruth(t, logPath), 0)
	b, err := os.ReadFile(logPath)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(b), "\n")
	// Roll over before the line of ICID 3117; the second file's appliance
	// runs an hour later (UTC+02:00), as after a DST change.
	cut := 0
	for i, l := range lines {
		if strings.Contains(l, "New SMTP ICID 3117 ") {
			cut = i
			break
		}
	}
	require.NotZero(t, cut)
	dir := t.TempDir()
	first := filepath.Join(dir, "mail.@20261126T205808.s")
	require.NoError(t, os.WriteFile(first, []byte(strings.Join(lines[:cut], "")), 0o644))
	second := filepath.Join(dir, "mail.current.src")
	header := lines[0] + lines[1] + lines[2]
	require.NoError(t, os.WriteFile(second, []byte(header+strings.Join(lines[cut:], "")), 0o644))
	shifted := filepath.Join(dir, "mail.current")
	reZone(t, second, shifted, 7200, 0)
	summary := checkTruth(t, pcap, want, "--esa-log", shifted, "--esa-log", first)
	assert.Contains(t, summary, "mail.current: UTC+02:00 (header)")
	assert.Contains(t, summary, "mail.@20261126T205808.s: UTC+01:00 (header)")
}
