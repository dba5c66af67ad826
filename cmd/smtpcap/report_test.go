package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

func runReportCmd(t *testing.T, args ...string) string {
	t.Helper()
	toolVersion = func() string { return "smtpcap (test build)" }
	t.Cleanup(func() { toolVersion = version })
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"report", "-q", "-o", dir}, args...), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	return dir
}

// TestGoldenCaseReport: report.md, report.html and summary.json over the
// lab's demo capture with its ESA log, for the resets (frames, TTLs and
// times reviewed against tshark), and sessions.pcapng as tshark reads it.
func TestGoldenCaseReport(t *testing.T) {
	lab := "../../testdata/lab/captures/"
	dir := runReportCmd(t, "-r", lab+"all-server.pcapng", "--esa-log", lab+"mail.current", "--verdict", "client_rst", "--verdict", "middlebox_rst")
	for _, n := range []string{"report.md", "report.html", "summary.json"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		golden(t, "case/"+n, b)
	}
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	require.Contains(t, string(html), `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`)
	require.NotRegexp(t, `(?i)<script|<link|src=["']?http|url\(http|@import`, string(html), "self-contained")
	needTool(t, "tshark")
	pc := filepath.Join(dir, "sessions.pcapng")
	out, err := exec.Command("tshark", "-r", pc, "-T", "fields", "-e", "frame.comment").Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	uids := regexp.MustCompile(`smtpcap session (C\w+)`)
	seen := map[string]bool{}
	for _, l := range lines {
		m := uids.FindStringSubmatch(l)
		require.NotNil(t, m, "every packet names its session: %q", l)
		seen[m[1]] = true
	}
	js, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
	require.Len(t, seen, strings.Count(string(js), "\n"), "packets of the selected sessions only")
	require.Contains(t, string(out), "smtpcap verdict middlebox_rst")
}

// chromium runs headless Chromium on a file:// URL with extra flags.
func chromium(t *testing.T, url string, extra ...string) []byte {
	t.Helper()
	bin := "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("chromium is not installed at /usr/bin/chromium (make deps-test installs Debian's chromium)")
	}
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}, extra...)
	cmd := exec.Command(bin, append(args, url)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	require.NoError(t, err, "chromium: %s", errb.String())
	return out
}

// TestReportInBrowser: Chromium opens report.html from file://; its DOM
// holds one SVG ladder per selected session; the screenshot is kept
// (testdata/report.png, rewritten with -update).
func TestReportInBrowser(t *testing.T) {
	lab, _ := filepath.Abs("../../testdata/lab/captures/")
	dir := runReportCmd(t, "-r", lab+"/fw_inject_both/span.pcap", "-r", lab+"/fw_idle_drop/span.pcap", "-r", lab+"/rst_mid_data/span.pcap")
	js, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
	n := strings.Count(string(js), "\n")
	require.Equal(t, 3, n, "three abnormal sessions")
	dom := string(chromium(t, "file://"+dir+"/report.html", "--dump-dom"))
	require.Equal(t, n, strings.Count(dom, `<svg class="ladder"`), "one ladder per session in the DOM")
	require.Contains(t, dom, `class="a rst deciding"`, "the deciding reset is highlighted")
	// The screenshot: the middlebox reset alone, header to ladder.
	one := runReportCmd(t, "-r", lab+"/fw_inject_both/span.pcap", "--verdict", "middlebox_rst")
	png := filepath.Join(t.TempDir(), "report.png")
	chromium(t, "file://"+one+"/report.html", "--screenshot="+png, "--window-size=900,1900", "--hide-scrollbars")
	b, err := os.ReadFile(png)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(b, []byte("\x89PNG")), "a PNG")
	require.Greater(t, len(b), 20000, "not a blank page")
	if *update {
		require.NoError(t, os.WriteFile("testdata/report.png", b, 0o644))
	}
}

var payloads = []string{`<script>document.title="pwned"</script>`, `</svg><img src=x onerror=alert(1)>`, `"><svg onload=alert(2)>`, `</style><b id=inj>x</b>`}

// hostileCapture: every text a report shows carries markup.
func hostileCapture(t *testing.T) string {
	g := newDialogue()
	g.seg(true, "S", "", 0, false)
	g.seg(false, "SA", "", 0, false)
	g.seg(true, "A", "", 0, false)
	g.seg(false, "PA", "220 mx"+payloads[0]+" ESMTP\r\n", 0, false)
	g.seg(true, "PA", "EHLO "+payloads[1]+"\r\n", 0, false)
	g.seg(false, "PA", "250 ok"+payloads[2]+"\r\n", 0, false)
	g.seg(true, "PA", "MAIL FROM:<a"+payloads[3]+"@b.example>\r\n", 0, false)
	g.seg(false, "PA", "250 ok"+payloads[3]+"\r\n", 0, false)
	g.seg(true, "PA", "RCPT TO:<"+payloads[2]+"@c.example>\r\n", 0, false)
	g.seg(false, "PA", "250 ok"+payloads[1]+"\r\n", 0, false)
	g.seg(true, "PA", "DATA\r\n", 0, false)
	g.seg(false, "PA", "354 go"+payloads[0]+"\r\n", 0, false)
	g.seg(true, "PA", "Subject: "+payloads[0]+payloads[1]+payloads[2]+payloads[3]+"\r\n\r\nhi\r\n.\r\n", 0, false)
	g.seg(false, "RA", "", 0, false) // reset before the final reply: an abnormal ending
	f := filepath.Join(t.TempDir(), "hostile.pcap")
	writePcap(t, f, layers.LinkTypeEthernet, g.ps, false)
	return f
}

