#!/usr/bin/env bash
# setup.sh - install everything rvs needs to build, test and run its demo
# on Debian 12 / Ubuntu (DPDK >= 22.11, clang/libclang for bindgen, the
# tools the end-to-end and HA tests use), and make sure the Rust toolchain
# has clippy and rustfmt.
#
# Idempotent: when every package is already installed it neither runs
# `apt-get update` nor `apt-get install`, so a second run takes a second.
set -euo pipefail

PROG=${0##*/}
MIN_DPDK=22.11

# Required packages. Keep this list in sync with README/CI.
#   dpdk, dpdk-dev, libdpdk-dev   DPDK runtime, tools (dpdk-devbind.py), headers + .pc
#   clang, libclang-dev           bindgen (dpdk-sys build.rs)
#   pkg-config, build-essential   build.rs discovery, cc for the C shims
#   iproute2, ethtool             veth/netns setup in the end-to-end tests
#   iputils-ping, procps, curl    probes in the end-to-end tests
#   python3                       http.server backends / UDP echo in the tests
#   keepalived                    HA tests
#   nftables                      packet drops in the health e2e test
#   bird2                         BGP/ECMP scale-out test (VIPs announced by BIRD 2, BFD)
#   valgrind                      leak checks
#   systemd                       systemd-analyze verify/security on rvsd.service (test-scripts.sh)
REQUIRED_PKGS=(
    dpdk dpdk-dev libdpdk-dev
    clang libclang-dev pkg-config build-essential
    iproute2 ethtool iputils-ping procps curl python3
    keepalived nftables bird2 valgrind systemd
    # e2e_pp: stock real servers that read the Proxy Protocol header
    nginx haproxy
)
# Nice to have; a failure to install these is only a warning.
OPTIONAL_PKGS=(tcpdump)

DRY_RUN=0
WITH_OPTIONAL=1
WITH_RUST=1

usage() {
    cat <<EOF
Usage: $PROG [--dry-run] [--no-optional] [--no-rust] [-h|--help]

Install the Debian/Ubuntu packages rvs needs (build, tests, demo) and check
the Rust toolchain. Safe to run repeatedly: nothing is installed when
everything is already present.

Options:
  --dry-run      print what would be done, change nothing
  --no-optional  do not install optional packages (${OPTIONAL_PKGS[*]})
  --no-rust      skip the rustup clippy/rustfmt check
  -h, --help     show this help

Required packages: ${REQUIRED_PKGS[*]}
Needs root, or sudo when run as a normal user. DPDK must be >= $MIN_DPDK
(Debian 12 ships 22.11, Ubuntu 24.04 ships 23.11; Ubuntu 22.04's 21.11 is
too old).

Exit codes: 0 ok, 1 error, 2 usage.
EOF
}

step() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --dry-run) DRY_RUN=1 ;;
        --no-optional) WITH_OPTIONAL=0 ;;
        --no-rust) WITH_RUST=0 ;;
        *) printf '%s: unknown argument: %s\n' "$PROG" "$1" >&2
           printf 'Try %s --help\n' "$PROG" >&2
           exit 2 ;;
    esac
    shift
done

# run CMD...: run as root (directly, or through sudo), or print it on --dry-run.
SUDO=()
run_root() {
    if [ "$DRY_RUN" -eq 1 ]; then
        info "[dry-run] ${SUDO[*]:+${SUDO[*]} }$*"
        return 0
    fi
    "${SUDO[@]}" "$@"
}

is_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
    [ "$status" = installed ]
}

# --- 1. platform -----------------------------------------------------------
step "Checking the platform"
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    die "this script supports Debian/Ubuntu (apt-get and dpkg-query not found)"
fi
if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    info "${PRETTY_NAME:-unknown distribution}"
    case " ${ID:-} ${ID_LIKE:-} " in
        *" debian "*|*" ubuntu "*) ;;
        *) warn "not Debian/Ubuntu (ID=${ID:-?}); continuing, package names may differ" ;;
    esac
fi

if [ "$(id -u)" -eq 0 ]; then
    info "running as root"
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
    info "not root: will use sudo for package installation"
