package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// record is the part of a JSON line the tests look at.
type record struct {
	OrigH  string `json:"id.orig_h"`
	OrigP  int    `json:"id.orig_p"`
	RespH  string `json:"id.resp_h"`
	RespP  int    `json:"id.resp_p"`
	Ending struct {
		Verdict    string   `json:"verdict"`
		Who        string   `json:"who"`
		Confidence string   `json:"confidence"`
		Flags      []string `json:"flags"`
		Phase      string   `json:"phase"`
	} `json:"ending"`
	raw string
}

// analyze runs the CLI in-process and returns its JSON records.
func analyze(t testing.TB, args ...string) []record {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"analyze", "-q", "--json"}, args...), &out, &errb)
	require.Equal(t, 0, code, "smtpcap analyze %v: %s", args, errb.String())
	return parseRecords(t, out.String())
}

func parseRecords(t testing.TB, s string) []record {
	var rs []record
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var r record
		require.NoError(t, json.Unmarshal([]byte(l), &r), l)
		r.raw = l
		rs = append(rs, r)
	}
	return rs
}

// sharedDir finds ../shared beside the repository (CI lays it there).
func sharedDir(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("../../../shared")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(p, "corpora", "expected.json")); err != nil {
		t.Skipf("peer corpora not found at %s (CI provides ../shared beside the repository)", p)
	}
	return p
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (make deps installs it)", name)
	}
	return p
}
