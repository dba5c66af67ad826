package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

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

// MaxZstdWindow is the largest zstd window accepted: a bigger one would
// make the decoder allocate it.
const MaxZstdWindow = 512 << 20

const (
	rawBufSize = 32 << 10 // compressed bytes
	decBufSize = 64 << 10 // bytes the record reader reads from
)

// file is one input. It is probed when the Source is opened (format and
// first timestamp), then closed and opened again when its frames are
// needed, so that only the files being merged hold buffers.
type file struct {
	arg    string // as given; "-" is standard input
	name   string // for messages
	idx    int
	format Format
	first  time.Time // timestamp of the first frame, from the probe
	empty  bool      // the probe found no frame
	maxRec int

	// open state
	fh      *os.File
	raw     countReader // bytes read from the file itself (compressed)
	rbuf    *bufio.Reader
	gz      *gzip.Reader
	zs      *zstd.Decoder
	in      *bufio.Reader // the (decompressed) stream the records are read from
	off     int64         // bytes consumed from in
	recOff  int64         // offset of the current record's header
	hdr     [24]byte
	buf     []byte // record buffer, at most maxRec (+ pcapng fixed fields) bytes
	pcap    pcapState
	ng      ngState
	packets uint64 // records read from this file
	blocks  uint64 // pcapng blocks read
	unknown uint64 // pcapng blocks of unknown type skipped
	cut     int    // records cut at maxRec by the last read (0 or 1)
	cutLen  uint32 // their captured length

	// the current frame, valid until the next read
	data []byte
	ci   gopacket.CaptureInfo
	lt   layers.LinkType
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

// codecReader tags the decompressor's errors (but not io.EOF).
type codecReader struct {
	r     io.Reader
	codec string
}

func (c *codecReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = &codecError{codec: c.codec, err: err}
	}
	return n, err
}

func (f *file) decompressed() bool { return f.format.Compression != "" }

// open opens the file and reads its header. The caller closes it.
func (f *file) open(stdin io.Reader, pool *pool) error {
	var src io.Reader
	if f.arg == "-" {
		src = stdin
	} else {
		st, err := os.Stat(f.arg)
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		if st.IsDir() {
			return fmt.Errorf("capture: %s: is a directory: %w", f.name, ErrFormat)
		}
		fh, err := os.Open(f.arg)
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		f.fh, src = fh, fh
	}
	f.raw = countReader{r: src}
	f.off, f.packets, f.blocks, f.unknown = 0, 0, 0, 0
	f.format, f.ng, f.ci = Format{}, ngState{}, gopacket.CaptureInfo{}
	f.rbuf = pool.reader(&f.raw, rawBufSize)
	f.buf = pool.buf()
	magic, err := f.rbuf.Peek(6)
	if len(magic) == 0 {
		if err == io.EOF {
			return fmt.Errorf("capture: %s: empty file: %w", f.name, ErrFormat)
		}
		return fmt.Errorf("capture: %s: %v: %w", f.name, err, ErrFormat)
	}
	var dec io.Reader
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		f.format.Compression = "gzip"
		if f.gz, err = pool.gzip(f.rbuf); err != nil {
			return fmt.Errorf("capture: %s: gzip: %v: %w", f.name, cutEOF(err), ErrFormat)
		}
		dec = &codecReader{r: f.gz, codec: "gzip"}
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		f.format.Compression = "zstd"
		if f.zs, err = pool.zstd(f.rbuf); err != nil {
			return fmt.Errorf("capture: %s: zstd: %v: %w", f.name, err, ErrFormat)
		}
		dec = &codecReader{r: f.zs, codec: "zstd"}
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return fmt.Errorf("capture: %s: xz-compressed: %w (decompress it first, or use gzip/zstd)", f.name, ErrFormat)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return fmt.Errorf("capture: %s: bzip2-compressed: %w (decompress it first, or use gzip/zstd)", f.name, ErrFormat)
	}
	f.in = f.rbuf
	if dec != nil {
		f.in = pool.reader(dec, decBufSize)
	}
	return f.openContainer()
}

// cutEOF names a cut compressed header.
func cutEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated (the file ends inside the gzip header)")
	}
	return err
}

