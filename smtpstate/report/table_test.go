package report

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestWrap(t *testing.T) {
	for _, c := range []struct {
		in   string
		w    int
		want []string
	}{
		{"a b c", 10, []string{"  a b c"}},
		{"alpha beta gamma delta", 12, []string{"  alpha beta", "    gamma", "    delta"}},
		{"averyveryverylongword x", 8, []string{"  averyveryverylongword", "    x"}},
		{"", 10, []string{"  "}},
	} {
		assert.Equal(t, c.want, wrap(c.in, c.w, "  ", "    "), "%q", c.in)
	}
}

func TestClipMiddle(t *testing.T) {
	assert.Equal(t, "[2001:db8…10]:38314", clipMiddle("[2001:db8:1::10]:38314", 3), "22 runes less 3: nine either side of the mark")
	assert.Equal(t, "short", clipMiddle("short", 3), "too short to cut")
	s := clipMiddle("[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535", 10)
	assert.Equal(t, 46-10, utf8.RuneCountInString(s))
}

func TestRedactAddr(t *testing.T) {
	a := RedactAddr("alice@example.org", true)
	assert.True(t, strings.HasPrefix(a, "u-") && strings.HasSuffix(a, "@example.org"), a)
	assert.NotContains(t, a, "alice")
	assert.Equal(t, a, RedactAddr("alice@example.org", true), "stable")
	assert.NotEqual(t, a, RedactAddr("bob@example.org", true))
	assert.Equal(t, "alice@example.org", RedactAddr("alice@example.org", false))
	assert.Equal(t, "", RedactAddr("", true))
}

func TestCodeSpanCannotBreakOut(t *testing.T) {
	assert.Equal(t, "``a`b``", code("a`b"))
	assert.Equal(t, "`` `x ``", code("`x"))
	assert.Equal(t, "`a\\|b`", code("a|b"))
	assert.Equal(t, "`\\x1b[2J`", code("\x1b[2J"))
}
