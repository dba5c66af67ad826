package main

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// dialogue builds one client/server TCP connection packet by packet.
type dialogue struct {
	ps         []packet
	cseq, sseq uint32
	ts         time.Time
}

func newDialogue() *dialogue {
	return &dialogue{cseq: 5000, sseq: 900000, ts: time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)}
}

// seg appends a segment; seq 0 means the side's next sequence number, and
// a bad checksum is made on request.
func (g *dialogue) seg(fromClient bool, flags, payload string, seq uint32, badSum bool) int {
	cli, srv := net.IP{192, 0, 2, 10}, net.IP{198, 51, 100, 25}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(len(g.ps) + 1), Protocol: layers.IPProtocolTCP, SrcIP: cli, DstIP: srv}
	tcp := &layers.TCP{SrcPort: 40001, DstPort: 25, Seq: g.cseq, Ack: g.sseq, Window: 500}
	if !fromClient {
		ip.SrcIP, ip.DstIP = srv, cli
		tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = 25, 40001, g.sseq, g.cseq
	}
	if seq != 0 {
		tcp.Seq = seq
	}
	tcp.SYN, tcp.ACK, tcp.FIN, tcp.PSH = strings.Contains(flags, "S"), strings.Contains(flags, "A"), strings.Contains(flags, "F"), strings.Contains(flags, "P")
	if !tcp.ACK {
		tcp.Ack = 0
	}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		panic(err)
	}
	d := append([]byte(nil), buf.Bytes()...)
	if badSum {
		d[14+20+16] ^= 0x5a // the TCP checksum field
	}
	if seq == 0 {
		adv := uint32(len(payload))
		if tcp.SYN || tcp.FIN {
			adv++
		}
		if fromClient {
			g.cseq += adv
		} else {
			g.sseq += adv
		}
	}
	g.ts = g.ts.Add(3 * time.Millisecond)
	g.ps = append(g.ps, packet{gopacket.CaptureInfo{Timestamp: g.ts, CaptureLength: len(d), Length: len(d)}, d})
	return len(g.ps)
}

// open plays the handshake, the greeting and EHLO with the given reply.
func (g *dialogue) open(ehloReply string) {
	g.seg(true, "S", "", 0, false)
	g.seg(false, "SA", "", 0, false)
	g.seg(true, "A", "", 0, false)
	g.seg(false, "PA", "220 mx.example ESMTP\r\n", 0, false)
	g.seg(true, "PA", "EHLO c.example\r\n", 0, false)
	g.seg(false, "PA", ehloReply, 0, false)
}

// evasionCapture: after EHLO the client's MAIL FROM is sent twice over the
// same sequence numbers with different addresses; badFirst puts a copy
// with a wrong checksum (the evil one) first.
func evasionCapture(badFirst bool) (ps []packet, evilFrame, goodFrame int) {
	g := newDialogue()
	g.open("250 mx.example\r\n")
	good, evil := "MAIL FROM:<good@example.org>\r\n", "MAIL FROM:<evil@example.net>\r\n"
	at := g.cseq
	if badFirst {
		evilFrame = g.seg(true, "PA", evil, at, true)
		goodFrame = g.seg(true, "PA", good, at, false)
	} else {
		goodFrame = g.seg(true, "PA", good, at, false)
		evilFrame = g.seg(true, "PA", evil, at, false)
	}
	g.cseq += uint32(len(good))
	g.seg(false, "PA", "250 ok\r\n", 0, false)
	g.seg(true, "PA", "QUIT\r\n", 0, false)
	g.seg(false, "PA", "221 bye\r\n", 0, false)
	g.seg(false, "FA", "", 0, false)
	g.seg(true, "FA", "", 0, false)
	g.seg(false, "A", "", 0, false)
	return g.ps, evilFrame, goodFrame
}

// TestEvasionIsVisible: two copies of the same bytes with different content
// are an anomaly naming both frames; with --checksums a copy with a wrong
// checksum (tshark confirms it is wrong) is dropped and never replaces the
// good one.
func TestEvasionIsVisible(t *testing.T) {
	needTool(t, "tshark")
	dir := t.TempDir()
	type rec struct {
		MailFrom  string   `json:"mailfrom"`
		Anomalies []string `json:"anomalies"`
		Overlaps  []struct {
			By    string `json:"by"`
			Frame int    `json:"frame"`
			Other int    `json:"other"`
		} `json:"overlap_conflicts"`
		BadChecksums int `json:"bad_checksums"`
	}
	get := func(f string, extra ...string) rec {
		rs := analyze(t, append([]string{"-r", f}, extra...)...)
		require.Len(t, rs, 1)
		var r rec
		require.NoError(t, jsonUnmarshal(rs[0].raw, &r))
		return r
	}

	ps, evil, good := evasionCapture(false)
	f := filepath.Join(dir, "overlap.pcap")
	writePcap(t, f, layers.LinkTypeEthernet, ps, false)
	r := get(f)
	require.Equal(t, "good@example.org", r.MailFrom, "the first copy is the one the dialogue reads")
	require.Contains(t, r.Anomalies, "tcp_overlap_conflict")
	require.Len(t, r.Overlaps, 1)
	require.Equal(t, "client", r.Overlaps[0].By)
	require.Equal(t, []int{good, evil}, []int{r.Overlaps[0].Frame, r.Overlaps[0].Other})

	ps, evil, good = evasionCapture(true)
	f = filepath.Join(dir, "badsum.pcap")
	writePcap(t, f, layers.LinkTypeEthernet, ps, false)
	out, err := exec.Command("tshark", "-r", f, "-o", "tcp.check_checksum:TRUE", "-Y", "tcp.checksum.status == 0", "-T", "fields", "-e", "frame.number").Output()
	require.NoError(t, err)
	require.Equal(t, []string{strconv.Itoa(evil)}, strings.Fields(string(out)), "tshark: only the evil copy has a bad checksum")
	r = get(f, "--checksums")
	require.Equal(t, "good@example.org", r.MailFrom, "a bad-checksum copy never replaces the good one")
	require.Equal(t, 1, r.BadChecksums)
	require.NotContains(t, r.Anomalies, "tcp_overlap_conflict")
	// Without --checksums (the default, for offloaded captures) the first
	// copy is read, and the conflict is there for the reader to see.
	r = get(f)
	require.Equal(t, "evil@example.net", r.MailFrom)
	require.Contains(t, r.Anomalies, "tcp_overlap_conflict")
	require.Equal(t, []int{evil, good}, []int{r.Overlaps[0].Frame, r.Overlaps[0].Other})
}
