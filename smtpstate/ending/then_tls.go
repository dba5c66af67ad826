package ending

import (
	"github.com/smtpcap/smtpcap/smtpstate"
)

// Inside TLS the commands are encrypted, but not their sizes: a QUIT is a
// record as short as the shortest command the client sent (DATA, QUIT:
// four letters and CRLF, plus the cipher suite's fixed overhead, which the
// session's own shortest record measures), the 221 a short record right
// after it, and Postfix and the ESA close at once after the 221.

// insideTLS: the session ended in the TLS phase and TLS records were seen
// (a STARTTLS answered by 220 and then nothing is not a session inside
// TLS: it is judged as a plain one).
func insideTLS(f *facts) bool {
	t := f.r.TLSInfo
	return f.r.PhaseAtEnd == stateTLS && t != nil && t.ClientRecords+t.ServerRecords > 0
}

// quitGapAllowance is how much longer than the shortest client record a
// QUIT record may be (padding), and replyAllowance how much longer than
// the QUIT record the 221 may be ("221 2.0.0 Bye" and a host name).
const (
	quitGapAllowance = 2
	replyAllowance   = 64
	closeAfter221    = 2.0 // seconds
	bodyRecord       = 64  // a record this much longer than a command carries message text
)

// tlsQuit finds the QUIT and 221 by their record sizes; ok is false when
// the records do not show them.
func tlsQuit(f *facts) (quit, reply smtpstate.TLSRecord, message, ok bool) {
	t, fc := f.r.TLSInfo, f.firstClose
	// The close after the 221 may come from either side first (the client
	// that read the 221 may close before the server does).
	if t == nil || t.Garbled || t.ClientMinApp == 0 || fc == nil || fc.kind != "fin" {
		return quit, reply, false, false
	}
	ci := -1
	for i := len(t.ClientTail) - 1; i >= 0; i-- {
		if t.ClientTail[i].Type == 23 {
			ci = i
			break
		}
	}
	if ci < 0 || t.ClientTail[ci].Len > t.ClientMinApp+quitGapAllowance {
		return quit, reply, false, false
	}
	quit = t.ClientTail[ci]
	found := false
	for _, s := range t.ServerTail {
		if s.Frame <= quit.Frame || s.Type != 23 {
			continue
		}
		if !found {
			if s.Len > quit.Len+replyAllowance {
				return quit, reply, false, false
			}
			reply, found = s, true
		} else if s.Len > reply.Len {
			return quit, reply, false, false // more than a close_notify after the "221"
		}
	}
	if !found || fc.ts.Sub(reply.TS.Time).Seconds() > closeAfter221 || fc.frame < reply.Frame {
		return quit, reply, false, false
	}
	for _, c := range t.ClientTail[:ci] {
		if c.Type == 23 && c.Len >= t.ClientMinApp+bodyRecord {
			message = true
		}
	}
	return quit, reply, message, true
}

func thenTLSQuit(f *facts) Decision {
	quit, reply, message, _ := tlsQuit(f)
	v := QuitNoTransaction
	if message {
		v = QuitAfterMessage
	}
	why := "the client quit without sending a message"
	if message {
		why = "the client quit after sending a message (whether it was accepted is encrypted)"
	}
	d := decision(v, "client", "quit", "medium", why+"; inferred from TLS record sizes: a command-sized record, a short reply, then the close")
	d.ev(quit.Frame, quit.TS, "client TLS record of %d bytes, the size of its shortest command (QUIT)", quit.Len)
	d.ev(reply.Frame, reply.TS, "server TLS record of %d bytes: a short reply (221)", reply.Len)
	d.ev(f.firstClose.frame, f.firstClose.ts, "%s FIN %.3fs later", f.firstClose.dir, f.firstClose.ts.Sub(reply.TS.Time).Seconds())
	if message {
		d.ev(0, noTS, "before it, client records longer than a command: a message was sent (its acceptance is encrypted)")
	}
	d.Flags = []string{"tls_inferred"}
	d.RunnerUp = string(TLSEnd) + ": a FIN inside TLS whose cause the records do not show"
	d.Confirm = "the ESA log (ICID close without lost; Message finished ... done), or the server's log (quit=1)"
	return d
}
