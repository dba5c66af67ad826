#!/usr/bin/env bash
# make bench: smtpcap against its floor and tshark on the same captures, in
# one run: a capture of real SMTP traffic (smtp-source -> smtp-sink in
# network namespaces, made once as root and cached in .bench/) and the
# synthetic one (testdata/bench/gen). Prints MB/s, packets/s, sessions/s
# and peak RSS per run (best of 3; tshark once), then the ratios.
set -euo pipefail
BIN=${1:-bin/smtpcap}
DIR=.bench
RSESS=${RSESS:-24000}
SESSIONS=${SESSIONS:-6000}
mkdir -p "$DIR"
REAL=$DIR/real-$RSESS.pcap
if [ ! -s "$REAL" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "recording the real-traffic corpus ($RSESS sessions) into $REAL ..."
    SESSIONS=$RSESS testdata/bench/realcorpus.sh "$REAL"
  else
    echo "no real-traffic corpus: run 'sudo make bench' once to record it ($REAL)"
  fi
fi
SYN=$DIR/smtp-$SESSIONS.pcap
[ -s "$SYN" ] || go run ./testdata/bench/gen -o "$SYN" -sessions "$SESSIONS"
go build -o "$DIR/floor" ./testdata/bench/floor

measure() { # label cmd... ; sets secs, rss
  local label=$1; shift
  local best="" bestrss="" runs=3
  [ "$label" = tshark ] && runs=1 # slow; one run is enough
  for i in $(seq 1 $runs); do
    /usr/bin/time -f "%e %M" -o "$DIR/time.out" "$@" >"$DIR/out.txt" 2>"$DIR/err.out" || { cat "$DIR/err.out" >&2; exit 1; }
    read -r s r <"$DIR/time.out"
    if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s; bestrss=$r; fi
  done
  secs=$best rss=$bestrss
  printf '  %-22s %7.2f s %8.1f MB/s %10.0f pkt/s %9.0f sessions/s  peak RSS %6.1f MB\n' "$label" "$secs" \
    "$(awk "BEGIN{print $SIZE/1e6/$secs}")" "$(awk "BEGIN{print $PKTS/$secs}")" "$(awk "BEGIN{print $NSESS/$secs}")" "$(awk "BEGIN{print $rss/1024}")"
}

for CAP in "$REAL" "$SYN"; do
  [ -s "$CAP" ] || continue
  SIZE=$(stat -c %s "$CAP")
  PKTS=$(capinfos -M -c "$CAP" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
  cat "$CAP" >/dev/null # page cache
  NSESS=1
  "$BIN" analyze -q --json -r "$CAP" >"$DIR/sessions.json"
  NSESS=$(wc -l <"$DIR/sessions.json")
  TSESS=$(tshark -r "$CAP" -q -z conv,tcp 2>/dev/null | grep -c '<->' || true)
  echo "capture: $CAP, $(awk "BEGIN{print $SIZE/1e6}") MB, $PKTS packets, $NSESS sessions (tshark -z conv,tcp: $TSESS), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  measure "smtpcap --json w1" "$BIN" analyze -q --json --workers 1 -r "$CAP"; j1=$secs
  measure "smtpcap --json w2" "$BIN" analyze -q --json --workers 2 -r "$CAP"; j2=$secs
  measure "smtpcap table w2" "$BIN" analyze -q --workers 2 -r "$CAP"; t2=$secs
  measure "smtpcap --stream w2" "$BIN" analyze -q --stream --workers 2 -r "$CAP"
  measure "floor (read+decode+nop)" "$DIR/floor" "$CAP"; fl=$secs
  measure tshark tshark -r "$CAP" -Y smtp -T fields -e smtp.req.command; ts=$secs
  awk "BEGIN{printf \"  ratios: --json w2 is %.1fx tshark, %.2fx w1, %.2fx the floor; table w2 is %.1fx tshark\n\", $ts/$j2, $j1/$j2, $fl/$j2, $ts/$t2}"
done
