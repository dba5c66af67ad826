package esalog

import (
	"strconv"
	"strings"
	"time"
)

// Kind is the type of a mail-log line.
type Kind uint8

// Line kinds (shared/esa/FORMAT.md §3–§6).
const (
	KindUnknown Kind = iota
	KindBeginLogfile
	KindVersion
	KindTimeOffset
	KindStatus
	KindNewICID         // New SMTP ICID n interface X (ip) address a reverse dns host h verified v
	KindHAT             // ICID n ACCEPT|REJECT|… SG …
	KindICIDTLS         // ICID n TLS success|failed …
	KindStartMID        // Start MID m ICID n
	KindMailFrom        // MID m ICID n From: <a>
	KindRcptTo          // MID m ICID n RID r To: <a>
	KindRcptRejected    // MID m ICID n To: <a> Rejected by …
	KindMessageID       // MID m Message-ID '…'
	KindSubject         // MID m Subject …
	KindReady           // MID m ready b bytes from <a>
	KindAborted         // Message aborted MID m <reason>
	KindFinished        // Message finished MID m done|aborted
	KindICIDLost        // ICID n lost
	KindICIDClose       // ICID n close
	KindICIDDisconnect  // ICID n disconnected address a, <why>
	KindReceivingFailed // ICID n Receiving Failed: <why>
	KindInjectionFailed // ICID n Injection Failed: <why>
	KindNewDCID         // New SMTP DCID d interface ip address a [port p]
	KindDCIDTLS         // DCID d TLS …
	KindDeliveryStart   // Delivery start DCID d MID m to RID [r]
	KindMessageDone     // Message done DCID d MID m to RID [r]
	KindResponse        // MID m RID [r] Response '…'
	KindDCIDClose       // DCID d close
	KindBounced         // Bounced: DCID d MID m …
	KindDelayed         // Delayed: DCID d MID m …
	KindConnError       // Connection Error: DCID d …
	KindSplit           // MID m was split creating MID c …
	KindGenerated       // MID c was generated based on MID m … / generated for bounce of MID m
	KindRewritten       // MID m rewritten to MID c …
	KindMIDOther        // MID m <anything else: scanning verdicts, quarantine, …>
	KindICIDOther       // ICID n <anything else>
	KindInjection       // n Sent|Rcvd: '…' (injection debug log)
	KindPending         // MID|Message m to RID [r] pending till …
	KindDoubleBounce    // Double bounce: …
	KindDCIDOther       // Mail delivery client with DCID d …, SMTP client connection killed DCID: d
	KindDNS             // DNS Error / DNS Temporary Failure …
	KindDropping        // Dropping connection due to … ICID n
)

