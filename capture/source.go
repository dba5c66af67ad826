package capture

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Frame is one captured frame. Data is valid until the next call to Next.
type Frame struct {
	Number   uint64 // 1-based, over the merged input
	Data     []byte
	CI       gopacket.CaptureInfo
	LinkType layers.LinkType
	File     int // index of the file it came from
}

// Options configure a Source.
type Options struct {
	// Filter is a BPF expression in tcpdump syntax; frames that do not match
	// are skipped (they still count in frame numbers, as in tshark).
	Filter string
	// Stdin replaces os.Stdin for "-" (tests).
	Stdin io.Reader
}

// Source reads one or several files as a single input in time order.
type Source struct {
	files    []*file
	last     *file // file whose frame was handed out last, to advance
	frame    Frame
	n        uint64
	filter   *filter
	warnings []string
	badLT    map[layers.LinkType]bool
	err      error // first hard error; reading stops at it
}

// Open opens every file. Nothing is read beyond the headers.
func Open(names []string, opt Options) (*Source, error) {
	if len(names) == 0 {
		return nil, errors.New("capture: no input file")
	}
	s := &Source{}
	stdin := opt.Stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	for _, n := range names {
		f, err := openFile(n, stdin)
		if err != nil {
			s.Close()
			return nil, err
		}
		f.idx = len(s.files)
		s.files = append(s.files, f)
	}
	if opt.Filter != "" {
		flt, err := newFilter(opt.Filter)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.filter = flt
	}
	return s, nil
}

// Formats lists the format of every file, in order.
func (s *Source) Formats() []Format {
	out := make([]Format, len(s.files))
	for i, f := range s.files {
		out[i] = f.format
	}
	return out
}

// Warnings returns what went wrong without stopping the read (truncation).
func (s *Source) Warnings() []string { return s.warnings }

// Err returns the hard error that ended reading early, if any; the frames
// before it were delivered.
func (s *Source) Err() error { return s.err }

// BytesRead is the number of raw (compressed) bytes consumed from all files,
// for progress reports.
func (s *Source) BytesRead() int64 {
	var n int64
	for _, f := range s.files {
		n += f.raw.n
	}
	return n
}

// Next returns the next frame in time order, or false at the end (check Err).
func (s *Source) Next() (*Frame, bool) {
	for {
		f := s.pick()
		if f == nil {
			return nil, false
		}
		s.n++
		if !SupportedLinkType(f.lt) {
			// pcapng can mix interfaces: report each unknown link type once
			// by name and skip its frames rather than stop.
			if s.badLT == nil {
				s.badLT = map[layers.LinkType]bool{}
			}
			if !s.badLT[f.lt] {
				s.badLT[f.lt] = true
				s.warnings = append(s.warnings, fmt.Sprintf("capture: %s: frames of unsupported link type %d (%s) skipped", f.name, int(f.lt), f.lt))
			}
			continue
		}
		if s.filter != nil {
			ok, err := s.filter.match(f.lt, f.ci, f.data)
			if err != nil {
				s.err = err
				return nil, false
			}
			if !ok {
				continue
			}
		}
		s.frame = Frame{Number: s.n, Data: f.data, CI: f.ci, LinkType: f.lt, File: f.idx}
		return &s.frame, true
	}
}

// pick advances the file that was used last and returns the file holding
// the earliest frame.
func (s *Source) pick() *file {
	if s.err != nil {
		return nil
	}
	if s.last != nil {
		s.last.ready = false
	}
	var best *file
	for _, f := range s.files {
		if f.done {
			continue
		}
		if !f.ready {
			if err := f.read(); err != nil {
				f.done = true
				var te *TruncatedError
				switch {
				case errors.Is(err, io.EOF):
				case errors.As(err, &te):
					s.warnings = append(s.warnings, te.Error())
				default:
					s.err = err
					return nil
				}
				continue
			}
		}
		if best == nil || f.ci.Timestamp.Before(best.ci.Timestamp) {
			best = f
		}
	}
	s.last = best
	return best
}

// Close closes every file.
func (s *Source) Close() error {
	for _, f := range s.files {
		f.close()
	}
	return nil
}

// checkLinkType accepts the link types the decoder handles.
func checkLinkType(lt layers.LinkType) (layers.LinkType, error) {
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
		layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, layers.LinkTypeNull, layers.LinkTypeLoop, 12:
		return lt, nil
	}
	return lt, fmt.Errorf("unsupported link type %d (%s): %w", int(lt), lt, ErrFormat)
}

// SupportedLinkType reports whether frames of lt can be decoded.
func SupportedLinkType(lt layers.LinkType) bool {
	_, err := checkLinkType(lt)
	return err == nil
}
