package smtpstate

import "fmt"

// State is the phase of the SMTP dialogue. The transition function updates it
// optimistically when a command is seen and corrects it when the reply comes.
type State uint8

const (
	// StateConnect: TCP connected, no greeting seen yet.
	StateConnect State = iota
	// StateGreeted: a 2xx greeting was seen, no accepted HELO/EHLO yet.
	StateGreeted
	// StateHelo: HELO/EHLO accepted, no transaction open.
	StateHelo
	// StateMail: MAIL FROM sent or accepted, no recipient accepted yet.
	StateMail
	// StateRcpt: at least one RCPT TO accepted.
	StateRcpt
	// StateData: inside a DATA body (after DATA, until end of data).
	StateData
	// StateBDAT: inside BDAT chunks (until the LAST chunk's reply).
	StateBDAT
	// StateDataDone: end of data sent, the final reply not yet seen.
	StateDataDone
	// StateAuth: AUTH exchange in progress.
	StateAuth
	// StateTLS: after 220 to STARTTLS, or implicit TLS: the rest is opaque.
	StateTLS
	// StateQuit: QUIT sent.
	StateQuit
	// StateClosed: 221 to QUIT, or 421, seen.
	StateClosed
	// StateNotSMTP: the bytes were not an SMTP dialogue.
	StateNotSMTP
	// StateAfterGap: bytes missing from the capture broke the pairing of
	// commands and replies; the phase is unknown until a reply that can
	// answer only one command (354, 221, 220, 334, 235) re-synchronises it.
	StateAfterGap
)

var stateNames = [...]string{"connect", "greeted", "helo", "mail", "rcpt", "data", "bdat", "data_done", "auth", "tls", "quit", "closed", "not_smtp", "after_gap"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + itoa(int(s)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: it accepts exactly the
// names String gives.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("smtpstate: unknown state %q", b)
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
