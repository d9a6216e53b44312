#!/usr/bin/env bash
# nic-bind.sh - list NICs and hand one to DPDK (vfio-pci, or uio_pci_generic
# where the IOMMU is off) or back to its kernel driver, now and at boot.
#
# The step between a fresh appliance and a running rvsd:
#   nic-bind.sh list
#   nic-bind.sh bind 0000:03:00.0 --persist     # or an interface name: bind ens5
#   nic-bind.sh unbind 0000:03:00.0 --persist   # back to the kernel driver
#
# Persistence: --persist records "PCI DRIVER" in $RVS_NIC_CONF
# (/etc/rvs/nics.conf); scripts/rvs-nic-bind.service runs `nic-bind.sh
# apply` at boot, before rvsd.service. (driverctl set-override does the same
# job where it is installed; use one or the other.)
#
# RVS_SYSFS (default /sys) points the script at another sysfs tree: the
# self-test (scripts/test-scripts.sh) runs it against a fake one.
#
# Exit codes: 0 ok, 1 error, 2 usage.
set -euo pipefail

PROG=${0##*/}
SYSFS=${RVS_SYSFS:-/sys}
CONF=${RVS_NIC_CONF:-/etc/rvs/nics.conf}
UNIT=rvs-nic-bind.service
DRY_RUN=0
FORCE=0
PERSIST=0
DRIVER=

usage() {
    cat <<EOF
Usage: $PROG [--dry-run] ACTION [ARGS] [OPTIONS]

Actions:
  list                     network PCI devices: address, ids, driver, interface,
                           link state, NUMA node, IOMMU group; and whether the
                           IOMMU is on
  bind DEV [--driver D]    bind DEV (PCI address 0000:03:00.0, or 03:00.0, or an
                           interface name) to D: vfio-pci (default when the IOMMU
                           is on) or uio_pci_generic (default when it is off)
  unbind DEV               give DEV back to its kernel driver
  apply                    bind every device listed in $CONF (at boot)

Options (anywhere on the command line):
  --persist     also record the change in $CONF for rvs-nic-bind.service
  --force       bind an interface whose link is up (it carries traffic!)
  --dry-run     print the writes/commands that would be done, change nothing
  -h, --help    show this help

Binding a device that is already bound to D, or unbinding one already on a
kernel driver, changes nothing (exit 0). Changing actions need root (not
with --dry-run). Environment: RVS_SYSFS (sysfs root, default /sys),
RVS_NIC_CONF (default /etc/rvs/nics.conf).

Exit codes: 0 ok, 1 error, 2 usage.
EOF
}

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_err() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    printf 'Try %s --help\n' "$PROG" >&2
    exit 2
}
msg() { printf '%s\n' "$*"; }

need_root() {
    [ "$DRY_RUN" -eq 1 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "'$1' changes driver bindings and must run as root (try: sudo $PROG $1 ...), or use --dry-run"
}

# write_sys VALUE FILE: write to sysfs, or print the write on --dry-run.
write_sys() {
    if [ "$DRY_RUN" -eq 1 ]; then
        msg "[dry-run] echo '$1' > $2"
        return 0
    fi
    if ! printf '%s\n' "$1" 2>/dev/null >"$2"; then
        die "cannot write '$1' to $2 (read-only /sys? running in a container?)"
    fi
}

# run CMD...: run, or print on --dry-run.
run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        msg "[dry-run] $*"
        return 0
    fi
    "$@"
}

PCI=$SYSFS/bus/pci

iommu_on() { [ -n "$(ls -A "$SYSFS/kernel/iommu_groups" 2>/dev/null)" ]; }

# driver_of PCI: the bound driver's name, or empty.
driver_of() {
    local l=$PCI/devices/$1/driver
    [ -e "$l" ] || [ -L "$l" ] || return 0
    basename "$(readlink "$l")"
}

# ifaces_of PCI: its kernel interfaces (virtio has them one level down).
ifaces_of() {
    local n out=
    for n in "$PCI/devices/$1"/net/* "$PCI/devices/$1"/virtio*/net/*; do
        [ -e "$n" ] && out="$out${out:+ }${n##*/}"
    done
    printf '%s\n' "$out"
}

link_state() { cat "$SYSFS/class/net/$1/operstate" 2>/dev/null || echo unknown; }

is_net() {
    local c
    c=$(cat "$PCI/devices/$1/class" 2>/dev/null) || return 1
    case $c in 0x02*) return 0 ;; *) return 1 ;; esac
}

dpdk_driver() { case $1 in vfio-pci|uio_pci_generic|igb_uio) return 0 ;; *) return 1 ;; esac; }

