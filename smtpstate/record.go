package smtpstate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Time is a capture timestamp that marshals as Zeek does: epoch seconds with
// microseconds, as a JSON number. The zero Time marshals as null.
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return t.AppendJSON(make([]byte, 0, 20)), nil
}

// UnmarshalJSON implements json.Unmarshaler: it reads what MarshalJSON
// writes (null, or epoch seconds with up to six decimals) exactly, without
// going through a float.
func (t *Time) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*t = Time{}
		return nil
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sec, frac, _ := strings.Cut(s, ".")
	if len(frac) > 6 || sec == "" {
		return fmt.Errorf("smtpstate: time %q: want epoch seconds with at most 6 decimals", b)
	}
	frac += "000000"[len(frac):]
	si, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return fmt.Errorf("smtpstate: time %q: %w", b, err)
	}
	us, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return fmt.Errorf("smtpstate: time %q: %w", b, err)
	}
	v := si*1e6 + us
	if neg {
		v = -v
	}
	*t = Time{time.UnixMicro(v).UTC()}
	return nil
}

// AppendJSON appends the time as MarshalJSON writes it (seconds since the
// epoch with six decimals), without allocating.
func (t Time) AppendJSON(b []byte) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	us := t.UnixMicro()
	if us < 0 {
		return strconv.AppendFloat(b, float64(us)/1e6, 'f', 6, 64)
	}
	b = strconv.AppendInt(b, us/1e6, 10)
	frac := us % 1e6
	b = append(b, '.')
	for d := int64(100000); d > 0; d /= 10 {
		b = append(b, byte('0'+frac/d%10))
	}
	return b
}

// Record is everything known about one TCP connection that carried (or was
// expected to carry) SMTP. It is plain data; reports are pure functions of it.
// JSON names follow Zeek's conn.log and smtp.log where a field exists there.
type Record struct {
	TS          Time    `json:"ts"`
	UID         string  `json:"uid"`
	OrigH       string  `json:"id.orig_h"`
	OrigP       uint16  `json:"id.orig_p"`
	RespH       string  `json:"id.resp_h"`
	RespP       uint16  `json:"id.resp_p"`
	CommunityID string  `json:"community_id,omitempty"`
	EndTS       Time    `json:"end_ts"`
	Duration    float64 `json:"duration"`
	FirstFrame  uint64  `json:"first_frame"`
	LastFrame   uint64  `json:"last_frame"`
	// RoleBasis says how client and server were told apart: "syn",
	// "synack", "port", "greeting" or "first_packet".
	RoleBasis string `json:"role_basis"`
	SMTP      bool   `json:"smtp"` // an SMTP dialogue (or TLS on an SMTP port) was recognised

	Greeting    string        `json:"greeting,omitempty"`
	Helo        string        `json:"helo,omitempty"`
	Extensions  []string      `json:"extensions,omitempty"`
	TLS         bool          `json:"tls"`
	TLSMode     string        `json:"tls_mode,omitempty"` // "starttls" or "implicit"
	TLSInfo     *TLSFacts     `json:"tls_facts,omitempty"`
	Auth        *Auth         `json:"auth,omitempty"`
	MailFrom    string        `json:"mailfrom,omitempty"`
	RcptTo      []string      `json:"rcptto,omitempty"`
	Trans       []Transaction `json:"transactions,omitempty"`
	LastReply   string        `json:"last_reply,omitempty"`
	LastReplyAt *Exchange     `json:"last_reply_at,omitempty"`
	LastCommand string        `json:"last_command,omitempty"`
	Commands    int           `json:"commands"`
	Replies     int           `json:"replies"`
	Pipelined   bool          `json:"pipelined"`
	Quit        *Exchange     `json:"quit,omitempty"`
	// Unsolicited lists replies the server sent with no command pending
	// after the greeting (a 421 on idle timeout, typically).
	Unsolicited []Exchange `json:"unsolicited,omitempty"`
	// Unanswered lists commands still waiting for a reply at the end.
	Unanswered []string `json:"unanswered,omitempty"`
	// FirstClose is the first FIN or RST of the connection: who sent it,
	// in which phase, after how long a silence. Nil if there was none.
	FirstClose *CloseFact `json:"first_close,omitempty"`
	// PhaseAtEnd is the dialogue phase when the first FIN or RST was seen
	// (or at the end of the capture).
	PhaseAtEnd State `json:"phase"`

	// Zeek's conn.log vocabulary for the same connection (zeekconn.go).
	ConnState string `json:"conn_state"`
	History   string `json:"history"`
	OrigPkts  int64  `json:"orig_pkts"`
	RespPkts  int64  `json:"resp_pkts"`
	OrigBytes int64  `json:"orig_bytes"`
	RespBytes int64  `json:"resp_bytes"`
	Service   string `json:"service,omitempty"`

	Client      DirFacts `json:"client"`
	Server      DirFacts `json:"server"`
	MissedBytes int64    `json:"missed_bytes"`
	Anomalies   []string `json:"anomalies,omitempty"`
	// RTT is the handshake round trip measured at the capture point towards
	// each side (SYN→SYN-ACK for the server, SYN-ACK→ACK for the client).
	RTTServer float64 `json:"rtt_server_s,omitempty"`
	RTTClient float64 `json:"rtt_client_s,omitempty"`
	// MaxIdle is the longest silence between two packets of the connection.
	MaxIdle      float64 `json:"max_idle_s"`
	MaxIdleFrame uint64  `json:"max_idle_frame,omitempty"` // the packet that ended it
	// EndReason is why the record was closed by the caller: "closed",
	// "idle", "end_of_input", "evicted" or "reused" (a SYN with a new ISN
	// opened a new connection on the 4-tuple while this one was open).
	EndReason string `json:"end_reason"`
	// CaptureEnd is the time of the last packet of the whole input; it lets
	// the classifier tell a session that was open at the end of the capture.
	CaptureEnd Time `json:"capture_end"`

	// Evasion: the same stream bytes sent twice with different content
	// (the first copy is the one delivered), and segments dropped for a
	// bad checksum (with --checksums).
	OverlapConflicts []OverlapConflict `json:"overlap_conflicts,omitempty"`
	BadChecksums     int               `json:"bad_checksums,omitempty"`
	Duplicates       int               `json:"duplicates,omitempty"` // copies dropped (SPAN)

	Ending *Ending  `json:"ending,omitempty"`
	ESA    *ESARefs `json:"esa,omitempty"`
}

