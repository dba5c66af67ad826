package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runOut(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"analyze", "-q"}, args...), &out, &errb)
	return out.String(), code
}

// TestRecordsReread: analyze --records on the saved JSON lines of every lab
// capture and peer corpus writes the same bytes, with and without the ESA
// log, from a file and from stdin.
func TestRecordsReread(t *testing.T) {
	dir := t.TempDir()
	files, lines := 0, 0
	for i, f := range roundTripFiles(t) {
		variants := [][]string{nil}
		if logs := filepath.Join(filepath.Dir(f), "mail_logs"); fileExists(logs) {
			variants = append(variants, []string{"--esa-log", logs})
		}
		for _, extra := range variants {
			saved, code := runOut(t, append([]string{"--json", "-r", f}, extra...)...)
			require.Contains(t, []int{0, 1}, code, f) // one peer capture is damaged
			p := filepath.Join(dir, filepath.Base(f)+".jsonl")
			require.NoError(t, os.WriteFile(p, []byte(saved), 0o644))
			again, code := runOut(t, append([]string{"--json", "--records", p}, extra...)...)
			require.Equal(t, 0, code, f)
			assert.Equal(t, saved, again, "%s %v: re-read records differ", f, extra)
			if i%10 == 0 {
				stdin = strings.NewReader(saved)
				fromStdin, _ := runOut(t, append([]string{"--json", "--records", "-"}, extra...)...)
				stdin = os.Stdin
				assert.Equal(t, saved, fromStdin, "%s: from stdin", f)
			}
			files++
			lines += strings.Count(saved, "\n")
		}
	}
	t.Logf("%d runs, %d JSON lines re-read byte for byte", files, lines)
}

// TestRecordsNewTimers: re-reading with another --firewall-idle recomputes
// the ending. In fw_idle_drop the firewall dropped the connection after 7 s
// idle; with a 60 s firewall timer that gap is no idle expiry, and the same
// packets are a plain silent drop.
func TestRecordsNewTimers(t *testing.T) {
	saved, code := runOut(t, "--json", "-r", "../../testdata/lab/captures/fw_idle_drop/span.pcap")
	require.Equal(t, 0, code)
	require.Contains(t, saved, `"verdict":"firewall_idle_expiry"`)
	p := filepath.Join(t.TempDir(), "saved.jsonl")
	require.NoError(t, os.WriteFile(p, []byte(saved), 0o644))
	again, code := runOut(t, "--json", "--records", p, "--firewall-idle", "60s")
	require.Equal(t, 0, code)
	assert.NotContains(t, again, `"verdict":"firewall_idle_expiry"`)
	assert.Contains(t, again, `"verdict":"silent_drop"`)
	direct, _ := runOut(t, "--json", "-r", "../../testdata/lab/captures/fw_idle_drop/span.pcap", "--firewall-idle", "60s")
	assert.Equal(t, direct, again, "re-read with --firewall-idle 60s = capture read with it")
}

func TestRecordsErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.jsonl")
	require.NoError(t, os.WriteFile(p, []byte("{\"uid\":\"C1\"}\nnot json\n"), 0o644))
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"analyze", "-q", "--json", "--records", p}, &out, &errb)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errb.String(), "bad.jsonl:2")
	assert.Equal(t, 1, strings.Count(out.String(), "\n"), "the record before the damage is reported")
	code = run(t.Context(), []string{"analyze", "-q", "--records", p, "-r", "x.pcap"}, &out, &errb)
	assert.Equal(t, exitUsage, code)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
