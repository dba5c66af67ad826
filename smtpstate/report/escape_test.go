package report

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSafe(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"client.example", "client.example"},
		{"\x1b[2Jclear", `\x1b[2Jclear`},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"a\x1b[A\x1b[2Kb", `a\x1b[A\x1b[2Kb`},
		{"nul\x00cr\rdel\x7f", `nul\x00cr\x0ddel\x7f`},
		{"c1\u009bcsi", `c1\u{9b}csi`},
		{"\u202etxt.exe", `\u{202e}txt.exe`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{"Grüße – ok", "Grüße – ok"},
		{"", ""},
	} {
		got := Safe(c.in)
		assert.Equal(t, c.want, got, "%q", c.in)
		assert.True(t, utf8.ValidString(got))
		for _, r := range got {
			assert.False(t, unsafeRune(r), "%q left %U", c.in, r)
		}
	}
}

func TestClipOnRuneBoundary(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"abcdef", 10, "abcdef"},
		{"abcdef", 4, "abc…"},
		{"äöüäöü", 4, "äöü…"},
		{"日本語のテキスト", 3, "日本…"},
	} {
		got := clip(c.in, c.n)
		assert.Equal(t, c.want, got)
		assert.True(t, utf8.ValidString(got))
	}
}

func TestSafeJSON(t *testing.T) {
	in, err := json.Marshal(map[string]string{"helo": "x\u009by\u202ez\x7f\x1b", "ok": "ü"})
	require.NoError(t, err)
	out := safeJSON(in)
	var back map[string]string
	require.NoError(t, json.Unmarshal(out, &back), "%s", out)
	assert.Equal(t, "x\u009by\u202ez\x7f\x1b", back["helo"], "the value is kept, only written escaped")
	for _, r := range string(out) {
		assert.False(t, unsafeRune(r), "raw %U in %s", r, out)
	}
}