// CloseFact describes the first FIN or RST.
type CloseFact struct {
	By        string  `json:"by"`   // client or server (the address it came from)
	Kind      string  `json:"kind"` // fin or rst
	Frame     uint64  `json:"frame"`
	TS        Time    `json:"ts"`
	Phase     State   `json:"phase"`
	AfterIdle float64 `json:"after_idle_s"` // silence of the whole connection before it
}

// Exchange is one command or reply with where it was seen.
type Exchange struct {
	Cmd        string `json:"cmd,omitempty"`
	Reply      string `json:"reply,omitempty"`
	CmdFrame   uint64 `json:"cmd_frame,omitempty"`
	ReplyFrame uint64 `json:"reply_frame,omitempty"`
	CmdTS      Time   `json:"cmd_ts"`
	ReplyTS    Time   `json:"reply_ts"`
}

// Transaction is one MAIL FROM … end-of-data exchange.
type Transaction struct {
	MailFrom   string `json:"mailfrom"`
	MailReply  string `json:"mail_reply,omitempty"`
	MailFrame  uint64 `json:"mail_frame"`
	Rcpts      []Rcpt `json:"rcpts,omitempty"`
	DataCmd    string `json:"data_cmd,omitempty"` // DATA or BDAT
	DataReply  string `json:"data_reply,omitempty"`
	BodyBytes  int64  `json:"body_bytes"`
	EndFrame   uint64 `json:"end_of_data_frame,omitempty"`
	EndTS      Time   `json:"end_of_data_ts"`
	FinalReply string `json:"final_reply,omitempty"`
	FinalFrame uint64 `json:"final_frame,omitempty"`
	FinalTS    Time   `json:"final_ts"`
	QueueID    string `json:"queue_id,omitempty"`
	MID        string `json:"mid,omitempty"` // ESA message id from "Message N accepted"
	// MsgID is the message's Message-ID header, unfolded (Zeek's msg_id);
	// read from the header block only (msgid.go), the ESA logs it per MID.
	MsgID string `json:"msg_id,omitempty"`
	// Outcome is "accepted", "rejected" (MAIL refused, no recipient, final
	// 4xx/5xx), "reset" (RSET), "open" (unfinished at the end).
	Outcome string `json:"outcome"`
}

