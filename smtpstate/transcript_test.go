package smtpstate_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	. "github.com/smtpcap/smtpcap/smtpstate"
	"github.com/smtpcap/smtpcap/smtpstate/ending"
	"github.com/smtpcap/smtpcap/smtpstate/internal/split"
)

// A transcript is a text script of one connection:
//
//	# comment
//	@ 1.5                    advance the clock by 1.5 s
//	T: C SYN ttl=63          a packet without payload (C client, S server)
//	C: EHLO x                a client line (CRLF added) in its own frame
//	S: 250-…                 a server line
//	C+ raw\n                 raw bytes with Go escapes, no CRLF added
//	G: S 20                  20 bytes of the server's stream missing (Gap)
//	=== field value          expectations checked against the Record
//
// Each payload frame also produces a Packet with sequence numbers tracked
// per direction, TTL 64 (client) / 63 (server) unless set with "ttl=".
type step struct {
	dir     Dir
	flags   Flags
	payload []byte
	ttl     uint8
	dt      time.Duration
	seqAdj  int64 // seq=+N/-N relative to the next expected
	noAck   bool
	ipid    int
	setIPID bool
	gap     int64
}

type transcript struct {
	steps  []step
	expect [][2]string
	ports  [2]uint16
}

func parseTranscript(t *testing.T, path string) transcript {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var tr transcript
	tr.ports = [2]uint16{40000, 25}
	sc := bufio.NewScanner(f)
	var dt time.Duration
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "@ "):
			v, err := strconv.ParseFloat(strings.TrimSpace(line[2:]), 64)
			require.NoError(t, err, "%s:%d", path, n)
			dt += time.Duration(v * float64(time.Second))
		case strings.HasPrefix(line, "=== "):
			kv := strings.SplitN(line[4:], " ", 2)
			if len(kv) == 1 {
				kv = append(kv, "")
			}
			tr.expect = append(tr.expect, [2]string{kv[0], kv[1]})
		case strings.HasPrefix(line, "C: "), strings.HasPrefix(line, "S: "):
			d := FromClient
			if line[0] == 'S' {
				d = FromServer
			}
			tr.steps = append(tr.steps, step{dir: d, flags: FlagACK | FlagPSH, payload: []byte(line[3:] + "\r\n"), dt: dt})
			dt = 0
		case strings.HasPrefix(line, "C+ "), strings.HasPrefix(line, "S+ "):
			d := FromClient
			if line[0] == 'S' {
				d = FromServer
			}
			raw, err := strconv.Unquote(`"` + line[3:] + `"`)
			require.NoError(t, err, "%s:%d", path, n)
			tr.steps = append(tr.steps, step{dir: d, flags: FlagACK | FlagPSH, payload: []byte(raw), dt: dt})
			dt = 0
		case strings.HasPrefix(line, "G: "):
			fs := strings.Fields(line[3:])
			require.Len(t, fs, 2, "%s:%d", path, n)
			v, err := strconv.ParseInt(fs[1], 10, 64)
			require.NoError(t, err, "%s:%d", path, n)
			d := FromClient
			if fs[0] == "S" {
				d = FromServer
			}
			tr.steps = append(tr.steps, step{dir: d, gap: v, dt: dt})
			dt = 0
		case strings.HasPrefix(line, "T: "):
			fs := strings.Fields(line[3:])
			s := step{dir: FromClient, dt: dt}
			dt = 0
			if fs[0] == "S" {
				s.dir = FromServer
			}
			for _, w := range fs[1:] {
				switch {
				case w == "SYN":
					s.flags |= FlagSYN
				case w == "SYNACK":
					s.flags |= FlagSYN | FlagACK
				case w == "FIN":
					s.flags |= FlagFIN | FlagACK
				case w == "RST":
					s.flags |= FlagRST | FlagACK
				case w == "RSTnoack":
					s.flags |= FlagRST
					s.noAck = true
				case w == "ACK":
					s.flags |= FlagACK
				case strings.HasPrefix(w, "ttl="):
					v, _ := strconv.Atoi(w[4:])
					s.ttl = uint8(v)
				case strings.HasPrefix(w, "seq="):
					v, _ := strconv.ParseInt(w[4:], 10, 64)
					s.seqAdj = v
				case strings.HasPrefix(w, "ipid="):
					v, _ := strconv.Atoi(w[5:])
					s.ipid, s.setIPID = v, true
				case strings.HasPrefix(w, "data="):
					s.payload = []byte(strings.ReplaceAll(w[5:], "_", " ") + "\r\n")
					s.flags |= FlagPSH | FlagACK
				default:
					t.Fatalf("%s:%d: unknown token %q", path, n, w)
				}
			}
			tr.steps = append(tr.steps, s)
		default:
			t.Fatalf("%s:%d: cannot parse %q", path, n, line)
		}
	}
	require.NoError(t, sc.Err())
	return tr
}

