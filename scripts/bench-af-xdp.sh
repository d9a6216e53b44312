#!/usr/bin/env bash
# bench-af-xdp.sh - rvs on AF_XDP vs rvs on af_packet vs the Linux kernel's
# own NAT (nftables DNAT + conntrack), same topology, same run.
#
# Topology (network namespaces, 198.18.0.0/15 only):
#   rvb-c  client 198.18.0.10/24 ── veth ── rvb-d director (d-cli | d-srv) ── veth ── rvb-s server 198.18.1.2/24
#   VIP 198.18.0.100 :80 (nginx) and :5201 (iperf3) → 198.18.1.2; the server's default route is the director.
#
# For each mode (rvs-af_xdp, rvs-af_packet, nft) it measures, from the client:
#   bulk     iperf3 -t SECONDS, one TCP stream (Gbit/s)
#   newconn  wrk -c 16 -H 'Connection: close' (a new TCP connection per request: conn/s)
#   rr       wrk -c 1 --latency (one keep-alive connection: requests/s, p50, p99)
# The client's and server's veth ends have offloads off (as in the e2e tests).
# A benchmark, not a test: the figures depend on the machine (and on 2 shared
# vCPUs, mostly on the neighbours). Prints a Markdown table at the end, with
# the 1-minute load average when each mode started, the CPU time rvsd's
# worker thread used per wall second (rvs modes) and the machine's softirq
# share, so a run on a loaded machine says so.
#
# Usage: sudo scripts/bench-af-xdp.sh [--seconds N] [--modes rvs-af_xdp,rvs-af_packet,nft]
#                                     [--idle poll,adaptive] [--af-xdp 'busy_budget = 0']
#   --idle LIST   run each rvs mode once per [dataplane] idle policy in LIST
#                 (default: poll); rows are named MODE/POLICY
#   --af-xdp TOML extra keys of the AF_XDP ports' af_xdp = { ... } table
# Env:   RVSD=path/to/rvsd (default: target/release/rvsd, built if missing)
#        BENCH_CORES="0, 1" (rvsd's [eal] cores: control, worker)
#        BENCH_DATAPLANE='idle_empty_polls = 64' (more [dataplane] lines)
# Installs iperf3, wrk, nginx-light and nftables with apt-get when missing
# (without starting nginx's system service).
set -euo pipefail

PROG=${0##*/}
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$DIR/.." && pwd)
SECONDS_PER=10
MODES=rvs-af_xdp,rvs-af_packet,nft
IDLES=poll
AFXDP_OPTS=
NSC=rvb-c NSD=rvb-d NSS=rvb-s
VIP=198.18.0.100
SRV=198.18.1.2
RVSD=${RVSD:-$ROOT/target/release/rvsd}
CORES=${BENCH_CORES:-0, 1}
BENCH_DATAPLANE=${BENCH_DATAPLANE:-}
WORK=$(mktemp -d /tmp/rvs-bench.XXXXXX)
PIDS=()

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
msg() { printf '==> %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --seconds) SECONDS_PER=$2; shift ;;
        --modes) MODES=$2; shift ;;
        --idle) IDLES=$2; shift ;;
        --af-xdp) AFXDP_OPTS=$2; shift ;;
        -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) printf '%s: unknown argument: %s\n' "$PROG" "$1" >&2; exit 2 ;;
    esac
    shift
done
[[ $SECONDS_PER =~ ^[0-9]+$ ]] && [ "$SECONDS_PER" -ge 1 ] && [ "$SECONDS_PER" -le 300 ] \
    || die "--seconds must be 1..300"
for i in ${IDLES//,/ }; do
    case $i in poll|adaptive) ;; *) die "--idle: '$i' is not poll or adaptive" ;; esac
