package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/ending"
)

// roundTripFiles are the lab captures and, when present, the peer corpora.
func roundTripFiles(t *testing.T) []string {
	files := corpusFiles(t, "../../testdata/lab/captures")
	if shared := sharedOrEmpty(); shared != "" {
		files = append(files, corpusFiles(t, filepath.Join(shared, "corpora"))...)
	}
	require.NotEmpty(t, files)
	return files
}

// TestRecordRoundTrip: the verdict is a function of the published record.
// Every session of every lab capture and peer corpus is decoded from its
// JSON line and classified again; the ending must be the one written.
func TestRecordRoundTrip(t *testing.T) {
	sessions, endings := 0, 0
	for _, f := range roundTripFiles(t) {
		for _, l := range analyzeAllowPartial(t, f) {
			var r smtpstate.Record
			require.NoError(t, json.Unmarshal([]byte(l.raw), &r), "%s: %s", f, l.raw)
			sessions++
			if r.Ending == nil {
				continue
			}
			want, err := json.Marshal(r.Ending)
			require.NoError(t, err)
			r.Ending = nil
			classify(&r, ending.DefaultParams)
			got, err := json.Marshal(r.Ending)
			require.NoError(t, err)
			if assert.JSONEq(t, string(want), string(got), "%s %s:%d", f, r.OrigH, r.OrigP) {
				endings++
			}
		}
	}
	assert.Equal(t, sessions, endings, "sessions whose ending survives the round trip")
	t.Logf("%d sessions, %d endings reproduced from their JSON", sessions, endings)
}
