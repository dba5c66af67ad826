package smtpstate

// OverlapConflict is a stretch of stream bytes that two segments carried
// with different content: an evasion attempt, or a broken middlebox. The
// dialogue was fed the first copy (Frame); Other is the one that differed.
type OverlapConflict struct {
	By    string `json:"by"`    // client or server
	Seq   uint32 `json:"seq"`   // first differing sequence number
	Frame uint64 `json:"frame"` // the copy that was used
	Other uint64 `json:"other"` // the copy that differed
}

const maxOverlapConflicts = 8

// Overlap records an overlap conflict found by reassembly.
func (c *Conn) Overlap(d Dir, seq uint32, frame, other uint64) {
	c.anomaly("tcp_overlap_conflict")
	if len(c.rec.OverlapConflicts) < maxOverlapConflicts {
		c.rec.OverlapConflicts = append(c.rec.OverlapConflicts, OverlapConflict{By: d.String(), Seq: seq, Frame: frame, Other: other})
	}
}

// BadChecksum counts a segment dropped because its checksum was wrong.
func (c *Conn) BadChecksum() {
	c.anomaly("bad_checksum")
	c.rec.BadChecksums++
}

// Duplicate counts a copy of a segment that reassembly dropped (a SPAN
// port that mirrors both directions sends each packet twice).
func (c *Conn) Duplicate() {
	c.anomaly("duplicate_packets")
	c.rec.Duplicates++
}
