package ending

// Params are the timers the rules compare idle gaps with. They come from
// the command line (--server-timeout, --firewall-idle), so re-reading saved
// records with other flags recomputes the endings.
type Params struct {
	// ServerTimeouts are known server idle timers in seconds (RFC 5321
	// command timeouts, the ESA's 300 s, --server-timeout).
	ServerTimeouts []float64
	// FirewallIdle is the shortest idle gap taken as a firewall's idle
	// expiry when a foreign RST or silence follows it.
	FirewallIdle float64
	// CaptureEndSlack: a session whose last packet is this close to the
	// end of the capture is "open at the end".
	CaptureEndSlack float64
}

// DefaultParams are the timers used when no flag changes them.
var DefaultParams = Params{
	ServerTimeouts:  []float64{60, 120, 180, 300, 600, 900},
	FirewallIdle:    5,
	CaptureEndSlack: 5,
}

// Named thresholds. Each has boundary rows in the tests.
const (
	// timerLow, timerHigh: an idle gap matches a timer T when it lies in
	// [T·timerLow, T·timerHigh] (a server checks its timer late, rarely
	// early).
	timerLow, timerHigh = 0.9, 1.25
	// silentDropRun is the shortest run of unacknowledged retransmissions
	// of one segment taken as a drop.
	silentDropRun = 3
	// simultaneousClose: FINs of both sides this close (seconds) are one
	// simultaneous close.
	simultaneousClose = 0.001
	// ttlBaselineMin is how many packets a direction needs before a
	// different TTL on its FIN or RST means anything.
	ttlBaselineMin = 2
)
