#!/usr/bin/env bash
# test-scripts.sh - self-test for the scripts in this directory (CI-friendly).
#
# Changes nothing on the machine: every hugepages action runs with --dry-run.
# Runs shellcheck when it is installed; does not need it.
# Last line of output: "N passed, N failed". Exit 0 iff nothing failed.
set -uo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HP=$DIR/hugepages.sh
SETUP=$DIR/setup.sh
PASS=0
FAIL=0
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

ok() { PASS=$((PASS + 1)); printf 'ok   %s\n' "$1"; }
nok() {
    FAIL=$((FAIL + 1)); printf 'FAIL %s\n' "$1"
    [ ! -s "$OUT" ] || sed 's/^/     | /' "$OUT" | tail -n 15
}

# expect NAME RC CMD...: run CMD, pass if it exits with RC.
expect() {
    local name=$1 want=$2 rc=0
    shift 2
    "$@" >"$OUT" 2>&1 || rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$name"; else
        printf '     (exit %s, expected %s)\n' "$rc" "$want" >>"$OUT"; nok "$name"; fi
}

# expect_grep NAME RC PATTERN CMD...: like expect, and the output must match PATTERN.
expect_grep() {
    local name=$1 want=$2 pat=$3 rc=0
    shift 3
    "$@" >"$OUT" 2>&1 || rc=$?
    if [ "$rc" -eq "$want" ] && grep -Eq -- "$pat" "$OUT"; then ok "$name"; else
        printf '     (exit %s, expected %s and output matching /%s/)\n' "$rc" "$want" "$pat" >>"$OUT"
        nok "$name"; fi
}

hp_state() { # snapshot of the hugepage pools and hugetlbfs mounts
    cat /sys/kernel/mm/hugepages/hugepages-*/nr_hugepages 2>/dev/null
    awk '$3 == "hugetlbfs" { print $2 }' /proc/mounts
}

# --- syntax -----------------------------------------------------------------
for f in "$DIR"/*.sh; do
    expect "bash -n ${f##*/}" 0 bash -n "$f"
done

# --- setup.sh ---------------------------------------------------------------
expect_grep "setup.sh --help" 0 'Usage:' bash "$SETUP" --help
expect "setup.sh bad option -> exit 2" 2 bash "$SETUP" --no-such-option

# --- hugepages.sh -----------------------------------------------------------
before=$(hp_state)
expect_grep "hugepages.sh --help" 0 'Usage:' bash "$HP" --help
expect_grep "hugepages.sh show" 0 'hugetlbfs mounts' bash "$HP" show
expect_grep "hugepages.sh reserve 4 --dry-run" 0 '\[dry-run\]|already reserved' \
    bash "$HP" reserve 4 --dry-run

# 1G: either a dry run, or the clear "not supported" error (exit 1).
rc=0
bash "$HP" reserve 4 --size 1G --dry-run >"$OUT" 2>&1 || rc=$?
if { [ "$rc" -eq 0 ] && grep -Eq '\[dry-run\]|already reserved' "$OUT"; } \
   || { [ "$rc" -eq 1 ] && grep -Eq '1 GiB hugepages are not supported|not enough free memory' "$OUT"; }; then
    ok "hugepages.sh reserve 4 --size 1G --dry-run (exit $rc)"
else
    printf '     (exit %s)\n' "$rc" >>"$OUT"; nok "hugepages.sh reserve 4 --size 1G --dry-run"
fi

expect_grep "hugepages.sh mount --dry-run" 0 'dry-run|already mounted' bash "$HP" mount --dry-run
expect "hugepages.sh clear --dry-run" 0 bash "$HP" clear --dry-run
expect_grep "hugepages.sh unknown node -> exit 1" 1 'unknown NUMA node' \
    bash "$HP" reserve 4 --node 9999 --dry-run
expect_grep "hugepages.sh too much memory -> exit 1" 1 'not enough free memory' \
    bash "$HP" reserve 1000000000 --dry-run

