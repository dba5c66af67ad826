package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// recordsFlag adds --records to analyze: saved JSON lines read in place of
// captures, so a case can be re-read without the capture (as Zeek logs are),
// with the customer's real timers (--server-timeout, --firewall-idle …).
func recordsFlag(fs *pflag.FlagSet) *[]string {
	return fs.StringArray("records", nil, "saved JSON lines (analyze --json) to re-read instead of -r captures; the endings are recomputed with the current flags (repeatable; - for stdin)")
}

// readRecords decodes every record of files in order and hands it to emit
// (which classifies it again). It stops at the first damaged line and says
// where; the records before it are kept.
func readRecords(files []string, emit func(*smtpstate.Record)) error {
	for _, name := range files {
		if err := readRecordFile(name, emit); err != nil {
			return err
		}
	}
	return nil
}

func readRecordFile(name string, emit func(*smtpstate.Record)) error {
	in := stdin
	if name == "-" {
		name = "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("records: %w", err)
		}
		defer f.Close()
		in = f
	}
	d := smtpstate.NewRecordDecoder(in, name)
	for {
		r, err := d.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		emit(r)
	}
}
