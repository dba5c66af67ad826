// Package capture turns capture files (pcap with µs or ns timestamps, pcapng
// with one or several interfaces, either of them gzip- or zstd-compressed, or
// standard input) into a single time-ordered stream of raw frames with their
// link type and frame number. Several files are merged by timestamp, as ESA
// captures are often split. A BPF filter (tcpdump syntax, compiled by
// libpcap) can be applied to files as to live traffic.
//
// The format is found from magic bytes, never from the file name. It refuses
// what it cannot read exactly: an unknown magic or link type is an error that
// names it, and a damaged record is an error with the file and byte offset;
// a truncated last record (a killed capture) is only a warning.
//
// Frames are handed out zero-copy: Frame.Data is valid until the next call
// to Next.
package capture
