package esalog

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each line type of FORMAT.md with the fields it must yield. Lines are
// verbatim from the samples (sources in shared/esa/samples).
func TestParseLineTypes(t *testing.T) {
	cases := []struct {
		line string
		want Line
	}{
		{"Thu Aug 14 11:04:31 2014 Info: New SMTP ICID 10293 interface Management (192.168.0.199) address 192.168.0.200 reverse dns host ns.example.com verified no",
			Line{Kind: KindNewICID, ICID: 10293, IfaceName: "Management", Iface: "192.168.0.199", Addr: "192.168.0.200", Host: "ns.example.com", Action: "no"}},
		{"Wed Nov 19 09:16:38 2014 Info: New SMTP ICID 60140291 interface Data 1 (68.232.141.109) address 176.227.203.114 reverse dns host h176-227-203-114.host.redstation.co.uk verified no",
			Line{Kind: KindNewICID, ICID: 60140291, IfaceName: "Data 1", Iface: "68.232.141.109", Addr: "176.227.203.114", Host: "h176-227-203-114.host.redstation.co.uk", Action: "no"}},
		{"Thu Aug 14 11:04:31 2014 Info: ICID 10293 RELAY SG RELAY_SG match 192.168.0.200 SBRS not enabled",
			Line{Kind: KindHAT, ICID: 10293, Action: "RELAY", Reason: "SG RELAY_SG match 192.168.0.200 SBRS not enabled"}},
		{"Wed Nov 19 09:16:40 2014 Info: ICID 60140302 TLS success protocol TLSv1 cipher AES128-SHA",
			Line{Kind: KindICIDTLS, ICID: 60140302, Action: "success protocol TLSv1 cipher AES128-SHA"}},
		{"Thu Aug 14 11:04:51 2014 Info: Start MID 1404 ICID 10293", Line{Kind: KindStartMID, MID: 1404, ICID: 10293}},
		{"Thu Aug 14 11:04:51 2014 Info: MID 1404 ICID 10293 From: <user@domain.com>", Line{Kind: KindMailFrom, MID: 1404, ICID: 10293, Email: "user@domain.com"}},
		{"Thu Aug 14 11:05:00 2014 Info: MID 1404 ICID 10293 RID 0 To: <end_user@example.com>", Line{Kind: KindRcptTo, MID: 1404, ICID: 10293, Email: "end_user@example.com"}},
		{"Mon Mar 19 20:16:27 2018 Info: MID 100543 ICID 50525 To: <CCCC0133@acmetech.com> Rejected by Receiving Control",
			Line{Kind: KindRcptRejected, MID: 100543, ICID: 50525, Email: "CCCC0133@acmetech.com", Reason: "Rejected by Receiving Control"}},
		{"Wed Nov 19 09:16:41 2014 Info: MID 24611516 Message-ID \"<Lands'End.6cl2sv--1f.tlmd@email.landsend.com>\"", Line{Kind: KindMessageID, MID: 24611516, Reason: "<Lands'End.6cl2sv--1f.tlmd@email.landsend.com>"}},
		{"Wed Nov 19 09:16:41 2014 Info: MID 24611507 ready 56534 bytes from <user15@fjvco.com>", Line{Kind: KindReady, MID: 24611507, Bytes: 56534, Email: "user15@fjvco.com"}},
		{"Thu Aug 14 11:05:36 2014 Info: Message aborted MID 1404 Receiving aborted", Line{Kind: KindAborted, MID: 1404, Reason: "Receiving aborted"}},
		{"Thu Aug 14 11:05:36 2014 Info: Message aborted MID 1400 Receiving aborted by sender", Line{Kind: KindAborted, MID: 1400, Reason: "Receiving aborted by sender"}},
		{"Thu Aug 14 11:05:36 2014 Info: Message finished MID 1404 aborted", Line{Kind: KindFinished, MID: 1404, Action: "aborted"}},
		{"Thu Aug 14 11:05:36 2014 Info: ICID 10293 lost", Line{Kind: KindICIDLost, ICID: 10293}},
		{"Wed Nov 19 09:16:38 2014 Info: ICID 60140291 close", Line{Kind: KindICIDClose, ICID: 60140291}},
		{"Mon Aug 15 15:38:19 2005 Info: ICID 3 disconnected address 10.1.1.101, no messages injected within timeout period",
			Line{Kind: KindICIDDisconnect, ICID: 3, Addr: "10.1.1.101", Reason: "no messages injected within timeout period"}},
		{"Mon Mar  8 19:37:40 2004 Info: ICID 9033 Receiving Failed: Message loop", Line{Kind: KindReceivingFailed, ICID: 9033, Reason: "Message loop"}},
		{"Wed Nov 19 09:16:42 2014 Info: New SMTP DCID 6565555 interface 68.232.141.109 address 144.191.128.186 port 25",
			Line{Kind: KindNewDCID, DCID: 6565555, Iface: "68.232.141.109", Addr: "144.191.128.186", Port: 25}},
		{"Wed Nov 19 09:16:42 2014 Info: Delivery start DCID 6565555 MID 24611491 to RID [0]", Line{Kind: KindDeliveryStart, DCID: 6565555, MID: 24611491, Reason: "to RID [0]"}},
		{"Wed Nov 19 09:16:42 2014 Info: Message done DCID 6565548 MID 24611465 to RID [0] ", Line{Kind: KindMessageDone, DCID: 6565548, MID: 24611465, Reason: "to RID [0]"}},
		{"Wed Nov 19 09:16:45 2014 Info: DCID 6565556 close", Line{Kind: KindDCIDClose, DCID: 6565556}},
		{"Mon Mar 31 20:00:27 2003 Info: Bounced: DCID 3 MID 4 to RID 0 - 5.1.0 - Unknown address error ('550', ['<george@yourdomain.com>... Relaying denied']) []",
			Line{Kind: KindBounced, DCID: 3, MID: 4, Reason: "to RID 0 - 5.1.0 - Unknown address error ('550', ['<george@yourdomain.com>... Relaying denied']) []"}},
		{"Mon Mar 19 20:16:03 2018 Info: Delayed: DCID 8414309 MID 19410908 From: <WeiZhang@example.com> To: <mcintosh@buttercupgames.com> RID 0 - 4.3.2 - Not accepting messages at this time ('421', ['4.3.2 try again later'])",
			Line{Kind: KindDelayed, DCID: 8414309, MID: 19410908, Reason: "From: <WeiZhang@example.com> To: <mcintosh@buttercupgames.com> RID 0 - 4.3.2 - Not accepting messages at this time ('421', ['4.3.2 try again later'])"}},
		{"Wed Jul  2 09:15:07 2014 Info: Connection Error: DCID 299 domain: example.com IP: 192.168.1.10 port: 25 details: 431 interface: 192.168.1.10 reason: unexpected SMTP response",
			Line{Kind: KindConnError, DCID: 299, Addr: "192.168.1.10", Reason: "unexpected SMTP response"}},
		{"Wed Nov 19 09:16:44 2014 Info: MID 24611507 was split creating MID 24611529 due to a SL/BL configuration for following recipients: user25@mycompany.com",
			Line{Kind: KindSplit, MID: 24611507, Child: 24611529, Reason: "due to a SL/BL configuration for following recipients: user25@mycompany.com"}},
		{"Wed Nov 19 09:16:45 2014 Info: MID 24611543 was generated based on MID 24611518 by bcc filter 'FireEye_BCC'",
			Line{Kind: KindGenerated, MID: 24611518, Child: 24611543, Reason: "by bcc filter 'FireEye_BCC'"}},
		{"Tue Aug  9 10:28:55 2005 Info: MID 11 generated for bounce of MID 8", Line{Kind: KindGenerated, MID: 8, Child: 11, Reason: "bounce"}},
		{"Thu Jan  1 00:00:00 2004 Info: MID 1 rewritten to MID 2 by antispam (alt-rcpt-to) filter 'unknown'", Line{Kind: KindRewritten, MID: 1, Child: 2, Reason: "by antispam (alt-rcpt-to) filter 'unknown'"}},
		{"Wed Nov 19 09:16:46 2014 Info: Time offset from UTC: -21600 seconds", Line{Kind: KindTimeOffset, Offset: -21600}},
		{"<166>Mar 17 18:24:37 mail_logs: Info: Start MID 6 ICID 5", Line{Kind: KindStartMID, MID: 6, ICID: 5}},
		{"<94>Nov 24 14:22:57 REDACTED.africa.example.net mail_logs: Info: Start MID 204841507 ICID 146047847", Line{Kind: KindStartMID, MID: 204841507, ICID: 146047847}},
		{"Sep 29 15:00:00 zi1lxmta02 mail_logs: Info: ICID 139894256 close", Line{Kind: KindICIDClose, ICID: 139894256}},
		{"Sat Dec 21 02:37:23 2003 Info: 102503993 Rcvd: '250 OK'", Line{Kind: KindInjection, ICID: 102503993, Action: "Rcvd", Reason: "'250 OK'"}},
	}
	for _, c := range cases {
		t.Run(c.want.Kind.String(), func(t *testing.T) {
			r := NewReader(strings.NewReader(c.line+"\n"), "t.log", Options{Year: 2020})
			l, err := r.Next()
			require.NoError(t, err)
			got := *l
			got.File, got.No, got.Local, got.Level, got.Msg = "", 0, time.Time{}, "", ""
			assert.Equal(t, c.want, got, c.line)
		})
	}
}

