package capture

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Frame is one captured frame. Data is valid until the next call to Next.
type Frame struct {
	Number    uint64 // 1-based, over the merged input
	Data      []byte
	CI        gopacket.CaptureInfo
	LinkType  layers.LinkType
	File      int    // index (in the order given) of the file it came from
	FileName  string // that file's name as given; "<stdin>" for "-"
	FileFrame uint64 // 1-based number of the frame within its file
}

// Defaults of the limits in Options.
const (
	DefaultMaxRecord    = 256 << 10
	DefaultMaxOpenFiles = 64
)

// Options configure a Source.
type Options struct {
	// Filter is a BPF expression in tcpdump syntax; frames that do not match
	// are skipped (they still count in frame numbers, as in tshark).
	Filter string
	// Stdin replaces os.Stdin for "-" (tests).
	Stdin io.Reader
	// MaxRecord is the most bytes kept of one record, whatever the file's
	// snaplen and the record's captured length say; longer records are cut
	// (the rest is skipped unread) and counted in Stats. 0 means
	// DefaultMaxRecord (256 KiB); negative is a usage error.
	MaxRecord int
	// MaxOpenFiles is the most input files open at once. Files are opened
	// when the merge reaches their first timestamp and closed at their end,
	// so rotated captures hold one or two; more than MaxOpenFiles files
	// overlapping in time is an error wrapping ErrLimit. 0 means
	// DefaultMaxOpenFiles (64); negative is a usage error.
	MaxOpenFiles int
}

// Stats counts what the limits did.
type Stats struct {
	RecordsCut    uint64 // records longer than MaxRecord, cut to it
	UnknownBlocks uint64 // pcapng blocks of an unknown type, skipped
	FilesOpened   uint64 // opens, the probe of each file at Open included
	MaxOpen       int    // most files open at once while reading
}

// Source reads one or several files as a single input in time order.
type Source struct {
	opt      Options
	stdin    io.Reader
	files    []*file // in the order given
	order    []*file // files with frames, by first timestamp
	pending  int     // order[pending:] are not opened yet
	h        fileHeap
	last     *file // file whose frame was handed out last, to advance
	frame    Frame
	n        uint64
	filter   *filter
	warnings []string
	badLT    map[layers.LinkType]bool
	err      error // first hard error; reading stops at it
	pool     pool
	open     int
	stats    Stats
	rawDone  int64 // raw bytes read from files now closed
	cutSaid  bool
}

// Open checks every file: each is opened, its header and first record
// header are read, and it is closed again (standard input stays open).
// Nothing else is read until Next.
func Open(names []string, opt Options) (*Source, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("capture: no input file: %w", ErrUsage)
	}
	if opt.MaxRecord < 0 || opt.MaxOpenFiles < 0 {
		return nil, fmt.Errorf("capture: negative limit (max record %d, max open files %d): %w", opt.MaxRecord, opt.MaxOpenFiles, ErrUsage)
	}
	if opt.MaxRecord == 0 {
		opt.MaxRecord = DefaultMaxRecord
	}
	if opt.MaxOpenFiles == 0 {
		opt.MaxOpenFiles = DefaultMaxOpenFiles
	}
	s := &Source{opt: opt, stdin: opt.Stdin}
	if s.stdin == nil {
		s.stdin = os.Stdin
	}
	stdin := 0
	for _, n := range names {
		if n == "-" {
			if stdin++; stdin > 1 {
				return nil, fmt.Errorf("capture: standard input (-) given more than once: %w", ErrUsage)
			}
		}
	}
	for i, n := range names {
		f := &file{arg: n, name: n, idx: i, maxRec: opt.MaxRecord}
		if n == "-" {
			f.name = "<stdin>"
		}
		s.files = append(s.files, f)
		if err := s.probe(f); err != nil {
			s.Close()
			return nil, err
		}
		if !f.empty {
			s.order = append(s.order, f)
		}
	}
	sort.SliceStable(s.order, func(i, j int) bool { return s.order[i].first.Before(s.order[j].first) })
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

// probe learns the format and first timestamp of a file. A first record
// that cannot be read sorts first, so that its error comes in order.
func (s *Source) probe(f *file) error {
	s.stats.FilesOpened++
	if err := f.open(s.stdin, &s.pool); err != nil {
		f.close(&s.pool)
		return err
	}
	if f.arg == "-" {
		s.open++ // cannot be read twice: stays open, read when merged
		return nil
	}
	switch err := f.next(true); {
	case err == nil:
		f.first = f.ci.Timestamp
	case err == io.EOF:
		f.empty = true
	}
	s.rawDone += f.raw.n
	f.close(&s.pool)
	return nil
}

