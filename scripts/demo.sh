#!/usr/bin/env bash
# demo.sh - the README's first command: a live rvs load balancer in network
# namespaces. Installs what it needs, builds rvs, builds a topology of
# veths and namespaces (a client with four addresses, the director running
# rvsd on DPDK af_packet ports, three real servers on a bridge), starts
# rvsd with configs/demo.toml (NAT, wrr 3:2:1 over IPv4, rr over IPv6),
# drives HTTP traffic from the client and shows rvsadm's listings changing
# live. Everything is torn down on exit or Ctrl-C.
#
#   sudo bash scripts/demo.sh            # about 30 s
#   DEMO_SECONDS=120 sudo -E bash scripts/demo.sh
#   DEMO_PROFILE=debug ...               # use target/debug (CI's leak check)
#   DEMO_PORTS=af_xdp ...                # AF_XDP ports (device = "af_xdp:IFACE") instead of af_packet
#
# Teardown ends exactly what the demo started: the programs it launched
# (their own PIDs: `ip netns exec` execs them, so $! is the program, not a
# shell) and anything left in its own namespaces (`ip netns pids`), then
# deletes the namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [[ $(id -u) -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi
SECONDS_TOTAL=${DEMO_SECONDS:-30}
PROFILE=${DEMO_PROFILE:-release}
case $PROFILE in release|debug) ;; *) echo "demo.sh: DEMO_PROFILE must be release or debug, not '$PROFILE'" >&2; exit 2 ;; esac
PORTS=${DEMO_PORTS:-af_packet}
case $PORTS in af_packet|af_xdp) ;; *) echo "demo.sh: DEMO_PORTS must be af_packet or af_xdp, not '$PORTS'" >&2; exit 2 ;; esac
P=rvsdemo
SOCK=/run/rvs/demo.sock
LOG=$(mktemp -d /tmp/rvs-demo.XXXXXX)
PIDS=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
NSES=(cl dir sw rs1 rs2 rs3)

# ns_pids: every process inside the demo's namespaces.
ns_pids() {
    local ns
    for ns in "${NSES[@]}"; do ip netns pids "$P-$ns" 2>/dev/null; done
}

cleanup() {
    set +e
    local pid left
    for pid in "${PIDS[@]}" $(ns_pids); do kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 1 30); do
        left=$(for pid in "${PIDS[@]}" $(ns_pids); do kill -0 "$pid" 2>/dev/null && echo "$pid"; done)
        [ -z "$left" ] && break
        sleep 0.1
    done
    for pid in $left; do kill -KILL "$pid" 2>/dev/null; done
    for pid in $left; do wait "$pid" 2>/dev/null; done
    for ns in "${NSES[@]}"; do ip netns del "$P-$ns" 2>/dev/null; done
    rm -rf /var/run/dpdk/rvs-demo "$SOCK"
    echo "demo: torn down (logs in $LOG)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "installing dependencies and building rvs (release)"
bash scripts/setup.sh --no-optional
if [ "$PROFILE" = release ]; then
    cargo build --release -p control -p perf 2>&1 | tail -1
else
    cargo build -p control 2>&1 | tail -1
fi
RVSD=$ROOT/target/$PROFILE/rvsd
RVSADM="$ROOT/target/$PROFILE/rvsadm --socket $SOCK"

say "building the topology: client --- [rvsd] --- bridge --- rs1 rs2 rs3"
cleanup >/dev/null 2>&1 || true
for ns in "${NSES[@]}"; do ip netns add "$P-$ns"; in_ns "$ns" ip link set lo up; done
# For scripts/demo-check.sh: the namespaces' identities, to find anything
# still inside them after teardown.
echo "demo: namespaces $(for ns in "${NSES[@]}"; do ip netns exec "$P-$ns" readlink /proc/self/ns/net; done | tr '\n' ' ')"
# client <-> director
ip link add "$P-c0" type veth peer name "$P-dc"
ip link set "$P-c0" netns "$P-cl"; ip link set "$P-dc" netns "$P-dir"
# director <-> switch
ip link add "$P-ds" type veth peer name "$P-sd"
ip link set "$P-ds" netns "$P-dir"; ip link set "$P-sd" netns "$P-sw"
in_ns sw ip link add br0 type bridge
in_ns sw ip link set "$P-sd" master br0
in_ns sw ip link set br0 up; in_ns sw ip link set "$P-sd" up
for i in 1 2 3; do
    ip link add "$P-r$i" type veth peer name "$P-s$i"
    ip link set "$P-r$i" netns "$P-rs$i"; ip link set "$P-s$i" netns "$P-sw"
    in_ns sw ip link set "$P-s$i" master br0; in_ns sw ip link set "$P-s$i" up
    in_ns "rs$i" ip link set "$P-r$i" name eth0
    in_ns "rs$i" ip addr add "198.19.0.1$i/24" dev eth0
    in_ns "rs$i" ip addr add "2001:db8:1::1$i/64" dev eth0 nodad
    in_ns "rs$i" ip link set eth0 up
    in_ns "rs$i" ip route add default via 198.19.0.1
    in_ns "rs$i" ip -6 route add default via 2001:db8:1::1
    in_ns "rs$i" ethtool -K eth0 tx off >/dev/null
