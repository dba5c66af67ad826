package reassembly

import (
	"encoding/binary"
	"errors"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// etag decodes the 802.1BR bridge port extension tag (ethertype 0x893F),
// which gopacket does not: 6 bytes of tag, then the inner ethertype.
type etag struct {
	layers.BaseLayer
	next layers.EthernetType
}

const ethertypeETag = layers.EthernetType(0x893f)

var layerTypeETag = gopacket.RegisterLayerType(1893, gopacket.LayerTypeMetadata{Name: "ETag", Decoder: gopacket.DecodeFunc(decodeETag)})

func init() {
	layers.EthernetTypeMetadata[ethertypeETag] = layers.EnumMetadata{DecodeWith: gopacket.DecodeFunc(decodeETag), Name: "ETag", LayerType: layerTypeETag}
}

func decodeETag(data []byte, p gopacket.PacketBuilder) error {
	e := &etag{}
	if err := e.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(e)
	return p.NextDecoder(e.next)
}

func (e *etag) LayerType() gopacket.LayerType     { return layerTypeETag }
func (e *etag) CanDecode() gopacket.LayerClass    { return layerTypeETag }
func (e *etag) NextLayerType() gopacket.LayerType { return e.next.LayerType() }

func (e *etag) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		df.SetTruncated()
		return errors.New("802.1BR E-Tag too short")
	}
	e.next = layers.EthernetType(binary.BigEndian.Uint16(data[6:8]))
	e.BaseLayer = layers.BaseLayer{Contents: data[:8], Payload: data[8:]}
	return nil
}
