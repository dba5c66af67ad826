package capture

import (
	"bufio"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// zstdWindow is MaxZstdWindow; the fuzz test lowers it to bound memory.
var zstdWindow uint64 = MaxZstdWindow

// pool keeps the buffers and decompressors of closed files for the next
// file to open, so that probing and reading a thousand files reuses a few
// of them instead of allocating a thousand.
type pool struct {
	readers map[int][]*bufio.Reader
	gzips   []*gzip.Reader
	zstds   []*zstd.Decoder
	bufs    [][]byte // record buffers
}

func (p *pool) buf() []byte {
	if len(p.bufs) == 0 {
		return nil
	}
	b := p.bufs[len(p.bufs)-1]
	p.bufs = p.bufs[:len(p.bufs)-1]
	return b
}

func (p *pool) putBuf(b []byte) {
	if cap(b) > 0 {
		p.bufs = append(p.bufs, b)
	}
}

func (p *pool) reader(r io.Reader, size int) *bufio.Reader {
	if l := p.readers[size]; len(l) > 0 {
		b := l[len(l)-1]
		p.readers[size] = l[:len(l)-1]
		b.Reset(r)
		return b
	}
	return bufio.NewReaderSize(r, size)
}

func (p *pool) putReader(b *bufio.Reader, size int) {
	if p.readers == nil {
		p.readers = map[int][]*bufio.Reader{}
	}
	b.Reset(nil)
	p.readers[size] = append(p.readers[size], b)
}

func (p *pool) gzip(r io.Reader) (*gzip.Reader, error) {
	if len(p.gzips) > 0 {
		z := p.gzips[len(p.gzips)-1]
		if err := z.Reset(r); err != nil {
			return nil, err
		}
		p.gzips = p.gzips[:len(p.gzips)-1]
		return z, nil
	}
	return gzip.NewReader(r)
}

func (p *pool) putGzip(z *gzip.Reader) { p.gzips = append(p.gzips, z) }

func (p *pool) zstd(r io.Reader) (*zstd.Decoder, error) {
	if len(p.zstds) > 0 {
		z := p.zstds[len(p.zstds)-1]
		if err := z.Reset(r); err != nil {
			return nil, err
		}
		p.zstds = p.zstds[:len(p.zstds)-1]
		return z, nil
	}
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(zstdWindow), zstd.WithDecoderMaxMemory(zstdWindow))
}

func (p *pool) putZstd(z *zstd.Decoder) {
	z.Reset(nil)
	p.zstds = append(p.zstds, z)
}

// close releases the decompressors' goroutines and memory.
func (p *pool) close() {
	for _, z := range p.zstds {
		z.Close()
	}
	p.zstds, p.gzips, p.readers, p.bufs = nil, nil, nil, nil
}
