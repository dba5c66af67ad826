#!/usr/bin/env bash
# The capture lab: real SMTP endings from real software, with known truth.
#
#   client ns (192.0.2.10, 2001:db8:1::10)
#     c0 ── fwc  firewall/router ns (192.0.2.1 | 198.51.100.1)  fws ── s0
#                                                     server ns (198.51.100.25, 2001:db8:2::25)
#
# The router forwards, so the packets it originates (REJECT resets, injected
# resets) carry its own initial TTL while the endpoints' packets are one hop
# older at the other side: the property the verdicts rely on.
#
# Captures per scenario: server.pcap (tcpdump on the server's interface, as
# on the appliance), span.pcap (the router's client-side interface, a SPAN
# near the client), any.pcap (tcpdump -i any in the server ns: Linux SLL2).
# Truth per scenario: Postfix's own log, an ESA-style mail_logs derived from
# it, and expected.json, each expectation checked against the packets with
# tshark before it is written. A scenario that did not come out as planned
# fails loudly.
#
# usage: lab.sh --out DIR [--only NAME[,NAME...]] [--list]
# Needs root, ip netns, postfix, swaks, smtp-source, tcpdump, tshark,
# iptables, conntrack, openssl and python3 (make deps installs them).
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=""
ONLY=""
LIST=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --list) LIST=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "lab: unknown argument $1" >&2; exit 2 ;;
  esac
done

# ---- scenarios: name | description | expected verdict@server | who@server | verdict@span | who@span | ESA abort line
#      [| known gaps: points=what the analyzer cannot reach yet] -- the expectation is the truth all the same
SCENARIOS=(
  "quit_one|one message, QUIT, 221 (swaks)|quit_after_message|client|quit_after_message|client|"
  "quit_multi|three messages over one connection, QUIT/221 then the client's RST (smtp-source -d)|quit_then_rst|client|quit_then_rst|client|"
  "quit_after_ehlo|EHLO then QUIT, no transaction (swaks --quit-after EHLO)|quit_no_transaction|client|quit_no_transaction|client|"
  "quit_after_rcpt|QUIT after RCPT, before DATA (swaks --quit-after RCPT)|quit_mid_transaction|client|quit_mid_transaction|client|Receiving aborted by sender"
  "relay_denied_quit|RCPT refused (554 relay), then QUIT (swaks)|quit_after_rejection|client|quit_after_rejection|client|Receiving aborted by sender"
  "size_rejected_quit|message refused at end of data (552 size), then QUIT|quit_after_rejection|client|quit_after_rejection|client|"
  "pipelining|PIPELINING, one message (swaks --pipeline)|quit_after_message|client|quit_after_message|client|"
  "bdat|CHUNKING: BDAT, BDAT LAST, QUIT (scripted)|quit_after_message|client|quit_after_message|client|"
  "ipv6|one message over IPv6 (swaks -6)|quit_after_message|client|quit_after_message|client|"
  "load|100 sessions from one address, 10 at a time, one message each with identical envelopes, each QUIT/221 then RST (smtp-source -s 10 -m 100)|quit_then_rst|client|quit_then_rst|client|"
  "quit_no_wait|QUIT sent, client closes before the 221 (scripted)|quit_no_wait|client|quit_no_wait|client|"
  "drop_after_ehlo|FIN without QUIT after EHLO (swaks --drop-after EHLO)|client_fin_no_quit|client|client_fin_no_quit|client|"
  "drop_after_rcpt|FIN without QUIT after RCPT (swaks --drop-after RCPT)|client_fin_no_quit|client|client_fin_no_quit|client|Receiving aborted"
  "fin_mid_data|FIN in the middle of DATA (scripted)|client_fin_no_quit|client|client_fin_no_quit|client|Receiving aborted"
  "client_killed|client process killed in DATA (SIGKILL)|client_fin_no_quit|client|client_fin_no_quit|client|Receiving aborted"
  "rst_mid_data|client RST (SO_LINGER 0) in DATA (scripted)|client_rst|client|client_rst|client|Receiving aborted"
  "rst_after_rcpt|client RST (SO_LINGER 0) after RCPT (scripted)|client_rst|client|client_rst|client|Receiving aborted"
  "timeout_greeting|client silent after the greeting: Postfix smtpd_timeout|server_timeout|server|server_timeout|server|"
  "timeout_rcpt|client silent after RCPT: Postfix smtpd_timeout|server_timeout|server|server_timeout|server|Receiving aborted"
  "timeout_data|client silent inside DATA: Postfix smtpd_timeout|server_timeout|server|server_timeout|server|Receiving aborted"
  "starttls_quit|STARTTLS, one message, QUIT inside TLS (swaks -tls; Postfix logs quit=1)|quit_after_message|client|quit_after_message|client|"
  "starttls_rst|STARTTLS, then a client RST inside TLS (scripted)|client_rst|client|client_rst|client|Receiving aborted"
  "fw_reject_content|firewall REJECT --reject-with tcp-reset on BDAT content; the server then meets the client host's no-state RST|middlebox_rst|middlebox|middlebox_rst|middlebox|Receiving aborted"
  "fw_inject_both|on-path injector resets both ends on DATA content|middlebox_rst|middlebox|middlebox_rst|middlebox|Receiving aborted"
  "fw_idle_reject|conntrack entry expires while idle, then REJECT with RST: the server's 421 meets the firewall's RST|firewall_idle_expiry|middlebox|firewall_idle_expiry|middlebox|"
  "fw_idle_server_first|the firewall's idle timer (30 s) is longer than the server's (10 s): the server's 421 passes and reaches the idle client|server_timeout|server|server_timeout|server|"
  "fw_idle_drop|conntrack entry expires while idle, then DROP: the server's 421/FIN are never acknowledged|firewall_idle_expiry|middlebox|firewall_idle_expiry|middlebox|"
)