// Formats lists the format of every file, in order.
func (s *Source) Formats() []Format {
	out := make([]Format, len(s.files))
	for i, f := range s.files {
		out[i] = f.format
	}
	return out
}

// Warnings returns what went wrong without stopping the read (truncation,
// records cut at MaxRecord, unknown blocks, unsupported link types).
func (s *Source) Warnings() []string { return s.warnings }

// Err returns the hard error that ended reading early, if any; the frames
// before it were delivered.
func (s *Source) Err() error { return s.err }

// Stats returns the counters of the limits so far.
func (s *Source) Stats() Stats { return s.stats }

// BytesRead is the number of raw (compressed) bytes consumed from all files,
// for progress reports.
func (s *Source) BytesRead() int64 {
	n := s.rawDone
	for _, f := range s.h {
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
		s.frame = Frame{Number: s.n, Data: f.data, CI: f.ci, LinkType: f.lt, File: f.idx, FileName: f.name, FileFrame: f.packets}
		return &s.frame, true
	}
}

// pick advances the file that was used last, opens the files whose first
// frame is due, and returns the file holding the earliest frame.
func (s *Source) pick() *file {
	if s.err != nil {
		return nil
	}
	if l := s.last; l != nil {
		s.last = nil
		if s.advance(l) {
			heap.Fix(&s.h, 0)
		} else {
			heap.Pop(&s.h)
		}
		if s.err != nil {
			return nil
		}
	}
	for s.pending < len(s.order) {
		f := s.order[s.pending]
		if len(s.h) > 0 && f.first.After(s.h[0].ci.Timestamp) {
			break
		}
		s.pending++
		if s.activate(f) {
			heap.Push(&s.h, f)
		}
		if s.err != nil {
			return nil
		}
	}
	if len(s.h) == 0 {
		return nil
	}
	s.last = s.h[0]
	return s.last
}

// activate opens a file whose first frame is due and reads that frame.
func (s *Source) activate(f *file) bool {
	if f.arg != "-" {
		if s.open >= s.opt.MaxOpenFiles {
			s.err = fmt.Errorf("capture: %s starts at %s, before the %d files open are finished: more than %d files overlap in time (raise the open-file limit): %w",
				f.name, f.first.Format(time.RFC3339Nano), s.open, s.opt.MaxOpenFiles, ErrLimit)
			return false
		}
		s.stats.FilesOpened++
		if err := f.open(s.stdin, &s.pool); err != nil {
			f.close(&s.pool)
			s.err = err
			return false
		}
		s.open++
		s.stats.MaxOpen = max(s.stats.MaxOpen, s.open)
	}
	return s.advance(f)
}

// advance reads the next frame of f; at its end (or error) f is closed.
func (s *Source) advance(f *file) bool {
	err := f.next(false)
	if err == nil {
		if f.cut > 0 {
			s.stats.RecordsCut++
			if !s.cutSaid {
				s.cutSaid = true
				s.warnings = append(s.warnings, fmt.Sprintf("capture: %s: record %d at %s: captured length %d cut to its first %d bytes (record-size limit); further cut records are only counted",
					f.name, f.packets, where(f.recOff, f.decompressed()), f.cutLen, f.maxRec))
			}
		}
		return true
	}
	var te *TruncatedError
	switch {
	case err == io.EOF:
	case errors.As(err, &te):
		s.warnings = append(s.warnings, te.Error())
	default:
		s.err = err
	}
	if f.unknown > 0 {
		s.stats.UnknownBlocks += f.unknown
		s.warnings = append(s.warnings, fmt.Sprintf("capture: %s: %d pcapng blocks of unknown type skipped", f.name, f.unknown))
	}
	s.rawDone += f.raw.n
	f.raw.n = 0
	f.close(&s.pool)
	s.open--
	return false
}

// Close closes every file.
func (s *Source) Close() error {
	for _, f := range s.files {
		if f.in != nil || f.fh != nil {
			f.close(&s.pool)
		}
	}
	s.pool.close()
	return nil
}

// fileHeap orders open files by the timestamp of their current frame,
// then by their position in the list given (as a stable merge would).
type fileHeap []*file

func (h fileHeap) Len() int { return len(h) }
func (h fileHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if !a.ci.Timestamp.Equal(b.ci.Timestamp) {
		return a.ci.Timestamp.Before(b.ci.Timestamp)
	}
	return a.idx < b.idx
}
func (h fileHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *fileHeap) Push(x any)   { *h = append(*h, x.(*file)) }
func (h *fileHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
