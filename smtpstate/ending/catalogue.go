package ending

// Verdict is the name of a way a session ended. The names are stable: the
// JSON output, the README table, the ESA consistency check and the tests
// read them from Catalogue.
type Verdict string

// The verdicts, in the order of Catalogue.
const (
	QuitAfterMessage   Verdict = "quit_after_message"
	QuitAfterRejection Verdict = "quit_after_rejection"
	QuitNoTransaction  Verdict = "quit_no_transaction"
	QuitMidTransaction Verdict = "quit_mid_transaction"
	QuitThenRST        Verdict = "quit_then_rst"
	QuitNoWait         Verdict = "quit_no_wait"
	QuitFateUnseen     Verdict = "quit_fate_unseen"
	ClientFINNoQuit    Verdict = "client_fin_no_quit"
	ServerCloseReply   Verdict = "server_close_reply"
	ServerTimeout      Verdict = "server_timeout"
	ServerFINNoReply   Verdict = "server_fin_no_reply"
	ClientRST          Verdict = "client_rst"
	ServerRST          Verdict = "server_rst"
	MiddleboxRST       Verdict = "middlebox_rst"
	FirewallIdleExpiry Verdict = "firewall_idle_expiry"
	SilentDrop         Verdict = "silent_drop"
	HandshakeFailed    Verdict = "handshake_failed"
	TLSEnd             Verdict = "tls_end"
	CaptureEnded       Verdict = "capture_ended"
	Undetermined       Verdict = "undetermined"
)

// Family groups verdicts by who or what ended the session.
type Family string

// The families.
const (
	FamilyQuit      Family = "quit"      // an SMTP QUIT was exchanged
	FamilyClient    Family = "client"    // the client closed without QUIT
	FamilyServer    Family = "server"    // the server ended the session
	FamilyPath      Family = "path"      // a device on the path ended it
	FamilyHandshake Family = "handshake" // no connection was established
	FamilyTLS       Family = "tls"       // the end is inside TLS
	FamilyOpen      Family = "open"      // no end was decided
)

// Info is one row of the catalogue.
type Info struct {
	Verdict Verdict
	Family  Family
	// Meaning is the one-line meaning (the README's "meaning" column).
	Meaning string
	// ESA is what an ESA logs for this ending when no transaction was open;
	// ESAOpen when one was (nil: the ESA logs nothing, or cannot know).
	ESA, ESAOpen []string
}

var (
	esaClose    = []string{"ICID <n> close"}
	esaLost     = []string{"ICID <n> lost", "ICID <n> close"}
	esaLostOpen = []string{"ICID <n> lost", "Message aborted MID <m> Receiving aborted", "Message finished MID <m> aborted", "ICID <n> close"}
	esaAborted  = []string{"Message aborted MID <m> Receiving aborted", "ICID <n> close"}
	esaBySender = []string{"Message aborted MID <m> Receiving aborted by sender", "ICID <n> close"}
)

// Catalogue lists every verdict once. The README's verdict table is checked
// against it (TestREADMEVerdicts).
var Catalogue = []Info{
	{QuitAfterMessage, FamilyQuit, "QUIT/221 after the last message was accepted", esaClose, esaClose},
	{QuitAfterRejection, FamilyQuit, `QUIT/221 after the transaction was refused — with its MID still open (every RCPT refused) the ESA logs "Receiving aborted by sender"`, esaClose, esaBySender},
	{QuitNoTransaction, FamilyQuit, "QUIT/221 without a message", esaClose, esaClose},
	{QuitMidTransaction, FamilyQuit, `QUIT inside a transaction — the ESA logs "Receiving aborted by sender"`, esaBySender, esaBySender},
	{QuitThenRST, FamilyQuit, "QUIT/221, then a RST: a normal abortive close of many clients", esaClose, esaClose},
	{QuitNoWait, FamilyQuit, "QUIT, and the client closed before the 221", esaClose, esaClose},
	{QuitFateUnseen, FamilyQuit, "only the client's side is captured: it sent its messages to the end of data, then QUIT; whether they were accepted is in the server's replies, not captured", esaClose, nil},
	{ClientFINNoQuit, FamilyClient, "the client closed without QUIT (phase given)", esaLost, esaLostOpen},
	{ServerCloseReply, FamilyServer, "the server replied 4xx/5xx (421, 554 …) and closed", esaClose, esaAborted},
	{ServerTimeout, FamilyServer, "the server closed after an idle client (timeout text, or a known timer)", esaClose, esaAborted},
	{ServerFINNoReply, FamilyServer, "the server closed with no 221/421 while the client was active", esaLost, esaLostOpen},
	{ClientRST, FamilyClient, "a RST the real client sent", esaLost, esaLostOpen},
	{ServerRST, FamilyServer, "a RST the real server sent", esaLost, esaLostOpen},
	{MiddleboxRST, FamilyPath, "a RST its purported sender did not send (TTL, IP ID, sequence, data after it, RSTs both ways, challenge ACK, MAC, payload)", esaLost, esaLostOpen},
	{FirewallIdleExpiry, FamilyPath, "an idle gap, then the firewall's RST — or silence — when traffic resumed", esaLost, esaLostOpen},
	{SilentDrop, FamilyPath, "retransmissions never acknowledged while the other side is seen", esaLost, esaLostOpen},
	{HandshakeFailed, FamilyHandshake, "refused or never answered", nil, nil},
	{TLSEnd, FamilyTLS, "a FIN inside TLS: QUIT (if any) was encrypted; judged from TCP facts", esaLost, esaLostOpen},
	{CaptureEnded, FamilyOpen, "the capture stops with the session open", nil, nil},
	{Undetermined, FamilyOpen, "the evidence does not decide — the reason says what is missing", esaLost, esaLostOpen},
}

var byName = func() map[string]int {
	m := make(map[string]int, len(Catalogue))
	for i, c := range Catalogue {
		m[string(c.Verdict)] = i
	}
	return m
}()

// Lookup finds a verdict by its name as written in a record.
func Lookup(name string) (Info, bool) {
	i, ok := byName[name]
	if !ok {
		return Info{}, false
	}
	return Catalogue[i], true
}

// FamilyOf is the family of a verdict name ("" if it is not in the
// catalogue).
func FamilyOf(name string) Family {
	c, _ := Lookup(name)
	return c.Family
}

// Info returns the verdict's catalogue row.
func (v Verdict) Info() Info {
	c, _ := Lookup(string(v))
	return c
}
