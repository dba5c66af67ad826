// Command gen writes the hostile inputs of the table into a folder,
// for the hostile test suite (cmd/smtpcap TestHostileInputs) and by hand:
//
//	big-record.pcap.gz  a 1 MB gzip whose pcap header claims snaplen
//	                    0xffffffff, with one record of 1 GiB, then a small one
//	synscan.pcap        200,000 SYN-only connections (a scan), port 25
//	fragments.pcap      200,000 IPv4 first fragments that never complete
//	rotated/NNNN.pcap   1,000 rotated files, one SMTP session each
//
// usage: go run ./testdata/hostile/gen -o DIR
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
)

func main() {
	out := flag.String("o", "hostile", "output folder")
	n := flag.Int("n", 200000, "connections in the scan, fragments in the flood")
	files := flag.Int("files", 1000, "rotated files")
	flag.Parse()
	must(os.MkdirAll(filepath.Join(*out, "rotated"), 0o755))
	must(bigRecord(filepath.Join(*out, "big-record.pcap.gz")))
	must(writePcap(filepath.Join(*out, "synscan.pcap"), synScan(*n)))
	must(writePcap(filepath.Join(*out, "fragments.pcap"), fragments(*n)))
	for i := 0; i < *files; i++ {
		must(writePcap(filepath.Join(*out, "rotated", fmt.Sprintf("%04d.pcap", i)), session(i)))
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

type rec struct {
	ts   time.Time
	data []byte
}

func header(snap uint32) []byte {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snap)
	binary.LittleEndian.PutUint32(h[20:], 101) // raw IP
	return h
}

func recHeader(ts time.Time, caplen, length uint32) []byte {
	h := make([]byte, 16)
	binary.LittleEndian.PutUint32(h[0:], uint32(ts.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(ts.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(h[8:], caplen)
	binary.LittleEndian.PutUint32(h[12:], length)
	return h
}

func writePcap(path string, rs []rec) error {
	var b bytes.Buffer
	b.Write(header(65535))
	for _, r := range rs {
		b.Write(recHeader(r.ts, uint32(len(r.data)), uint32(len(r.data))))
		b.Write(r.data)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// ipv4 builds an IPv4 header (checksum left 0: not validated by default).
func ipv4(src, dst [4]byte, id uint16, flagsFrag uint16, proto byte, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], id)
	binary.BigEndian.PutUint16(h[6:], flagsFrag)
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	return append(h, payload...)
}

func tcp(sport, dport uint16, seq, ack uint32, flags byte, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], seq)
	binary.BigEndian.PutUint32(h[8:], ack)
	h[12], h[13] = 5<<4, flags
	binary.BigEndian.PutUint16(h[14:], 1024)
	return append(h, payload...)
}

var t0 = time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)

func synScan(n int) []rec {
	rs := make([]rec, 0, n)
	for i := 0; i < n; i++ {
		src := [4]byte{203, 0, 113, byte(i >> 16)}
		seg := tcp(uint16(1024+i&0xffff%60000), 25, uint32(i)*7919, 0, 0x02, nil)
		rs = append(rs, rec{t0.Add(time.Duration(i) * 5 * time.Microsecond), ipv4(src, [4]byte{198, 51, 100, 25}, uint16(i), 0, 6, seg)})
	}
	return rs
}

func fragments(n int) []rec {
	payload := make([]byte, 600)
	rs := make([]rec, 0, n)
	for i := 0; i < n; i++ {
		src := [4]byte{192, 0, 2, byte(1 + i>>16)}
		rs = append(rs, rec{t0.Add(time.Duration(i) * 10 * time.Microsecond), ipv4(src, [4]byte{198, 51, 100, 25}, uint16(i), 0x2000, 6, payload)})
	}
	return rs
}

// session is one short SMTP dialogue (each file its own client port),
// a minute after the previous file's.
func session(i int) []rec {
	cli, srv := [4]byte{192, 0, 2, 10}, [4]byte{198, 51, 100, 25}
	port := uint16(30000 + i)
	ts := t0.Add(time.Duration(i) * time.Minute)
	cs, ss := uint32(1000), uint32(900000)
	var rs []rec
	add := func(fromClient bool, flags byte, p string) {
		if fromClient {
			rs = append(rs, rec{ts, ipv4(cli, srv, uint16(len(rs)), 0x4000, 6, tcp(port, 25, cs, ss, flags, []byte(p)))})
			cs += uint32(len(p))
			if flags&0x03 != 0 {
				cs++
			}
		} else {
			rs = append(rs, rec{ts, ipv4(srv, cli, uint16(len(rs)), 0x4000, 6, tcp(25, port, ss, cs, flags, []byte(p)))})
			ss += uint32(len(p))
			if flags&0x03 != 0 {
				ss++
			}
		}
		ts = ts.Add(time.Millisecond)
	}
	add(true, 0x02, "")
	add(false, 0x12, "")
	add(true, 0x10, "")
	add(false, 0x18, "220 mx ESMTP\r\n")
	add(true, 0x18, "EHLO c\r\n")
	add(false, 0x18, "250 mx\r\n")
	add(true, 0x18, "QUIT\r\n")
	add(false, 0x18, "221 bye\r\n")
	add(false, 0x11, "")
	add(true, 0x11, "")
	add(false, 0x10, "")
	return rs
}

// bigRecord: the header claims snaplen 0xffffffff, one record claims 1 GiB
// and holds it (zeros, in many small gzip members), then a small record.
func bigRecord(path string) error {
	var f bytes.Buffer
	member := func(b []byte) error {
		var m bytes.Buffer
		w, err := gzip.NewWriterLevel(&m, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		f.Write(m.Bytes())
		return nil
	}
	if err := member(append(header(0xffffffff), recHeader(t0, 1<<30, 1<<30)...)); err != nil {
		return err
	}
	var zeros bytes.Buffer
	{
		w, _ := gzip.NewWriterLevel(&zeros, gzip.BestCompression)
		_, _ = w.Write(make([]byte, 1<<20))
		_ = w.Close()
	}
	for i := 0; i < 1024; i++ {
		f.Write(zeros.Bytes())
	}
	small := ipv4([4]byte{192, 0, 2, 10}, [4]byte{198, 51, 100, 25}, 1, 0, 6, tcp(40000, 25, 1, 0, 0x02, nil))
	if err := member(append(recHeader(t0.Add(time.Second), uint32(len(small)), uint32(len(small))), small...)); err != nil {
		return err
	}
	return os.WriteFile(path, f.Bytes(), 0o644)
}
