// Command smtpcap tells why SMTP sessions in a packet capture ended.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

const usage = `usage: smtpcap <command> [flags]

commands:
  analyze   read captures and report every SMTP session and how it ended
            ('smtpcap -r FILE …' is short for 'smtpcap analyze -r FILE …')
  report    write a case report folder: report.md, report.html (ladders),
            sessions.pcapng, summary.json ('smtpcap report -r FILE -o DIR')
  live      capture on interfaces (-i IFACE …) and print each session as it ends
  version   print the version (also --version)

Run 'smtpcap <command> --help' for its flags.
`

var commands = []string{"analyze", "help", "live", "report", "version"}

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		signal.Stop(sigs) // a second signal ends the process at once
		cancel(signalError{s.(syscall.Signal)})
	}()
	restore := pollableStdin()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	restore()
	os.Exit(code)
}

// signalError is the cause of an interrupted run: the exit code is 128 +
// the signal's number (130 for SIGINT, 143 for SIGTERM), as shells expect.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return "interrupted by " + e.sig.String() }

// interruptCode is the exit code for an interrupted run (0 if it was not).
func interruptCode(ctx context.Context) int {
	var se signalError
	if errors.As(context.Cause(ctx), &se) {
		return 128 + int(se.sig)
	}
	if ctx.Err() != nil {
		return 128 + int(syscall.SIGINT)
	}
	return 0
}

// pollableStdin puts a pipe on standard input in non-blocking mode behind
// Go's poller, so that closing it (on a signal) ends a read that waits for
// a silent writer. It returns what restores the flag (the pipe's file
// description may be shared). A terminal or a file is left as it is.
func pollableStdin() func() {
	st, err := os.Stdin.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return func() {}
	}
	if err := syscall.SetNonblock(0, true); err != nil {
		return func() {}
	}
	f := os.NewFile(0, "/dev/stdin")
	stdin = f
	return func() { _ = syscall.SetNonblock(0, false) }
}

// stdin is where "-r -" reads from; tests replace it.
var stdin io.Reader = os.Stdin

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// run is main without the process: tests call it with buffers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "analyze":
		return runAnalyze(ctx, args[1:], stdout, stderr)
	case "report":
		return runReport(ctx, args[1:], stdout, stderr)
	case "live":
		return runLive(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "--version", "-V":
		fmt.Fprintln(stdout, version())
		return exitOK
	}
	if strings.HasPrefix(args[0], "-") {
		return runAnalyze(ctx, args, stdout, stderr) // smtpcap -r x.pcap
	}
	fmt.Fprintf(stderr, "smtpcap: unknown command %q%s\n%s", args[0], didYouMean(args[0], commands), usage)
	return exitUsage
}

// version names the module version and the VCS revision it was built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "smtpcap (no build information)"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, when, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+modified"
			}
		}
	}
	out := "smtpcap " + v
	if rev != "" {
		out += " (" + rev[:min(12, len(rev))] + dirty
		if when != "" {
			out += ", " + when
		}
		out += ")"
	}
	return out + " " + bi.GoVersion
}

// didYouMean suggests the nearest of names when it is close enough.
func didYouMean(word string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(word), n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is Levenshtein's distance between two short words.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// parseFlags parses with pflag's conventions: -h exits 0, errors exit 2.
func parseFlags(fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) (int, bool) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK, false
		}
		hint := ""
		if m := unknownFlag.FindStringSubmatch(err.Error()); m != nil {
			var names []string
			fs.VisitAll(func(f *pflag.Flag) {
				if !f.Hidden {
					names = append(names, f.Name)
				}
			})
			hint = didYouMean(strings.TrimLeft(m[1], "-"), names)
			if hint != "" {
				hint = strings.Replace(hint, `"`, `"--`, 1)
			}
		}
		fmt.Fprintf(stderr, "smtpcap: %v%s\n", err, hint)
		return exitUsage, false
	}
	return 0, true
}

var unknownFlag = regexp.MustCompile(`unknown (?:shorthand )?flag: '?(-{0,2}[^' ]+)`)

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func joinFilter(args []string) string { return strings.TrimSpace(strings.Join(args, " ")) }
