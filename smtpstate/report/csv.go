package report

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// CSVHeader is the fixed first row of --csv.
var CSVHeader = []string{"ts", "uid", "orig_h", "orig_p", "resp_h", "resp_p", "verdict", "who", "mechanism", "phase",
	"confidence", "message_lost", "msgs_accepted", "msgs_total", "helo", "mailfrom", "rcpts", "icid", "mids",
	"esa_ambiguous", "missed_bytes", "first_frame", "last_frame", "reason"}

// CSVRow is one session's row, in CSVHeader's order. Cells are safe text
// and a cell that a spreadsheet would take for a formula (= + - @) is
// prefixed with a quote.
func CSVRow(r *smtpstate.Record) []string {
	var verdict, who, mech, phase, conf, lost, reason string
	if e := r.Ending; e != nil {
		verdict, who, mech, phase, conf, reason = e.Verdict, e.Who, e.Mechanism, e.Phase.String(), e.Confidence, e.Reason
		lost = strconv.FormatBool(e.MessageLost)
	}
	acc := 0
	for _, t := range r.Trans {
		if t.Outcome == "accepted" {
			acc++
		}
	}
	var icid, mids, amb string
	if r.ESA != nil {
		icid, mids, amb = r.ESA.ICID, strings.Join(r.ESA.MIDs, " "), strings.Join(r.ESA.Ambiguous, " ")
	}
	row := []string{r.TS.UTC().Format("2006-01-02T15:04:05.000000Z"), r.UID, r.OrigH, strconv.Itoa(int(r.OrigP)), r.RespH,
		strconv.Itoa(int(r.RespP)), verdict, who, mech, phase, conf, lost, strconv.Itoa(acc), strconv.Itoa(len(r.Trans)),
		r.Helo, r.MailFrom, strconv.Itoa(len(r.RcptTo)), icid, mids, amb, strconv.FormatInt(r.MissedBytes, 10),
		strconv.FormatUint(r.FirstFrame, 10), strconv.FormatUint(r.LastFrame, 10), reason}
	for i, c := range row {
		c = Safe(c)
		if c != "" && strings.ContainsRune("=+-@", rune(c[0])) && i >= 6 {
			c = "'" + c
		}
		row[i] = c
	}
	return row
}

// AppendCSV appends one session's row (RFC 4180 quoting).
func AppendCSV(dst []byte, r *smtpstate.Record) []byte {
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write(CSVRow(r))
	w.Flush()
	return append(dst, b.String()...)
}

// WriteCSVHeader writes the header row.
func WriteCSVHeader(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(CSVHeader)
	cw.Flush()
	return cw.Error()
}
