package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSignalsStopAtOnce: SIGINT and SIGTERM stop the reading at once, also
// while standard input waits for a silent writer; every session read so far
// is printed (the open ones end as the capture ends) and the exit code is
// 130 / 143.
func TestSignalsStopAtOnce(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "smtpcap")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	capture, err := os.ReadFile("../../testdata/lab/captures/all-server.pcapng")
	require.NoError(t, err)
	for _, c := range []struct {
		sig  syscall.Signal
		code int
		data []byte
		want int // JSON lines
	}{
		{syscall.SIGTERM, 143, capture, 29},
		{syscall.SIGINT, 130, capture, 29},
		{syscall.SIGTERM, 143, nil, 0}, // nothing written yet: Open waits on the magic
	} {
		cmd := exec.Command(bin, "analyze", "-q", "--json", "-r", "-")
		pr, pw, err := os.Pipe()
		require.NoError(t, err)
		cmd.Stdin = pr
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Start())
		pr.Close()
		_, err = pw.Write(c.data) // the writer then stays silent, the pipe open
		require.NoError(t, err)
		time.Sleep(700 * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(c.sig))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%v: still running 10 s after the signal", c.sig)
		}
		pw.Close()
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%v: %v", c.sig, err)
		require.Equal(t, c.code, ee.ExitCode(), "%v: %s", c.sig, stderr.String())
		require.Contains(t, stderr.String(), "interrupted")
		lines := strings.Count(stdout.String(), "\n")
		require.Equal(t, c.want, lines, "%v: sessions printed", c.sig)
	}
}
