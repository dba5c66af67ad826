package capture

import (
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
)

// filter applies a BPF expression with libpcap's offline filter, compiling
// it once per link type met in the input.
type filter struct {
	expr string
	byLT map[layers.LinkType]*pcap.BPF
	one  layers.LinkType
	bpf  *pcap.BPF
}

func newFilter(expr string) (*filter, error) {
	// Compile once now so that a syntax error is reported before reading.
	if _, err := pcap.NewBPF(layers.LinkTypeEthernet, 262144, expr); err != nil {
		return nil, fmt.Errorf("capture: filter %q: %w", expr, err)
	}
	return &filter{expr: expr, byLT: map[layers.LinkType]*pcap.BPF{}}, nil
}

func (f *filter) match(lt layers.LinkType, ci gopacket.CaptureInfo, data []byte) (bool, error) {
	if f.bpf == nil || lt != f.one {
		b, ok := f.byLT[lt]
		if !ok {
			var err error
			b, err = pcap.NewBPF(lt, 262144, f.expr)
			if err != nil {
				return false, fmt.Errorf("capture: filter %q for link type %s: %w", f.expr, lt, err)
			}
			f.byLT[lt] = b
		}
		f.bpf, f.one = b, lt
	}
	return f.bpf.Matches(ci, data), nil
}
