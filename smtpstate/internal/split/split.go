// Package split cuts a byte stream into the pieces the transcript tests
// replay: whole, byte by byte, and in two at every offset. A stream fed in
// any of these ways must give the same record.
package split

// Whole is the stream in one piece.
func Whole(b []byte) [][]byte { return [][]byte{b} }

// ByteByByte is the stream one byte at a time.
func ByteByByte(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// At cuts the stream in two at offset k (whole when k is outside it).
func At(k int) func([]byte) [][]byte {
	return func(b []byte) [][]byte {
		if k <= 0 || k >= len(b) {
			return [][]byte{b}
		}
		return [][]byte{b[:k], b[k:]}
	}
}
