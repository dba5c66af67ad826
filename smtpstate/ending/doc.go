// Package ending decides how an SMTP session ended. It reads only the
// published smtpstate.Record (so a record decoded from its JSON line gets the
// same verdict) and runs after the session is finished.
//
// It is built like Zeek's conn_state and Suricata's event table: a
// catalogue of verdicts (Catalogue), facts derived once from the record
// (facts), an ordered table of rules where the first match wins (Rules), a
// small table of downgrades that lower the confidence and say why
// (Downgrades), and the RST-origin factors as data (Factors).
//
// It refuses to guess: where the capture hides the answer the verdict is
// undetermined and the reason says what is missing.
package ending
