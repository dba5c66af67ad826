// Package reassembly turns raw frames into the input vocabulary of package
// smtpstate: per-segment TCP facts (frame, time, flags, TTL/hop limit, IP ID,
// seq, ack, window, source MAC) and in-order stream bytes with gaps.
//
// Frames are decoded with one gopacket DecodingLayerParser per link type
// (Ethernet, 802.1Q/QinQ, Linux SLL and SLL2, raw IP, BSD loopback, GRE and
// ERSPAN II and III, VXLAN), IPv4 fragments are reassembled, checksums are not
// validated (captures taken on the sending host carry offloaded checksums and
// super-frames), and TCP is reassembled with gopacket's reassembly package.
//
// It keeps its own session table and finalizes sessions by capture time:
// a linger after RST or both FINs, an idle timeout, or the end of input. It
// does not rely on ReassemblyComplete, and it never drops a session on an
// SMTP port from the output. It does not interpret SMTP; smtpstate does.
package reassembly
