package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func srcAndPayload(p packet) (string, int) {
	pk := gopacket.NewPacket(p.data, layers.LayerTypeEthernet, gopacket.NoCopy)
	var src string
	if ip4, ok := pk.NetworkLayer().(*layers.IPv4); ok {
		src = ip4.SrcIP.String()
	} else if ip6, ok := pk.NetworkLayer().(*layers.IPv6); ok {
		src = ip6.SrcIP.String()
	}
	n := 0
	if tcp, ok := pk.TransportLayer().(*layers.TCP); ok {
		n = len(tcp.Payload)
	}
	return src, n
}

func hasFlag(r record, f string) bool {
	for _, x := range r.Ending.Flags {
		if x == f {
			return true
		}
	}
	return false
}

// TestDegradedCaptures: copies of every lab capture with the first packets
// cut, a data packet removed in the middle, or one direction filtered out
// must get honest verdicts: the expected one or "undetermined", never a
// confident wrong one, with the flag that names the damage.
func TestDegradedCaptures(t *testing.T) {
	files, err := filepath.Glob("../../testdata/lab/captures/*/expected.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	dir := t.TempDir()
	var table []string
	count := map[string]int{}
	for _, f := range files {
		var e labExpect
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &e))
		for _, point := range []string{"server", "span"} {
			want := e.Expect[point]
			ps, lt := readPcap(t, filepath.Join(filepath.Dir(f), point+".pcap"))
			clientIP, _ := srcAndPayload(ps[0]) // the lab's first packet is a client SYN
			cuts := map[string][]packet{}
			cuts["first3_cut"] = ps[3:]
			mid := -1
			for i := len(ps) / 2; i < len(ps)-2; i++ {
				if _, n := srcAndPayload(ps[i]); n > 0 {
					mid = i
					break
				}
			}
			if mid > 0 {
				cuts["middle_removed"] = append(append([]packet{}, ps[:mid]...), ps[mid+1:]...)
			}
			var cli, srv []packet
			for _, p := range ps {
				if s, _ := srcAndPayload(p); s == clientIP {
					cli = append(cli, p)
				} else {
					srv = append(srv, p)
				}
			}
			cuts["client_only"], cuts["server_only"] = cli, srv
			for name, cut := range cuts {
				path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.pcap", e.Scenario, point, name))
				writePcap(t, path, lt, cut, false)
				rs := analyze(t, "-r", path)
				for _, r := range rs {
					honest := r.Ending.Verdict == want.Verdict || r.Ending.Verdict == "undetermined"
					outcome := "right"
					switch {
					case r.Ending.Verdict == "undetermined":
						outcome = "undetermined"
					case !honest:
						outcome = "WRONG"
					}
					count[name+" "+outcome]++
					table = append(table, fmt.Sprintf("%-20s %-6s %-15s %-22s %-6s %s", e.Scenario, point, name, r.Ending.Verdict, r.Ending.Confidence, outcome))
					assert.True(t, honest, "%s/%s/%s %s:%d: %s (%s), want %s or undetermined", e.Scenario, point, name, r.OrigH, r.OrigP, r.Ending.Verdict, r.Ending.Confidence, want.Verdict)
					if (name == "client_only" || name == "server_only") && r.Ending.Verdict != "handshake_failed" {
						assert.True(t, hasFlag(r, "one_direction_only"), "%s/%s/%s: flag one_direction_only missing: %v", e.Scenario, point, name, r.Ending.Flags)
						assert.NotEqual(t, "high", r.Ending.Confidence, "%s/%s/%s: high confidence from one direction", e.Scenario, point, name)
					}
				}
				if name == "first3_cut" && len(rs) > 0 {
					found := false
					for _, r := range rs {
						found = found || hasFlag(r, "midstream_start")
					}
					assert.True(t, found, "%s/%s/%s: no session flagged midstream_start", e.Scenario, point, name)
				}
			}
		}
	}
	sort.Strings(table)
	var sum []string
	for k, v := range count {
		sum = append(sum, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(sum)
	t.Logf("degraded captures: %s\n%s", strings.Join(sum, " "), strings.Join(table, "\n"))
}
