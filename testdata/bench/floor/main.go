// Command floor is the benchmark's floor: read a capture with smtpcap's
// reader, decode every frame with gopacket's DecodingLayerParser and run
// gopacket's own reassembly with streams that do nothing. No SMTP, no
// records. make bench prints smtpcap's speed against it.
//
// usage: go run ./testdata/bench/floor FILE
package main

import (
	"fmt"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/smtpcap/smtpcap/capture"
)

type factory struct{}

type nop struct{}

func (factory) New(_, _ gopacket.Flow, _ *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	return nop{}
}
func (nop) Accept(*layers.TCP, gopacket.CaptureInfo, reassembly.TCPFlowDirection, reassembly.Sequence, *bool, reassembly.AssemblerContext) bool {
	return true
}
func (nop) ReassembledSG(sg reassembly.ScatterGather, _ reassembly.AssemblerContext) { sg.Lengths() }
func (nop) ReassemblyComplete(reassembly.AssemblerContext) bool                      { return true }

type ctx struct{ ci gopacket.CaptureInfo }

func (c *ctx) GetCaptureInfo() gopacket.CaptureInfo { return c.ci }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor FILE")
		os.Exit(2)
	}
	src, err := capture.Open([]string{os.Args[1]}, capture.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var eth layers.Ethernet
	var ip4 layers.IPv4
	var ip6 layers.IPv6
	var tcp layers.TCP
	var pl gopacket.Payload
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp, &pl)
	p.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	asm := reassembly.NewAssembler(reassembly.NewStreamPool(factory{}))
	c := &ctx{}
	var n, segs int
	for {
		f, ok := src.Next()
		if !ok {
			break
		}
		n++
		if err := p.DecodeLayers(f.Data, &decoded); err != nil && len(decoded) == 0 {
			continue
		}
		var flow gopacket.Flow
		isTCP := false
		for _, t := range decoded {
			switch t {
			case layers.LayerTypeIPv4:
				flow = ip4.NetworkFlow()
			case layers.LayerTypeIPv6:
				flow = ip6.NetworkFlow()
			case layers.LayerTypeTCP:
				isTCP = true
			}
		}
		if !isTCP {
			continue
		}
		segs++
		c.ci = f.CI
		asm.AssembleWithContext(flow, &tcp, c)
		if n&0xffff == 0 {
			asm.FlushCloseOlderThan(f.CI.Timestamp.Add(-2 * 60e9))
		}
	}
	asm.FlushAll()
	fmt.Printf("%d frames, %d TCP segments\n", n, segs)
}