# usage errors -> exit 2
expect "hugepages.sh (no action) -> exit 2" 2 bash "$HP"
expect "hugepages.sh bogus action -> exit 2" 2 bash "$HP" frobnicate
expect "hugepages.sh reserve (no N) -> exit 2" 2 bash "$HP" reserve
expect "hugepages.sh reserve abc -> exit 2" 2 bash "$HP" reserve abc
expect "hugepages.sh reserve 4 --size 3M -> exit 2" 2 bash "$HP" reserve 4 --size 3M
expect "hugepages.sh reserve --node + --all-nodes -> exit 2" 2 \
    bash "$HP" reserve 4 --node 0 --all-nodes
expect "hugepages.sh show extra -> exit 2" 2 bash "$HP" show extra

# non-root must get a clear error for changing actions (only testable as root)
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1 \
   && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null \
   && setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$HP"; then
    cur=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null || echo 0)
    expect_grep "hugepages.sh reserve as non-root -> exit 1" 1 'must run as root' \
        setpriv --reuid=65534 --regid=65534 --clear-groups bash "$HP" reserve $((cur + 1))
fi

after=$(hp_state)
if [ "$before" = "$after" ]; then ok "dry runs changed nothing"; else
    : >"$OUT"; nok "dry runs changed nothing (hugepage state differs)"; fi

# --- nic-bind.sh (against a fake sysfs tree) -------------------------------
NB=$DIR/nic-bind.sh
FAKE=$(mktemp -d)
trap 'rm -f "$OUT"; rm -rf "$FAKE"' EXIT
# fake_dev ADDR CLASS DRIVER [IFACE STATE [GROUP]]
fake_dev() {
    local d=$FAKE/sys/bus/pci/devices/$1
    mkdir -p "$d"
    echo "$2" >"$d/class"; echo 0x8086 >"$d/vendor"; echo 0x1572 >"$d/device"
    echo 0 >"$d/numa_node"; echo '(null)' >"$d/driver_override"
    mkdir -p "$FAKE/sys/bus/pci/drivers/$3"; : >"$FAKE/sys/bus/pci/drivers/$3/bind"
    ln -s "../../drivers/$3" "$d/driver"
    if [ -n "${4:-}" ]; then
        mkdir -p "$d/net/$4" "$FAKE/sys/class/net/$4"
        echo "$5" >"$FAKE/sys/class/net/$4/operstate"
        ln -s "$d" "$FAKE/sys/class/net/$4/device"
    fi
    if [ -n "${6:-}" ]; then
        mkdir -p "$FAKE/sys/kernel/iommu_groups/$6"
        ln -s "../../../../kernel/iommu_groups/$6" "$d/iommu_group"
    fi
}
fake_dev 0000:03:00.0 0x020000 i40e ens3f0 down 12
fake_dev 0000:03:00.1 0x020000 vfio-pci "" "" 13
fake_dev 0000:03:00.2 0x020000 i40e ens3f2 up 14
fake_dev 0000:00:1f.0 0x060100 lpc_ich
mkdir -p "$FAKE/sys/class/net/lo"; echo unknown >"$FAKE/sys/class/net/lo/operstate"
: >"$FAKE/sys/bus/pci/drivers_probe"
fake_state() { (cd "$FAKE" && find . -printf '%p %l\n' | sort && find . -type f -exec cat {} +); }
nb() { RVS_SYSFS=$FAKE/sys RVS_NIC_CONF=$FAKE/nics.conf bash "$NB" "$@"; }
P=$FAKE/sys/bus/pci
before=$(fake_state)
expect_grep "nic-bind.sh --help" 0 'Usage:' nb --help
expect_grep "nic-bind.sh list" 0 '^0000:03:00\.0 +8086:1572 +i40e +ens3f0 +down +0 +12$' nb list
expect_grep "nic-bind.sh list: IOMMU on" 0 '^IOMMU: on' nb list
rc=0; nb list >"$OUT" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && ! grep -q '0000:00:1f.0' "$OUT"; then ok "nic-bind.sh list: only network devices"; else
    nok "nic-bind.sh list: only network devices"; fi
