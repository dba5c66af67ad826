#!/usr/bin/env bash
# make bench: build a large synthetic SMTP capture, run smtpcap and tshark
# on it in the same run, print throughput (MB/s, packets/s), peak RSS and
# the ratio. Single core: GOMAXPROCS=1 for smtpcap.
set -euo pipefail
BIN=${1:-bin/smtpcap}
DIR=.bench
SESSIONS=${SESSIONS:-6000}
mkdir -p "$DIR"
CAP=$DIR/smtp-$SESSIONS.pcap
if [ ! -s "$CAP" ]; then
  go run ./testdata/bench/gen -o "$CAP" -sessions "$SESSIONS"
fi
SIZE=$(stat -c %s "$CAP")
PKTS=$(capinfos -M -c "$CAP" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
cat "$CAP" >/dev/null # page cache
measure() { # label cmd...
  local label=$1; shift
  local best=""
  for i in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$DIR/time.out" "$@" >/dev/null 2>"$DIR/err.out" || { cat "$DIR/err.out" >&2; exit 1; }
    read -r secs rss <"$DIR/time.out"
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; bestrss=$rss; fi
    [ "$label" = tshark ] && break # slow; one run is enough
  done
  printf '%-8s %7.2f s  %8.1f MB/s  %9.0f pkt/s  peak RSS %6.1f MB\n' "$label" "$best" \
    "$(awk "BEGIN{print $SIZE/1e6/$best}")" "$(awk "BEGIN{print $PKTS/$best}")" "$(awk "BEGIN{print $bestrss/1024}")"
  eval "${label}_secs=$best"
}
echo "capture: $CAP, $(awk "BEGIN{print $SIZE/1e6}") MB, $PKTS packets, $SESSIONS sessions"
GOMAXPROCS=1 measure smtpcap "$BIN" analyze -q --json -r "$CAP"
measure tshark tshark -r "$CAP" -Y smtp -T fields -e smtp.req.command
awk "BEGIN{printf \"ratio: smtpcap is %.1fx faster than tshark (target on this machine: >= 500 MB/s)\n\", $tshark_secs/$smtpcap_secs}"
