package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQuitInsideTLS: the lab's STARTTLS session that ended with QUIT (Postfix
// logs quit=1) is quit_after_message from TLS record sizes, medium without
// the ESA log and high with it; the one the client reset inside TLS is not.
func TestQuitInsideTLS(t *testing.T) {
	dir := "../../testdata/lab/captures/"
	for _, point := range []string{"server", "span", "any"} {
		rs := analyze(t, "-r", dir+"starttls_quit/"+point+".pcap")
		require.Len(t, rs, 1)
		require.Equal(t, "quit_after_message", rs[0].Ending.Verdict, point)
		require.Equal(t, "medium", rs[0].Ending.Confidence, point)
		require.Contains(t, rs[0].Ending.Flags, "tls_inferred")
		rs = analyze(t, "-r", dir+"starttls_quit/"+point+".pcap", "--esa-log", dir+"starttls_quit/mail_logs")
		require.Equal(t, "quit_after_message", rs[0].Ending.Verdict, point)
		require.Equal(t, "high", rs[0].Ending.Confidence, "%s: the ESA log settles it", point)
		rs = analyze(t, "-r", dir+"starttls_rst/"+point+".pcap", "--esa-log", dir+"starttls_rst/mail_logs")
		require.Equal(t, "client_rst", rs[0].Ending.Verdict, point)
	}
}
