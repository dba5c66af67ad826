package report

import (
	"html/template"
	"io"
	"strings"
)

// HTML writes report.html: one self-contained file (inline CSS, inline SVG,
// nothing fetched), the same content as report.md and a ladder per
// session. The markup is a fixed html/template: every value from the
// capture or the log is inserted as text or as an attribute value and
// escaped for its context; nothing is marked safe. The Content-Security-
// Policy forbids scripts, external styles, fonts and images besides data:.
func (c *Case) HTML(w io.Writer) error {
	type sess struct {
		caseSession
		N      int
		Ladder ladder
	}
	data := struct {
		*Case
		Start, End, Zone, Points string
		Rows                     []sess
	}{Case: c, Points: c.capturePoints()}
	a, z := c.timeRange()
	if !a.IsZero() {
		data.Start = a.In(c.loc()).Format("2006-01-02 15:04:05.000 Z07:00")
		data.End = z.In(c.loc()).Format("2006-01-02 15:04:05.000 Z07:00")
	}
	data.Zone = zoneName(c.loc(), a)
	for i, r := range c.Sessions {
		s := c.session(r)
		data.Rows = append(data.Rows, sess{caseSession: s, N: i + 1, Ladder: c.ladder(r, s.Events)})
	}
	return caseHTML.Execute(w, data)
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, Safe(l))
	}
	return out
}

