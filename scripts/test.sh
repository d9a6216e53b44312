#!/usr/bin/env bash
# test.sh - the README's test command: installs what the tests need, then
# runs format and lint checks and every test (unit, golden-packet, property,
# DPDK virtual-port and end-to-end). Needs root (DPDK EAL, network
# namespaces); re-runs itself with sudo when it is not root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi

step() { printf '\n==> %s\n' "$*"; }

step "installing dependencies (scripts/setup.sh)"
bash scripts/setup.sh --no-optional

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "packet and control logic without DPDK (--no-default-features)"
# dpdk-sys (bindgen, libclang, libdpdk) must not be in the graph, and the
# build must not look for DPDK: pkg-config and libclang are pointed away.
if cargo tree -p dataplane -p control --no-default-features -e normal,build | grep -E 'dpdk-sys|bindgen'; then
    echo "test.sh: dataplane/control without the dpdk feature still depend on DPDK" >&2
    exit 1
fi
PKG_CONFIG_LIBDIR=/nonexistent LIBCLANG_PATH=/nonexistent \
    cargo clippy -p dataplane -p control --no-default-features --all-targets -- -D warnings

step "script self-tests"
bash scripts/test-scripts.sh

step "cargo test --workspace"
# DPDK runtime directories of test processes are removed by the tests
# themselves; sweep any left by a crashed run first.
rm -rf /var/run/dpdk/rvs-* 2>/dev/null || true
log=$(mktemp)
# Tests that cannot run here write "name: reason" lines to RVS_SKIP_LOG
# (outside CI; in CI, CI=true, such a test fails instead). They are counted
# as skipped, not passed, in the closing line.
export RVS_SKIP_LOG
RVS_SKIP_LOG=$(mktemp)
trap 'rm -f "$log" "$RVS_SKIP_LOG"' EXIT
set +e
{
    cargo test --workspace --no-fail-fast -- --test-threads="${RVS_TEST_THREADS:-2}"
    rc1=$?
    # The same packet and control logic once more without DPDK (unit,
    # golden, pipeline and the other tests that start no EAL).
    PKG_CONFIG_LIBDIR=/nonexistent LIBCLANG_PATH=/nonexistent \
        cargo test -p dataplane --no-default-features --no-fail-fast
    rc2=$?
    PKG_CONFIG_LIBDIR=/nonexistent LIBCLANG_PATH=/nonexistent \
        cargo test -p control --no-default-features --lib
    rc3=$?
    [ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] && [ "$rc3" -eq 0 ]
} 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

step "demo check (scripts/demo-check.sh: the demo serves and leaves nothing behind)"
demo_ok=0 demo_bad=0
if bash scripts/demo-check.sh; then demo_ok=1; else demo_bad=1; rc=1; fi

step "fuzz targets, ${FUZZ_SECONDS:-15} s each (scripts/fuzz.sh)"
fuzz_out=$(mktemp)
set +e
bash scripts/fuzz.sh 2>&1 | tee "$fuzz_out"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
fuzz_ok=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$fuzz_out")
fuzz_bad=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$fuzz_out")
# no summary line at all (install or build failed): one failure
[ -n "$fuzz_ok" ] || { fuzz_ok=0; fuzz_bad=1; }
rm -f "$fuzz_out"
set -e

step "performance gate (perf/gate.sh: callgrind instructions per packet vs perf/limits.toml)"
gate_out=$(mktemp)
set +e
bash perf/gate.sh 2>&1 | tee "$gate_out"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
gate_ok=$(sed -n 's/^gate: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$gate_out")
gate_bad=$(sed -n 's/^gate: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$gate_out")
[ -n "$gate_ok" ] || { gate_ok=0; gate_bad=1; }
rm -f "$gate_out"
set -e

skipped=$(grep -c . "$RVS_SKIP_LOG" || true)
if [ "$skipped" -gt 0 ]; then
    step "skipped (could not run here; these fail in CI)"
    cat "$RVS_SKIP_LOG"
fi
# One closing line over every test binary (the last binary cargo runs is
# often a doc-test run with nothing in it), the demo check, the fuzz
# targets, the performance gate's cases, and the skips
# (tests that returned early are "ok" to cargo; they are not passes).
awk -v skipped="$skipped" -v dok="$((demo_ok + fuzz_ok + gate_ok))" -v dbad="$((demo_bad + fuzz_bad + gate_bad))" \
    '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "\ntotal: %d passed, %d failed, %d skipped\n", p - skipped + dok, f + dbad, s + skipped }' "$log"
exit "$rc"
