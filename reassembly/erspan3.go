package reassembly

import (
	"encoding/binary"
	"errors"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// ERSPAN Type III (GRE protocol 0x22EB; the kernel's erspan devices with
// erspan_ver 2, Cisco's ERSPAN III sessions). gopacket decodes Type II
// only; this layer reads the Type III header - 12 bytes, and the 8-byte
// platform-specific subheader when its O bit is set - and hands on the
// mirrored Ethernet frame (frame type 0; other frame types carry no
// Ethernet header and are not followed).
//
//	 0                   1                   2                   3
//	|  Ver  |          VLAN         | COS |BSO|T|     Session ID    |
//	|                          Timestamp                            |
//	|             SGT               |P|    FT   |   Hw ID   |D|Gra|O|
//	|        Platform Specific SubHeader (8 octets, optional)       |
type erspanIII struct {
	layers.BaseLayer
	Version   uint8
	SessionID uint16
	FrameType uint8
}

// etERSPANIII is the GRE protocol of ERSPAN Type III.
const etERSPANIII layers.EthernetType = 0x22eb

var layerTypeERSPANIII = gopacket.RegisterLayerType(1901, gopacket.LayerTypeMetadata{Name: "ERSPAN Type III", Decoder: gopacket.DecodeFunc(decodeERSPANIII)})

func init() {
	if layers.EthernetTypeMetadata[etERSPANIII].DecodeWith == nil {
		layers.EthernetTypeMetadata[etERSPANIII] = layers.EnumMetadata{DecodeWith: gopacket.DecodeFunc(decodeERSPANIII), Name: "ERSPAN Type III", LayerType: layerTypeERSPANIII}
	}
}

func (e *erspanIII) LayerType() gopacket.LayerType     { return layerTypeERSPANIII }
func (e *erspanIII) CanDecode() gopacket.LayerClass    { return layerTypeERSPANIII }
func (e *erspanIII) NextLayerType() gopacket.LayerType { return nextERSPANIII(e.FrameType) }

func nextERSPANIII(ft uint8) gopacket.LayerType {
	if ft == 0 {
		return layers.LayerTypeEthernet
	}
	return gopacket.LayerTypePayload
}

func (e *erspanIII) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 12 {
		df.SetTruncated()
		return errors.New("ERSPAN III header too short")
	}
	e.Version = data[0] >> 4
	if e.Version != 2 {
		return errors.New("ERSPAN III: version is not 2")
	}
	e.SessionID = binary.BigEndian.Uint16(data[2:4]) & 0x03ff
	e.FrameType = (data[10] >> 2) & 0x1f
	n := 12
	if data[11]&1 != 0 { // O: the platform-specific subheader follows
		n += 8
	}
	if len(data) < n {
		df.SetTruncated()
		return errors.New("ERSPAN III subheader too short")
	}
	e.Contents, e.Payload = data[:n], data[n:]
	return nil
}

func decodeERSPANIII(data []byte, p gopacket.PacketBuilder) error {
	e := &erspanIII{}
	if err := e.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(e)
	return p.NextDecoder(nextERSPANIII(e.FrameType))
}