if [ "$LIST" = 1 ]; then
  for s in "${SCENARIOS[@]}"; do IFS='|' read -r n d _ <<<"$s"; printf '%-20s %s\n' "$n" "$d"; done
  exit 0
fi
[ -n "$OUT" ] || { echo "lab: --out DIR is required" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "lab: must run as root (network namespaces)" >&2; exit 1; }
for t in ip postfix swaks smtp-source tcpdump tshark iptables conntrack openssl python3 timeout; do
  command -v "$t" >/dev/null || { echo "lab: $t is missing (run: make deps)" >&2; exit 1; }
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d /tmp/smtpcap-lab.XXXXXX)
chmod 755 "$W"
ID=$$
NC=sl${ID}c NF=sl${ID}f NS=sl${ID}s
PIDS=()
SMTPD_TIMEOUT=10
CT_TIMEOUT=3

log() { printf '[lab %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [ -f "$W/pf/etc/main.cf" ]; then
    ip netns exec "$NS" postfix -c "$W/pf/etc" stop >/dev/null 2>&1
    [ -f "$W/pf/queue/pid/master.pid" ] && kill -9 "$(cat "$W/pf/queue/pid/master.pid")" 2>/dev/null
  fi
  # every process still inside our namespaces is ours
  for n in "$NC" "$NF" "$NS"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$n" 2>/dev/null
  done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local n=$1; shift; ip netns exec "$n" "$@"; }

topology() {
  ip netns add "$NC"; ip netns add "$NF"; ip netns add "$NS"
  ip link add c0 netns "$NC" type veth peer name fwc netns "$NF"
  ip link add s0 netns "$NS" type veth peer name fws netns "$NF"
  for n in "$NC" "$NF" "$NS"; do nsx "$n" ip link set lo up; done
  nsx "$NC" ip addr add 192.0.2.10/24 dev c0
  nsx "$NC" ip -6 addr add 2001:db8:1::10/64 dev c0 nodad
  nsx "$NC" ip link set c0 up
  nsx "$NC" ip route add default via 192.0.2.1
  nsx "$NC" ip -6 route add default via 2001:db8:1::1
  nsx "$NF" ip addr add 192.0.2.1/24 dev fwc
  nsx "$NF" ip -6 addr add 2001:db8:1::1/64 dev fwc nodad
  nsx "$NF" ip addr add 198.51.100.1/24 dev fws
  nsx "$NF" ip -6 addr add 2001:db8:2::1/64 dev fws nodad
  nsx "$NF" ip link set fwc up
  nsx "$NF" ip link set fws up
  nsx "$NF" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  nsx "$NS" ip addr add 198.51.100.25/24 dev s0
  nsx "$NS" ip -6 addr add 2001:db8:2::25/64 dev s0 nodad
  nsx "$NS" ip link set s0 up
  nsx "$NS" ip route add default via 198.51.100.1
  nsx "$NS" ip -6 route add default via 2001:db8:2::1

}