# resolve DEV: prints the full PCI address of a PCI address or interface.
resolve() {
    local d=$1 p
    if [[ $d =~ ^[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]]; then d=0000:$d; fi
    if [[ $d =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]]; then
        d=${d,,}
        [ -d "$PCI/devices/$d" ] || die "no PCI device $d (see: $PROG list)"
        is_net "$d" || die "$d is not a network device (PCI class $(cat "$PCI/devices/$d/class" 2>/dev/null || echo '?'))"
        printf '%s\n' "$d"
        return
    fi
    [ -e "$SYSFS/class/net/$d" ] || die "no PCI address or interface named '$d' (see: $PROG list)"
    p=$(readlink -f "$SYSFS/class/net/$d/device" 2>/dev/null) || true
    # virtio: the interface's device is virtioN, a child of the PCI function
    if [ -n "$p" ] && [ ! -e "$p/class" ] && [[ ${p##*/} == virtio* ]]; then p=${p%/*}; fi
    [ -n "$p" ] && [ -e "$p/class" ] \
        || die "interface $d is not a PCI device (virtual interface?): DPDK cannot take it over; use af_packet or af_xdp ports for it"
    printf '%s\n' "${p##*/}"
}

# load_module DRIVER: make sure the driver's module is loaded.
load_module() {
    local drv=$1 mod=${1//-/_}
    [ -d "$PCI/drivers/$drv" ] && return 0
    if [ "$DRY_RUN" -eq 0 ] && [ "$SYSFS" = /sys ] && ! modinfo "$mod" >/dev/null 2>&1; then
        die "kernel module $mod is not available (install linux-modules-extra / the kernel's module package)"
    fi
    run modprobe "$mod"
    if [ "$DRY_RUN" -eq 0 ] && [ ! -d "$PCI/drivers/$drv" ]; then
        die "modprobe $mod did not register driver $drv"
    fi
}

cmd_list() {
    local d n=0 drv ifs state numa grp
    if iommu_on; then msg "IOMMU: on (vfio-pci)"; else
        msg "IOMMU: off (uio_pci_generic; or vfio-pci in no-IOMMU mode)"; fi
    printf '%-13s %-10s %-16s %-12s %-6s %-5s %s\n' PCI ID DRIVER INTERFACE LINK NUMA IOMMU_GROUP
    for d in "$PCI"/devices/*; do
        d=${d##*/}
        is_net "$d" || continue
        n=$((n + 1))
        drv=$(driver_of "$d"); drv=${drv:--}
        ifs=$(ifaces_of "$d"); ifs=${ifs:--}
        state=-
        if [ "$ifs" != - ]; then state=$(link_state "${ifs%% *}"); fi
        numa=$(cat "$PCI/devices/$d/numa_node" 2>/dev/null || echo -)
        grp=-
        if [ -e "$PCI/devices/$d/iommu_group" ]; then grp=$(basename "$(readlink "$PCI/devices/$d/iommu_group")"); fi
        printf '%-13s %-10s %-16s %-12s %-6s %-5s %s\n' "$d" \
            "$(sed 's/^0x//' "$PCI/devices/$d/vendor" 2>/dev/null):$(sed 's/^0x//' "$PCI/devices/$d/device" 2>/dev/null)" \
            "$drv" "$ifs" "$state" "$numa" "$grp"
    done
    [ "$n" -gt 0 ] || msg "(no network PCI devices)"
}

# conf_set PCI DRIVER|"": record (or, with "", remove) the device in $CONF.
conf_set() {
    local pci=$1 drv=$2 tmp
    if [ -n "$drv" ] && grep -qx "$pci $drv" "$CONF" 2>/dev/null; then
        msg "$CONF already binds $pci to $drv"
        return 0
    fi
    if [ -z "$drv" ] && ! grep -q "^$pci " "$CONF" 2>/dev/null; then
        msg "$CONF does not list $pci"
        return 0
    fi
    if [ "$DRY_RUN" -eq 1 ]; then
        if [ -n "$drv" ]; then msg "[dry-run] record '$pci $drv' in $CONF"; else
            msg "[dry-run] remove $pci from $CONF"; fi
    else
        mkdir -p "$(dirname "$CONF")"
        tmp=$(mktemp "$CONF.XXXXXX")
        { grep -v "^$pci " "$CONF" 2>/dev/null || true; [ -z "$drv" ] || printf '%s %s\n' "$pci" "$drv"; } >"$tmp"
        mv "$tmp" "$CONF"
        if [ -n "$drv" ]; then msg "recorded '$pci $drv' in $CONF"; else msg "removed $pci from $CONF"; fi
    fi
    if [ -n "$drv" ]; then
        if [ -d /run/systemd/system ] && [ "$SYSFS" = /sys ]; then
            run systemctl enable "$UNIT"
        else
            msg "at boot: install scripts/$UNIT and run 'systemctl enable $UNIT'"
        fi
    fi
}

cmd_bind() {
    local pci=$1 drv=$2 cur ifs state i
    cur=$(driver_of "$pci")
    if [ -z "$drv" ]; then
        if iommu_on; then drv=vfio-pci; else drv=uio_pci_generic; fi
    fi
    case $drv in
        vfio-pci|uio_pci_generic) ;;
        *) usage_err "--driver must be vfio-pci or uio_pci_generic, not '$drv'" ;;
    esac
    if [ "$drv" = vfio-pci ] && ! iommu_on \
       && [ "$(cat "$SYSFS/module/vfio/parameters/enable_unsafe_noiommu_mode" 2>/dev/null)" != Y ]; then
        die "the IOMMU is off, so vfio-pci cannot take $pci: enable it (intel_iommu=on or amd_iommu=on on the kernel command line), or use --driver uio_pci_generic (then rvsd needs CAP_SYS_ADMIN, see rvsd.service)"
    fi
    if [ "$cur" = "$drv" ]; then
        msg "$pci is already bound to $drv; nothing to do"
    else
        ifs=$(ifaces_of "$pci")
        for i in $ifs; do
            state=$(link_state "$i")
            if [ "$state" = up ] && [ "$FORCE" -eq 0 ]; then
                die "$pci is interface $i and its link is up (it may carry this machine's traffic): 'ip link set $i down' first, or --force"
            fi
        done
        need_root bind
        load_module "$drv"
        write_sys "$drv" "$PCI/devices/$pci/driver_override"
        [ -z "$cur" ] || write_sys "$pci" "$PCI/devices/$pci/driver/unbind"
        write_sys "$pci" "$PCI/drivers_probe"
        if [ "$DRY_RUN" -eq 0 ] && [ "$(driver_of "$pci")" != "$drv" ]; then
            die "$pci did not bind to $drv (now: $(driver_of "$pci" || true)); see dmesg"
        fi
        msg "$pci: ${cur:-no driver} -> $drv${ifs:+ (was interface $ifs)}"
    fi
    [ "$PERSIST" -eq 0 ] || { need_root bind; conf_set "$pci" "$drv"; }
}

cmd_unbind() {
    local pci=$1 cur
    cur=$(driver_of "$pci")
    if [ -n "$cur" ] && ! dpdk_driver "$cur"; then
        msg "$pci is already on kernel driver $cur; nothing to do"
    else
        need_root unbind
        write_sys "" "$PCI/devices/$pci/driver_override"
        [ -z "$cur" ] || write_sys "$pci" "$PCI/devices/$pci/driver/unbind"
        write_sys "$pci" "$PCI/drivers_probe"
        if [ "$DRY_RUN" -eq 0 ]; then
            local now
            now=$(driver_of "$pci")
            [ -n "$now" ] || die "$pci has no driver now: the kernel found none for it (see dmesg; modprobe its driver and run: echo $pci > $PCI/drivers_probe)"
            msg "$pci: ${cur:-no driver} -> $now${now:+ (interface $(ifaces_of "$pci"))}"
        else
            msg "$pci: ${cur:-no driver} -> its kernel driver"
        fi
    fi
    [ "$PERSIST" -eq 0 ] || { need_root unbind; conf_set "$pci" ""; }
}

cmd_apply() {
    local pci drv rest line=0 n=0
    [ -r "$CONF" ] || { msg "$CONF does not exist; nothing to bind"; return 0; }
    while read -r pci drv rest || [ -n "$pci" ]; do
        line=$((line + 1))
        case $pci in ''|'#'*) continue ;; esac
        [ -n "$drv" ] && [ -z "$rest" ] || die "$CONF line $line: want 'PCI DRIVER', got '$pci${drv:+ $drv}${rest:+ $rest}'"
        pci=$(resolve "$pci")
        PERSIST=0 cmd_bind "$pci" "$drv"
        n=$((n + 1))
    done <"$CONF"
    msg "$n device(s) from $CONF"
}

ACTION=
ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --dry-run) DRY_RUN=1 ;;
        --force) FORCE=1 ;;
        --persist) PERSIST=1 ;;
        --driver) [ $# -ge 2 ] || usage_err "--driver needs a value"; DRIVER=$2; shift ;;
        --driver=*) DRIVER=${1#--driver=} ;;
        -*) usage_err "unknown option: $1" ;;
        *) if [ -z "$ACTION" ]; then ACTION=$1; else ARGS+=("$1"); fi ;;
    esac
    shift
done

[ -d "$PCI/devices" ] || die "$PCI/devices not found (is $SYSFS a sysfs?)"
case $ACTION in
    list) [ ${#ARGS[@]} -eq 0 ] || usage_err "list takes no arguments"; cmd_list ;;
    bind|unbind)
        [ ${#ARGS[@]} -eq 1 ] || usage_err "$ACTION needs one device (PCI address or interface)"
        [ "$ACTION" = bind ] || [ -z "$DRIVER" ] || usage_err "--driver is for bind"
        dev=$(resolve "${ARGS[0]}")
        if [ "$ACTION" = bind ]; then cmd_bind "$dev" "$DRIVER"; else cmd_unbind "$dev"; fi ;;
    apply) [ ${#ARGS[@]} -eq 0 ] || usage_err "apply takes no arguments"; need_root apply; cmd_apply ;;
    '') usage_err "no action given" ;;
    *) usage_err "unknown action: $ACTION" ;;
esac
