package esalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func samplesDir(t *testing.T) string {
	p, _ := filepath.Abs("../../../shared/esa/samples")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("ESA samples not found at %s (CI provides ../shared beside the repository)", p)
	}
	return p
}

// TestSamplesParse: every line of every shared sample parses (comments
// aside), and the lifecycle lines are recognised.
func TestSamplesParse(t *testing.T) {
	dir := samplesDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	kinds := map[Kind]int{}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "90-") {
			messagePartsOnly(t, f, kinds)
			continue
		}
		lg, err := ReadFiles([]string{f}, Options{Year: 2014})
		require.NoError(t, err)
		for _, e := range lg.Errors {
			t.Errorf("%v", e)
		}
		for _, l := range lg.Lines {
			kinds[l.Kind]++
		}
		t.Logf("%s: %d lines, %d unknown", filepath.Base(f), len(lg.Lines), lg.Unknown)
		for _, u := range lg.UnknownSamples {
			t.Logf("  unknown: %s", u.Msg)
		}
	}
	for _, k := range []Kind{KindNewICID, KindHAT, KindICIDTLS, KindStartMID, KindMailFrom, KindRcptTo, KindMessageID,
		KindReady, KindAborted, KindFinished, KindICIDLost, KindICIDClose, KindNewDCID, KindDeliveryStart, KindMessageDone,
		KindDCIDClose, KindBounced, KindDelayed, KindConnError, KindTimeOffset, KindSplit} {
		assert.NotZero(t, kinds[k], "no %s line recognised in the samples", k)
	}
	var sb strings.Builder
	for k, n := range kinds {
		sb.WriteString(k.String() + "=" + itoa(n) + " ")
	}
	t.Log(sb.String())
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// messagePartsOnly: the file quotes message parts without the envelope
// (parser comments, docs); each must be recognised by ParseMessage.
func messagePartsOnly(t *testing.T, path string, kinds map[Kind]int) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var l Line
		ParseMessage(strings.TrimPrefix(line, "Info: "), &l)
		kinds[l.Kind]++
		assert.NotEqual(t, KindUnknown, l.Kind, "%s:%d: not recognised: %s", filepath.Base(path), i+1, line)
	}
}

// TestMaxLines: past the cap, lines are counted, not kept.
func TestMaxLines(t *testing.T) {
	lg, err := ReadFiles([]string{"../../testdata/lab/captures/load/mail_logs"}, Options{MaxLines: 10})
	if err != nil {
		t.Fatal(err)
	}
	all, err := ReadFiles([]string{"../../testdata/lab/captures/load/mail_logs"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lg.Lines) != 10 || lg.Dropped != len(all.Lines)-10 || lg.Dropped == 0 {
		t.Fatalf("kept %d, dropped %d, of %d", len(lg.Lines), lg.Dropped, len(all.Lines))
	}
}
