package main

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// TestOutputCannotAttackTheReader: a session whose greeting, HELO, MAIL
// FROM and replies carry terminal escapes, BEL, NUL, CR, DEL, C1 controls,
// a bidi override and bytes that are not UTF-8 prints a table line and a
// JSON line with none of them raw.
func TestOutputCannotAttackTheReader(t *testing.T) {
	g := newDialogue()
	g.seg(true, "S", "", 0, false)
	g.seg(false, "SA", "", 0, false)
	g.seg(true, "A", "", 0, false)
	g.seg(false, "PA", "220 mx\x1b]0;pwned\x07 ESMTP\r\n", 0, false)
	g.seg(true, "PA", "EHLO \x1b[2J\x1b[A\x1b[2K\u202eevil\x00\x7f\xc2\x9b\xff\r\n", 0, false)
	g.seg(false, "PA", "250 ok\x1b[31m\r\n", 0, false)
	g.seg(true, "PA", "MAIL FROM:<a\x1b[1m@b.example>\r\n", 0, false)
	g.seg(false, "PA", "550 no\x08\x08\x08 way\r\n", 0, false)
	g.seg(true, "PA", "QUIT\r\n", 0, false)
	g.seg(false, "PA", "221 bye\r\n", 0, false)
	g.seg(false, "FA", "", 0, false)
	g.seg(true, "FA", "", 0, false)
	f := filepath.Join(t.TempDir(), "escapes.pcap")
	writePcap(t, f, layers.LinkTypeEthernet, g.ps, false)
	for _, mode := range [][]string{{}, {"-vv"}, {"--json"}} {
		out, errb, code := runRaw(t, append([]string{"analyze", "-q", "-r", f}, mode...)...)
		require.Equal(t, 0, code, errb)
		require.NotEmpty(t, strings.TrimSpace(out))
		require.True(t, utf8.ValidString(out), "%v: not UTF-8", mode)
		for _, r := range strings.ReplaceAll(out, "\n", "") { // -v prints several lines
			bad := r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
			require.False(t, bad, "%v: raw %U in %q", mode, r, out)
		}
		if len(mode) == 1 && mode[0] == "-vv" {
			require.Contains(t, out, `\x1b[2J`, "the escape is shown, not acted on")
		}
	}
	rs := analyze(t, "-r", f)
	require.Len(t, rs, 1, "the JSON line parses")
	// A byte that is not UTF-8 is kept as \xNN (the raw value visible),
	// not replaced by U+FFFD.
	require.Contains(t, rs[0].raw, `\\xff`, "the 0xff byte of the HELO")
	require.NotContains(t, rs[0].raw, "\ufffd")
}
