#!/bin/sh
# Instructions per packet of the established-flow packet path, counted by
# callgrind on `rvs-perf callgrind` (VecBuf, no EAL): only the function
# perf::callgrind::process_one is collected, so set-up and buffer refills
# are left out, and the count repeats exactly from run to run.
#
#   perf/callgrind.sh [--flows 1k] [--packets 200000] [--mode nat] [--family v4] [--len 64]
#
# Prints Ir per packet and the top functions (inclusive of inlining, as
# callgrind_annotate attributes them). Needs valgrind and a release build
# (cargo build --release -p perf).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${RVS_PERF:-$root/target/release/rvs-perf}
[ -x "$bin" ] || { echo "build first: cargo build --release -p perf" >&2; exit 1; }
packets=200000
args=""
while [ $# -gt 0 ]; do
    case "$1" in
        --packets) packets=$2; shift 2 ;;
        *) args="$args $1"; shift ;;
    esac
done
out=$(mktemp /tmp/rvs-callgrind.XXXXXX)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
valgrind --tool=callgrind --callgrind-out-file="$out" \
    --toggle-collect='*callgrind*process_one*' \
    "$bin" callgrind --packets "$packets" $args 2>/dev/null
ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
echo "instructions (Ir) in process_one: $ir over $packets packets"
awk -v ir="$ir" -v n="$packets" 'BEGIN { printf "instructions per packet: %.1f\n", ir / n }'
echo
ann=$(callgrind_annotate --inclusive=no --threshold=100 "$out" 2>/dev/null)
echo "by source file (inlined code counted where it was written), Ir per packet:"
echo "$ann" | awk -v n="$packets" '
    /file:function/ { on = 1; next }
    on && /^ *$/ { on = 0 }
    on && /^ *[0-9,]+ \( *[0-9.]+%\) / {
        ir = $1; gsub(",", "", ir)
        rest = $0; sub(/^[^)]*\) +/, "", rest)
        f = rest; sub(/:.*/, "", f)
        sub(/^.*\/library\//, "std:", f); sub(/^.*\/deps\//, "deps:", f)
        by[f] += ir
    }
    END { for (f in by) printf "%10.1f  %s\n", by[f] / n, f }' | sort -rn | head -25
echo
echo "by compiled function (callees inlined into it included), Ir per packet:"
echo "$ann" | awk -v n="$packets" '
    /file:function/ { on = 1; next }
    on && /^ *$/ { on = 0 }
    on && /^ *[0-9,]+ \( *[0-9.]+%\) / {
        ir = $1; gsub(",", "", ir)
        rest = $0; sub(/^[^)]*\) +/, "", rest)
        sub(/^[^:]*:/, "", rest); sub(/ \[.*$/, "", rest)
        by[rest] += ir
    }
    END { for (f in by) printf "%10.1f  %s\n", by[f] / n, f }' | sort -rn | head -15
echo
echo "top functions (file:function), Ir:"
echo "$ann" | awk '/file:function/ { on = 1; getline; next } on && /^ *$/ { exit } on' | head -25
