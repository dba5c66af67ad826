// Package smtpstate follows one SMTP dialogue over one TCP connection and
// produces a single Record: who said what, which transactions completed, the
// TCP facts of both directions and, at close, how and why the session ended.
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
