// Package smtpstate follows one SMTP dialogue over one TCP connection and
// produces a single Record: who said what, which transactions completed and
// the TCP facts of both directions. The Record is plain data: every fact the
// verdict needs is an exported JSON field, proved when it happened (what a
// RST's numbers showed is stored with the RST); working state lives in
// unexported tracker types. How the session ended is decided afterwards by
// package smtpstate/ending, from the Record alone.
//
// Its input vocabulary is its own and uses only standard types: Packet (the
// TCP facts of one segment, in capture order), Deliver (in-order stream bytes
// of one direction; the slice is never retained), Gap (bytes the capture
// missed) and Finish. Whoever decodes packets (package reassembly) translates
// into this vocabulary, so this package never imports gopacket, flag parsers
// or os/exec, and can be driven from text transcripts in tests.
//
// It refuses to keep message bodies (they are counted, never stored) and never
// stores AUTH credentials (only the mechanism, the byte count and the outcome).
package smtpstate
