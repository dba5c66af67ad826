package capture

import (
	"errors"
	"fmt"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// ErrFormat is wrapped by errors about files that are not captures.
var ErrFormat = errors.New("not a capture file")

// ErrCorrupt is wrapped by errors about damaged records.
var ErrCorrupt = errors.New("damaged capture record")

// ErrUsage is wrapped by errors in how the input was asked for (standard
// input given twice, a negative limit); the command exits 2 for them.
var ErrUsage = errors.New("usage error")

// ErrLimit is wrapped by errors raised when a limit of Options is reached
// (more files overlap in time than MaxOpenFiles).
var ErrLimit = errors.New("limit reached")

// where says where a record starts: the offset of its header in the file,
// or in the decompressed stream of a gzip or zstd file.
func where(off int64, decompressed bool) string {
	if decompressed {
		return fmt.Sprintf("byte offset %d of the decompressed stream", off)
	}
	return fmt.Sprintf("byte offset %d", off)
}

// DamageError reports damage inside a file: the record at Offset cannot be
// read, although the file goes on (or the damage is proven otherwise).
// Frames before it were delivered. It wraps ErrCorrupt.
type DamageError struct {
	File         string
	Record       uint64 // 1-based number of the packet record that could not be read
	Block        uint64 // pcapng: 1-based block number; 0 for pcap
	Offset       int64  // of the record's (block's) header
	Decompressed bool   // Offset counts bytes of the decompressed stream
	Detail       string
}

func (e *DamageError) Error() string {
	if e.Block > 0 {
		return fmt.Sprintf("capture: %s: block %d (record %d) at %s: %s: %v", e.File, e.Block, e.Record, where(e.Offset, e.Decompressed), e.Detail, ErrCorrupt)
	}
	return fmt.Sprintf("capture: %s: record %d at %s: %s: %v", e.File, e.Record, where(e.Offset, e.Decompressed), e.Detail, ErrCorrupt)
}

func (e *DamageError) Unwrap() error { return ErrCorrupt }

// TruncatedError reports a file that ends inside its last record (a killed
// capture, a cut download) or a compressed stream that ends early; the
// packets before it are good. It is a warning, not an error.
type TruncatedError struct {
	File         string
	Offset       int64  // of the cut record's header
	After        uint64 // packets read before it
	Decompressed bool
	Codec        string // "gzip" or "zstd" when the compressed stream itself is cut
}

func (e *TruncatedError) Error() string {
	if e.Codec != "" {
		return fmt.Sprintf("capture: %s: %s: truncated: the compressed stream ends at %s (record %d), after %d packets; results kept", e.File, e.Codec, where(e.Offset, true), e.After+1, e.After)
	}
	return fmt.Sprintf("capture: %s: last record truncated at %s after %d packets (capture killed?); results kept", e.File, where(e.Offset, e.Decompressed), e.After)
}

// codecError is an error of the gzip or zstd decompressor, tagged so that
// the record reader can tell it from the end of the file.
type codecError struct {
	codec string
	err   error
}

// Error says "gzip: ..." or "zstd: ..." once, and explains a refused zstd
// window.
func (e *codecError) Error() string {
	msg := e.err.Error()
	if errors.Is(e.err, zstd.ErrWindowSizeExceeded) || errors.Is(e.err, zstd.ErrDecoderSizeExceeded) {
		msg += fmt.Sprintf(" (the file asks for a window larger than the %d MiB accepted)", zstdWindow>>20)
	}
	if strings.HasPrefix(msg, e.codec+": ") {
		return msg
	}
	return e.codec + ": " + msg
}
func (e *codecError) Unwrap() error { return e.err }