func TestEnvelopeTimes(t *testing.T) {
	for line, want := range map[string]string{
		"Wed May  4 00:24:31 2005 Info: Begin Logfile":             "2005-05-04 00:24:31",
		"Mon Mar 5 14:21:04 2018 Info: ICID 3160 close":            "2018-03-05 14:21:04",
		"<166>Mar 17 18:24:37 mail_logs: Info: ICID 5 close":       "2020-03-17 18:24:37",
		"Jul 16 10:46:46 2013 dummy mail_logs: Info: ICID 5 close": "2013-07-16 10:46:46",
	} {
		r := NewReader(strings.NewReader(line), "t", Options{Year: 2020})
		l, err := r.Next()
		require.NoError(t, err, line)
		assert.Equal(t, want, l.Local.Format("2006-01-02 15:04:05"), line)
	}
}

func TestBrokenLineReportsPosition(t *testing.T) {
	r := NewReader(strings.NewReader("Thu Aug 14 11:04:31 2014 Info: ICID 1 close\ngarbage here\nThu Aug 14 11:04:32 2014 Info: ICID 2 close\n"), "mail.current", Options{})
	_, err := r.Next()
	require.NoError(t, err)
	_, err = r.Next()
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 2, pe.No)
	assert.Contains(t, pe.Error(), "mail.current:2")
	l, err := r.Next()
	require.NoError(t, err, "reading goes on after a broken line")
	assert.Equal(t, int64(2), l.ICID)
}

