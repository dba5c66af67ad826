package esalog

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", MaxLineLen)
	cases := []struct {
		name string
		in   string
		want []string // lines; "LONG" marks a line over the limit
	}{
		{"lf", "a\nb\n", []string{"a", "b"}},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"bom", "\xef\xbb\xbfa\n\xef\xbb\xbfb\n", []string{"a", "\xef\xbb\xbfb"}}, // only at the start of the file
		{"empty lines", "\n\na\n", []string{"", "", "a"}},
		{"at the limit", long + "\nb\n", []string{long, "b"}},
		{"one over", long + "y\nb\n", []string{"LONG", "b"}},
		{"huge", strings.Repeat("z", 3<<20) + "\nb\n", []string{"LONG", "b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lr := newLineReader(strings.NewReader(c.in))
			var got []string
			for {
				b, n, err := lr.next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				if n > MaxLineLen {
					got = append(got, "LONG")
					continue
				}
				got = append(got, string(b))
			}
			assert.Equal(t, c.want, got)
		})
	}
}

func TestSniff(t *testing.T) {
	cases := []struct {
		name string
		head []byte
		want string // "" = accepted as text
	}{
		{"mail log", []byte("Thu Nov 26 20:58:08 2026 Info: Begin Logfile\n"), ""},
		{"syslog with tabs and utf-8", []byte("<166>Mar 17 18:24:37 mail_logs: Info: MID 6 Subject 'Grüße\t'\n"), ""},
		{"empty", nil, ""},
		{"pcap", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0}, "pcap capture file"},
		{"pcap big-endian", []byte{0xa1, 0xb2, 0xc3, 0xd4, 0, 2}, "pcap capture file"},
		{"pcap ns", []byte{0x4d, 0x3c, 0xb2, 0xa1, 2, 0}, "pcap capture file (ns)"},
		{"pcapng", []byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0}, "pcapng capture file"},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0}, "zstd"},
		{"zip", []byte("PK\x03\x04rest"), "zip"},
		{"binary", bytes.Repeat([]byte{0, 0x7f, 0x80, 1}, 100), "binary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := sniff(bufioOf(c.head))
			if c.want == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrNotText)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// A line over the limit is reported with its position and skipped; the
// lines after it are read.
func TestReaderSkipsLongLines(t *testing.T) {
	in := "Thu Nov 26 20:58:08 2026 Info: ICID 1 close\n" +
		"Thu Nov 26 20:58:08 2026 Info: MID 1 Subject '" + strings.Repeat("s", 2*MaxLineLen) + "'\n" +
		"Thu Nov 26 20:58:09 2026 Info: ICID 2 close\n"
	r := NewReader(strings.NewReader(in), "mail.current", Options{Year: 2026})
	var kept []int64
	var long []*ParseError
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *ParseError
		if errors.As(err, &pe) {
			long = append(long, pe)
			continue
		}
		require.NoError(t, err)
		kept = append(kept, l.ICID)
	}
	assert.Equal(t, []int64{1, 2}, kept)
	require.Len(t, long, 1)
	assert.True(t, long[0].Long)
	assert.Equal(t, 2, long[0].No)
	assert.Equal(t, 1, r.Long)
	assert.Contains(t, long[0].Error(), "mail.current:2: line of 131")
}

func bufioOf(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
