package main

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

const (
	secretUser = "alice.secret.user"
	secretPass = "s3cret-Passw0rd-7781"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// authSteps are AUTH exchanges that each carry the secrets: C: lines are
// the client's, S: the server's.
var authSteps = map[string][]string{
	"plain_inline":         {"C:AUTH PLAIN " + b64("\x00"+secretUser+"\x00"+secretPass), "S:235 2.7.0 ok"},
	"plain_nextline":       {"C:AUTH PLAIN", "S:334 ", "C:" + b64("\x00"+secretUser+"\x00"+secretPass), "S:235 2.7.0 ok"},
	"login":                {"C:AUTH LOGIN", "S:334 VXNlcm5hbWU6", "C:" + b64(secretUser), "S:334 UGFzc3dvcmQ6", "C:" + b64(secretPass), "S:235 2.7.0 ok"},
	"login_initial":        {"C:AUTH LOGIN " + b64(secretUser), "S:334 UGFzc3dvcmQ6", "C:" + b64(secretPass), "S:235 2.7.0 ok"},
	"xoauth2":              {"C:AUTH XOAUTH2 " + b64("user="+secretUser+"\x01auth=Bearer "+secretPass+"\x01\x01"), "S:235 2.7.0 ok"},
	"cram_md5":             {"C:AUTH CRAM-MD5", "S:334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+", "C:" + b64(secretUser+" b913a602c7eda7a495b4e6e7334d3890"+secretPass), "S:235 2.7.0 ok"},
	"pipelined":            {"C:AUTH PLAIN " + b64("\x00"+secretUser+"\x00"+secretPass) + "\r\nMAIL FROM:<a@b.example>", "S:235 2.7.0 ok", "S:250 ok"},
	"rejected_sent_anyway": {"C:AUTH LOGIN", "S:504 5.5.4 mechanism not available", "C:" + b64(secretUser), "S:500 5.5.2 error", "C:" + b64(secretPass), "S:500 5.5.2 error"},
	"reply_lost":           {"C:AUTH LOGIN", "C:" + b64(secretUser), "C:" + b64(secretPass)},
}

// authCapture builds a session with the exchange; cut drops the first
// packets up to the AUTH command (a capture that starts mid-AUTH).
func authCapture(steps []string, cut bool) []packet {
	g := newDialogue()
	g.open("250-mx.example\r\n250 AUTH PLAIN LOGIN XOAUTH2 CRAM-MD5\r\n")
	start := len(g.ps)
	for _, st := range steps {
		g.seg(strings.HasPrefix(st, "C:"), "PA", st[2:]+"\r\n", 0, false)
	}
	g.seg(true, "PA", "QUIT\r\n", 0, false)
	g.seg(false, "PA", "221 bye\r\n", 0, false)
	g.seg(false, "FA", "", 0, false)
	g.seg(true, "FA", "", 0, false)
	if cut {
		return g.ps[start+1:] // the capture starts after the AUTH command line
	}
	return g.ps
}

// TestSecretsNeverLeave: no output format (table, -v, JSON, CSV, the
// stream) carries a credential of any AUTH exchange, base64 or decoded,
// whole capture or one that starts in the middle of the exchange.
func TestSecretsNeverLeave(t *testing.T) {
	dir := t.TempDir()
	for name, steps := range authSteps {
		for _, cut := range []bool{false, true} {
			f := filepath.Join(dir, name+map[bool]string{false: ".pcap", true: "-cut.pcap"}[cut])
			writePcap(t, f, layers.LinkTypeEthernet, authCapture(steps, cut), false)
			var secrets []string
			for _, st := range steps {
				for _, w := range strings.Fields(st[2:]) {
					if len(w) >= 12 && !strings.HasPrefix(w, "VXNlcm5hbWU6") && !strings.HasPrefix(w, "UGFzc3dvcmQ6") && !strings.HasPrefix(w, "PDE4") {
						secrets = append(secrets, w)
					}
				}
			}
			secrets = append(secrets, secretUser, secretPass, b64(secretUser), b64(secretPass))
			for _, mode := range [][]string{{}, {"--json"}, {"--csv"}, {"--stream"}} {
				out, errb, code := runRaw(t, append([]string{"analyze", "-q", "-r", f}, mode...)...)
				require.Equal(t, 0, code, errb)
				require.NotEmpty(t, out)
				for _, s := range secrets {
					require.NotContains(t, out+errb, s, "%s (cut %v) %v: a credential in the output", name, cut, mode)
					require.NotContains(t, strings.ToUpper(out+errb), strings.ToUpper(s), "%s (cut %v) %v: a credential, upper-cased, in the output", name, cut, mode)
				}
			}
		}
	}
}