postfix_start() {
  local d=$W/pf
  mkdir -p "$d/etc" "$d/queue" "$d/data"
  chown postfix "$d/data"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.lab.example" \
    -keyout "$d/etc/key.pem" -out "$d/etc/cert.pem" >/dev/null 2>&1
  cat >"$d/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.lab.example
mydomain = lab.example
mydestination = example.org
inet_interfaces = all
inet_protocols = all
mynetworks = 192.0.2.0/24 [2001:db8:1::]/64
local_recipient_maps =
local_transport = discard
default_transport = discard
relay_transport = discard
alias_maps =
alias_database =
biff = no
smtpd_banner = \$myhostname ESMTP
smtpd_timeout = ${SMTPD_TIMEOUT}s
smtpd_error_sleep_time = 0
smtpd_peername_lookup = no
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 100
message_size_limit = 20000
smtpd_delay_reject = no
smtpd_delay_open_until_valid_rcpt = no
smtpd_sender_restrictions = check_sender_access static:INFO
smtpd_recipient_restrictions = check_recipient_access static:INFO, reject_unauth_destination
smtpd_end_of_data_restrictions = check_sender_access static:INFO
smtpd_tls_security_level = may
smtpd_tls_cert_file = $d/etc/cert.pem
smtpd_tls_key_file = $d/etc/key.pem
smtpd_tls_loglevel = 1
maillog_file = $d/maillog
# The client port in smtpd's lines: the truth of which log connection a
# session without a message is (the ESA itself never logs it).
smtpd_client_port_logging = yes
maillog_file_prefixes = /tmp
EOF
  cat >"$d/etc/master.cf" <<'EOF'
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  nsx "$NS" postfix -c "$d/etc" start >/dev/null 2>&1 || die "postfix did not start: $(tail -3 "$d/maillog" 2>/dev/null)"
  local i
  for i in $(seq 1 50); do
    nsx "$NC" timeout 1 bash -c 'exec 3<>/dev/tcp/198.51.100.25/25' 2>/dev/null && return 0
    sleep 0.1
  done
  die "postfix is not listening on 198.51.100.25:25"
}

# firewall rules for one scenario (the default is to forward everything)
fw_reset() {
  nsx "$NF" iptables -F FORWARD
  nsx "$NF" iptables -P FORWARD ACCEPT
  nsx "$NF" ip6tables -F FORWARD 2>/dev/null || true
  nsx "$NF" conntrack -F >/dev/null 2>&1 || true
  nsx "$NF" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_established=432000 2>/dev/null || true
}

fw_stateful() { # $1 = REJECT|DROP for packets without a live conntrack entry
  nsx "$NF" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
  nsx "$NF" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_established=$CT_TIMEOUT
  nsx "$NF" iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  nsx "$NF" iptables -A FORWARD -p tcp --syn -m conntrack --ctstate NEW -j ACCEPT
  nsx "$NF" iptables -A FORWARD -p icmp -j ACCEPT
  if [ "$1" = REJECT ]; then
    nsx "$NF" iptables -A FORWARD -p tcp -j REJECT --reject-with tcp-reset
  else
    nsx "$NF" iptables -A FORWARD -j DROP
  fi
}

