#!/bin/sh
# The deterministic performance gate: instructions per packet of the packet
# path, counted by callgrind on `rvs-perf callgrind` (VecBuf, no EAL, only
# perf::callgrind::process_one collected), for every case in
# perf/limits.toml, each checked against its limit there. A change that adds
# instructions to a case beyond the limit fails. Wall-clock time is never
# measured here.
#
#   perf/gate.sh            build the `gate` profile, run every case, check
#   perf/gate.sh --update   the same, then rewrite perf/limits.toml with the
#                           counts just measured (limit = measured + headroom)
#   RVS_GATE_LIMITS=file    check against another limits file
#
# A case is `<mode>-<family>-<kind>`: mode nat|dr|tun|fullnat, family v4|v6,
# kind established (ACK/data of existing connections), new (one SYN per
# new flow), adjusted (established connections carrying a TCP sequence
# delta both ways) or toa (a TOA service's client segments that get the
# option). Counts belong to the `gate` cargo profile (thin LTO, see the
# workspace Cargo.toml), not to the release build. RVS_PERF=path uses that
# binary instead of building (its counts must come from the same profile).
#
# One line per case, then `gate: N passed, N failed`. Without valgrind the
# gate fails under CI=true and says it skipped elsewhere.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
limits=${RVS_GATE_LIMITS:-$root/perf/limits.toml}
update=0
[ "${1:-}" = "--update" ] && update=1

if ! command -v valgrind >/dev/null 2>&1; then
    if [ "${CI:-}" = "true" ]; then
        echo "gate: valgrind not installed (scripts/setup.sh installs it)"
        echo "gate: 0 passed, 1 failed"
        exit 1
    fi
    echo "gate: skipped, valgrind not installed"
    [ -n "${RVS_SKIP_LOG:-}" ] && echo "perf gate: valgrind not installed" >>"$RVS_SKIP_LOG"
    echo "gate: 0 passed, 0 failed"
    exit 0
fi

if [ -n "${RVS_PERF:-}" ]; then
    bin=$RVS_PERF
else
    (cd "$root" && cargo build --quiet --profile gate -p perf) || {
        echo "gate: build of the gate profile failed"
        echo "gate: 0 passed, 1 failed"
        exit 1
    }
    bin=$root/target/gate/rvs-perf
fi

# key = value from the top of limits.toml (before the first [case])
top() { awk -F' *= *' -v k="$1" '/^\[/ { exit } $1 == k { print $2; exit }' "$limits"; }
packets=$(top packets)
flows=$(top flows)
headroom=$(top headroom)
cases=$(sed -n 's/^\[\(.*\)\]$/\1/p' "$limits")

tmp=$(mktemp -d /tmp/rvs-gate.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
for c in $cases; do
    mode=${c%%-*}
    rest=${c#*-}
    fam=${rest%%-*}
    kind=${rest#*-}
    new=""
    case "$kind" in
        established) ;;
        new) new="--new" ;;
        adjusted) new="--adjusted" ;;
        toa) new="--toa" ;;
        *) echo "gate: $c: unknown kind $kind"; fail=$((fail + 1)); continue ;;
    esac
    out=$tmp/$c.out
    # shellcheck disable=SC2086 # $new is empty or one word
    if ! valgrind --tool=callgrind --callgrind-out-file="$out" \
        --toggle-collect='*callgrind*process_one*' \
        "$bin" callgrind --flows "$flows" --packets "$packets" \
        --mode "$mode" --family "$fam" $new >"$tmp/$c.log" 2>&1; then
        echo "gate: $c: rvs-perf failed under valgrind:"
        tail -5 "$tmp/$c.log"
        fail=$((fail + 1))
        continue
    fi
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
    limit=$(awk -F' *= *' -v c="[$c]" '$0 == c { on = 1; next } /^\[/ { on = 0 } on && $1 == "limit" { print $2; exit }' "$limits")
    was=$(awk -F' *= *' -v c="[$c]" '$0 == c { on = 1; next } /^\[/ { on = 0 } on && $1 == "measured" { print $2; exit }' "$limits")
    per=$(awk -v ir="$ir" -v n="$packets" 'BEGIN { printf "%.1f", ir / n }')
    echo "$c $per" >>"$tmp/measured"
    if awk -v p="$per" -v l="$limit" 'BEGIN { exit !(l != "" && p <= l) }'; then
        echo "gate: $c ok: $per instructions/packet (limit $limit, measured $was when set)"
        pass=$((pass + 1))
    else
        echo "gate: $c FAILED: $per instructions/packet over the limit $limit (measured $was when set)"
        fail=$((fail + 1))
    fi
done

if [ "$update" -eq 1 ] && [ -f "$tmp/measured" ]; then
    {
        awk '/^\[/ { exit } { print }' "$limits"
        while read -r c per; do
            echo "[$c]"
            echo "measured = $per"
            awk -v p="$per" -v h="$headroom" 'BEGIN { l = p * (1 + h); printf "limit = %d\n", (l == int(l)) ? l : int(l) + 1 }'
            echo
        done <"$tmp/measured"
    } >"$tmp/limits.toml"
    sed -i -e '$ { /^$/ d }' "$tmp/limits.toml"
    cp "$tmp/limits.toml" "$limits"
    echo "gate: wrote $limits"
fi
echo "gate: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
