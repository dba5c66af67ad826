package capture

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// fuzzRead reads one file, returning frames, warnings and error, and the
// bytes allocated meanwhile.
func fuzzRead(t *testing.T, p string) (frames []rec, warn []string, openErr, err error, alloc uint64) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	s, openErr := Open([]string{p}, Options{Stdin: bytes.NewReader(nil)})
	if openErr == nil {
		var last uint64
		for i := 0; i < 100000; i++ {
			fr, ok := s.Next()
			if !ok {
				break
			}
			if fr.Number <= last || fr.FileFrame == 0 || fr.FileFrame > fr.Number {
				t.Fatalf("frame numbers wrong: %d (in file %d) after %d", fr.Number, fr.FileFrame, last)
			}
			last = fr.Number
			frames = append(frames, rec{fr.CI.Timestamp, string(fr.Data), fr.LinkType, fr.CI.Length})
		}
		warn, err = s.Warnings(), s.Err()
		s.Close()
	}
	runtime.ReadMemStats(&m1)
	return frames, warn, openErr, err, m1.TotalAlloc - m0.TotalAlloc
}

// FuzzOpen: any bytes as a capture file either fail to open with an error
// wrapping ErrFormat, or read to the end without panic, with frame numbers
// strictly increasing and a hard error (if any) wrapping ErrCorrupt, within
// a memory bound. Honesty: a file that reads cleanly, cut anywhere, is
// never reported damaged and yields a prefix of its frames; a file damaged
// at offset O, cut at O, yields the same frames without error (so the
// offset is true and every frame before the damage was delivered).
func FuzzOpen(f *testing.F) {
	for _, p := range []string{"../testdata/lab/captures/quit_one/server.pcap", "../testdata/lab/captures/quit_one/any.pcap", "../testdata/lab/captures/all-server.pcapng"} {
		if b, err := os.ReadFile(p); err == nil {
			b = b[:min(len(b), 4000)]
			f.Add(b)
			f.Add(b[:200])
			f.Add(gz(f, b))
			f.Add(zst(f, b[:1000]))
		}
	}
	if b, err := os.ReadFile("../testdata/lab/captures/all-server.pcapng"); err == nil {
		bl := ngBlocks(b[:4000])
		f.Add(setLE(b[:4000], bl[5].off+4, 0x7ffffff0)) // a length past the end
		f.Add(setLE(b[:4000], bl[5].off+4, uint32(bl[5].len+4)))
	}
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a})
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	zstdWindow = 8 << 20
	defer func() { zstdWindow = MaxZstdWindow }()
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		defer func() {
			// A small input must not take long: that would be a DoS.
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%d bytes took %v", len(b), d)
			}
		}()
		dir := t.TempDir()
		p := filepath.Join(dir, "in")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		frames, warn, openErr, err, alloc := fuzzRead(t, p)
		if bound := uint64(24<<20) + 3*zstdWindow + 64*uint64(len(b)); alloc > bound {
			t.Fatalf("%d bytes of input allocated %d bytes (bound %d)", len(b), alloc, bound)
		}
		if openErr != nil {
			if !errors.Is(openErr, ErrFormat) {
				t.Fatalf("open error does not wrap ErrFormat: %v", openErr)
			}
			return
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read error does not wrap ErrCorrupt: %v", err)
		}
		compressed := len(b) > 2 && (b[0] == 0x1f || b[0] == 0x28)
		if compressed {
			return
		}
		var de *DamageError
		switch {
		case errors.As(err, &de):
			if de.Offset <= 0 || de.Offset > int64(len(b)) {
				t.Fatalf("damage at offset %d of a %d-byte file", de.Offset, len(b))
			}
			checkCut(t, p, b, int(de.Offset), frames, true)
		case err == nil && len(warn) == 0:
			for _, n := range []int{len(b) / 2, len(b) - 1, len(b) - 5, len(b) * 7 / 8, 40, 100} {
				if n > 0 && n < len(b) {
					checkCut(t, p, b, n, frames, false)
				}
			}
		}
	})
}

// checkCut reads b[:n] and checks it is not called damaged, and that its
// frames are a prefix of want (all of want if exact).
func checkCut(t *testing.T, p string, b []byte, n int, want []rec, exact bool) {
	if err := os.WriteFile(p, b[:n], 0o644); err != nil {
		t.Fatal(err)
	}
	got, _, openErr, err, _ := fuzzRead(t, p)
	if openErr != nil {
		if exact && len(want) > 0 {
			t.Fatalf("cut at the damage offset %d: %v", n, openErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("valid file cut at %d of %d reported damaged: %v", n, len(b), err)
	}
	if len(got) > len(want) || (exact && len(got) != len(want)) {
		t.Fatalf("cut at %d: %d frames, the whole file gave %d", n, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("cut at %d: frame %d differs", n, i+1)
		}
	}
}

// update is accepted so that go test ./... -update works; the golden
// files live in cmd/smtpcap.
var _ = flag.Bool("update", false, "rewrite golden files (cmd/smtpcap)")

// FuzzDedup: whatever the frame holds (tunnels inside tunnels, cut
// headers), Duplicate never panics, a frame is never a copy of itself the
// first time, and the same bytes again at once are a copy exactly when the
// first was remembered as an IP packet.
func FuzzDedup(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, 0x45, 0, 0, 40, 0, 7, 0, 0, 64, 47, 0, 0, 203, 0, 113, 1, 203, 0, 113, 2, 0x10, 0, 0x88, 0xbe, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDedup(time.Second)
		t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		if d.Duplicate(layers.LinkTypeEthernet, t0, b) {
			t.Fatal("a copy of nothing")
		}
		_, keyed := d.key(layers.LinkTypeEthernet, b)
		if got := d.Duplicate(layers.LinkTypeEthernet, t0, b); got != keyed {
			t.Fatalf("the same frame again: copy %v, but keyed %v", got, keyed)
		}
	})
}