var kindNames = [...]string{"unknown", "begin_logfile", "version", "time_offset", "status", "new_icid", "hat", "icid_tls",
	"start_mid", "mail_from", "rcpt_to", "rcpt_rejected", "message_id", "subject", "ready", "aborted", "finished",
	"icid_lost", "icid_close", "icid_disconnect", "receiving_failed", "injection_failed", "new_dcid", "dcid_tls",
	"delivery_start", "message_done", "response", "dcid_close", "bounced", "delayed", "conn_error", "split",
	"generated", "rewritten", "mid_other", "icid_other", "injection", "pending", "double_bounce", "dcid_other", "dns",
	"dropping"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Line is one parsed mail-log line. Fields not carried by its kind are zero.
type Line struct {
	File  string
	No    int       // 1-based line number in File
	Local time.Time // appliance-local wall clock (location UTC, zone unknown)
	Level string
	Kind  Kind
	ICID  int64
	MID   int64
	DCID  int64
	RID   int64
	// Child is the new MID of split/generated/rewritten lines.
	Child int64
	// Addr is the remote address (client for ICIDs, server for DCIDs),
	// Iface the appliance's own address, IfaceName the listener interface.
	Addr, Iface, IfaceName string
	Port                   int
	Host                   string // reverse DNS host
	Email                  string // From/To address
	Action                 string // HAT action, TLS result, finished result
	Reason                 string // abort / failure / disconnect reason, bounce text
	Bytes                  int64
	Offset                 int // TimeOffset: seconds east of UTC
	Msg                    string
}

// ParseMessage classifies the message part of a line (after the envelope).
func ParseMessage(msg string, l *Line) {
	l.Msg = msg
	l.Kind = KindUnknown
	switch {
	case strings.HasPrefix(msg, "ICID "):
		parseICID(msg[5:], l)
	case strings.HasPrefix(msg, "MID "):
		parseMID(msg[4:], l)
	case strings.HasPrefix(msg, "Start MID "):
		rest := msg[10:]
		l.MID, rest = num(rest)
		if strings.HasPrefix(rest, " ICID ") {
			l.ICID, _ = num(rest[6:])
			l.Kind = KindStartMID
		}
	case strings.HasPrefix(msg, "Message aborted MID "):
		var rest string
		l.MID, rest = num(msg[20:])
		l.Reason = strings.TrimSpace(rest)
		l.Kind = KindAborted
	case strings.HasPrefix(msg, "Message finished MID "):
		var rest string
		l.MID, rest = num(msg[21:])
		l.Action = strings.TrimSpace(rest)
		l.Kind = KindFinished
	case strings.HasPrefix(msg, "New SMTP ICID "), strings.HasPrefix(msg, "New smtp ICID "):
		parseNewICID(msg[14:], l)
	case strings.HasPrefix(msg, "New SMTP DCID "):
		parseNewDCID(msg[14:], l)
	case strings.HasPrefix(msg, "DCID "):
		var rest string
		l.DCID, rest = num(msg[5:])
		rest = strings.TrimSpace(rest)
		switch {
		case rest == "close":
			l.Kind = KindDCIDClose
		case strings.HasPrefix(rest, "TLS "):
			l.Kind, l.Action = KindDCIDTLS, strings.TrimSpace(rest[4:])
		default:
			l.Kind, l.Reason = KindDCIDTLS, rest
		}
	case strings.HasPrefix(msg, "Delivery start DCID "), strings.HasPrefix(msg, "Message done DCID "):
		l.Kind = KindDeliveryStart
		rest := msg[20:]
		if msg[0] == 'M' {
			l.Kind, rest = KindMessageDone, msg[18:]
		}
		l.DCID, rest = num(rest)
		if strings.HasPrefix(rest, " MID ") {
			l.MID, rest = num(rest[5:])
		}
		l.Reason = strings.TrimSpace(rest)
	case strings.HasPrefix(msg, "Bounced: "), strings.HasPrefix(msg, "Delayed: "):
		l.Kind = KindBounced
		if msg[0] == 'D' {
			l.Kind = KindDelayed
		}
		rest := strings.TrimPrefix(msg[9:], "DCID")
		rest = strings.TrimPrefix(rest, ":")
		l.DCID, rest = num(strings.TrimSpace(rest))
		if i := strings.Index(rest, "MID "); i >= 0 {
			l.MID, rest = num(rest[i+4:])
		} else if i := strings.Index(rest, "Message "); i >= 0 {
			l.MID, rest = num(rest[i+8:])
		}
		l.Reason = strings.TrimSpace(rest)
	case strings.HasPrefix(msg, "Connection Error: "):
		l.Kind = KindConnError
		if i := strings.Index(msg, "DCID"); i >= 0 {
			rest := strings.TrimPrefix(msg[i+4:], ":")
			l.DCID, _ = num(strings.TrimSpace(rest))
		}
		if i := strings.Index(msg, " IP: "); i >= 0 {
			l.Addr, _, _ = strings.Cut(msg[i+5:], " ")
		}
		if i := strings.Index(msg, "reason: "); i >= 0 {
			l.Reason = msg[i+8:]
		}
	case strings.HasPrefix(msg, "Time offset from UTC: "):
		v, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(msg[22:]), " seconds"))
		l.Offset, l.Kind = v, KindTimeOffset
	case msg == "Begin Logfile":
		l.Kind = KindBeginLogfile
	case strings.HasPrefix(msg, "Version: "):
		l.Kind = KindVersion
	case strings.HasPrefix(msg, "Status: "):
		l.Kind = KindStatus
	case strings.HasPrefix(msg, "Message ") && strings.Contains(msg, " pending till "):
		l.MID, _ = num(msg[8:])
		l.Kind = KindPending
	case strings.HasPrefix(msg, "Double bounce: "):
		l.Kind, l.Reason = KindDoubleBounce, msg[15:]
		if i := strings.Index(msg, "MID "); i >= 0 {
			l.MID, _ = num(msg[i+4:])
		} else if i := strings.Index(msg, "Message "); i >= 0 {
			l.MID, _ = num(msg[i+8:])
		}
	case strings.HasPrefix(msg, "Possible Delivery: DCID: "):
		var rest string
		l.DCID, rest = num(msg[25:])
		if strings.HasPrefix(rest, " MID ") {
			l.MID, _ = num(rest[5:])
		}
		l.Kind, l.Reason = KindDCIDOther, "possible delivery"
	case strings.HasPrefix(msg, "Incoming connection (ICID "):
		// message-tracking wording, seen in support cases
		var rest string
		l.ICID, rest = num(msg[26:])
		l.Kind, l.Reason = KindICIDOther, strings.TrimPrefix(rest, ") ")
		if strings.Contains(rest, "disconnected") {
			l.Kind = KindICIDDisconnect
		} else if strings.HasSuffix(rest, "lost.") {
			l.Kind = KindICIDLost
		}
	case strings.HasPrefix(msg, "Mail delivery client with DCID "):
		l.DCID, _ = num(msg[31:])
		l.Kind, l.Reason = KindDCIDOther, msg
	case strings.HasPrefix(msg, "SMTP client connection killed DCID: "):
		l.DCID, _ = num(msg[36:])
		l.Kind, l.Reason = KindDCIDOther, "connection killed"
	case strings.HasPrefix(msg, "DNS "):
		l.Kind, l.Reason = KindDNS, msg
	case strings.HasPrefix(msg, "Dropping connection due to "):
		l.Kind, l.Reason = KindDropping, msg
		if i := strings.LastIndex(msg, "ICID "); i >= 0 {
			l.ICID, _ = num(msg[i+5:])
		}
		if i := strings.Index(msg, "host=('"); i >= 0 {
			l.Addr, _, _ = strings.Cut(msg[i+7:], "'")
		}
	case strings.HasPrefix(msg, "SMTP server connection killed ICID: "):
		l.ICID, _ = num(msg[36:])
		l.Kind, l.Reason = KindICIDDisconnect, "connection killed"
	default:
		// Injection debug: "<icid> Sent: '…'" / "<icid> Rcvd: '…'"
		if n, rest := num(msg); n > 0 && (strings.HasPrefix(rest, " Sent: ") || strings.HasPrefix(rest, " Rcvd: ")) {
			l.ICID, l.Kind, l.Action, l.Reason = n, KindInjection, rest[1:5], rest[7:]
		}
	}
	if l.ICID < 0 || l.MID < 0 || l.DCID < 0 {
		// An identifier out of range (a 400-digit "ICID"): the line is not
		// what it looks like.
		l.Kind, l.ICID, l.MID, l.DCID = KindUnknown, 0, 0, 0
	}
}

