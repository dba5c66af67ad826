package main

import (
	"encoding/binary"
	"net"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// wrapFrames carries each Ethernet frame of a capture the way a remote
// mirror does: in ERSPAN Type II (GRE 0x88BE, with a sequence number), in
// ERSPAN Type III (GRE 0x22EB, with and without its platform subheader),
// or in VXLAN (UDP 4789), from 203.0.113.1 to the collector 203.0.113.2.
func wrapFrames(t *testing.T, ps []packet, kind string) []packet {
	t.Helper()
	mac := net.HardwareAddr{2, 0, 0, 0, 0xee, 1}
	out := make([]packet, 0, len(ps))
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for i, p := range ps {
		eth := &layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolGRE, SrcIP: net.IP{203, 0, 113, 1}, DstIP: net.IP{203, 0, 113, 2}}
		var ls []gopacket.SerializableLayer
		switch kind {
		case "erspan2":
			ls = []gopacket.SerializableLayer{eth, ip, &layers.GRE{Protocol: layers.EthernetTypeERSPAN, SeqPresent: true, Seq: uint32(i)},
				&layers.ERSPANII{Version: layers.ERSPANIIVersion, SessionID: 7, Index: uint32(i)}, gopacket.Payload(p.data)}
		case "erspan3", "erspan3-sub":
			h := make([]byte, 12)
			h[0] = 0x20 // version 2, VLAN 0
			binary.BigEndian.PutUint16(h[2:4], 7)
			binary.BigEndian.PutUint32(h[4:8], uint32(i)*1000) // timestamp
			// h[10]: P 0, frame type 0 (Ethernet); h[11]: D, Gra, O
			if kind == "erspan3-sub" {
				h[11] = 0x01
				h = append(h, 0x08, 0, 0, 0, 0, 0, 0, 0) // platform 1 subheader
			}
			ls = []gopacket.SerializableLayer{eth, ip, &layers.GRE{Protocol: 0x22eb, SeqPresent: true, Seq: uint32(i)}, gopacket.Payload(append(h, p.data...))}
		case "vxlan":
			ip.Protocol = layers.IPProtocolUDP
			udp := &layers.UDP{SrcPort: layers.UDPPort(40000 + i%7), DstPort: 4789}
			require.NoError(t, udp.SetNetworkLayerForChecksum(ip))
			ls = []gopacket.SerializableLayer{eth, ip, udp, &layers.VXLAN{ValidIDFlag: true, VNI: 42}, gopacket.Payload(p.data)}
		}
		require.NoError(t, gopacket.SerializeLayers(buf, opts, ls...))
		d := append([]byte(nil), buf.Bytes()...)
		ci := p.ci
		ci.CaptureLength, ci.Length = len(d), len(d)
		out = append(out, packet{ci, d})
	}
	return out
}

// TestTunnelledMirrors: lab captures carried in ERSPAN II, ERSPAN III
// (with and without its subheader) and VXLAN give the very records the
// plain capture gives - every field, the verdict included: the tunnel
// only carries them.
func TestTunnelledMirrors(t *testing.T) {
	dir := t.TempDir()
	for _, sc := range []string{"quit_one", "rst_mid_data", "fw_reject_content", "starttls_quit", "pipelining"} {
		src := filepath.Join("..", "..", "testdata", "lab", "captures", sc, "server.pcap")
		ps, lt := readPcap(t, src)
		require.Equal(t, layers.LinkTypeEthernet, lt, sc)
		plain := analyze(t, "-r", src)
		require.NotEmpty(t, plain, sc)
		for _, kind := range []string{"erspan2", "erspan3", "erspan3-sub", "vxlan"} {
			p := filepath.Join(dir, sc+"-"+kind+".pcap")
			writePcap(t, p, layers.LinkTypeEthernet, wrapFrames(t, ps, kind), false)
			got := analyze(t, "-r", p)
			require.Len(t, got, len(plain), "%s in %s", sc, kind)
			for i := range plain {
				require.Equal(t, plain[i].raw, got[i].raw, "%s in %s: session %d", sc, kind, i)
			}
		}
	}
}
