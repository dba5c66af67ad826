package esalog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLineLen is the longest log line read; longer ones are counted,
// sampled and skipped. Real lines are a few hundred bytes; a header value
// logged whole (FORMAT.md §1.1) stays far below this.
const MaxLineLen = 64 << 10

// ErrNotText says a file given as a mail log is not a text log.
var ErrNotText = errors.New("not a text mail log")

// lineReader returns lines without their terminator (LF or CRLF), each at
// most MaxLineLen bytes, in a buffer reused by the next call.
type lineReader struct {
	br    *bufio.Reader
	buf   []byte
	first bool
}

func newLineReader(r io.Reader) *lineReader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 4096 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &lineReader{br: br, first: true}
}

// next returns the next line; n is its full length, which exceeds
// MaxLineLen when the line was too long (line is then its first bytes). At the end
// it returns io.EOF; a read error ends the input with that error.
func (lr *lineReader) next() (line []byte, n int, err error) {
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.br.ReadSlice('\n')
		n += len(chunk)
		if n <= MaxLineLen+2 {
			lr.buf = append(lr.buf, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && (n == 0 || !errors.Is(err, io.EOF)) {
			return nil, 0, err // io.EOF with nothing read, or a read error
		}
		b := bytes.TrimSuffix(bytes.TrimSuffix(lr.buf, []byte("\n")), []byte("\r"))
		if lr.first {
			lr.first = false
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a UTF-8 byte-order mark
		}
		size := len(b)
		if n > MaxLineLen+2 {
			return lr.buf[:min(len(lr.buf), 120)], n, nil // a sample of the start
		}
		return b, size, nil
	}
}

// sniff refuses input that is not a text log: capture files (the usual
// mix-up: -r and --esa-log swapped), compressed data other than gzip, and
// binary data. It looks at the first bytes only.
func sniff(br *bufio.Reader) error {
	head, _ := br.Peek(4096)
	if len(head) == 0 {
		return nil
	}
	magics := []struct {
		m    []byte
		what string
	}{
		{[]byte{0xd4, 0xc3, 0xb2, 0xa1}, "a pcap capture file"},
		{[]byte{0xa1, 0xb2, 0xc3, 0xd4}, "a pcap capture file"},
		{[]byte{0x4d, 0x3c, 0xb2, 0xa1}, "a pcap capture file (ns)"},
		{[]byte{0xa1, 0xb2, 0x3c, 0x4d}, "a pcap capture file (ns)"},
		{[]byte{0x0a, 0x0d, 0x0d, 0x0a}, "a pcapng capture file"},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd-compressed data (decompress it first)"},
		{[]byte("BZh"), "bzip2-compressed data (decompress it first)"},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "xz-compressed data (decompress it first)"},
		{[]byte("PK\x03\x04"), "a zip archive (unpack it first)"},
	}
	for _, m := range magics {
		if bytes.HasPrefix(head, m.m) {
			return fmt.Errorf("%w: it is %s", ErrNotText, m.what)
		}
	}
	bad := 0
	for _, c := range head {
		if c == 0 || c < 0x08 || c > 0x0d && c < 0x20 && c != 0x1b {
			bad++
		}
	}
	if bad > len(head)/100 {
		return fmt.Errorf("%w: %d of its first %d bytes are binary", ErrNotText, bad, len(head))
	}
	return nil
}