CAPS=()
cap_start() { # dir
  local d=$1
  CAPS=()
  # ip netns exec execs tcpdump, so $! is tcpdump's own PID (not a subshell's)
  ip netns exec "$NS" tcpdump -i s0 -s 0 -U -w "$d/server.pcap" 'tcp port 25' 2>"$W/tcpdump.s.err" & CAPS+=($!); PIDS+=($!)
  ip netns exec "$NF" tcpdump -i fwc -s 0 -U -w "$d/span.pcap" 'tcp port 25' 2>"$W/tcpdump.f.err" & CAPS+=($!); PIDS+=($!)
  ip netns exec "$NS" tcpdump -i any -s 0 -U -w "$d/any.pcap" 'tcp port 25' 2>"$W/tcpdump.a.err" & CAPS+=($!); PIDS+=($!)
  local i
  for i in $(seq 1 50); do
    if grep -q listening "$W/tcpdump.s.err" && grep -q listening "$W/tcpdump.f.err" && grep -q listening "$W/tcpdump.a.err"; then
      return 0
    fi
    sleep 0.1
  done
  die "tcpdump did not start"
}

cap_stop() {
  sleep 0.5
  local p
  for p in "${CAPS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${CAPS[@]}"; do
    local i
    for i in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
}

SW=(swaks --server 198.51.100.25 --from alice@client.lab.example --to bob@example.org --helo client.lab.example --timeout 20 --hide-all)
CL=(python3 "$HERE/client.py")

# run_client NAME: the client side of each scenario, bounded in time
run_client() {
  local n=$1
  case "$n" in
    quit_one)           nsx "$NC" timeout 30 "${SW[@]}" ;;
    quit_multi)         nsx "$NC" timeout 30 smtp-source -c -d -m 3 -s 1 -l 400 -f alice@client.lab.example -t bob@example.org 198.51.100.25:25 ;;
    quit_after_ehlo)    nsx "$NC" timeout 30 "${SW[@]}" --quit-after EHLO ;;
    quit_after_rcpt)    nsx "$NC" timeout 30 "${SW[@]}" --quit-after RCPT ;;
    relay_denied_quit)  nsx "$NC" timeout 30 "${SW[@]}" --to carol@elsewhere.example || true ;;
    size_rejected_quit) head -c 30000 /dev/zero | tr '\0' 'x' | fold -w 76 >"$W/big.txt"
                        nsx "$NC" timeout 30 "${SW[@]}" --body "$W/big.txt" || true ;;
    pipelining)         nsx "$NC" timeout 30 "${SW[@]}" --pipeline ;;
    bdat)               nsx "$NC" timeout 30 "${CL[@]}" bdat 198.51.100.25 ;;
    ipv6)               nsx "$NC" timeout 30 swaks -6 --server 2001:db8:2::25 --from alice@client.lab.example --to bob@example.org --helo client.lab.example --hide-all ;;
    load)               nsx "$NC" timeout 60 smtp-source -c -m 100 -s 10 -l 100 -f alice@client.lab.example -t bob@example.org 198.51.100.25:25 ;;
    quit_no_wait)       nsx "$NC" timeout 30 "${CL[@]}" quit-no-wait 198.51.100.25 ;;
    drop_after_ehlo)    nsx "$NC" timeout 30 "${SW[@]}" --drop-after EHLO || true ;;
    drop_after_rcpt)    nsx "$NC" timeout 30 "${SW[@]}" --drop-after RCPT || true ;;
    fin_mid_data)       nsx "$NC" timeout 30 "${CL[@]}" fin-data 198.51.100.25 ;;
    client_killed)      ip netns exec "$NC" python3 "$HERE/client.py" sleep-data 198.51.100.25 >"$W/killed.out" & local cp=$!; PIDS+=($cp)
                        local i
                        for i in $(seq 1 150); do grep -q in-data "$W/killed.out" && break; sleep 0.1; done
                        grep -q in-data "$W/killed.out" || die "client_killed: the client never reached DATA"
                        sleep 0.3
                        kill -9 "$cp"
                        wait "$cp" 2>/dev/null || true ;;
    rst_mid_data)       nsx "$NC" timeout 30 "${CL[@]}" rst-data 198.51.100.25 ;;
    rst_after_rcpt)     nsx "$NC" timeout 30 "${CL[@]}" rst-rcpt 198.51.100.25 ;;
    timeout_greeting)   nsx "$NC" timeout 30 "${CL[@]}" idle-greeting 198.51.100.25 --pause $SMTPD_TIMEOUT ;;
    timeout_rcpt)       nsx "$NC" timeout 30 "${CL[@]}" idle-rcpt 198.51.100.25 --pause $SMTPD_TIMEOUT ;;
    timeout_data)       nsx "$NC" timeout 30 "${CL[@]}" idle-data 198.51.100.25 --pause $SMTPD_TIMEOUT ;;
    starttls_quit)      nsx "$NC" timeout 30 "${SW[@]}" -tls ;;
    starttls_rst)       nsx "$NC" timeout 30 "${CL[@]}" starttls-rst 198.51.100.25 ;;
    fw_reject_content)  nsx "$NF" iptables -A FORWARD -p tcp --dport 25 -m string --string LAB-BLOCK --algo bm -j REJECT --reject-with tcp-reset
                        nsx "$NC" timeout 30 "${CL[@]}" bdat-block 198.51.100.25 || true
                        sleep $((SMTPD_TIMEOUT + 2)) ;;
    fw_inject_both)     nsx "$NF" iptables -A FORWARD -p tcp --dport 25 -m string --string LAB-INJECT --algo bm -j DROP
                        ip netns exec "$NF" python3 "$HERE/inject.py" fwc --timeout 25 >"$W/inject.out" & local ip=$!; PIDS+=($ip)
                        sleep 0.5
                        nsx "$NC" timeout 30 "${CL[@]}" trigger 198.51.100.25 || true
                        wait "$ip" || true
                        grep -q injected "$W/inject.out" || die "the injector saw no trigger"
                        sleep 1 ;;
    fw_idle_reject)     fw_stateful REJECT
                        nsx "$NC" timeout 40 "${CL[@]}" idle-resume 198.51.100.25 --pause $((CT_TIMEOUT + 4)) || true
                        sleep $((SMTPD_TIMEOUT)) ;;
    fw_idle_server_first) CT_TIMEOUT=30 fw_stateful REJECT
                        nsx "$NC" timeout 40 "${CL[@]}" idle-resume 198.51.100.25 --pause $((SMTPD_TIMEOUT + 3)) || true
                        sleep 2 ;;
    fw_idle_drop)       fw_stateful DROP
                        nsx "$NC" timeout 40 "${CL[@]}" idle-resume 198.51.100.25 --pause $((CT_TIMEOUT + 4)) || true
                        sleep $((SMTPD_TIMEOUT)) ;;
    *) die "no client for scenario $n" ;;
  esac
}

