package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/smtpcap/smtpcap/capture"
	"github.com/smtpcap/smtpcap/reassembly"
	"github.com/smtpcap/smtpcap/smtpstate"
)

// captureInput is what analyze reads when it reads captures.
type captureInput struct {
	files     []string
	filter    string
	maxRecord int
	maxOpen   int
	quiet     bool
}

// read runs the captures through the pipeline. It returns the input's hard
// error (the sessions before it are reported) and, when the run must stop
// at once, an exit code.
func (in captureInput) read(ctx context.Context, opt reassembly.Options, prepare func(*smtpstate.Record) any, emit func(any), stderr io.Writer) (error, int) {
	// A signal stops the reading at once: the flag is checked every frame,
	// and standard input (which may wait for a silent writer) is closed.
	var interrupted atomic.Bool
	stopWatch := context.AfterFunc(ctx, func() {
		interrupted.Store(true)
		if c, ok := stdin.(io.Closer); ok && usesStdin(in.files) {
			_ = c.Close()
		}
	})
	defer stopWatch()
	src, err := capture.Open(in.files, capture.Options{Filter: in.filter, Stdin: stdin, MaxRecord: in.maxRecord, MaxOpenFiles: in.maxOpen})
	if err != nil && interrupted.Load() {
		fmt.Fprintf(stderr, "smtpcap: %v before any frame was read\n", context.Cause(ctx))
		return nil, interruptCode(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smtpcap: %v\n", err)
		if errors.Is(err, capture.ErrUsage) {
			return nil, exitUsage
		}
		return nil, exitError
	}
	defer src.Close()
	an := reassembly.NewPipeline(opt, prepare, emit)
	prog := newProgress(stderr, !in.quiet && isTerminal(stderr), src)
	for i := 0; !interrupted.Load(); i++ {
		f, ok := src.Next()
		if !ok {
			break
		}
		an.Frame(f.Number, f.LinkType, f.CI, f.Data)
		if i&0xffff == 0 {
			prog.update()
		}
	}
	if interrupted.Load() {
		fmt.Fprintf(stderr, "smtpcap: %v; the sessions still open end as the capture ends\n", context.Cause(ctx))
	}
	an.Close()
	prog.done()
	for _, w := range src.Warnings() {
		fmt.Fprintf(stderr, "smtpcap: warning: %s\n", w)
	}
	capWarnings(stderr, an.Stats())
	if cs := src.Stats(); cs.RecordsCut > 0 {
		fmt.Fprintf(stderr, "smtpcap: warning: %d capture records cut at --max-record %d bytes\n", cs.RecordsCut, in.maxRecord)
	}
	if interrupted.Load() {
		return nil, 0 // the read was cut short on purpose
	}
	return src.Err(), 0
}

func usesStdin(files []string) bool {
	for _, f := range files {
		if f == "-" {
			return true
		}
	}
	return false
}
