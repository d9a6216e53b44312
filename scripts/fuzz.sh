#!/usr/bin/env bash
# fuzz.sh - runs rvs's fuzz targets (fuzz/: cargo-fuzz + libFuzzer) for a
# bounded time each. Installs cargo-fuzz when missing.
#
#   bash scripts/fuzz.sh                        # every target, FUZZ_SECONDS each (default 15)
#   FUZZ_SECONDS=3600 bash scripts/fuzz.sh packet   # a long run of one target
#
# Targets: packet (parser + the whole pipeline on frame sequences),
# staged (the staged burst path against packet-at-a-time on the same
# frames: identical output and counters),
# sync_codec (LVS sync v1 messages), rvsadm (the ipvsadm command line
# applied to a model), config (rvsd's TOML). Stable Rust: cargo-fuzz runs
# with --sanitizer none (coverage-guided libFuzzer; no ASan, which needs
# nightly — and rvs denies unsafe outside dpdk-sys/dataplane::dpdk, which
# these targets do not reach). A crash leaves its input under
# fuzz/artifacts/<target>/ and the command to replay it. Exit 0 when no
# target crashed.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${FUZZ_SECONDS:-15}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(packet staged sync_codec rvsadm config)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked >/dev/null 2>&1 || { echo "fuzz.sh: FAIL: cannot install cargo-fuzz" >&2; exit 1; }
fi
python3 seeds.py >/dev/null || { echo "fuzz.sh: FAIL: seeds.py" >&2; exit 1; }
cargo fuzz build -s none 2>&1 | tail -1
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz.sh: FAIL: build" >&2; exit 1; }

pass=0 fail=0
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    # staged reads the packet target's framing: its seeds serve both
    [ "$t" = staged ] && seeds=("seeds/packet")
    log=$(mktemp)
    if cargo fuzz run "$t" -s none "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
        echo "fuzz $t: ok ($(grep -E '^Done' "$log" | tail -1))"
        pass=$((pass + 1))
    else
        echo "fuzz $t: FAIL" >&2
        grep -E -A15 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -40 >&2
        fail=$((fail + 1))
    fi
    rm -f "$log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
