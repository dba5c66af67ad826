package capture

import (
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// NgWriter writes chosen frames to a pcapng file with a comment per packet,
// so that Wireshark opens a case's capture with each packet's session (and
// the verdict on the deciding ones) in its packet comments.
type NgWriter struct {
	w     *pcapgo.NgWriter
	ifs   map[layers.LinkType]int
	first bool
}

// NewNgWriter starts a pcapng section whose header carries comment (what
// the file holds, whether payloads were truncated).
func NewNgWriter(out io.Writer, firstLinkType layers.LinkType, app, comment string) (*NgWriter, error) {
	w, err := pcapgo.NewNgWriterInterface(out, pcapgo.NgInterface{Name: "smtpcap", LinkType: firstLinkType, SnapLength: 262144},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: app, Comment: comment}})
	if err != nil {
		return nil, fmt.Errorf("pcapng: %w", err)
	}
	return &NgWriter{w: w, ifs: map[layers.LinkType]int{firstLinkType: 0}}, nil
}

// Write writes one frame with its comments. keep > 0 truncates the frame to
// its first keep bytes (the capture length shrinks; the original length is
// kept, as a snap length would).
func (n *NgWriter) Write(lt layers.LinkType, ci gopacket.CaptureInfo, data []byte, keep int, comments ...string) error {
	id, ok := n.ifs[lt]
	if !ok {
		var err error
		if id, err = n.w.AddInterface(pcapgo.NgInterface{Name: "smtpcap-" + lt.String(), LinkType: lt, SnapLength: 262144}); err != nil {
			return fmt.Errorf("pcapng: %w", err)
		}
		n.ifs[lt] = id
	}
	if keep > 0 && keep < len(data) {
		data = data[:keep]
	}
	ci.CaptureLength = len(data)
	if ci.Length < len(data) {
		ci.Length = len(data)
	}
	ci.InterfaceIndex = id
	return n.w.WritePacketWithOptions(ci, data, pcapgo.NgPacketOptions{Comments: comments})
}

// Flush writes what is buffered.
func (n *NgWriter) Flush() error { return n.w.Flush() }
