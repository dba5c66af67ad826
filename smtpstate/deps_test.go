package smtpstate

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoForbiddenDeps: smtpstate and its subpackages stay standard-library
// only (no gopacket, no flag parser, no os/exec), so they can be driven
// from transcripts and reused (compare tailscale's tstest/deptest).
func TestNoForbiddenDeps(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/gopacket/", "github.com/spf13/pflag", "os/exec", "github.com/smtpcap/smtpcap/capture", "github.com/smtpcap/smtpcap/reassembly"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("smtpstate depends on %s", dep)
			}
		}
	}
}