func parseICID(s string, l *Line) {
	var rest string
	l.ICID, rest = num(s)
	rest = strings.TrimPrefix(rest, " ")
	l.Kind = KindICIDOther
	switch {
	case rest == "close":
		l.Kind = KindICIDClose
	case rest == "lost":
		l.Kind = KindICIDLost
	case strings.HasPrefix(rest, "TLS "):
		l.Kind, l.Action = KindICIDTLS, strings.TrimSpace(rest[4:])
	case strings.HasPrefix(rest, "Receiving Failed: "):
		l.Kind, l.Reason = KindReceivingFailed, rest[18:]
	case strings.HasPrefix(rest, "Injection Failed: "):
		l.Kind, l.Reason = KindInjectionFailed, rest[18:]
	case strings.HasPrefix(rest, "disconnected address "):
		l.Kind = KindICIDDisconnect
		l.Addr, l.Reason, _ = strings.Cut(rest[21:], ", ")
	case strings.HasPrefix(rest, "MID "):
		// "ICID n MID m Invalid recipient address: …"
		l.MID, rest = num(rest[4:])
		l.Reason = strings.TrimSpace(rest)
	default:
		for _, a := range []string{"ACCEPT", "RELAY", "REJECT", "TCPREFUSE", "CONTINUE"} {
			if strings.HasPrefix(rest, a+" ") {
				l.Kind, l.Action, l.Reason = KindHAT, a, rest[len(a)+1:]
				return
			}
		}
		if strings.HasPrefix(rest, "SG ") || strings.HasPrefix(rest, "SBRS ") {
			l.Kind, l.Reason = KindHAT, rest
			return
		}
		l.Reason = rest
	}
}

