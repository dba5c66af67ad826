package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// TestLiveERSPAN: a remote mirror's feed on the wire. This kernel has no
// erspan device (ip link add type erspan: unknown device type), so the
// ERSPAN II and III packets a mirror would send are made from lab
// captures (wrapFrames) and sent onto a veth with tcpreplay; smtpcap live
// with the 'proto gre' filter, on libpcap and on two AF_PACKET fanout
// sockets, prints for every session the verdict, packets and bytes the
// plain capture gives.
func TestLiveERSPAN(t *testing.T) {
	l := needReplayLab(t)
	var all []packet
	want := map[int]record{}
	for _, sc := range []string{"quit_one", "rst_mid_data", "fw_reject_content", "starttls_quit", "pipelining", "client_killed"} {
		src := filepath.Join("..", "..", "testdata", "lab", "captures", sc, "server.pcap")
		ps, _ := readPcap(t, src)
		for _, r := range analyze(t, "-r", src) {
			_, dup := want[r.OrigP]
			require.False(t, dup, "client port %d in two scenarios", r.OrigP)
			want[r.OrigP] = r
		}
		all = append(all, ps...)
	}
	for _, kind := range []string{"erspan2", "erspan3-sub"} {
		for _, mode := range [][]string{nil, {"--afpacket", "--workers", "2"}} {
			name := kind + " " + strings.Join(mode, " ")
			p := filepath.Join(l.tmp, kind+".pcap")
			writePcap(t, p, layers.LinkTypeEthernet, wrapFrames(t, all, kind), false)
			outPath := filepath.Join(l.tmp, "out.json")
			out, err := os.Create(outPath)
			require.NoError(t, err)
			var errb safeBuffer
			args := append([]string{l.bin, "live", "-i", "r1", "--json", "--stats", "0"}, mode...)
			cmd := l.start(l.cap, out, &errb, append(args, "proto", "gre")...)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			require.Eventually(t, func() bool { return strings.Contains(errb.String(), "capturing on") }, 10*time.Second, 20*time.Millisecond, errb.String())
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			tr, err := exec.CommandContext(ctx, "ip", "netns", "exec", l.tx, "tcpreplay", "--topspeed", "-i", "r0", p).CombinedOutput()
			cancel()
			require.NoError(t, err, "tcpreplay: %s", tr)
			// Closed sessions are written about 5 s after their close.
			time.Sleep(7 * time.Second)
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("%s: still running 20 s after SIGTERM", name)
			}
			out.Close()
			b, err := os.ReadFile(outPath)
			require.NoError(t, err)
			got := parseRecords(t, string(b))
			require.Len(t, got, len(want), "%s: sessions\n%s", name, errb.String())
			for _, r := range got {
				w, ok := want[r.OrigP]
				require.True(t, ok, "%s: port %d", name, r.OrigP)
				require.Equal(t, w.Ending.Verdict, r.Ending.Verdict, "%s: port %d", name, r.OrigP)
				for _, f := range []string{`"orig_pkts"`, `"resp_pkts"`, `"orig_bytes"`, `"resp_bytes"`, `"missed_bytes"`} {
					require.Equal(t, field(w.raw, f), field(r.raw, f), "%s: port %d: %s", name, r.OrigP, f)
				}
			}
			t.Logf("%s: %d sessions, the plain captures' verdicts and counts", name, len(got))
		}
	}
}

// field is the text of a JSON field's value in a record line.
func field(raw, name string) string {
	i := strings.Index(raw, name+":")
	if i < 0 {
		return ""
	}
	v := raw[i+len(name)+1:]
	if j := strings.IndexAny(v, ",}"); j >= 0 {
		v = v[:j]
	}
	return v
}
