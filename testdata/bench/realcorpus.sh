#!/usr/bin/env bash
# realcorpus.sh OUT.pcap: records a benchmark capture of real SMTP traffic:
# Postfix's smtp-source (client) against smtp-sink (server) in two network
# namespaces of our own, captured with tcpdump on the server's interface as
# on an appliance. Many concurrent sessions, message sizes from 2 kB to
# 1 MB, and a narrow ephemeral port range so that the client's kernel
# reuses ports within seconds, as a big sender does. Root only; every step
# is bounded in time, and the namespaces and processes are removed by PID.
#   SESSIONS (default 24000) messages, one per session; CONC (20) at a time.
set -euo pipefail
OUT=${1:?usage: realcorpus.sh OUT.pcap}
SESSIONS=${SESSIONS:-24000}
CONC=${CONC:-20}
[ "$(id -u)" = 0 ] || { echo "realcorpus.sh: needs root (network namespaces)" >&2; exit 1; }
for c in smtp-source smtp-sink tcpdump ip; do command -v $c >/dev/null || { echo "realcorpus.sh: $c missing" >&2; exit 1; }; done
ID=$$ NC=sb${ID}c NS=sb${ID}s
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for n in "$NC" "$NS"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$n" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$NC"; ip netns add "$NS"
ip link add c0 netns "$NC" type veth peer name s0 netns "$NS"
ip netns exec "$NC" ip link set lo up; ip netns exec "$NS" ip link set lo up
ip netns exec "$NC" ip addr add 192.0.2.10/24 dev c0
ip netns exec "$NS" ip addr add 192.0.2.25/24 dev s0
# no offloads: the capture holds wire-sized segments, as on a real link
for n in "$NC:c0" "$NS:s0"; do ip netns exec "${n%%:*}" ethtool -K "${n##*:}" tso off gso off gro off >/dev/null 2>&1 || true; done
ip netns exec "$NC" ip link set c0 up; ip netns exec "$NS" ip link set s0 up
# a busy gateway's rate, not a veth's: about 30 s of traffic, so that memory
# can be seen not to grow with the capture's length
ip netns exec "$NC" tc qdisc add dev c0 root tbf rate ${RATE:-150mbit} burst 256kb latency 100ms
ip netns exec "$NC" sysctl -qw net.ipv4.ip_local_port_range="40000 43999"
ip netns exec "$NC" sysctl -qw net.ipv4.tcp_tw_reuse=1
ip netns exec "$NS" timeout 1200 smtp-sink -u nobody 192.0.2.25:25 256 >/dev/null 2>&1 & PIDS+=($!)
# wait for the sink before the capture starts, so that the probe is not in it
for i in $(seq 1 50); do ip netns exec "$NC" timeout 1 bash -c '</dev/tcp/192.0.2.25/25' 2>/dev/null && break; sleep 0.1; done
sleep 0.5
ip netns exec "$NS" timeout 1200 tcpdump -i s0 -s 0 -B 524288 -w "$OUT.tmp" "tcp port 25" 2>"$OUT.tcpdump" & TCPD=$!; PIDS+=($TCPD)
for i in $(seq 1 50); do grep -q listening "$OUT.tcpdump" 2>/dev/null && break; sleep 0.1; done
# sizes as on a gateway: mostly small messages, a few large ones
# (2 kB .. 1 MB; about 20 kB on average)
run() { # count size
  ip netns exec "$NC" timeout 900 smtp-source -s $((CONC / 4)) -m "$1" -l "$2" -f alice@client.example -t bob@example.org 192.0.2.25:25 >/dev/null
}
n1=$((SESSIONS * 60 / 100)) n2=$((SESSIONS * 25 / 100)) n3=$((SESSIONS * 14 / 100))
run $n1 2000 & a=$!
run $n2 8000 & b=$!
run $n3 64000 & c=$!
run $((SESSIONS - n1 - n2 - n3)) 1000000 & d=$!
PIDS+=($a $b $c $d)
wait $a $b $c $d
sleep 1
kill -INT "$TCPD"; for i in $(seq 1 50); do kill -0 "$TCPD" 2>/dev/null || break; sleep 0.1; done
mv "$OUT.tmp" "$OUT"
# the capture is only a benchmark of real traffic if tcpdump kept it all
grep -E "packets (captured|received|dropped)" "$OUT.tcpdump" >&2 || true
