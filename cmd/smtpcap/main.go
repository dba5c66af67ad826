// Command smtpcap tells why SMTP sessions in a packet capture ended.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

const usage = `usage: smtpcap <command> [flags]

commands:
  analyze   read captures and report every SMTP session and how it ended

Run 'smtpcap <command> --help' for its flags.
`

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
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "smtpcap: unknown command %q\n%s", args[0], usage)
	return exitUsage
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
		fmt.Fprintf(stderr, "smtpcap: %v\n", err)
		return exitUsage, false
	}
	return 0, true
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func joinFilter(args []string) string { return strings.TrimSpace(strings.Join(args, " ")) }
