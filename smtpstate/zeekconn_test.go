package smtpstate

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// zeekRun drives a connection with a packet script: "S" client SYN, "h"
// server SYN-ACK, "A"/"a" pure ACK, "D"/"d" 10 bytes of data, "F"/"f" FIN,
// "R"/"r" RST (uppercase: client). Sequence numbers follow the stream.
func zeekRun(script string) *Record {
	c := NewConn(Endpoint{"192.0.2.1", 40000}, Endpoint{"198.51.100.2", 25}, "syn", Config{})
	seq := [2]uint32{1000, 5000}
	now := time.Unix(1700000000, 0)
	for i, ch := range script {
		d := FromClient
		if ch >= 'a' && ch <= 'z' {
			d = FromServer
		}
		p := &Packet{Frame: uint64(i + 1), Time: now.Add(time.Duration(i) * time.Millisecond), Dir: d, Seq: seq[d], Ack: seq[d.Other()], TTL: 64, Window: 100}
		switch strings.ToUpper(string(ch)) {
		case "S":
			p.Flags = FlagSYN
		case "H":
			p.Flags = FlagSYN | FlagACK
		case "A":
			p.Flags = FlagACK
		case "D":
			p.Flags, p.PayloadLen = FlagACK|FlagPSH, 10
		case "F":
			p.Flags = FlagFIN | FlagACK
		case "R":
			p.Flags = FlagRST | FlagACK
		}
		c.Packet(p)
		if p.Flags.Has(FlagSYN) || p.Flags.Has(FlagFIN) {
			seq[d]++
		}
		seq[d] += uint32(p.PayloadLen)
	}
	return c.Finish("end_of_input", now.Add(time.Second))
}

// TestZeekConnState: one script per conn_state code, as Zeek documents
// them (base/protocols/conn/main.zeek).
func TestZeekConnState(t *testing.T) {
	for _, c := range []struct{ script, state, history string }{
		{"S", "S0", "S"},
		{"Sr", "REJ", "Sr"},
		{"ShADadFf", "SF", "ShADadFf"},
		{"ShADad", "S1", "ShADad"},
		{"ShADadF", "S2", "ShADadF"},
		{"ShADadf", "S3", "ShADadf"},
		{"ShADadR", "RSTO", "ShADadR"},
		{"ShADadr", "RSTR", "ShADadr"},
		{"SR", "RSTOS0", "SR"},
		{"hr", "RSTRH", "hr"},
		{"SF", "SH", "SF"},
		{"hf", "SHR", "hf"},
		{"Dd", "OTH", "Dd"},
		{"ShADadFfR", "RSTO", "ShADadFfR"}, // a RST after both FINs still counts
		{"ShAADDDd", "S1", "ShADd"},        // each letter once per direction
	} {
		r := zeekRun(c.script)
		assert.Equal(t, c.state, r.ConnState, c.script)
		assert.Equal(t, c.history, r.History, c.script)
	}
}

func TestZeekBytesAndPackets(t *testing.T) {
	r := zeekRun("ShADDadFf")
	assert.Equal(t, int64(20), r.OrigBytes, "two 10-byte segments, SYN and FIN not counted")
	assert.Equal(t, int64(10), r.RespBytes)
	assert.Equal(t, int64(5), r.OrigPkts)
	assert.Equal(t, int64(4), r.RespPkts)
	assert.Equal(t, "", r.Service, "no SMTP dialogue seen")
}

// TestZeekScaledHistory: T, W and G are recorded at the 1st, 10th, 100th …
// occurrence.
func TestZeekScaledHistory(t *testing.T) {
	h := &histTracker{}
	for i := 0; i < 100; i++ {
		h.scaled(FromClient, scaledRetrans)
	}
	h.scaled(FromServer, scaledGap)
	assert.Equal(t, "TTTg", string(h.b))
	assert.True(t, rstAfterSYNOnly("SaR"))
	assert.True(t, rstAfterSYNOnly("ShR"), "the pattern excludes only the client's letters")
	assert.False(t, rstAfterSYNOnly("SAR"))
	assert.True(t, rstAfterSYNOnly("^SR"))
}
