package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ErrFormat is wrapped by errors about files that are not captures.
var ErrFormat = errors.New("not a capture file")

// ErrCorrupt is wrapped by errors about damaged records.
var ErrCorrupt = errors.New("damaged capture record")

// Format describes what a file turned out to be.
type Format struct {
	Container   string // "pcap", "pcap-ns", "pcapng"
	Compression string // "", "gzip", "zstd"
}

func (f Format) String() string {
	if f.Compression == "" {
		return f.Container
	}
	return f.Container + "+" + f.Compression
}

// file is one open capture.
type file struct {
	name    string
	idx     int // position in the Source's file list
	closers []io.Closer
	raw     *countReader // bytes read from the file itself (compressed)
	pos     *countReader // bytes handed to the pcap reader (uncompressed)
	pcap    *pcapgo.Reader
	ng      *pcapgo.NgReader
	format  Format
	packets uint64 // records read from this file

	// the current frame, valid until the next read
	data  []byte
	ci    gopacket.CaptureInfo
	lt    layers.LinkType
	ready bool
	done  bool
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

const bufSize = 1 << 20

// openFile opens name ("-" is standard input) and sniffs its format.
func openFile(name string, stdin io.Reader) (*file, error) {
	f := &file{name: name}
	var src io.Reader
	if name == "-" {
		f.name = "<stdin>"
		src = stdin
	} else {
		fh, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
		f.closers = append(f.closers, fh)
		src = fh
	}
	f.raw = &countReader{r: src}
	br := bufio.NewReaderSize(f.raw, bufSize)
	magic, _ := br.Peek(6)
	var dec io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("capture: %s: gzip: %v: %w", f.name, err, ErrFormat)
		}
		f.closers = append(f.closers, zr)
		dec, f.format.Compression = zr, "gzip"
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			f.close()
			return nil, fmt.Errorf("capture: %s: zstd: %v: %w", f.name, err, ErrFormat)
		}
		f.closers = append(f.closers, zstdCloser{zr})
		dec, f.format.Compression = zr, "zstd"
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		f.close()
		return nil, fmt.Errorf("capture: %s: xz-compressed: %w (decompress it first, or use gzip/zstd)", f.name, ErrFormat)
	case bytes.HasPrefix(magic, []byte("BZh")):
		f.close()
		return nil, fmt.Errorf("capture: %s: bzip2-compressed: %w (decompress it first, or use gzip/zstd)", f.name, ErrFormat)
	}
	if f.format.Compression != "" {
		dec = bufio.NewReaderSize(dec, bufSize)
	}
	bdec := dec.(*bufio.Reader)
	m, err := bdec.Peek(4)
	if err != nil {
		f.close()
		if len(m) == 0 {
			return nil, fmt.Errorf("capture: %s: empty file: %w", f.name, ErrFormat)
		}
		return nil, fmt.Errorf("capture: %s: %d bytes, too short for a capture header: %w", f.name, len(m), ErrFormat)
	}
	f.pos = &countReader{r: bdec}
	switch {
	case bytes.Equal(m, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		f.format.Container = "pcapng"
		f.ng, err = pcapgo.NewNgReader(f.pos, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	case isPcapMagic(m):
		f.format.Container = "pcap"
		if m[0] == 0x4d || m[3] == 0x4d {
			f.format.Container = "pcap-ns"
		}
		f.pcap, err = pcapgo.NewReader(f.pos)
	default:
		f.close()
		return nil, fmt.Errorf("capture: %s: unknown magic % x: %w", f.name, m, ErrFormat)
	}
	if err != nil {
		f.close()
		return nil, fmt.Errorf("capture: %s: reading %s header: %v: %w", f.name, f.format, err, ErrFormat)
	}
	if f.pcap != nil {
		if _, err := checkLinkType(f.pcap.LinkType()); err != nil {
			f.close()
			return nil, fmt.Errorf("capture: %s: %w", f.name, err)
		}
	}
	return f, nil
}

func isPcapMagic(m []byte) bool {
	for _, x := range [][]byte{{0xa1, 0xb2, 0xc3, 0xd4}, {0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}, {0x4d, 0x3c, 0xb2, 0xa1}} {
		if bytes.Equal(m, x) {
			return true
		}
	}
	return false
}

type zstdCloser struct{ d *zstd.Decoder }

func (z zstdCloser) Close() error { z.d.Close(); return nil }

func (f *file) close() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		f.closers[i].Close()
	}
	f.closers = nil
}

// read advances to the next record. It returns io.EOF at a clean end,
// a *TruncatedError for a cut last record, other errors for damage.
func (f *file) read() error {
	var err error
	off := f.pos.n
	if f.pcap != nil {
		f.data, f.ci, err = f.pcap.ZeroCopyReadPacketData()
		f.lt = f.pcap.LinkType()
	} else {
		f.data, f.ci, err = f.ng.ZeroCopyReadPacketData()
		if err == nil {
			f.lt = f.ng.LinkType()
			if len(f.ci.AncillaryData) > 0 {
				if lt, ok := f.ci.AncillaryData[0].(layers.LinkType); ok {
					f.lt = lt
				}
			}
		}
	}
	switch {
	case err == nil:
		f.packets++
		f.ready = true
		return nil
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &TruncatedError{File: f.name, Offset: off, After: f.packets}
	}
	return fmt.Errorf("capture: %s: record %d at byte offset %d: %v: %w", f.name, f.packets+1, off, err, ErrCorrupt)
}

// TruncatedError reports a last record cut short; packets before it are good.
type TruncatedError struct {
	File   string
	Offset int64
	After  uint64
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("capture: %s: last record truncated at byte offset %d after %d packets (capture killed?); results kept", e.File, e.Offset, e.After)
}
