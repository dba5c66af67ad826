package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/smtpcap/smtpcap/reassembly"
	"github.com/smtpcap/smtpcap/smtpstate/ending"
)

// analysisFlags are the analysis and timer flags analyze and live share.
type analysisFlags struct {
	ports       *[]uint
	idle        *time.Duration
	halfOpen    *time.Duration
	maxSessions *int
	maxBuf      *string
	maxBufTotal *string
	checksums   *bool
	srvTimeouts *[]time.Duration
	fwIdle      *time.Duration
	utc         *bool
	tz          *string
}

func addAnalysisFlags(fs *pflag.FlagSet) *analysisFlags {
	return &analysisFlags{
		ports:       fs.UintSlice("port", nil, "additional SMTP server port (repeatable)"),
		idle:        fs.Duration("idle-timeout", 2*time.Hour, "finalize a session after this much capture time without packets"),
		halfOpen:    fs.Duration("half-open-timeout", time.Minute, "finalize a session that is still an unanswered SYN after this much capture time"),
		maxSessions: fs.Int("max-sessions", 1<<20, "open sessions held at once; past it the least recently active is finalized as evicted (and counted)"),
		maxBuf:      fs.String("max-buffered", "1MiB", "out-of-order bytes held per direction of a connection; past it the hole is given up as a gap"),
		maxBufTotal: fs.String("max-buffered-total", "256MiB", "out-of-order bytes held in all"),
		checksums:   fs.Bool("checksums", false, "drop TCP segments with a wrong checksum (off: captures on the sending host see checksums the NIC fills in later)"),
		srvTimeouts: fs.DurationSlice("server-timeout", nil, "a server idle timer to recognise, besides RFC 5321's and the ESA's (repeatable, e.g. 45s)"),
		fwIdle:      fs.Duration("firewall-idle", 5*time.Second, "shortest idle gap taken as a firewall's idle expiry when a foreign RST or silence follows"),
		utc:         fs.Bool("utc", true, "print times in UTC (else local time); see --tz"),
		tz:          fs.String("tz", "utc", "zone of the session times printed: utc, local, esa (the appliance's, to line up with its log; analyze) or a zone name/offset"),
	}
}

// options checks the flags and returns the pipeline's options, the
// classifier's timers and the zone of the printed times (esaLogs: how many
// ESA logs are given, for --tz esa).
func (f *analysisFlags) options(esaLogs int) (reassembly.Options, ending.Params, *time.Location, error) {
	var opt reassembly.Options
	params := ending.DefaultParams
	loc, err := sessionZone(*f.tz, *f.utc, esaMatch{Zone: time.UTC, Logs: esaLogs})
	if err != nil {
		return opt, params, nil, err
	}
	params.ServerTimeouts = append([]float64(nil), params.ServerTimeouts...)
	for _, d := range *f.srvTimeouts {
		if d <= 0 {
			return opt, params, nil, fmt.Errorf("--server-timeout must be positive")
		}
		params.ServerTimeouts = append(params.ServerTimeouts, d.Seconds())
	}
	params.FirewallIdle = f.fwIdle.Seconds()
	bufConn, err1 := parseSize(*f.maxBuf)
	bufTotal, err2 := parseSize(*f.maxBufTotal)
	switch {
	case *f.idle <= 0 || *f.halfOpen <= 0 || *f.fwIdle < 0:
		return opt, params, nil, fmt.Errorf("--idle-timeout and --half-open-timeout must be positive, --firewall-idle not negative")
	case *f.maxSessions < 1:
		return opt, params, nil, fmt.Errorf("--max-sessions must be at least 1")
	case err1 != nil || err2 != nil || bufConn < 1 || bufTotal < 1:
		return opt, params, nil, fmt.Errorf("--max-buffered and --max-buffered-total take a size above zero, such as 1MiB")
	}
	opt = reassembly.Options{IdleTimeout: *f.idle, HalfOpenTimeout: *f.halfOpen, MaxSessions: *f.maxSessions,
		MaxBufferedPerConn: int(min(bufConn, 1<<40)), MaxBufferedTotal: int(min(bufTotal, 1<<40)), Checksums: *f.checksums}
	if len(*f.ports) > 0 {
		opt.Ports = append([]uint16(nil), reassembly.DefaultPorts...)
		for _, p := range *f.ports {
			if p == 0 || p > 65535 {
				return opt, params, nil, fmt.Errorf("bad port %d", p)
			}
			opt.Ports = append(opt.Ports, uint16(p))
		}
	}
	return opt, params, loc, nil
}
