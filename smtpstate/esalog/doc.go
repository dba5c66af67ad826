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
// smtpstate records by client address, appliance address and time, with the
// MID that the appliance sends in its end-of-data reply as an exact key when
// present. It infers the appliance's time zone and clock skew when no header
// or flag gives them, reports ambiguity with the candidates instead of
// guessing, and lists log connections and capture sessions left unmatched.
// It imports no packet library: it reads records, not packets.
package esalog
