package report

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Everything a capture or a log carries is attacker-controlled: a HELO or a
// reply may hold ESC sequences that clear the screen, set the terminal's
// title or erase other sessions' lines, or a bidi override that makes text
// read backwards. Every text output goes through Safe; JSON through
// safeJSON.

// unsafeRune reports runes that must never reach a terminal raw: C0 and C1
// controls, DEL, and the bidi embedding, override and isolate controls.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == 0x2028 || r == 0x2029 || r == 0xfeff:
		return true
	}
	return false
}

// Safe returns s with every unsafe rune written as \xNN or \u{NNNN} and
// every byte that is not UTF-8 as \xNN, so the result is printable text.
func Safe(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || unsafeRune(r) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r < 0x80 && unsafeRune(r):
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case unsafeRune(r):
			b.WriteString(`\u{` + strconv.FormatInt(int64(r), 16) + `}`)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// clip cuts s to at most n runes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for k < n-1 {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
		k++
	}
	return s[:i] + "…"
}

// safeJSON rewrites, in encoded JSON, the runes that encoding/json leaves
// raw but a terminal would act on (DEL, C1 controls, bidi controls) as \u
// escapes. They can only stand inside strings, so the JSON stays valid.
func safeJSON(b []byte) []byte {
	dirty := false
	for _, c := range b {
		if c == 0x7f || c == 0xc2 || c == 0xe2 || c == 0xd8 || c == 0xef {
			dirty = true
			break
		}
	}
	if !dirty {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x7f && unsafeRune(r) {
			out = append(out, `\u`...)
			out = append(out, hex2(byte(r>>8))...)
			out = append(out, hex2(byte(r))...)
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}