// replay runs the transcript; split decides how each frame's payload is cut
// into Deliver calls.
func (tr transcript) replay(split func([]byte) [][]byte) *Record {
	c := NewConn(Endpoint{"192.0.2.10", tr.ports[0]}, Endpoint{"198.51.100.25", tr.ports[1]}, "syn", Config{})
	seq := [2]uint32{1000, 5000}
	ipid := [2]uint16{100, 900}
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for i, s := range tr.steps {
		now = now.Add(s.dt + time.Millisecond)
		ttl := s.ttl
		if ttl == 0 {
			ttl = 64
			if s.dir == FromServer {
				ttl = 63
			}
		}
		if s.gap > 0 {
			c.Gap(s.dir, s.gap, uint64(i+1), now)
			seq[s.dir] += uint32(s.gap)
			continue
		}
		id := ipid[s.dir]
		ipid[s.dir]++
		if s.setIPID {
			id = uint16(s.ipid)
		}
		p := &Packet{Frame: uint64(i + 1), Time: now, Dir: s.dir, Flags: s.flags, TTL: ttl,
			Seq: uint32(int64(seq[s.dir]) + s.seqAdj), Ack: seq[s.dir.Other()], Window: 502, IPID: id, HasIPID: true,
			PayloadLen: len(s.payload)}
		if s.flags.Has(FlagRST) {
			p.Window = 0
			if s.noAck {
				p.Ack = 0
			}
		}
		c.Packet(p)
		if s.flags.Has(FlagRST) {
			continue
		}
		for _, part := range split(s.payload) {
			c.Deliver(s.dir, part, p.Frame, now)
		}
		if s.seqAdj == 0 {
			seq[s.dir] += uint32(len(s.payload))
			if s.flags.Has(FlagSYN) || s.flags.Has(FlagFIN) {
				seq[s.dir]++
			}
		}
	}
	r := c.Finish("end_of_input", now.Add(time.Second))
	r.Ending = ending.Classify(r, ending.DefaultParams)
	return r
}

func mustJSON(t *testing.T, r *Record) string {
	b, err := json.MarshalIndent(r, "", " ")
	require.NoError(t, err)
	return string(b)
}

// field looks up a dotted path in the record's JSON form.
func field(t *testing.T, r *Record, path string) string {
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var m any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, p := range strings.Split(path, "/") {
		switch v := m.(type) {
		case map[string]any:
			m = v[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(v) {
				return "<none>"
			}
			m = v[i]
		default:
			return "<none>"
		}
	}
	switch v := m.(type) {
	case nil:
		return "<none>"
	case string:
		return v
	case []any, map[string]any:
		b, _ := json.Marshal(v)
		return string(b)
	default:
		return fmt.Sprint(v)
	}
}

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			tr := parseTranscript(t, path)
			require.NotEmpty(t, tr.expect, "a transcript must assert something")
			ref := tr.replay(split.Whole)
			want := mustJSON(t, ref)
			require.Equal(t, want, mustJSON(t, tr.replay(split.ByteByByte)), "byte by byte differs")
			maxLen := 0
			for _, s := range tr.steps {
				maxLen = max(maxLen, len(s.payload))
			}
			for k := 1; k < maxLen; k++ {
				require.Equal(t, want, mustJSON(t, tr.replay(split.At(k))), "split at %d differs", k)
			}
			for _, e := range tr.expect {
				require.Equal(t, e[1], field(t, ref, e[0]), "field %s\nrecord: %s", e[0], want)
			}
			// The verdict is a function of the published record.
			var back Record
			require.NoError(t, json.Unmarshal([]byte(want), &back))
			require.Equal(t, want, mustJSON(t, &back), "the record does not survive a JSON round trip")
			back.Ending = nil
			back.Ending = ending.Classify(&back, ending.DefaultParams)
			require.Equal(t, want, mustJSON(t, &back), "classify(decode(encode(r))) differs")
		})
	}
}
