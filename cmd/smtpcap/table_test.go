package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestGoldenTable: the table at its three levels over lab captures (the
// reviewed goldens were checked against tshark: frames, times, flags).
func TestGoldenTable(t *testing.T) {
	t.Setenv("COLUMNS", "")
	lab := "../../testdata/lab/captures/"
	for _, c := range []struct {
		name string
		args []string
	}{
		{"table.txt", []string{"-q", "-r", lab + "all-server.pcapng", "--esa-log", lab + "mail.current"}},
		{"table-v.txt", []string{"-q", "-v", "-r", lab + "fw_inject_both/span.pcap", "-r", lab + "fw_idle_reject/span.pcap", "-r", lab + "fw_idle_drop/span.pcap"}},
		{"table-vv.txt", []string{"-q", "-vv", "-r", lab + "rst_mid_data/server.pcap", "-r", lab + "quit_multi/server.pcap"}},
	} {
		var out, errb bytes.Buffer
		require.Equal(t, 0, run(context.Background(), c.args, &out, &errb), errb.String())
		golden(t, c.name, out.Bytes())
	}
}

// TestTableFits: every default line of the lab's load capture merged with
// every scenario's captures is at most 120 columns, the verdict is in it,
// and -v wraps to $COLUMNS.
func TestTableFits(t *testing.T) {
	t.Setenv("COLUMNS", "")
	args := []string{"-q", "-r", "../../testdata/lab/captures/load/span.pcap"}
	files, err := filepath.Glob("../../testdata/lab/captures/*/*.pcap")
	require.NoError(t, err)
	n := 0
	for _, f := range files {
		if !strings.Contains(f, "/load/") {
			args = append(args, "-r", f)
			n++
		}
	}
	require.Greater(t, n, 50, "every scenario's captures")
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), args, &out, &errb), errb.String())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Greater(t, len(lines), 100)
	longest := 0
	for _, l := range lines {
		w := utf8.RuneCountInString(l)
		longest = max(longest, w)
		require.LessOrEqual(t, w, 120, "%q", l)
		require.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  \S+ -> \S+  +[a-z_]+ +[a-z]+/(high|medium|low)`, l)
	}
	t.Logf("%d lines, longest %d columns", len(lines), longest)

	t.Setenv("COLUMNS", "60")
	out.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"-q", "-v", "-r", "../../testdata/lab/captures/fw_idle_drop/span.pcap"}, &out, &errb), errb.String())
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")[1:] {
		require.True(t, strings.HasPrefix(l, "    "), "indented: %q", l)
		require.LessOrEqual(t, utf8.RuneCountInString(l), 60, "%q", l)
	}
	require.Contains(t, strings.Join(strings.Fields(out.String()), " "), "client retransmitted seq 2435100556 7 times over 13.1s, never acknowledged", "the evidence whole")
}

// TestGoldenSummaryCSV: the summary (stderr, --summary) and --csv over the
// lab's demo capture with its ESA log.
func TestGoldenSummaryCSV(t *testing.T) {
	lab := "../../testdata/lab/captures/"
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"-q", "--summary", "-r", lab + "all-server.pcapng", "--esa-log", lab + "mail.current"}, &out, &errb), errb.String())
	golden(t, "summary.txt", errb.Bytes())
	out.Reset()
	errb.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"-q", "--csv", "-r", lab + "all-server.pcapng", "--esa-log", lab + "mail.current"}, &out, &errb), errb.String())
	golden(t, "demo.csv", out.Bytes())
	require.Equal(t, 30, strings.Count(out.String(), "\n"), "a header and 29 sessions")
}