// FuzzParseLine: any input line parses without panic, and whatever it
// yields is consistent: a kept line has a time and a known level length,
// IDs are never negative, and the message is a suffix of the input.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"Thu Aug 14 11:04:31 2014 Info: New SMTP ICID 10293 interface Management (192.168.0.199) address 192.168.0.200 reverse dns host ns.example.com verified no",
		"<166>Mar 17 18:24:37 mail_logs: Info: Start MID 6 ICID 5",
		"Wed Nov 19 09:16:44 2014 Info: MID 24611507 was split creating MID 24611529 due to x",
		"Mon Mar 19 20:16:03 2018 Info: Delayed: DCID 8414309 MID 19410908 From: <a> To: <b> RID 0 - 4.3.2 - x",
		"Thu Aug 14 11:05:36 2014 Info: Message aborted MID 1404 Receiving aborted by sender",
		"Incoming connection (ICID 9595873) disconnected address x. Maximum connection time exceeded.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := NewReader(strings.NewReader(s), "fuzz", Options{Year: 2020})
		for i := 0; i < 4; i++ {
			l, err := r.Next()
			if err != nil {
				var pe *ParseError
				if !strings.Contains(err.Error(), "EOF") && !errorsAs(err, &pe) && !strings.Contains(err.Error(), "token too long") {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if l.Local.IsZero() || l.ICID < 0 || l.MID < 0 || l.DCID < 0 || l.Bytes < 0 {
				t.Fatalf("inconsistent line %+v from %q", l, s)
			}
			if !strings.Contains(s, l.Msg) {
				t.Fatalf("message %q is not from the input %q", l.Msg, s)
			}
		}
		var l Line
		ParseMessage(s, &l) // the bare-message path too
	})
}

func errorsAs(err error, pe **ParseError) bool {
	e, ok := err.(*ParseError)
	if ok {
		*pe = e
	}
	return ok
}

// update is accepted so that go test ./... -update works; the golden
// files live in cmd/smtpcap.
var _ = flag.Bool("update", false, "rewrite golden files (cmd/smtpcap)")

// TestIdentifierOutOfRange: an ICID, MID or DCID of more than 18 digits is
// no identifier: the line is of unknown type, never clamped to 999….
func TestIdentifierOutOfRange(t *testing.T) {
	big := strings.Repeat("9", 400)
	for _, msg := range []string{
		"New SMTP ICID " + big + " interface Data1 (192.0.2.5) address 192.0.2.10 reference 0",
		"Start MID " + big + " ICID 5",
		"MID 5 ICID " + big + " From: <a@b>",
		"Delivery start DCID " + big + " MID 5 to RID [0]",
	} {
		var l Line
		ParseMessage(msg, &l)
		assert.Equal(t, KindUnknown, l.Kind, msg[:30])
		assert.Zero(t, l.ICID+l.MID+l.DCID, msg[:30])
	}
	var l Line
	ParseMessage("New SMTP ICID 123456789012345678 interface Data1 (192.0.2.5) address 192.0.2.10 reference 0", &l)
	assert.Equal(t, int64(123456789012345678), l.ICID, "18 digits are kept")
}