var caseHTML = template.Must(template.New("report").Funcs(template.FuncMap{"lines": lines, "safe": Safe, "esa": esaColumn}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>smtpcap case report</title>
<style>
:root { --fg:#1b1f23; --bg:#ffffff; --muted:#57606a; --line:#d0d7de; --accent:#0550ae; --bad:#cf222e; --code:#f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --fg:#e6edf3; --bg:#0d1117; --muted:#8d96a0; --line:#30363d; --accent:#58a6ff; --bad:#ff7b72; --code:#161b22; }
}
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 2em auto; max-width: 980px; padding: 0 1em; }
h1, h2, h3 { line-height: 1.2; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .2em; margin-top: 2em; }
code, pre { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; background: var(--code); }
pre { padding: .6em .8em; overflow-x: auto; border: 1px solid var(--line); white-space: pre-wrap; word-break: break-word; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid var(--line); padding: .25em .5em; text-align: left; vertical-align: top; }
.verdict { font-weight: 600; }
.lost { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
svg.ladder { width: 100%; height: auto; border: 1px solid var(--line); background: var(--bg); }
svg.ladder text { fill: var(--fg); font: 12px ui-monospace, Menlo, Consolas, monospace; }
svg.ladder text.t, svg.ladder text.f { fill: var(--muted); font-size: 11px; }
svg.ladder text.h { font-weight: 700; }
svg.ladder line.life { stroke: var(--line); stroke-width: 2; stroke-dasharray: 4 3; }
svg.ladder line.a { stroke: var(--muted); stroke-width: 1.3; }
svg.ladder line.rst, svg.ladder line.fin { stroke: var(--fg); }
svg.ladder line.deciding { stroke: var(--bad); stroke-width: 2.6; }
svg.ladder text.deciding { fill: var(--bad); font-weight: 700; }
svg.ladder line.gap { stroke: var(--muted); stroke-dasharray: 2 6; }
svg.ladder path.head { fill: var(--muted); }
@media print {
  body { max-width: none; margin: 0; font-size: 11pt; color: #000; background: #fff; }
  section.session { break-inside: avoid-page; }
  pre, code { background: #fff; }
  svg.ladder { border: none; }
  svg.ladder line.deciding { stroke: #000; stroke-width: 3; }
  svg.ladder text, svg.ladder text.deciding { fill: #000; }
}
</style>
</head>
<body>
<h1>smtpcap case report</h1>
<h2>What was analysed</h2>
<ul>
<li>tool: <code>{{.Tool}}</code></li>
{{range .Files}}<li>capture <code>{{safe .Name}}</code>: {{.Size}} bytes, SHA-256 <code>{{.SHA256}}</code></li>
{{end}}{{if .Start}}<li>time range of the selected sessions: {{.Start}} to {{.End}}</li>{{end}}
<li>session times are in {{.Zone}}; ESA log lines are quoted as the appliance wrote them ({{if .ESAZone}}{{.ESAZone}}{{else}}no ESA log given{{end}})</li>
<li>capture point (from the TTLs): {{.Points}}</li>
<li>selection: {{.Selection}}: {{len .Sessions}} of {{.Total}} sessions</li>
{{if .Redact}}<li>redacted: address local parts are hashed, HELO names, greetings and reply texts dropped</li>{{end}}
{{if .PcapNote}}<li>sessions.pcapng: {{.PcapNote}}</li>{{end}}
</ul>
{{if .ESA}}<h3>ESA log matching</h3>
<pre>{{range lines .ESA}}{{.}}
{{end}}</pre>{{end}}
<h2>Summary</h2>
<pre>{{range lines .Summary}}{{.}}
{{end}}</pre>
{{if .Rows}}<table>
<tr><th>#</th><th>start</th><th>client → server</th><th>verdict</th><th>who / confidence</th><th>ESA</th></tr>
{{range .Rows}}<tr><td><a href="#s{{.N}}">{{.N}}</a></td><td>{{.Start}}</td><td><code>{{.Title}}</code></td><td class="verdict">{{.Verdict}}{{if .Lost}} <span class="lost">LOST</span>{{end}}</td><td>{{.Who}} / {{.Confidence}}</td><td>{{esa .Record}}</td></tr>
{{end}}</table>{{end}}
{{range .Rows}}
<section class="session" id="s{{.N}}">
<h2>{{.N}}. <code>{{.Title}}</code> at {{.Start}}</h2>
<p><span class="verdict">Verdict: {{.Verdict}}</span> ({{.Who}}, {{.Confidence}} confidence).{{if .Lost}} <span class="lost">A message was lost (sent, never acknowledged).</span>{{end}}</p>
<p>Why: {{.Reason}}</p>
<ul>{{range .Facts}}<li>{{.}}</li>{{end}}</ul>
{{if .Evidence}}<h3>Evidence</h3><p class="muted">frame, time after the first packet</p>
<pre>{{range .Evidence}}{{.}}
{{end}}</pre>{{end}}
{{if or .ESALines .ESANote}}<h3>ESA log</h3><p class="muted">appliance time{{if $.ESAZone}}, {{$.ESAZone}}{{end}}: {{.ESANote}}</p>
<pre>{{range .ESALines}}{{.}}
{{end}}</pre>{{end}}
{{if .RunnerUp}}<p>The next most likely reading: {{.RunnerUp}}</p>{{end}}
{{if .Confirm}}<p>What would confirm it: {{.Confirm}}</p>{{end}}
<p><strong>Next step:</strong> {{.Next}}</p>
{{if .Filter}}<p>Open it in Wireshark (display filter):</p><pre>{{.Filter}}</pre>{{end}}
<h3 id="l{{.N}}">Ladder</h3>
{{with .Ladder}}{{$h := .H}}<svg class="ladder" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.W}} {{.H}}" width="{{.W}}" height="{{.H}}" role="img" aria-label="ladder diagram">
<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path class="head" d="M0,0 L10,5 L0,10 z"/></marker></defs>
{{range .Cols}}<text class="h" x="{{.X}}" y="20" text-anchor="middle">{{.Name}}</text><text class="t" x="{{.X}}" y="36" text-anchor="middle">{{.Addr}}</text><line class="life" x1="{{.X}}" y1="44" x2="{{.X}}" y2="{{$h}}"/>
{{end}}{{range .Rows}}{{if .Gap}}<line class="gap" x1="20" y1="{{.Y}}" x2="840" y2="{{.Y}}"/><text class="t" x="430" y="{{.Y}}" dy="-4" text-anchor="middle">{{.Label}}</text>
{{else}}<g><title>{{.Full}}</title><text class="t" x="10" y="{{.Y}}">{{.Time}}</text><line class="a {{.Class}}" x1="{{.X1}}" y1="{{.Y}}" x2="{{.X2}}" y2="{{.Y}}" marker-end="url(#head)"/><text class="{{.Class}}" x="{{.TX}}" y="{{.Y}}" dy="-5" text-anchor="middle">{{.Label}}</text><text class="f" x="850" y="{{.Y}}" text-anchor="end">{{.Frame}}</text></g>
{{end}}{{end}}</svg>{{if .Clip}}<p class="muted">{{.Clip}} more packets not drawn.</p>{{end}}{{end}}
</section>
{{end}}
</body>
</html>
`))
