package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLiveESAFollow: the lab's load scenario (100 sessions from one client,
// 10 at a time, identical envelopes and sizes, within a second) replayed
// onto a veth at its own pace while its ESA log is written as the
// appliance would write it - each line when its time comes, shifted to
// now, the file rotated half-way (renamed, a new one with its header).
// smtpcap live --esa-log follows it and prints every session with its true
// ICID and MIDs (truth: the Message-IDs tshark reads in the capture, the
// log's text, and the client port Postfix logged), none twice.
func TestLiveESAFollow(t *testing.T) {
	l := needReplayLab(t)
	dir := "../../testdata/lab/captures/load"
	pcap, logPath := filepath.Join(dir, "server.pcap"), filepath.Join(dir, "mail_logs")
	want := truth(t, tsharkSessions(t, pcap), readLogTruth(t, logPath).withPostfixPorts(t, filepath.Join(dir, "postfix.log")), 0)
	require.Len(t, want, 100)
	first := firstPacketTime(t, pcap)

	logDir := filepath.Join(l.tmp, "esa")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	cur := filepath.Join(logDir, "mail.current")
	outPath := filepath.Join(l.tmp, "live.json")
	out, err := os.Create(outPath)
	require.NoError(t, err)
	defer out.Close()
	var errb safeBuffer
	cmd := l.start(l.cap, out, &errb, l.bin, "live", "-i", "r1", "--json", "--esa-log", cur, "--esa-wait", "3s", "--stats", "0")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	require.Eventually(t, func() bool { return strings.Contains(errb.String(), "capturing on") }, 10*time.Second, 20*time.Millisecond, errb.String())

	// Start on the capture's fraction of a second, so that the shift is a
	// whole number of seconds and the log's seconds stay where they were.
	frac := time.Duration(first.Nanosecond())
	now := time.Now()
	start := now.Truncate(time.Second).Add(frac)
	if start.Before(now.Add(20 * time.Millisecond)) {
		start = start.Add(time.Second)
	}
	time.Sleep(time.Until(start))
	shift := start.Sub(first).Round(time.Second)
	writer := make(chan error, 1)
	go func() { writer <- writeLogAsItHappens(logPath, cur, shift, 3600) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tr, err := exec.CommandContext(ctx, "ip", "netns", "exec", l.tx, "tcpreplay", "-i", "r0", pcap).CombinedOutput()
	cancel()
	require.NoError(t, err, "tcpreplay: %s", tr)
	require.NoError(t, <-writer)

	// Every session is printed once matched: 3 s after its SYN at the least.
	count := func() int {
		b, _ := os.ReadFile(outPath)
		return strings.Count(string(b), "\n")
	}
	require.Eventually(t, func() bool { return count() >= 100 }, 30*time.Second, 200*time.Millisecond,
		"%d sessions printed:\n%s", count(), errb.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20 s after SIGTERM")
	}
	f, err := os.Open(outPath)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	seen := map[int]bool{}
	right := 0
	for sc.Scan() {
		var r struct {
			OrigP int `json:"id.orig_p"`
			ESA   *struct {
				ICID      string   `json:"icid"`
				MIDs      []string `json:"mids"`
				Ambiguous []string `json:"ambiguous"`
			} `json:"esa"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		w, ok := want[r.OrigP]
		require.True(t, ok, "port %d is no session of the capture", r.OrigP)
		require.False(t, seen[r.OrigP], "port %d printed twice", r.OrigP)
		seen[r.OrigP] = true
		require.NotNil(t, r.ESA, "port %d: no ESA part", r.OrigP)
		if onTruth(t, r.OrigP, w, r.ESA.ICID, r.ESA.MIDs, r.ESA.Ambiguous, "live") {
			right++
		}
	}
	require.NoError(t, sc.Err())
	require.Len(t, seen, 100)
	t.Logf("%d/100 sessions on their true ICID and MIDs, matched as they ended; %s", right, lastLines(errb.String(), 2))
	assert.Contains(t, errb.String(), "(1 rotations)")
}

func firstPacketTime(t *testing.T, pcap string) time.Time {
	out, err := exec.Command("tshark", "-r", pcap, "-c", "1", "-T", "fields", "-e", "frame.time_epoch").Output()
	require.NoError(t, err)
	var sec float64
	_, err = fmt.Sscanf(strings.TrimSpace(string(out)), "%f", &sec)
	require.NoError(t, err)
	whole := math.Floor(sec)
	return time.Unix(int64(whole), int64(math.Round((sec-whole)*1e9))).UTC()
}

var reStampLine = regexp.MustCompile(`^(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) (.*)$`)

// writeLogAsItHappens writes src's lines to dst, each moved by shift, at
// the wall-clock time its (UTC) stamp says, appending as the appliance
// does; half-way it rotates dst (renamed, a new file with the header),
// 1.2 s late.
func writeLogAsItHappens(src, dst string, shift time.Duration, offset int) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	header := ""
	deadline := time.Now().Add(time.Minute)
	for i, l := range lines {
		m := reStampLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ts, err := time.Parse("Mon Jan _2 15:04:05 2006", m[1])
		if err != nil {
			return err
		}
		ts = ts.Add(shift)
		if strings.Contains(l, "Time offset from UTC") {
			header = m[2]
		}
		// The appliance writes the line within its second.
		at := ts.Add(-time.Duration(offset) * time.Second)
		for time.Now().Before(at) && time.Now().Before(deadline) {
			time.Sleep(min(time.Until(at), 20*time.Millisecond))
		}
		stamp := ts.Format("Mon Jan _2 15:04:05 2006")
		if i == len(lines)/2 {
			// Rotated a little later than its time says: a follower polls
			// twice a second, and a file made, filled and rolled between
			// two polls is one no tail -F sees.
			time.Sleep(1200 * time.Millisecond)
			f.Close()
			if err := os.Rename(dst, dst[:len(dst)-len("current")]+"@"+ts.Format("20060102T150405")+".s"); err != nil {
				return err
			}
			if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
				return err
			}
			if _, err := fmt.Fprintf(f, "%s Info: Begin Logfile\n%s %s\n", stamp, stamp, header); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(f, "%s %s\n", stamp, m[2]); err != nil {
			return err
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], " | ")
}
