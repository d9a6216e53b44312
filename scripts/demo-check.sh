#!/usr/bin/env bash
# demo-check.sh - runs the README's demo briefly (debug build) and checks
# that it served traffic and that its teardown left nothing of its own
# behind: no namespace, no real-server process, no rvsd, no EAL runtime
# directory. test.sh runs it after the cargo tests; exit 0 = pass.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail=0
bad() { printf 'demo-check: FAIL: %s\n' "$*" >&2; fail=1; }

DEMO_SECONDS=${DEMO_SECONDS:-6} DEMO_PROFILE=${DEMO_PROFILE:-debug} \
    timeout 600 bash scripts/demo.sh </dev/null >"$out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || bad "demo.sh exited $rc"
grep -q 'demo: torn down' "$out" || bad "demo.sh did not tear down"
# The ten wrr requests and the IPv6 one were answered by real servers.
served=$(grep -cE -- '-> rs[123]$' "$out")
[ "$served" -eq 11 ] || bad "expected 11 answered requests, saw $served"
grep -q -- '-> FAILED' "$out" && bad "a demo request failed"

# Nothing of the demo's own is left.
leftns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep '^rvsdemo-')
[ -z "$leftns" ] || bad "namespaces left: $leftns"
# Any process still inside one of the demo's (deleted) namespaces.
nsids=$(sed -n 's/^demo: namespaces //p' "$out")
[ -n "$nsids" ] || bad "demo.sh did not print its namespaces"
leftp=""
for f in /proc/[0-9]*/ns/net; do
    id=$(readlink "$f" 2>/dev/null) || continue
    case " $nsids " in
        *" $id "*) pid=${f#/proc/}; pid=${pid%%/*}
                   leftp+=" $pid($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null))" ;;
    esac
done
[ -z "$leftp" ] || bad "processes left in the demo's namespaces:$leftp"
leftp=$(pgrep -af "target/(debug|release)/rvsd --config $ROOT/configs/demo.toml" | grep -v pgrep)
[ -z "$leftp" ] || bad "rvsd left: $leftp"
[ -e /var/run/dpdk/rvs-demo ] && bad "EAL runtime dir /var/run/dpdk/rvs-demo left"

if [ "$fail" -ne 0 ]; then
    echo "---- demo output ----" >&2
    tail -60 "$out" >&2
    exit 1
fi
echo "demo-check: ok ($served requests answered, nothing left behind)"
