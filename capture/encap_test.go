package capture

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncapsulated: a tunnel the decoder opens is recognised from its
// outer headers (behind VLAN tags too); a plain TCP or UDP frame is not.
// Every UDP fragment is taken (a later one has no port to tell; all must
// reach the same defragmenter).
func TestEncapsulated(t *testing.T) {
	ser := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...))
		return append([]byte(nil), buf.Bytes()...)
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: et}
	}
	ip4 := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: p, SrcIP: net.IP{203, 0, 113, 1}, DstIP: net.IP{203, 0, 113, 2}}
	}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
	frag := ip4(layers.IPProtocolUDP)
	frag.FragOffset = 100
	for _, c := range []struct {
		name string
		lt   layers.LinkType
		b    []byte
		want bool
	}{
		{"gre", layers.LinkTypeEthernet, ser(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeERSPAN}), true},
		{"vxlan", layers.LinkTypeEthernet, ser(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40001, DstPort: 4789}, gopacket.Payload(make([]byte, 8))), true},
		{"vxlan behind two tags", layers.LinkTypeEthernet, ser(eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 4789}), true},
		{"vxlan over ipv6", layers.LinkTypeEthernet, ser(eth(layers.EthernetTypeIPv6), ip6, &layers.UDP{SrcPort: 1, DstPort: 4789}), true},
		{"raw ip gre", layers.LinkTypeRaw, ser(ip4(layers.IPProtocolGRE), &layers.GRE{}), true},
		{"tcp", layers.LinkTypeEthernet, ser(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 25}), false},
		{"dns", layers.LinkTypeEthernet, ser(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 4789, DstPort: 53}), false},
		{"later udp fragment", layers.LinkTypeEthernet, ser(eth(layers.EthernetTypeIPv4), frag, gopacket.Payload(make([]byte, 16))), true},
		{"short", layers.LinkTypeEthernet, []byte{1, 2, 3}, false},
	} {
		assert.Equal(t, c.want, Encapsulated(c.lt, c.b), c.name)
	}
}
