package smtpstate

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordDecoder(t *testing.T) {
	in := `{"ts":1700000000.000001,"uid":"Cabc","id.orig_h":"192.0.2.1","phase":"rcpt"}

{"ts":null,"uid":"Cdef","phase":"after_gap"}
{"ts":1,"uid":"Cghi","phase":"nope"}
{"uid":"Cjkl"}
`
	d := NewRecordDecoder(strings.NewReader(in), "saved.jsonl")
	r, err := d.Next()
	require.NoError(t, err)
	assert.Equal(t, "Cabc", r.UID)
	assert.Equal(t, StateRcpt, r.PhaseAtEnd)
	assert.Equal(t, int64(1700000000000001), r.TS.UnixMicro())
	r, err = d.Next()
	require.NoError(t, err)
	assert.Equal(t, StateAfterGap, r.PhaseAtEnd)
	assert.True(t, r.TS.IsZero())
	_, err = d.Next()
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrRecordLine))
	assert.Contains(t, err.Error(), "saved.jsonl:4")

	_, err = NewRecordDecoder(strings.NewReader(`{"ts":1}`), "x").Next()
	assert.ErrorContains(t, err, "x:1")
	_, err = NewRecordDecoder(strings.NewReader("\n\n"), "x").Next()
	assert.Equal(t, io.EOF, err)
}