# ---- checks against the packets, with tshark -------------------------------
tcount() { tshark -r "$1" -Y "$2" 2>/dev/null | wc -l; }
tfirst() { tshark -r "$1" -Y "$2" -T fields -e "$3" 2>/dev/null | head -1; }

# check NAME DIR: the packets must show the planned ending before the
# expectation is written.
check() {
  local n=$1 d=$2 s=$d/server.pcap f=$d/span.pcap
  local quits r221 rst_c rst_s first_fin
  [ "$(tcount "$s" 'tcp.flags.syn==1 && tcp.flags.ack==0')" -ge 1 ] || die "$n: no SYN in server.pcap"
  quits=$(tcount "$s" 'tcp.payload contains "QUIT\r\n"')
  r221=$(tcount "$s" 'tcp.payload contains "221 2.0.0"')
  first_fin=$(tfirst "$s" 'tcp.flags.fin==1' ip.src; true)
  [ -n "$first_fin" ] || first_fin=$(tfirst "$s" 'tcp.flags.fin==1' ipv6.src; true)
  case "$n" in
    quit_*|pipelining|ipv6|load|bdat|relay_denied_quit|size_rejected_quit)
      [ "$quits" -ge 1 ] || die "$n: no QUIT on the wire" ;;
  esac
  case "$n" in
    quit_one|quit_multi|quit_after_ehlo|quit_after_rcpt|pipelining|ipv6|load|bdat|relay_denied_quit|size_rejected_quit)
      [ "$r221" -ge 1 ] || die "$n: no 221 on the wire" ;;
    quit_multi) ;;
  esac
  case "$n" in
    quit_multi|load)
      [ "$(tcount "$s" 'tcp.payload contains "queued as"')" -ge 3 ] || die "$n: fewer than 3 messages queued"
      [ "$(tcount "$s" 'tcp.flags.reset==1 && ip.src==192.0.2.10')" -ge 1 ] || die "$n: smtp-source did not end with a RST" ;;
    relay_denied_quit) [ "$(tcount "$s" 'tcp.payload contains "554 5.7.1"')" -ge 1 ] || die "$n: no 554 relay refusal" ;;
    size_rejected_quit) [ "$(tcount "$s" 'tcp.payload contains "552 5.3.4"')" -ge 1 ] || die "$n: no 552 at end of data" ;;
    bdat) [ "$(tcount "$s" 'tcp.payload contains "BDAT"')" -ge 2 ] || die "$n: no BDAT" ;;
    pipelining) [ "$(tcount "$s" 'tcp.payload contains "MAIL FROM" && tcp.payload contains "RCPT TO"')" -ge 1 ] || die "$n: MAIL and RCPT not pipelined in one segment" ;;
    quit_no_wait)
      local q f
      f=$(tfirst "$s" 'tcp.flags.fin==1 && ip.src==192.0.2.10' frame.number)
      q=$(tfirst "$s" 'tcp.payload contains "221 2.0.0"' frame.number; true)
      [ -n "$f" ] && { [ -z "$q" ] || [ "$f" -lt "$q" ]; } || die "$n: the client's FIN did not precede the 221" ;;
    drop_after_*|fin_mid_data|client_killed)
      [ "$quits" = 0 ] || die "$n: a QUIT was sent"
      [ "$first_fin" = 192.0.2.10 ] || die "$n: first FIN from $first_fin, not the client" ;;
    rst_*|starttls_rst)
      [ "$(tcount "$s" 'tcp.flags.reset==1 && ip.src==192.0.2.10 && ip.ttl==63')" -ge 1 ] || die "$n: no RST from the client" ;;
    timeout_*)
      [ "$(tcount "$s" 'tcp.payload contains "421 4.4.2"')" -ge 1 ] || die "$n: no 421 timeout reply" ;;
    starttls_quit)
      [ "$(tcount "$s" 'tcp.payload contains "STARTTLS"')" -ge 1 ] && [ "$(tcount "$s" 'tls.handshake')" -ge 1 ] || die "$n: no STARTTLS handshake" ;;
    fw_reject_content)
      [ "$(tcount "$f" 'tcp.flags.reset==1 && ip.src==198.51.100.25 && ip.ttl==64')" -ge 1 ] || die "$n: no firewall RST in the server's name at the SPAN"
      [ "$(tcount "$s" 'tcp.payload contains "LAB-BLOCK"')" = 0 ] || die "$n: the blocked content reached the server"
      [ "$(tcount "$s" 'tcp.flags.reset==1 && ip.src==192.0.2.10 && ip.ttl==63')" -ge 1 ] || die "$n: no RST from the client's host at the server" ;;
    fw_inject_both)
      [ "$(tcount "$f" 'tcp.flags.reset==1 && ip.src==198.51.100.25 && ip.ttl==64')" -ge 1 ] || die "$n: no injected RST towards the client"
      [ "$(tcount "$s" 'tcp.flags.reset==1 && ip.src==192.0.2.10 && ip.ttl==64')" -ge 1 ] || die "$n: no injected RST towards the server" ;;
    fw_idle_reject)
      [ "$(tcount "$f" 'tcp.flags.reset==1 && ip.src==198.51.100.25 && ip.ttl==64')" -ge 1 ] || die "$n: no firewall RST after the idle gap" ;;
    fw_idle_server_first)
      [ "$(tcount "$s" 'tcp.payload contains "421 4.4.2"')" -ge 1 ] || die "$n: no 421 timeout from the server"
      [ "$(tcount "$f" 'tcp.payload contains "421 4.4.2"')" -ge 1 ] || die "$n: the 421 did not pass the firewall"
      [ "$(tcount "$s" 'tcp.flags.reset==1 && ip.src==192.0.2.10 && ip.ttl==64')" = 0 ] || die "$n: a firewall RST reached the server" ;;
    fw_idle_drop)
      [ "$(tcount "$f" 'tcp.analysis.retransmission && ip.src==192.0.2.10')" -ge 3 ] || die "$n: no retransmissions after the idle gap"
      [ "$(tcount "$s" 'tcp.payload contains "MAIL FROM"')" = 0 ] || die "$n: the dropped command reached the server" ;;
  esac
}

