package smtpstate

// Ending is the verdict on how a session ended, with its evidence. Package
// smtpstate/ending computes it from the finished Record (a pure function of
// the published fields); this is only its data. The verdict names and what
// each means are in ending.Catalogue.
type Ending struct {
	Verdict    string `json:"verdict"`
	Who        string `json:"who"`       // client, server, middlebox, unknown
	Mechanism  string `json:"mechanism"` // quit, fin, rst, reply, none, timeout
	Phase      State  `json:"phase"`
	Confidence string `json:"confidence"` // high, medium, low
	Reason     string `json:"reason"`
	// Rule is the id of the rule of the ending table that decided.
	Rule     string     `json:"rule"`
	Evidence []Evidence `json:"evidence"`
	RunnerUp string     `json:"runner_up,omitempty"`
	Confirm  string     `json:"confirm,omitempty"`
	// MessageLost: the client had started a message (MAIL accepted and data
	// sent) and the session ended before its final reply.
	MessageLost bool `json:"message_lost"`
	// DuplicateRisk: end of data was sent but no final reply seen (RFC 5321
	// §4.5.3.2.6): the sender may retry a message the server kept.
	DuplicateRisk bool     `json:"duplicate_risk"`
	ESAExpect     []string `json:"esa_expect,omitempty"`
	Flags         []string `json:"flags,omitempty"`
	// Downgrades says why the confidence is lower than the rule's: one
	// "flag: sentence" per downgrade that applied.
	Downgrades []string `json:"downgrades,omitempty"`
	// CapturePoint is inferred from TTLs: "at_client", "at_server",
	// "between" or "unknown".
	CapturePoint string `json:"capture_point"`
	Origin       *Score `json:"rst_origin,omitempty"`
}

// Evidence is one fact a reader can check in the capture.
type Evidence struct {
	Frame uint64 `json:"frame,omitempty"`
	TS    Time   `json:"ts"`
	Text  string `json:"text"`
	Rule  string `json:"rule,omitempty"` // the rule (or downgrade) that cited it
}

// Score is the additive origin score of a RST (classification.md §6.4).
type Score struct {
	Middlebox int      `json:"middlebox"`
	Endpoint  int      `json:"endpoint"`
	Items     []string `json:"items"`
}