done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, DPDK)"

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for ns in $NSC $NSD $NSS; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK" /var/run/dpdk/rvs-bench
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ------------------------------------------------------------------
need=()
command -v iperf3 >/dev/null || need+=(iperf3)
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v nft >/dev/null || need+=(nftables)
if [ ${#need[@]} -gt 0 ]; then
    msg "installing ${need[*]}"
    # keep the packages' init scripts from starting daemons (nginx on :80)
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    fi
    { DEBIAN_FRONTEND=noninteractive apt-get -y -q update >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get -y -q install --no-install-recommends "${need[@]}" >/dev/null; } \
      || { [ "$made_policy" -eq 0 ] || rm -f /usr/sbin/policy-rc.d; die "apt-get install ${need[*]} failed"; }
    [ "$made_policy" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
fi
if [ ! -x "$RVSD" ]; then
    msg "building rvsd (release)"
    (cd "$ROOT" && cargo build --release -p control --bin rvsd) || die "cargo build failed"
fi

# --- topology ---------------------------------------------------------------
for ns in $NSC $NSD $NSS; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; done
ip -n $NSC link add c0 type veth peer name d-cli netns $NSD
ip -n $NSS link add s0 type veth peer name d-srv netns $NSD
for l in "$NSC c0" "$NSS s0" "$NSD d-cli" "$NSD d-srv" "$NSC lo" "$NSD lo" "$NSS lo"; do
    set -- $l; ip -n "$1" link set "$2" up
done
# As in the e2e tests: the kernel-side ends send finished frames (checksums,
# no TSO/GSO super-frames), which rvs needs from af_packet/af_xdp on veths.
# The same for every mode, nft included, so all see the same traffic.
ip netns exec $NSC ethtool -K c0 rx off tx off tso off gso off gro off >/dev/null
ip netns exec $NSS ethtool -K s0 rx off tx off tso off gso off gro off >/dev/null
ip -n $NSC addr add 198.18.0.10/24 dev c0
ip -n $NSS addr add $SRV/24 dev s0
ip -n $NSS route add default via 198.18.1.1
# the kernel in the director must not answer for rvs's addresses; nft mode adds them
ip netns exec $NSD sysctl -qw net.ipv6.conf.all.disable_ipv6=1

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
    keepalive_requests 100000000;
    server { listen $SRV:80 reuseport backlog=4096; location / { return 200 "ok\n"; } }
}
EOF
ip netns exec $NSS nginx -c "$WORK/nginx.conf" -g 'daemon off;' & PIDS+=($!)
ip netns exec $NSS iperf3 -s -B $SRV -p 5201 >/dev/null 2>&1 & PIDS+=($!)
sleep 1

rvsd_conf() { # DEVICE_CLI DEVICE_SRV IDLE [AF_XDP_TABLE]
    cat <<EOF
[eal]
cores = [$CORES]
hugepages = false
memory_mb = 512
extra_args = ["--no-pci", "--file-prefix=rvs-bench"]

[[port]]
name = "cli"
device = "$1"
addresses = ["198.18.0.1/24"]
${4:-}

[[port]]
name = "srv"
device = "$2"
addresses = ["198.18.1.1/24"]
${4:-}

[dataplane]
workers = 1
conn_table_size = 1048576
idle = "$3"
$BENCH_DATAPLANE

[dataplane.timeouts]
tcp_fin = 2

[metrics]
listen = "127.0.0.1:9109"

[control]
socket = "$WORK/rvsd.sock"

[[service]]
protocol = "tcp"
address = "$VIP:80"
scheduler = "rr"
forward = "masq"
  [[service.real]]
  address = "$SRV:80"

[[service]]
protocol = "tcp"
address = "$VIP:5201"
scheduler = "rr"
forward = "masq"
  [[service.real]]
  address = "$SRV:5201"
EOF
}

RVSD_PID=
start_mode() { # MODE IDLE
    local xdp=
    [ -z "$AFXDP_OPTS" ] || xdp="af_xdp = { $AFXDP_OPTS }"
    case $1 in
        rvs-af_xdp) rvsd_conf "af_xdp:d-cli" "af_xdp:d-srv" "$2" "$xdp" >"$WORK/rvsd.toml" ;;
        rvs-af_packet) rvsd_conf "net_af_packet0,iface=d-cli" "net_af_packet1,iface=d-srv" "$2" >"$WORK/rvsd.toml" ;;
        nft)
            ip -n $NSD addr add 198.18.0.1/24 dev d-cli
            ip -n $NSD addr add $VIP/32 dev d-cli
            ip -n $NSD addr add 198.18.1.1/24 dev d-srv
            ip netns exec $NSD sysctl -qw net.ipv4.ip_forward=1
            ip netns exec $NSD nft -f - <<EOF
