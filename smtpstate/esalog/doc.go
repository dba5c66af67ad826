// Package esalog reads Cisco ESA (AsyncOS) text mail logs ("mail_logs") and
// ties their connections to capture sessions.
//
// The parser is a streaming iterator over lines in the file envelope
// ("Thu Aug 14 11:04:31 2014 Info: …") or the syslog-push envelope
// ("<166>Mar 17 18:24:37 host mail_logs: Info: …"); it knows every lifecycle
// line type of shared/esa/FORMAT.md and counts, never fails on, the lines it
// does not know. A line it cannot read is reported with file and line number.
// Times are kept as the appliance wrote them: local, zone-less, one second.
//
// The matcher joins log connections (ICID inbound, DCID outbound) to
// smtpstate records with every key the log and the wire share, strongest
// first: the MID in the end-of-data reply, the Message-ID header, the
// injection debug log's dialogue, the message size (calibrated on the exact
// pairs: how the ESA counts is not public), the envelope, STARTTLS, and the
// client address with the time after the zone (per file) and clock skew it
// infers. The assignment is global - one log connection per session - and
// among candidates that tie on every key it keeps SYN order = ICID order.
// A Stream (window.go) does the same in windows of SYN time, so sessions
// leave memory soon after they are matched; Match holds them all.
// Each record says which keys decided and, when another log connection fits
// as well, lists the candidates as ambiguous instead of guessing silently;
// log connections and capture sessions left unmatched are listed. A file
// that is not a text log is refused by name; over-long lines are counted
// and skipped, a truncated .gz is used as far as it reads.
// It imports no packet library: it reads records, not packets.
package esalog