// Rcpt is one RCPT TO with its reply.
type Rcpt struct {
	Addr  string `json:"addr"`
	Reply string `json:"reply,omitempty"`
}

// Auth keeps what may be kept of an AUTH exchange: never the credentials.
type Auth struct {
	Mechanism string `json:"mechanism"`
	Reply     string `json:"reply,omitempty"`
	Success   bool   `json:"success"`
	// Bytes counts credential bytes seen (the initial response and every
	// line sent after a 334), for the report's cleartext-credentials warning.
	Bytes int `json:"credential_bytes"`
}

// TLSFacts are what can be seen of a TLS session from its record headers.
type TLSFacts struct {
	ClientRecords int   `json:"client_records"`
	ServerRecords int   `json:"server_records"`
	ClientBytes   int64 `json:"client_bytes"`
	ServerBytes   int64 `json:"server_bytes"`
	// Alerts counts records of content type 21 (visible as such in TLS ≤ 1.2).
	ClientAlerts int `json:"client_alerts"`
	ServerAlerts int `json:"server_alerts"`
	// LastRecordFrom is the direction of the last TLS record seen.
	LastRecordFrom string `json:"last_record_from,omitempty"`
	// Garbled is set when bytes did not parse as TLS records.
	Garbled bool `json:"garbled,omitempty"`
	// ClientTail, ServerTail are the last record headers of each side
	// (type, length, frame): the shape of the last commands and replies.
	ClientTail []TLSRecord `json:"client_tail,omitempty"`
	ServerTail []TLSRecord `json:"server_tail,omitempty"`
	// ClientMinApp, ServerMinApp: the shortest application-data record of
	// each side after its first two (a short command or reply plus the
	// cipher suite's fixed overhead); 0 if none.
	ClientMinApp int `json:"client_min_app,omitempty"`
	ServerMinApp int `json:"server_min_app,omitempty"`
}

// TLSRecord is one TLS record header as seen on the wire.
type TLSRecord struct {
	Type  uint8  `json:"type"` // 20 CCS, 21 alert, 22 handshake, 23 application data
	Len   int    `json:"len"`
	Frame uint64 `json:"frame"`
	TS    Time   `json:"ts"`
}

// DirFacts are the TCP facts of one direction.
type DirFacts struct {
	Packets      int64  `json:"packets"`
	PayloadBytes int64  `json:"payload_bytes"`
	FirstTS      Time   `json:"first_ts"`
	LastTS       Time   `json:"last_ts"`
	LastDataTS   Time   `json:"last_data_ts"`
	LastDataFrm  uint64 `json:"last_data_frame,omitempty"`
	SYNFrame     uint64 `json:"syn_frame,omitempty"`
	SYNs         int    `json:"syns,omitempty"`
	ISN          uint32 `json:"isn,omitempty"`
	// TTLs are the distinct TTL / hop-limit values seen on non-RST packets
	// with their counts, most common first (at most 4 kept).
	TTLs []TTLCount `json:"ttls,omitempty"`
	// MAC is the source MAC of the first packet, if the link had one.
	MAC        string `json:"mac,omitempty"`
	MACChanged bool   `json:"mac_changed,omitempty"`
	// IPID of the last non-RST packet (IPv4), for continuity tests.
	LastIPID    uint16   `json:"last_ipid,omitempty"`
	FIN         *Segment `json:"fin,omitempty"` // first FIN
	FINCount    int      `json:"fin_count,omitempty"`
	FINRetrans  int      `json:"fin_retransmissions,omitempty"`
	RSTs        []RST    `json:"rsts,omitempty"`
	Retrans     int      `json:"retransmissions,omitempty"`
	OutOfOrder  int      `json:"out_of_order,omitempty"`
	Gaps        int      `json:"gaps,omitempty"`
	GapBytes    int64    `json:"gap_bytes,omitempty"`
	ZeroWindows int      `json:"zero_windows,omitempty"`
	KeepAlives  int      `json:"keepalives,omitempty"`
	// AckedUnseen counts bytes of this direction acknowledged by the peer
	// but never captured (capture loss, not network loss).
	AckedUnseen int64 `json:"acked_unseen,omitempty"`
	// RetransRun is the longest run of retransmissions of the same sequence
	// number that the peer never acknowledged (silent drop evidence).
	RetransRun *Run `json:"retrans_run,omitempty"`
	// DataAfterRST is the first frame carrying data (or a FIN) from this
	// direction at or beyond the sequence of this direction's own RST.
	DataAfterRST uint64 `json:"data_after_rst_frame,omitempty"`
}