func parseMID(s string, l *Line) {
	var rest string
	l.MID, rest = num(s)
	rest = strings.TrimPrefix(rest, " ")
	l.Kind = KindMIDOther
	switch {
	case strings.HasPrefix(rest, "ICID "):
		l.ICID, rest = num(rest[5:])
		rest = strings.TrimPrefix(rest, " ")
		switch {
		case strings.HasPrefix(rest, "From: "):
			l.Kind, l.Email = KindMailFrom, angle(rest[6:])
		case strings.HasPrefix(rest, "RID "):
			l.RID, rest = num(rest[4:])
			if strings.HasPrefix(rest, " To: ") {
				l.Kind, l.Email = KindRcptTo, angle(rest[5:])
			}
		case strings.HasPrefix(rest, "To: "):
			l.Kind, l.Email = KindRcptRejected, angle(rest[4:])
			if i := strings.Index(rest, " Rejected by "); i >= 0 {
				l.Reason = rest[i+1:]
			}
		default:
			l.Reason = rest
		}
	case strings.HasPrefix(rest, "ready "):
		l.Bytes, rest = num(rest[6:])
		l.Kind = KindReady
		if i := strings.Index(rest, "from "); i >= 0 {
			l.Email = angle(rest[i+5:])
		}
	case strings.HasPrefix(rest, "Message-ID "):
		l.Kind, l.Reason = KindMessageID, strings.Trim(rest[11:], "'\"")
	case strings.HasPrefix(rest, "Subject "):
		l.Kind, l.Reason = KindSubject, rest[8:]
	case strings.HasPrefix(rest, "was split creating MID "):
		l.Kind = KindSplit
		l.Child, rest = num(rest[23:])
		l.Reason = strings.TrimSpace(rest)
	case strings.HasPrefix(rest, "was generated based on MID "), strings.HasPrefix(rest, "generated based on MID "):
		// the line's own MID is the child
		l.Kind, l.Child = KindGenerated, l.MID
		i := strings.Index(rest, "MID ")
		l.MID, rest = num(rest[i+4:])
		l.Reason = strings.TrimSpace(rest)
	case strings.HasPrefix(rest, "generated for bounce of MID "), strings.HasPrefix(rest, "was generated for bounce of MID "):
		l.Kind, l.Child = KindGenerated, l.MID
		i := strings.Index(rest, "MID ")
		l.MID, _ = num(rest[i+4:])
		l.Reason = "bounce"
	case strings.HasPrefix(rest, "rewritten to "):
		l.Kind = KindRewritten
		r := strings.TrimPrefix(rest[13:], "MID ")
		l.Child, r = num(r)
		l.Reason = strings.TrimSpace(r)
	case strings.Contains(rest, " pending till "):
		l.Kind = KindPending
	case strings.HasPrefix(rest, "RID [") && strings.Contains(rest, "Response "):
		l.Kind = KindResponse
		if i := strings.Index(rest, "Response "); i >= 0 {
			l.Reason = strings.Trim(rest[i+9:], "'")
		}
	default:
		l.Reason = rest
	}
}

func parseNewICID(s string, l *Line) {
	var rest string
	l.ICID, rest = num(s)
	l.Kind = KindNewICID
	rest = strings.TrimPrefix(rest, " interface ")
	// "Data 1 (68.232.141.109) address 176.227.203.114 reverse dns host h verified no"
	if i := strings.LastIndex(rest, " address "); i >= 0 {
		iface := rest[:i]
		after := rest[i+9:]
		if j := strings.LastIndexByte(iface, '('); j >= 0 && strings.HasSuffix(iface, ")") {
			l.IfaceName, l.Iface = strings.TrimSpace(iface[:j]), iface[j+1:len(iface)-1]
		} else {
			l.IfaceName = iface
		}
		l.Addr, after, _ = strings.Cut(after, " ")
		if k := strings.Index(after, "reverse dns host "); k >= 0 {
			h := strings.TrimSpace(after[k+17:])
			l.Host, _, _ = strings.Cut(h, " ")
			if v := strings.LastIndex(after, "verified "); v >= 0 {
				l.Action = strings.TrimSpace(after[v+9:])
			}
		}
	}
}

func parseNewDCID(s string, l *Line) {
	var rest string
	l.DCID, rest = num(s)
	l.Kind = KindNewDCID
	f := strings.Fields(rest)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "interface":
			l.Iface = f[i+1]
		case "address":
			l.Addr = f[i+1]
		case "port":
			l.Port, _ = strconv.Atoi(f[i+1])
		}
	}
}

// num parses a leading decimal number and returns the rest. A number of
// more than 18 digits is no ESA identifier: it returns -1 (and the line is
// taken as one of unknown type), never a clamped value.
func num(s string) (int64, string) {
	i := 0
	var v int64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if i == 18 {
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			return -1, s[i:]
		}
		v = v*10 + int64(s[i]-'0')
		i++
	}
	return v, s[i:]
}

// angle returns the address inside <…>, or the first word.
func angle(s string) string {
	if strings.HasPrefix(s, "<") {
		if j := strings.IndexByte(s, '>'); j >= 0 {
			return s[1:j]
		}
	}
	w, _, _ := strings.Cut(s, " ")
	return w
}
