package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runRaw runs the CLI in-process and returns stdout, stderr and the code.
func runRaw(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb strings.Builder
	code := run(t.Context(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestWorkersSameOutput: the sharded pipeline writes exactly the bytes the
// single session table writes, in every output mode, on every lab capture,
// the demo's merged capture, every peer corpus capture and a synthetic
// capture of 400 interleaved sessions.
func TestWorkersSameOutput(t *testing.T) {
	files, err := filepath.Glob("../../testdata/lab/captures/*/*.pcap")
	require.NoError(t, err)
	files = append(files, "../../testdata/lab/captures/all-server.pcapng")
	if shared := sharedOrEmpty(); shared != "" {
		files = append(files, corpusFiles(t, filepath.Join(shared, "corpora"))...)
	}
	gen := filepath.Join(t.TempDir(), "gen.pcap")
	cmd := exec.Command("go", "run", "../../testdata/bench/gen", "-o", gen, "-sessions", "400", "-body", "6000", "-parallel", "40")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	files = append(files, gen)
	require.Greater(t, len(files), 80)
	modes := [][]string{{"--json"}, {}, {"--stream"}}
	for _, f := range files {
		for _, m := range modes {
			args := append([]string{"analyze", "-q", "-r", f, "--port", "26"}, m...)
			o1, e1, c1 := runRaw(t, append(args, "--workers", "1")...)
			o2, e2, c2 := runRaw(t, append(args, "--workers", "2")...)
			require.Equal(t, c1, c2, "%s %v: exit codes (%s / %s)", f, m, e1, e2)
			require.Equal(t, e1, e2, "%s %v: stderr", f, m)
			if o1 != o2 {
				require.Equal(t, strings.Split(o1, "\n"), strings.Split(o2, "\n"), "%s %v: 1 and 2 workers differ", f, m)
			}
		}
	}
}