table ip rvb {
    chain pre { type nat hook prerouting priority dstnat; ip daddr $VIP tcp dport { 80, 5201 } dnat to $SRV; }
}
EOF
            return ;;
        *) die "unknown mode $1" ;;
    esac
    ip netns exec $NSD "$RVSD" --config "$WORK/rvsd.toml" >"$WORK/rvsd.log" 2>&1 & RVSD_PID=$!
    PIDS+=("$RVSD_PID")
    local i
    for i in $(seq 1 100); do
        "$(dirname "$RVSD")/rvsadm" --socket "$WORK/rvsd.sock" -Ln >/dev/null 2>&1 && return
        kill -0 "$RVSD_PID" 2>/dev/null || { cat "$WORK/rvsd.log" >&2; die "rvsd did not start ($1)"; }
        sleep 0.3
    done
    die "rvsd not ready after 30 s ($1)"
}

stop_mode() {
    case $1 in
        nft)
            ip netns exec $NSD nft delete table ip rvb
            ip netns exec $NSD sysctl -qw net.ipv4.ip_forward=0
            ip -n $NSD addr flush dev d-cli; ip -n $NSD addr flush dev d-srv ;;
        *)
            kill -TERM "$RVSD_PID" 2>/dev/null || true
            wait "$RVSD_PID" 2>/dev/null || true ;;
    esac
    ip -n $NSC neigh flush dev c0; ip -n $NSS neigh flush dev s0
}

# wait until the VIP answers HTTP (ARP, first connection) or give up
wait_vip() {
    local i
    for i in $(seq 1 60); do
        ip netns exec $NSC timeout 2 bash -c "exec 3<>/dev/tcp/$VIP/80" 2>/dev/null && return 0
        sleep 0.5
    done
    return 1
}

# unit VALUE: "12.3k" "1.2M" -> plain number (wrk's Requests/sec is plain)
lat_us() { # wrk latency "1.23ms" / "456.00us" / "1.2s" -> microseconds
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print n }'
}

