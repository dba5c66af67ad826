// Package capture turns capture files (pcap with µs or ns timestamps, pcapng
// with one or several interfaces and sections, either of them gzip- or
// zstd-compressed, or standard input) into a single time-ordered stream of
// raw frames with their link type, frame number, and the file and frame
// number within it they came from. Several files are merged by timestamp,
// as ESA captures are often split. A BPF filter (tcpdump syntax, compiled
// by libpcap) can be applied to files as to live traffic.
//
// The format is found from magic bytes, never from the file name. It refuses
// what it cannot read exactly: an unknown magic or link type, a directory,
// an empty file, a corrupt gzip or zstd stream are errors that name the
// file. Inside a file it tells damage from truncation: a file that ends
// inside its last record (a killed capture, a cut download, a cut gzip
// stream) is a warning, the frames before kept; a record that cannot be
// right although the file goes on (a captured length above the original,
// a pcapng block whose length disagrees with its trailer or runs past the
// end while a well-formed block follows inside it) is a *DamageError naming
// the file, the record (and pcapng block) number and the offset of its
// header, in the file or in the decompressed stream; the frames before it
// are delivered.
//
// Every length in a file is untrusted: at most Options.MaxRecord bytes of a
// record are kept (the rest is skipped unread, and counted in Stats), a
// zstd window above 512 MiB is refused, and nothing is allocated from a
// length read from the input. Files are probed at Open (header and first
// timestamp), closed, and opened again only when the merge reaches their
// first frame, so a thousand rotated files hold the buffers of one or two;
// at most Options.MaxOpenFiles are open at once.
//
// Frames are handed out zero-copy and without allocation: Frame.Data is
// valid until the next call to Next.
package capture
