package smtpstate

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxRecordLine bounds one JSON line (a record with every list at its cap
// and its ESA log lines stays far below it).
const maxRecordLine = 32 << 20

// ErrRecordLine is wrapped by RecordDecoder errors about one line.
var ErrRecordLine = errors.New("not a session record")

// RecordDecoder reads Records back from JSON lines as smtpcap writes them
// (one record per line; blank lines are skipped). A record decoded this way
// marshals to the same bytes, so saved output can be re-read months later
// and classified again with other timers.
type RecordDecoder struct {
	sc   *bufio.Scanner
	name string
	line int
}

// NewRecordDecoder reads from r; name is used in error messages.
func NewRecordDecoder(r io.Reader, name string) *RecordDecoder {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxRecordLine)
	return &RecordDecoder{sc: sc, name: name}
}

// Next returns the next record, or io.EOF after the last one. An error
// names the file and line; the records before it were returned.
func (d *RecordDecoder) Next() (*Record, error) {
	for d.sc.Scan() {
		d.line++
		b := d.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		r := new(Record)
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("smtpstate: %s:%d: %w: %v", d.name, d.line, ErrRecordLine, err)
		}
		if r.UID == "" {
			return nil, fmt.Errorf("smtpstate: %s:%d: %w: no uid", d.name, d.line, ErrRecordLine)
		}
		return r, nil
	}
	if err := d.sc.Err(); err != nil {
		return nil, fmt.Errorf("smtpstate: %s: after line %d: %w", d.name, d.line, err)
	}
	return nil, io.EOF
}