# who sent the first FIN (for verdicts that name it from the packets)
first_fin_who() {
  local src
  src=$(tfirst "$1" 'tcp.flags.fin==1' ip.src; true)
  [ -n "$src" ] || src=$(tfirst "$1" 'tcp.flags.fin==1' ipv6.src; true)
  case "$src" in 192.0.2.10|2001:db8:1::10) echo client ;; 198.51.100.25|2001:db8:2::25) echo server ;; *) echo unknown ;; esac
}

# known_gap POINT "points=text": the JSON member naming a known gap at POINT
known_gap() {
  local pts=${2%%=*} txt=${2#*=}
  [ -n "$2" ] && [[ ",$pts," == *",$1,"* ]] && printf ', "known_gap": %s' "$(json_escape "$txt")"
  return 0
}
json_escape() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

run_scenario() {
  local line=$1 n desc vs ws vp wp esa gap d pre post
  IFS='|' read -r n desc vs ws vp wp esa gap <<<"$line"
  d=$OUT/$n
  rm -rf "$d"; mkdir -p "$d"
  log "$n: $desc"
  fw_reset
  pre=$(wc -l <"$W/pf/maillog")
  cap_start "$d"
  local t0=$SECONDS
  run_client "$n" >"$d/client.out" 2>&1 || die "$n: client failed: $(tail -3 "$d/client.out")"
  sleep 1
  cap_stop
  post=$(wc -l <"$W/pf/maillog")
  sed -n "$((pre + 1)),${post}p" "$W/pf/maillog" >"$d/postfix.log"
  rm -f "$d/client.out"
  check "$n" "$d"
  [ "$ws" = "@fin" ] && ws=$(first_fin_who "$d/server.pcap")
  [ "$wp" = "@fin" ] && wp=$(first_fin_who "$d/span.pcap")
  local sessions
  sessions=$(tshark -r "$d/server.pcap" -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' 2>/dev/null | wc -l)
  python3 "$HERE/postfix2esa.py" "$d/postfix.log" --year "$(date +%Y)" --offset 3600 --header >"$d/mail_logs"
  if [ -n "$esa" ]; then
    grep -q "Message aborted MID [0-9]* $esa\$" "$d/mail_logs" || die "$n: the ESA log lacks '$esa'"
  else
    ! grep -q "Message aborted" "$d/mail_logs" || die "$n: the ESA log has an unexpected abort"
  fi
  cat >"$d/expected.json" <<EOF
{
  "scenario": "$n",
  "description": $(json_escape "$desc"),
  "sessions": $sessions,
  "expect": {
    "server": {"verdict": "$vs", "who": "$ws"$(known_gap server "$gap")},
    "any": {"verdict": "$vs", "who": "$ws"$(known_gap any "$gap")},
    "span": {"verdict": "$vp", "who": "$wp"$(known_gap span "$gap")}
  },
  "esa_abort": $(json_escape "$esa"),
  "seconds": $((SECONDS - t0))
}
EOF
}

topology
postfix_start
# Warm up (Postfix starts its logger and TLS manager lazily): not captured.
nsx "$NC" timeout 30 "${SW[@]}" >/dev/null 2>&1 || die "warm-up delivery failed"
nsx "$NC" timeout 30 "${SW[@]}" -tls >"$W/warmup.out" 2>&1 || die "warm-up TLS delivery failed: $(tail -5 "$W/warmup.out")"
log "topology up, postfix listening; output in $OUT"
ran=0
for s in "${SCENARIOS[@]}"; do
  n=${s%%|*}
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$n,"* ]]; then continue; fi
  run_scenario "$s"
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || die "no scenario matched --only $ONLY"
if [ -z "$ONLY" ]; then
  # The whole run as one appliance would record it: every session in one
  # capture, and one mail log with unique ICIDs and MIDs (the demo's input).
  mergecap -F pcapng -w "$OUT/all-server.pcapng" "$OUT"/*/server.pcap
  python3 "$HERE/postfix2esa.py" "$W/pf/maillog" --year "$(date +%Y)" --offset 3600 --header >"$OUT/mail.current"
fi
log "done: $ran scenarios"
