package esalog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// BenchmarkReader measures parse throughput (MB/s) on mail_logs lines of
// the lab's log repeated to 16 MB. Issue target: >= 200 MB/s on one core.
func BenchmarkReader(b *testing.B) {
	seed, err := os.ReadFile("../../testdata/lab/captures/mail.current")
	if err != nil {
		b.Skip("lab log not found")
	}
	var buf bytes.Buffer
	for buf.Len() < 16<<20 {
		buf.Write(seed)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := NewReader(bytes.NewReader(data), "bench", Options{Year: 2026})
		n := 0
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			n++
		}
		if n == 0 {
			b.Fatal("no lines")
		}
	}
}