// TestReportCannotAttackTheReader: markup in the greeting, HELO, MAIL
// FROM, RCPT TO, replies and Subject is text in the browser's DOM: no
// script, image, injected SVG or element exists and the title is intact.
func TestReportCannotAttackTheReader(t *testing.T) {
	f := hostileCapture(t)
	dir := runReportCmd(t, "--all", "-r", f)
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	require.Contains(t, string(md), "onerror=alert(1)", "the hostile text is reported (as text)")
	dom := string(chromium(t, "file://"+dir+"/report.html", "--dump-dom"))
	// The serialised DOM escapes every < of text as &lt;: each < left starts
	// an element that exists. Only the report's own elements and attributes
	// may be there.
	allowed := map[string]bool{"html": true, "head": true, "meta": true, "title": true, "style": true, "body": true, "h1": true, "h2": true, "h3": true,
		"ul": true, "li": true, "code": true, "pre": true, "table": true, "tbody": true, "tr": true, "th": true, "td": true, "a": true, "span": true,
		"section": true, "p": true, "strong": true, "svg": true, "defs": true, "marker": true, "path": true, "text": true, "line": true, "g": true}
	tags := regexp.MustCompile(`<([a-zA-Z][\w-]*)([^>]*)>`).FindAllStringSubmatch(dom, -1)
	require.NotEmpty(t, tags)
	for _, m := range tags {
		require.True(t, allowed[strings.ToLower(m[1])], "injected element <%s%s>", m[1], m[2])
		for _, a := range regexp.MustCompile(`\s([^\s=]+)=`).FindAllStringSubmatch(m[2], -1) {
			require.False(t, strings.HasPrefix(strings.ToLower(a[1]), "on"), "event handler %s on <%s>", a[1], m[1])
		}
		require.NotEqual(t, "inj", regexp.MustCompile(`\sid="([^"]*)"`).FindStringSubmatch(m[0] + " id=\"\"")[1], "injected id")
	}
	require.Contains(t, dom, "<title>smtpcap case report</title>")
	for _, p := range payloads {
		require.Contains(t, dom, strings.NewReplacer("<", "&lt;", ">", "&gt;", `"`, "\"").Replace(p)[:20], "the payload is shown as text")
	}
}

// TestReportHidesAUTH: a session with AUTH PLAIN (refused) then AUTH LOGIN
// (accepted): no file of the report holds the base64 blobs or the decoded
// secrets; with --redact-pcap, neither does sessions.pcapng.
func TestReportHidesAUTH(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	plain := b64([]byte("\x00carol\x00Plain-S3cret!"))
	user, pass := b64([]byte("dave-login")), b64([]byte("Login-S3cret!"))
	g := newDialogue()
	g.seg(true, "S", "", 0, false)
	g.seg(false, "SA", "", 0, false)
	g.seg(true, "A", "", 0, false)
	g.seg(false, "PA", "220 mx.example ESMTP\r\n", 0, false)
	g.seg(true, "PA", "EHLO c.example\r\n", 0, false)
	g.seg(false, "PA", "250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n", 0, false)
	g.seg(true, "PA", "AUTH PLAIN "+plain+"\r\n", 0, false)
	g.seg(false, "PA", "535 5.7.8 authentication failed\r\n", 0, false)
	g.seg(true, "PA", "AUTH LOGIN\r\n", 0, false)
	g.seg(false, "PA", "334 VXNlcm5hbWU6\r\n", 0, false)
	g.seg(true, "PA", user+"\r\n", 0, false)
	g.seg(false, "PA", "334 UGFzc3dvcmQ6\r\n", 0, false)
	g.seg(true, "PA", pass+"\r\n", 0, false)
	g.seg(false, "PA", "235 2.7.0 ok\r\n", 0, false)
	g.seg(true, "PA", "MAIL FROM:<dave@c.example>\r\n", 0, false)
	g.seg(false, "PA", "250 ok\r\n", 0, false)
	g.seg(true, "RA", "", 0, false)
	f := filepath.Join(t.TempDir(), "auth.pcap")
	writePcap(t, f, layers.LinkTypeEthernet, g.ps, false)
	secrets := []string{plain, user, pass, "Plain-S3cret!", "Login-S3cret!", "dave-login", "carol"}
	for _, redactPcap := range []bool{false, true} {
		args := []string{"--all", "-r", f}
		if redactPcap {
			args = append(args, "--redact-pcap")
		}
		dir := runReportCmd(t, args...)
		ents, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, ents, 4)
		md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
		require.Contains(t, string(md), "AUTH", "the report says AUTH happened")
		for _, e := range ents {
			if e.Name() == "sessions.pcapng" && !redactPcap {
				b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				require.Contains(t, string(b), pass, "the unredacted pcapng holds the packets whole")
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			require.NoError(t, err)
			for _, s := range secrets {
				require.NotContains(t, string(b), s, "%s holds %q", e.Name(), s)
			}
		}
	}
}

// TestReportRedact: with --redact no file but the capture copy holds the
// local parts, the HELO name or the greeting (the lab's session: swaks as
// alice@client.lab.example, HELO client.lab.example, greeting "220
// mx.lab.example ESMTP", as tshark shows).
func TestReportRedact(t *testing.T) {
	lab := "../../testdata/lab/captures/"
	dir := runReportCmd(t, "--redact", "-r", lab+"fw_inject_both/span.pcap", "--esa-log", lab+"fw_inject_both/mail_logs")
	for _, n := range []string{"report.md", "report.html", "summary.json"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		require.Contains(t, string(b), "@client.lab.example", "%s: the domain stays", n)
		for _, s := range []string{"alice@", "bob@", "EHLO client.lab.example", `"helo":"client`, "mx.lab.example ESMTP"} {
			require.NotContains(t, string(b), s, "%s", n)
		}
	}
}
