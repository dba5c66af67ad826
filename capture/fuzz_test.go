package capture

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzOpen: any bytes as a capture file either fail to open with an error
// wrapping ErrFormat, or read to the end without panic, with frame numbers
// strictly increasing and a hard error (if any) wrapping ErrCorrupt.
func FuzzOpen(f *testing.F) {
	for _, p := range []string{"../testdata/lab/captures/quit_one/server.pcap", "../testdata/lab/captures/quit_one/any.pcap"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
			if len(b) > 200 {
				f.Add(b[:200])
			}
		}
	}
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a})
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		defer func() {
			// A small input must not take long: that would be a DoS.
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("%d bytes took %v", len(b), d)
			}
		}()
		p := filepath.Join(t.TempDir(), "in")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open([]string{p}, Options{Stdin: bytes.NewReader(nil)})
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("open error does not wrap ErrFormat: %v", err)
			}
			return
		}
		defer s.Close()
		var last uint64
		for i := 0; i < 100000; i++ {
			fr, ok := s.Next()
			if !ok {
				break
			}
			if fr.Number <= last {
				t.Fatalf("frame numbers not increasing: %d after %d", fr.Number, last)
			}
			last = fr.Number
		}
		if err := s.Err(); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read error does not wrap ErrCorrupt: %v", err)
		}
	})
}

// update is accepted so that go test ./... -update works; the golden
// files live in cmd/smtpcap.
var _ = flag.Bool("update", false, "rewrite golden files (cmd/smtpcap)")
