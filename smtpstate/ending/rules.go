package ending

// Rule is one row of the ending table.
type Rule struct {
	ID string
	// Doc says in one line when the rule applies and what it concludes.
	Doc  string
	When func(f *facts) bool
	Then func(f *facts) Decision
}

// Rules is the ending table. The first rule whose When holds decides, so the
// order is the precedence (as the if/else order of Zeek's conn_state):
//
//	handshake    no SYN-ACK: nothing else happened on the connection
//	one side     only one direction captured: decide only what that side shows
//	silent drop  an unacknowledged retransmission run before any close
//	quit         a QUIT before the first close explains the close
//	open         no FIN or RST at all (with capture loss the close may be
//	             among the lost packets: never a confident capture_ended)
//	loss         no QUIT, and the client's bytes (or FIN) are missing before
//	             the close: nothing decides
//	firewall     the server's timeout notice met a firewall that had already
//	             forgotten the connection (RST in the client's name, or DROP)
//	server       the server announced the end (421, unsolicited 4xx/5xx), or
//	             sent the first FIN outside TLS
//	rst          a RST was the first close: its origin score decides whose
//	tls          a FIN inside TLS: only TCP facts remain
//	client       the client's FIN without QUIT
var Rules = []Rule{
	{"refused", "the SYN was answered with a RST: connection refused (handshake_failed, server)",
		func(f *facts) bool { return synOnly(f) && len(f.r.Server.RSTs) > 0 }, thenRefused},
	{"syn_unanswered", "only SYNs from the client, nothing from the server (handshake_failed)",
		func(f *facts) bool {
			return synOnly(f) && f.r.Server.Packets == 0 && f.r.Client.Packets == int64(f.r.Client.SYNs)
		}, thenSYNUnanswered},

	{"client_only_quit_no_txn", "only the client captured; it quit without MAIL (quit_no_transaction, medium)",
		func(f *facts) bool { return f.clientOnly && f.quitCovers && len(f.r.Trans) == 0 }, thenClientOnlyQuitNoTxn},
	{"client_only_quit", "only the client captured; it quit after MAIL: acceptance unknown (undetermined)",
		func(f *facts) bool { return f.clientOnly && f.quitCovers }, thenClientOnlyQuit},
	{"client_only_close", "only the client captured; it closed without QUIT (undetermined)",
		func(f *facts) bool { return f.clientOnly && f.firstClose != nil }, thenClientOnlyClose},
	{"client_only_open", "only the client captured; no close (undetermined)",
		func(f *facts) bool { return f.clientOnly }, thenOneSidedOpen},
	{"server_only_timeout", "only the server captured; it said 421 with timeout text (server_timeout, medium)",
		func(f *facts) bool { return f.serverOnly && f.lastCode == 421 && f.timeoutText }, thenServerOnlyTimeout},
	{"server_only_221", "only the server captured; it answered a QUIT with 221 (undetermined)",
		func(f *facts) bool { return f.serverOnly && f.lastCode == 221 }, thenServerOnly221},
	{"server_only_close", "only the server captured; it closed (undetermined)",
		func(f *facts) bool { return f.serverOnly && f.firstClose != nil }, thenServerOnlyClose},
	{"server_only_open", "only the server captured; no close (undetermined)",
		func(f *facts) bool { return f.serverOnly }, thenOneSidedOpen},

	{"idle_then_drop", "traffic resumed after an idle gap and was never acknowledged (firewall_idle_expiry by DROP)",
		func(f *facts) bool { return f.silentDrop != nil && idleBeforeDrop(f) }, thenIdleThenDrop},
	{"silent_drop", "retransmissions never acknowledged while the peer is seen (silent_drop)",
		func(f *facts) bool { return f.silentDrop != nil }, thenSilentDrop},

	{"quit_gap", "QUIT, but capture loss broke the command/reply pairing (undetermined)",
		func(f *facts) bool { return f.quitCovers && f.sequenceBroken }, thenQuitGap},
	{"quit_no_wait", "QUIT, and the client closed before the 221 (quit_no_wait)",
		func(f *facts) bool { return f.quitCovers && quitNoWait(f) }, thenQuitNoWait},
	{"quit_then_rst", "QUIT, then a RST from either side (quit_then_rst)",
		func(f *facts) bool { return f.quitCovers && rstAfterQuit(f) != nil }, thenQuitThenRST},
	{"quit", "QUIT before the first close: the transactions name the quit_* verdict",
		func(f *facts) bool { return f.quitCovers }, thenQuit},

	{"evicted", "no close; the session table evicted the session (undetermined)",
		func(f *facts) bool { return f.firstClose == nil && f.r.EndReason == "evicted" }, thenEvicted},
	{"reused", "no close; a new connection (new ISN) reused the 4-tuple while this one was open (undetermined)",
		func(f *facts) bool { return f.firstClose == nil && f.r.EndReason == "reused" }, thenReused},
	{"open_after_loss", "no FIN or RST, but the capture lost bytes of this session: its close may be lost too (capture_ended, low; undetermined if it went quiet well before the capture ended)",
		func(f *facts) bool { return f.firstClose == nil && f.captureLoss }, thenOpenAfterLoss},
	{"open_at_end", "no FIN or RST: the capture ends with the session open (capture_ended)",
		func(f *facts) bool { return f.firstClose == nil }, thenOpenAtEnd},

	{"quit_inferred", "no QUIT in the capture, but the server's 221 answers one: the QUIT was lost (quit_*, medium)",
		quitInferred, thenQuitInferred},
	{"close_after_client_loss", "no QUIT seen, but bytes the client sent are missing before the close: a QUIT may be among them (undetermined)",
		closeAfterClientLoss, thenCloseAfterClientLoss},
	{"idle_expiry_answered", "the server's closing reply after an idle client drew a RST in the client's name that the client did not send (firewall_idle_expiry)",
		idleExpiryAnswered, thenIdleExpiryAnswered},
	{"idle_expiry_dropped", "the server's closing reply or FIN after an idle client was never acknowledged, the client silent (firewall_idle_expiry by DROP)",
		idleExpiryDropped, thenIdleExpiryDropped},
	{"server_timeout", "the server ended after an idle client: timeout text or a matched timer (server_timeout)",
		func(f *facts) bool { return serverEnds(f) && serverTimedOut(f) }, thenServerTimeout},
	{"server_close_reply", "the server refused with 4xx/5xx and closed (server_close_reply)",
		func(f *facts) bool { return serverEnds(f) && serverRefused(f) }, thenServerCloseReply},
	{"server_close_after_loss", "the server closed after bytes the capture lost (undetermined)",
		func(f *facts) bool {
			return serverEnds(f) && (f.r.Server.AckedUnseen > 0 || f.r.Server.GapBytes > 0)
		}, thenServerCloseAfterLoss},
	{"server_fin", "the server closed with no reply while the client was active (server_fin_no_reply)",
		serverEnds, thenServerFIN},

	{"idle_then_rst", "a middlebox's RST after an idle gap (firewall_idle_expiry)",
		func(f *facts) bool {
			return firstRST(f) && f.rstMargin >= marginMiddlebox && f.firstClose.rst.ResumeGap >= f.p.FirewallIdle
		}, thenIdleThenRST},
	{"middlebox_rst", "the RST's origin score says a middlebox sent it (middlebox_rst)",
		func(f *facts) bool { return firstRST(f) && f.rstMargin >= marginMiddlebox }, thenMiddleboxRST},
	{"rst_inconclusive", "weak middlebox evidence, or strong evidence both ways (undetermined)",
		func(f *facts) bool {
			o := f.rstOrigin
			return firstRST(f) && (f.rstMargin >= marginInconclusive || o.Middlebox >= strongMiddlebox && f.rstMargin >= conflictFloor)
		}, thenRSTInconclusive},
	{"client_side_reset", "the client's host answers with a no-state RST mid-session without having sent a FIN: reset on its side of the path (middlebox_rst, medium)",
		clientSideReset, thenClientSideReset},
	{"endpoint_rst", "the RST's sender is its address's host (client_rst, server_rst)",
		firstRST, thenEndpointRST},

	{"tls_quit", "inside TLS, a command-sized client record, a short server record, then the close: QUIT/221 (quit_*, medium)",
		func(f *facts) bool {
			_, _, _, ok := tlsQuit(f)
			return insideTLS(f) && ok
		}, thenTLSQuit},
	{"tls_end", "a FIN inside TLS (tls_end)",
		insideTLS, thenTLSEnd},
	{"client_fin", "the client closed without QUIT (client_fin_no_quit)",
		func(f *facts) bool { return f.firstClose.dir == fromClient }, thenClientFIN},
}

// synOnly: the client sent a SYN and the server never a SYN-ACK.
func synOnly(f *facts) bool { return f.r.Client.SYNFrame != 0 && f.r.Server.SYNFrame == 0 }

// serverEnds: the server's closing reply, or the server's FIN outside TLS,
// is the first close.
func serverEnds(f *facts) bool {
	fc := f.firstClose
	return fc != nil && (f.closingReply || fc.kind == "fin" && fc.dir == fromServer && !insideTLS(f))
}

func firstRST(f *facts) bool { return f.firstClose != nil && f.firstClose.kind == "rst" }