// TTLCount is one TTL value and how many packets carried it.
type TTLCount struct {
	TTL   uint8 `json:"ttl"`
	Count int   `json:"count"`
}

// Segment is a FIN or other notable segment.
type Segment struct {
	Frame uint64 `json:"frame"`
	TS    Time   `json:"ts"`
	Seq   uint32 `json:"seq"`
	TTL   uint8  `json:"ttl"`
	Data  int    `json:"data,omitempty"` // payload bytes in the same segment
}

// RST is a reset segment with every field an origin test needs.
type RST struct {
	Frame   uint64 `json:"frame"`
	TS      Time   `json:"ts"`
	Seq     uint32 `json:"seq"`
	Ack     uint32 `json:"ack"`
	HasACK  bool   `json:"has_ack"`
	TTL     uint8  `json:"ttl"`
	IPID    uint16 `json:"ipid,omitempty"`
	Window  uint16 `json:"window"`
	Payload string `json:"payload,omitempty"` // printable, escaped
	// SeqDelta is RST.seq minus the next sequence number expected from this
	// direction (0 = exact); only meaningful when SeqKnown.
	SeqDelta int64 `json:"seq_delta"`
	SeqKnown bool  `json:"seq_known"`
	// SeqIsPeerAck: the RST's sequence number is the highest ACK the peer
	// had sent when the RST came (a no-state host answers with that).
	SeqIsPeerAck bool `json:"seq_is_peer_ack,omitempty"`
	// IPIDStep is the RST's IP ID minus the direction's last IP ID before
	// it (mod 65536); only meaningful when IPIDKnown (IPv4, a nonzero
	// previous IP ID).
	IPIDStep  int  `json:"ipid_step,omitempty"`
	IPIDKnown bool `json:"ipid_known,omitempty"`
	// MAC is the source MAC when it differs from the direction's first MAC.
	MAC string `json:"mac,omitempty"`
	// ChallengeACK is the frame of a pure ACK from the peer right after it.
	ChallengeACK uint64 `json:"challenge_ack_frame,omitempty"`
	// AfterIdle is the time since the previous packet of the connection.
	AfterIdle float64 `json:"after_idle_s"`
	// TriggerDelay is the time since the last packet from the other side
	// (the segment the RST may answer), for the timing test against RTT.
	TriggerDelay float64 `json:"trigger_delay_s"`
	// ResumeGap is the idle gap the connection had before the traffic that
	// drew this RST (the gap before the last packet preceding it).
	ResumeGap float64 `json:"resume_gap_s"`
}

// Run is a retransmission run.
type Run struct {
	Seq        uint32  `json:"seq"`
	Count      int     `json:"count"`
	FirstFrame uint64  `json:"first_frame"`
	Span       float64 `json:"span_s"`
	Acked      bool    `json:"acked"`
}

// ESARefs ties a session to ESA mail-log entries (filled by package esalog).
type ESARefs struct {
	ICID       string   `json:"icid,omitempty"`
	DCID       string   `json:"dcid,omitempty"`
	MIDs       []string `json:"mids,omitempty"`
	Lines      []string `json:"lines,omitempty"`
	Match      string   `json:"match,omitempty"` // how it was matched
	Ambiguous  []string `json:"ambiguous,omitempty"`
	Consistent *bool    `json:"consistent,omitempty"`
	Note       string   `json:"note,omitempty"`
}
