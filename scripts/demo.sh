#!/usr/bin/env bash
# demo.sh - the README's first command. Installs what it needs, builds rvs
# in release mode and runs the DPDK self-test: rvs's safe DPDK layer
# forwarding over two virtual ports against dpdk-testpmd on the same
# devices. (The live load-balancing demo in network namespaces replaces
# this once rvsd lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi
bash scripts/setup.sh --no-optional
cargo build --release -p perf
./target/release/rvs-perf fwd --seconds 3 --warmup 1 --rounds 3