# bind by interface name: override, unbind from i40e, reprobe; vfio-pci is loaded
want_bind="[dry-run] echo 'vfio-pci' > $P/devices/0000:03:00.0/driver_override
[dry-run] echo '0000:03:00.0' > $P/devices/0000:03:00.0/driver/unbind
[dry-run] echo '0000:03:00.0' > $P/drivers_probe
0000:03:00.0: i40e -> vfio-pci (was interface ens3f0)"
rc=0; nb bind ens3f0 --dry-run >"$OUT" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && [ "$(cat "$OUT")" = "$want_bind" ]; then ok "nic-bind.sh bind ens3f0 --dry-run: the sysfs writes"; else
    printf '     (exit %s; expected:)\n%s\n' "$rc" "$want_bind" >>"$OUT"; nok "nic-bind.sh bind ens3f0 --dry-run: the sysfs writes"; fi
expect_grep "nic-bind.sh bind 03:00.0 --driver uio_pci_generic loads the module" 0 \
    '^\[dry-run\] modprobe uio_pci_generic$' nb bind 03:00.0 --driver uio_pci_generic --dry-run
expect_grep "nic-bind.sh bind (already bound) is a no-op" 0 'already bound to vfio-pci; nothing to do' \
    nb bind 0000:03:00.1
expect_grep "nic-bind.sh bind (link up) -> exit 1" 1 'link is up' nb bind 0000:03:00.2 --dry-run
expect_grep "nic-bind.sh bind --force (link up)" 0 'i40e -> vfio-pci' nb bind 0000:03:00.2 --dry-run --force
expect_grep "nic-bind.sh bind (not a NIC) -> exit 1" 1 'not a network device' nb bind 0000:00:1f.0 --dry-run
expect_grep "nic-bind.sh bind (no such device) -> exit 1" 1 'no PCI device 0000:09:00.0' nb bind 0000:09:00.0 --dry-run
expect_grep "nic-bind.sh bind lo -> exit 1" 1 'not a PCI device' nb bind lo --dry-run
expect_grep "nic-bind.sh unbind (DPDK driver) --dry-run" 0 \
    "echo '' > $P/devices/0000:03:00.1/driver_override" nb unbind 0000:03:00.1 --dry-run
expect_grep "nic-bind.sh unbind (kernel driver) is a no-op" 0 'already on kernel driver i40e; nothing to do' \
    nb unbind 0000:03:00.0
expect_grep "nic-bind.sh bind --persist --dry-run" 0 "record '0000:03:00.0 vfio-pci' in $FAKE/nics.conf" \
    nb bind 0000:03:00.0 --persist --dry-run
expect_grep "nic-bind.sh apply (no config)" 0 'does not exist; nothing to bind' nb apply --dry-run
expect "nic-bind.sh (no action) -> exit 2" 2 nb
expect "nic-bind.sh bind (no device) -> exit 2" 2 nb bind
expect "nic-bind.sh bind --driver igb -> exit 2" 2 nb bind 0000:03:00.0 --driver igb --dry-run
expect "nic-bind.sh bogus option -> exit 2" 2 nb list --frobnicate
if [ "$before" = "$(fake_state)" ]; then ok "nic-bind.sh dry runs changed nothing"; else
    : >"$OUT"; nok "nic-bind.sh dry runs changed nothing (fake sysfs differs)"; fi