// openContainer sniffs the (decompressed) stream and reads its header.
func (f *file) openContainer() error {
	m, err := f.in.Peek(4)
	if len(m) < 4 {
		var ce *codecError
		switch {
		case errors.As(err, &ce):
			if errors.Is(ce.err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("capture: %s: %s: truncated before the capture header: %w", f.name, ce.codec, ErrFormat)
			}
			return fmt.Errorf("capture: %s: %v: %w", f.name, ce, ErrFormat)
		case err != nil && err != io.EOF:
			return fmt.Errorf("capture: %s: %v: %w", f.name, err, ErrFormat)
		case len(m) == 0 && f.decompressed():
			return fmt.Errorf("capture: %s: empty file (nothing inside the %s stream): %w", f.name, f.format.Compression, ErrFormat)
		case len(m) == 0:
			return fmt.Errorf("capture: %s: empty file: %w", f.name, ErrFormat)
		}
		return fmt.Errorf("capture: %s: %d bytes, too short for a capture header: %w", f.name, len(m), ErrFormat)
	}
	switch {
	case bytes.Equal(m, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		f.format.Container = "pcapng"
		return f.openNg()
	case isPcapMagic(m):
		f.format.Container = "pcap"
		if m[0] == 0x4d || m[3] == 0x4d {
			f.format.Container = "pcap-ns"
		}
		return f.openPcap()
	}
	return fmt.Errorf("capture: %s: unknown magic % x: %w", f.name, m, ErrFormat)
}

func isPcapMagic(m []byte) bool {
	for _, x := range [][]byte{{0xa1, 0xb2, 0xc3, 0xd4}, {0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}, {0x4d, 0x3c, 0xb2, 0xa1}} {
		if bytes.Equal(m, x) {
			return true
		}
	}
	return false
}

// headerErr turns a failure to read a file header into an ErrFormat error.
func (f *file) headerErr(what string, err error) error {
	var ce *codecError
	if errors.As(err, &ce) {
		return fmt.Errorf("capture: %s: %v (in the %s): %w", f.name, ce, what, ErrFormat)
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("capture: %s: file ends inside the %s: %w", f.name, what, ErrFormat)
	}
	return fmt.Errorf("capture: %s: reading the %s: %v: %w", f.name, what, err, ErrFormat)
}

// close releases the file and gives its buffers back to the pool.
func (f *file) close(pool *pool) {
	if f.zs != nil {
		pool.putZstd(f.zs)
		f.zs = nil
	}
	if f.gz != nil {
		pool.putGzip(f.gz)
		f.gz = nil
	}
	if f.in != nil && f.in != f.rbuf {
		pool.putReader(f.in, decBufSize)
	}
	if f.rbuf != nil {
		pool.putReader(f.rbuf, rawBufSize)
	}
	f.in, f.rbuf = nil, nil
	pool.putBuf(f.buf)
	f.buf, f.data = nil, nil
	if f.fh != nil {
		f.fh.Close()
		f.fh = nil
	}
}

// readFull reads len(p) bytes of the stream, counting them.
func (f *file) readFull(p []byte) (int, error) {
	n, err := io.ReadFull(f.in, p)
	f.off += int64(n)
	return n, err
}

// skip discards n bytes of the stream without buffering them.
func (f *file) skip(n int64) error {
	for n > 0 {
		k := n
		if k > 1<<30 {
			k = 1 << 30
		}
		d, err := f.in.Discard(int(k))
		f.off += int64(d)
		n -= int64(d)
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// grow returns f.buf with length n (n is at most maxRec plus a few fixed
// fields, so never an untrusted size).
func (f *file) grow(n int) []byte {
	if cap(f.buf) < n {
		c := 2 * cap(f.buf)
		if c < 4096 {
			c = 4096
		}
		if c > f.maxRec+64 {
			c = f.maxRec + 64
		}
		if c < n {
			c = n
		}
		f.buf = make([]byte, c)
	}
	return f.buf[:n]
}

// readErr classifies a failed read of the record starting at start: the
// end of the file inside it is a truncation, a decompressor error is
// damage (or a truncation of the compressed stream), anything else is an
// I/O error.
func (f *file) readErr(start int64, err error) error {
	var ce *codecError
	if errors.As(err, &ce) {
		if errors.Is(ce.err, io.ErrUnexpectedEOF) {
			return &TruncatedError{File: f.name, Offset: start, After: f.packets, Decompressed: true, Codec: ce.codec}
		}
		return f.damage(start, ce.Error())
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &TruncatedError{File: f.name, Offset: start, After: f.packets, Decompressed: f.decompressed()}
	}
	return fmt.Errorf("capture: %s: reading record %d at %s: %w", f.name, f.packets+1, where(start, f.decompressed()), err)
}

func (f *file) damage(start int64, detail string) *DamageError {
	e := &DamageError{File: f.name, Record: f.packets + 1, Offset: start, Decompressed: f.decompressed(), Detail: detail}
	if f.format.Container == "pcapng" {
		e.Block = f.blocks
	}
	return e
}

// next reads the next record into f.data/f.ci/f.lt. It returns io.EOF at
// a clean end, a *TruncatedError for a cut last record, a *DamageError for
// damage. With probe set it stops as soon as the timestamp is known.
func (f *file) next(probe bool) error {
	f.cut = 0
	if f.format.Container == "pcapng" {
		return f.nextNg(probe)
	}
	return f.nextPcap(probe)
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
