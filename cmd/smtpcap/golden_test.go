package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/golden/name, or rewrites it with
// -update. Review every diff: reports are byte-stable by design.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, got, 0o644))
		return
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "missing golden file; run go test ./cmd/smtpcap -update and review it")
	require.Equal(t, string(want), string(got), "%s differs from its golden file (go test -update rewrites it)", name)
}

// TestGoldenReports: the demo's text table and JSON lines, byte for byte.
func TestGoldenReports(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"demo.txt", []string{"analyze", "-q", "-r", "../../testdata/lab/captures/all-server.pcapng", "--esa-log", "../../testdata/lab/captures/mail.current"}},
		{"demo.jsonl", []string{"analyze", "-q", "--json", "-r", "../../testdata/lab/captures/all-server.pcapng", "--esa-log", "../../testdata/lab/captures/mail.current"}},
		{"span-fw.txt", []string{"analyze", "-q", "-r", "../../testdata/lab/captures/fw_inject_both/span.pcap", "-r", "../../testdata/lab/captures/fw_idle_reject/span.pcap", "-r", "../../testdata/lab/captures/fw_idle_drop/span.pcap"}},
	} {
		var out, errb bytes.Buffer
		require.Equal(t, 0, run(context.Background(), c.args, &out, &errb), errb.String())
		golden(t, c.name, out.Bytes())
		// idempotent: a second run gives the same bytes
		var again bytes.Buffer
		run(context.Background(), c.args, &again, &errb)
		require.Equal(t, out.String(), again.String(), "%s: not stable across runs", c.name)
	}
}