# persistence, for real (root; a device already bound, so sysfs is not touched)
if [ "$(id -u)" -eq 0 ]; then
    nb bind 0000:03:00.1 --persist >/dev/null 2>&1
    expect_grep "nic-bind.sh bind --persist twice: one line" 0 'already binds 0000:03:00.1 to vfio-pci' \
        nb bind 0000:03:00.1 --persist
    if [ "$(cat "$FAKE/nics.conf" 2>/dev/null)" = "0000:03:00.1 vfio-pci" ]; then ok "nic-bind.sh nics.conf"; else
        cp "$FAKE/nics.conf" "$OUT" 2>/dev/null; nok "nic-bind.sh nics.conf"; fi
    expect_grep "nic-bind.sh apply (boot)" 0 '1 device\(s\) from' nb apply
    echo "0000:03:00.0" >>"$FAKE/nics.conf"
    expect_grep "nic-bind.sh apply (bad line) -> exit 1" 1 'line 2: want .PCI DRIVER.' nb apply
    printf '0000:03:00.1 vfio-pci\n0000:03:00.0 vfio-pci\n' >"$FAKE/nics.conf"
    expect_grep "nic-bind.sh unbind --persist removes the line" 0 'removed 0000:03:00.0' \
        nb unbind 0000:03:00.0 --persist
    if [ "$(cat "$FAKE/nics.conf")" = "0000:03:00.1 vfio-pci" ]; then ok "nic-bind.sh nics.conf after unbind"; else
        cp "$FAKE/nics.conf" "$OUT"; nok "nic-bind.sh nics.conf after unbind"; fi
elif [ "${CI:-}" = true ]; then
    : >"$OUT"; nok "nic-bind.sh persistence (needs root)"
fi
# IOMMU off: uio_pci_generic by default, vfio-pci refused with the reason
rm -rf "$FAKE"/sys/kernel/iommu_groups/* "$FAKE"/sys/bus/pci/devices/*/iommu_group
expect_grep "nic-bind.sh list: IOMMU off" 0 '^IOMMU: off' nb list
expect_grep "nic-bind.sh bind (IOMMU off) picks uio_pci_generic" 0 "echo 'uio_pci_generic' > " \
    nb bind 0000:03:00.0 --dry-run
expect_grep "nic-bind.sh bind --driver vfio-pci (IOMMU off) -> exit 1" 1 'IOMMU is off' \
    nb bind 0000:03:00.0 --driver vfio-pci --dry-run

# --- rvsd.service -----------------------------------------------------------
# systemd-analyze (systemd package) checks the unit without running systemd:
# verify needs the binaries it names to exist, so it runs on a copy pointing
# at /bin/true; security --offline scores the sandboxing (9.6 before it).
UNIT=$DIR/rvsd.service
if command -v systemd-analyze >/dev/null 2>&1; then
    UDIR=$(mktemp -d)
    sed 's#/usr/local/sbin/rvsd#/bin/true#g' "$UNIT" >"$UDIR/rvsd.service"
    # verify prints problems but may still exit 0: no output is the pass
    rc=0
    systemd-analyze verify "$UDIR/rvsd.service" >"$OUT" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ] && [ ! -s "$OUT" ]; then ok "systemd-analyze verify rvsd.service"; else
        printf '     (exit %s)\n' "$rc" >>"$OUT"; nok "systemd-analyze verify rvsd.service"; fi
    rc=0
    systemd-analyze security --offline=yes --no-pager "$UDIR/rvsd.service" >"$OUT" 2>&1 || rc=$?
    score=$(sed -n 's/.*Overall exposure level for rvsd.service: \([0-9.]*\).*/\1/p' "$OUT")
    if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'; then
        ok "systemd-analyze security rvsd.service: $score (<= 3.0)"
    else
        printf '     (exit %s, score "%s", want <= 3.0)\n' "$rc" "$score" >>"$OUT"
        nok "systemd-analyze security rvsd.service"
    fi
    rm -rf "$UDIR"
else
    : >"$OUT"; nok "systemd-analyze not installed (the systemd package)"
fi

# --- shellcheck (optional) --------------------------------------------------
if command -v shellcheck >/dev/null 2>&1; then
    expect "shellcheck" 0 shellcheck "$DIR"/*.sh
else
    echo "skip shellcheck (not installed)"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
