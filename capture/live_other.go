//go:build !linux

package capture

import "errors"

// AFPacketAvailable says whether OpenAFPacket works on this system.
const AFPacketAvailable = false

// OpenAFPacket is Linux only.
func OpenAFPacket(LiveOptions, int) (*Live, error) {
	return nil, errors.New("capture: AF_PACKET capture is Linux only; use libpcap")
}
