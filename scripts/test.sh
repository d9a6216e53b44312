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

step "script self-tests"
bash scripts/test-scripts.sh

step "cargo test --workspace"
# DPDK runtime directories of test processes are removed by the tests
# themselves; sweep any left by a crashed run first.
rm -rf /var/run/dpdk/rvs-* 2>/dev/null || true
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --no-fail-fast -- --test-threads="${RVS_TEST_THREADS:-2}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (the last binary cargo runs is
# often a doc-test run with nothing in it).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "\ntotal: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$rc"
