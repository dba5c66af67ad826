// Package report renders session records: a readable table with one line per
// session, and JSON lines with Zeek's field names. Reports are pure functions
// of the records: a fixed sort order and no clock, so output is byte-stable
// and golden-testable. It never prints credentials or message bodies (the
// records do not hold them).
package report