# the machine's CPU ticks: softirq, all
cpu_ticks() { awk '$1 == "cpu" { print $8, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }
# CPU ticks rvsd's worker thread (rvs-w0) used so far: all, in the kernel
# (system calls: AF_XDP's TX kick and busy polling, af_packet's sendto)
worker_ticks() {
    local t
    for t in /proc/"$RVSD_PID"/task/*; do
        [ "$(cat "$t/comm" 2>/dev/null)" = rvs-w0 ] || continue
        awk '{ sub(/^.*\) /, ""); print $12 + $13, $13 }' "$t/stat"; return
    done
    echo 0 0
}

# rvsd worker 0's "loops busy-loops idle-sleeps idle-ms" now ("" for nft)
wk() {
    [ "$mode" != nft ] || return 0
    "$(dirname "$RVSD")/rvsadm" --socket "$WORK/rvsd.sock" --workers 2>/dev/null \
        | awk 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
               NR == 2 { print $h["Loops"], $h["Busy-loops"], $h["Idle-sleeps"], $h["Idle-ms"] }'
}
# what the worker did during one measurement (rvs modes)
wk_delta() { # WHAT BEFORE AFTER
    [ -n "$2" ] || return 0
    read -r l0 b0 s0 m0 <<<"$2"; read -r l1 b1 s1 m1 <<<"$3"
    msg "  $1: worker loops $((l1 - l0)), busy $((b1 - b0)), idle sleeps $((s1 - s0)), $((m1 - m0)) ms asleep (counters refresh every 10 ms)"
}

RUNS=()
for mode in ${MODES//,/ }; do
    case $mode in
        rvs-*) for i in ${IDLES//,/ }; do
                   if [ "$IDLES" = poll ]; then RUNS+=("$mode:$i"); else RUNS+=("$mode/$i:$i"); fi
               done ;;
        *) RUNS+=("$mode:") ;;
    esac
done

declare -A R
HZ=$(getconf CLK_TCK)
ROWS=()
for run in "${RUNS[@]}"; do
    label=${run%%:*} idle=${run#*:} mode=${label%%/*}
    ROWS+=("$label")
    msg "$label"
    start_mode "$mode" "$idle"
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r soft0 tot0 < <(cpu_ticks)
    w0="0 0"; [ "$mode" = nft ] || w0=$(worker_ticks)
    t0=$(date +%s.%N)
    wait_vip || { [ ! -f "$WORK/rvsd.log" ] || cat "$WORK/rvsd.log" >&2; die "$mode: VIP does not answer"; }
    k0=$(wk)
    bulk=$(ip netns exec $NSC timeout $((SECONDS_PER + 20)) iperf3 -c $VIP -p 5201 -t "$SECONDS_PER" -J 2>/dev/null \
        | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' \
        2>/dev/null || echo fail)
    k1=$(wk); wk_delta bulk "$k0" "$k1"
    sleep 1
    k0=$(wk)
    newc=$(ip netns exec $NSC timeout $((SECONDS_PER + 20)) wrk -t1 -c16 -d"${SECONDS_PER}s" -H 'Connection: close' "http://$VIP/" 2>/dev/null \
        | awk '/Requests\/sec/ { printf "%.0f", $2 }')
    k1=$(wk); wk_delta newconn "$k0" "$k1"
    sleep 3   # let TIME_WAIT/FIN state settle a little
    k0=$(wk)
    out=$(ip netns exec $NSC timeout $((SECONDS_PER + 20)) wrk -t1 -c1 -d"${SECONDS_PER}s" --latency "http://$VIP/" 2>/dev/null || true)
    k1=$(wk); wk_delta rr "$k0" "$k1"
    rr=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
    p50=$(lat_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(lat_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    t1=$(date +%s.%N)
    read -r soft1 tot1 < <(cpu_ticks)
    wcpu=-
    if [ "$mode" != nft ]; then
        w1=$(worker_ticks)
        wcpu=$(awk -v a="$w0" -v b="$w1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" 'BEGIN { split(a, x, " "); split(b, y, " ");
            printf "%.0f%% (sys %.0f%%)", 100 * (y[1] - x[1]) / hz / (t1 - t0), 100 * (y[2] - x[2]) / hz / (t1 - t0) }')
        "$(dirname "$RVSD")/rvsadm" --socket "$WORK/rvsd.sock" --workers 2>/dev/null \
            | awk 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
                   { printf "    worker %s: loops %s, busy loops %s, idle sleeps %s, %s ms asleep\n", $1, $h["Loops"], $h["Busy-loops"], $h["Idle-sleeps"], $h["Idle-ms"] }' >&2 || true
    fi
    soft=$(awk -v a="$soft0" -v b="$soft1" -v t0="$tot0" -v t1="$tot1" 'BEGIN { printf "%.0f%%", 100 * (b - a) / (t1 - t0) }')
    R[$label]="$bulk|${newc:-fail}|${rr:-fail}|$p50|$p99|$load|$wcpu|$soft"
    msg "$label: bulk ${bulk} Gbit/s, ${newc:-?} conn/s, ${rr:-?} req/s, p50 ${p50} us, p99 ${p99} us (load $load, worker CPU $wcpu, softirq $soft)"
    stop_mode "$mode"
done

printf '\n| mode | iperf3 Gbit/s | new conn/s | 1-conn req/s | p50 µs | p99 µs | load | worker CPU | softirq |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for label in "${ROWS[@]}"; do
    IFS='|' read -r a b c d e f g h <<<"${R[$label]}"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h"
done
printf '\n(%s s per measurement, %s, kernel %s, %s CPUs)\n' "$SECONDS_PER" "$(date -u +%F)" "$(uname -r)" "$(nproc)"
