package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHostileInputs is the hostile suite: the inputs of the hostile-input
// issue's table, made by testdata/hostile/gen, run through the real binary
// with its peak RSS measured (getrusage of the child). Each must stay under
// 300 MB, keep every session and say what it cut.
func TestHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the hostile suite writes ~140 MB of inputs")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "smtpcap")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	in := filepath.Join(dir, "in")
	out, err = exec.Command("go", "run", "../../testdata/hostile/gen", "-o", in).CombinedOutput()
	require.NoError(t, err, "%s", out)
	rotated, err := filepath.Glob(filepath.Join(in, "rotated", "*.pcap"))
	require.NoError(t, err)
	require.Len(t, rotated, 1000)
	var rot []string
	for _, f := range rotated {
		rot = append(rot, "-r", f)
	}
	for _, c := range []struct {
		name     string
		args     []string
		sessions int
		stderr   string
	}{
		{"a 1 GiB record behind snaplen 0xffffffff", []string{"-r", filepath.Join(in, "big-record.pcap.gz")}, 1, "cut to its first 262144 bytes"},
		{"200,000 SYN-only connections", []string{"-r", filepath.Join(in, "synscan.pcap")}, 200000, ""},
		{"200,000 fragments that never complete", []string{"-r", filepath.Join(in, "fragments.pcap")}, 0, "fragments never completed were dropped"},
		{"1,000 rotated files", rot, 1000, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The output goes to a file: a child's peak RSS as Linux reports
			// it includes its parent's at the fork, so this process stays
			// small.
			res := filepath.Join(dir, "out.jsonl")
			f, err := os.Create(res)
			require.NoError(t, err)
			cmd := exec.Command(bin, append([]string{"analyze", "-q", "--json"}, c.args...)...)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = f, &stderr
			require.NoError(t, cmd.Run(), stderr.String())
			require.NoError(t, f.Close())
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss >> 10 // KiB -> MiB
			lines := countFileLines(t, res)
			t.Logf("%s: %d sessions, peak RSS %d MB", c.name, lines, rss)
			require.LessOrEqual(t, rss, int64(300), "peak RSS")
			require.Equal(t, c.sessions, lines, "sessions")
			require.Contains(t, stderr.String(), c.stderr)
		})
	}
}

func countFileLines(t *testing.T, path string) int {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	n, buf := 0, make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err != nil {
			return n
		}
	}
}