done
in_ns cl ip link set "$P-c0" name eth0
for a in 10 11 12 13; do in_ns cl ip addr add "198.18.0.$a/24" dev eth0; done
in_ns cl ip addr add 2001:db8::10/64 dev eth0 nodad
in_ns cl ip link set eth0 up
in_ns cl ip route add default via 198.18.0.1
in_ns cl ip -6 route add default via 2001:db8::1
in_ns cl ethtool -K eth0 tx off >/dev/null
# The director's ends belong to DPDK: no kernel addresses, no IPv6 chatter.
for d in dc ds; do
    in_ns dir sysctl -qw "net.ipv6.conf.$P-$d.disable_ipv6=1"
    in_ns dir ip link set "$P-$d" up
done
echo "client 198.18.0.10-13, 2001:db8::10   VIP 198.18.0.100:80, [2001:db8::100]:80"
echo "real servers rs1..rs3: 198.19.0.11-13:80, [2001:db8:1::11-13]:80"

say "starting the real servers (each answers with its own name)"
for i in 1 2 3; do
    # `ip netns exec` execs python3: $! is the server itself.
    ip netns exec "$P-rs$i" python3 "$ROOT/scripts/e2e/http_name_server.py" "rs$i" --port 80 >"$LOG/rs$i.log" 2>&1 &
    PIDS+=($!)
done

say "starting rvsd (DPDK EAL, $PORTS ports, 1 worker)"
mkdir -p /run/rvs
CONFIG=$ROOT/configs/demo.toml
if [ "$PORTS" = af_xdp ]; then
    CONFIG=$LOG/demo.toml
    sed -E 's/^device = "net_af_packet[0-9]+,iface=([^",]+)[^"]*"/device = "af_xdp:\1"/' \
        "$ROOT/configs/demo.toml" >"$CONFIG"
fi
ip netns exec "$P-dir" "$RVSD" --config "$CONFIG" >"$LOG/rvsd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    if $RVSADM -Ln >/dev/null 2>&1; then break; fi
    sleep 0.2
done
grep -E "rvsd:" "$LOG/rvsd.log" | tail -2
$RVSADM -Ln

say "ten requests from the client: wrr 3:2:1 spreads them"
for n in $(seq 1 10); do
    src=198.18.0.1$((n % 4))
    printf '%s -> %s\n' "$src" "$(in_ns cl curl -s -m 3 --interface "$src" http://198.18.0.100/ || echo FAILED)"
done
printf '[2001:db8::10] -> %s\n' "$(in_ns cl curl -s -m 3 'http://[2001:db8::100]/' || echo FAILED)"

say "driving traffic for ${SECONDS_TOTAL}s; rvsadm -Ln --stats and --rate every 5 s"
(
    end=$((SECONDS + SECONDS_TOTAL))
    while ((SECONDS < end)); do
        for a in 10 11 12 13; do
            in_ns cl curl -s -m 2 --interface "198.18.0.$a" -o /dev/null http://198.18.0.100/bytes/20000 &
        done
        in_ns cl curl -s -m 2 -o /dev/null 'http://[2001:db8::100]/' &
        wait
    done
) &
LOAD=$!
PIDS+=("$LOAD")
end=$((SECONDS + SECONDS_TOTAL))
while ((SECONDS < end)); do
    sleep 5
    printf '\n--- t=%ss ---\n' "$((SECONDS_TOTAL - (end - SECONDS)))"
    $RVSADM -Ln --stats
    $RVSADM -Ln --rate
done
wait "$LOAD" 2>/dev/null || true

say "connections, drops and workers"
$RVSADM -Lnc | head -8
$RVSADM --drops
$RVSADM --workers
say "metrics: curl http://127.0.0.1:9109/metrics (excerpt)"
in_ns dir curl -s http://127.0.0.1:9109/metrics | grep -E '^node_ipvs_(connections|incoming_packets)_total' | head -4
say "done; tearing down"