else
    SUDO=(sudo)
    [ "$DRY_RUN" -eq 1 ] || die "must run as root, or as a user with sudo (sudo not found)"
    info "[dry-run] not root and sudo not found: a real run would need root"
fi

# --- 2. packages -----------------------------------------------------------
step "Checking required packages (${#REQUIRED_PKGS[@]})"
missing=()
for p in "${REQUIRED_PKGS[@]}"; do
    is_installed "$p" || missing+=("$p")
done
missing_opt=()
if [ "$WITH_OPTIONAL" -eq 1 ]; then
    for p in "${OPTIONAL_PKGS[@]}"; do
        is_installed "$p" || missing_opt+=("$p")
    done
fi

if [ ${#missing[@]} -eq 0 ] && [ ${#missing_opt[@]} -eq 0 ]; then
    info "all packages already installed; skipping apt-get"
else
    [ ${#missing[@]} -eq 0 ] || info "missing: ${missing[*]}"
    [ ${#missing_opt[@]} -eq 0 ] || info "missing (optional): ${missing_opt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    APT=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q
         -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

    step "Updating the package index (apt-get update)"
    run_root "${APT[@]}" update || die "apt-get update failed"

    if [ ${#missing[@]} -gt 0 ]; then
        step "Installing required packages: ${missing[*]}"
        run_root "${APT[@]}" install --no-install-recommends "${missing[@]}" \
            || die "apt-get install failed for: ${missing[*]}"
    fi
    if [ ${#missing_opt[@]} -gt 0 ]; then
        step "Installing optional packages: ${missing_opt[*]}"
        run_root "${APT[@]}" install --no-install-recommends "${missing_opt[@]}" \
            || warn "could not install optional packages (${missing_opt[*]}); continuing"
    fi
fi

# --- 3. DPDK version -------------------------------------------------------
step "Checking the DPDK version (need >= $MIN_DPDK)"
if [ "$DRY_RUN" -eq 1 ] && ! command -v pkg-config >/dev/null 2>&1; then
    info "[dry-run] pkg-config not installed yet; skipping"
elif ! dpdk_ver=$(pkg-config --modversion libdpdk 2>/dev/null); then
    if [ "$DRY_RUN" -eq 1 ]; then
        info "[dry-run] libdpdk not installed yet; skipping"
    else
        die "pkg-config cannot find libdpdk after installation (is libdpdk-dev installed?)"
    fi
else
    lowest=$(printf '%s\n%s\n' "$MIN_DPDK" "$dpdk_ver" | sort -V | head -n1)
    if [ "$lowest" != "$MIN_DPDK" ]; then
        die "DPDK $dpdk_ver is too old; rvs needs DPDK >= $MIN_DPDK (use Debian 12, Ubuntu 24.04, or build DPDK $MIN_DPDK+ from source and set PKG_CONFIG_PATH)"
    fi
    info "libdpdk $dpdk_ver"
fi

# --- 4. Rust toolchain -----------------------------------------------------
if [ "$WITH_RUST" -eq 1 ]; then
    step "Checking the Rust toolchain (cargo, clippy, rustfmt)"
    if command -v cargo >/dev/null 2>&1; then
        info "$(cargo --version)"
    else
        warn "cargo not found in PATH; install Rust with rustup (https://rustup.rs) to build rvs"
    fi
    if command -v rustup >/dev/null 2>&1; then
        installed=$(rustup component list --installed 2>/dev/null || true)
        need=()
        for c in clippy rustfmt; do
            # component names carry the target triple, e.g. clippy-x86_64-unknown-linux-gnu
            grep -Eq "^${c}(-|$)" <<<"$installed" || need+=("$c")
        done
        if [ ${#need[@]} -eq 0 ]; then
            info "clippy and rustfmt already installed"
        elif [ "$DRY_RUN" -eq 1 ]; then
            info "[dry-run] rustup component add ${need[*]}"
        else
            info "adding rustup components: ${need[*]}"
            rustup component add "${need[@]}" || die "rustup component add ${need[*]} failed"
        fi
    else
        warn "rustup not found; make sure clippy and rustfmt are available (cargo clippy, cargo fmt)"
    fi
fi

step "Done"
