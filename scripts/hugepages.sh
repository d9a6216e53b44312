#!/usr/bin/env bash
# hugepages.sh - show, reserve, mount and release hugepages for rvs (DPDK).
#
# Exit codes: 0 ok, 1 error, 2 usage.
set -euo pipefail

PROG=${0##*/}
SYS_HP=/sys/kernel/mm/hugepages
SYS_NODE=/sys/devices/system/node
# Mounts created by this script are recorded here so that `clear` only
# unmounts what rvs mounted (never e.g. systemd's /dev/hugepages).
STATE_DIR=${RVS_HUGEPAGES_STATE_DIR:-/run/rvs-hugepages}
STATE_MOUNTS=$STATE_DIR/mounts
# Mount directories this script created (removed again by `clear`).
STATE_DIRS=$STATE_DIR/created-dirs

DRY_RUN=0

usage() {
    cat <<EOF
Usage: $PROG [--dry-run] ACTION [ARGS]

Actions:
  show                              pages per size and per NUMA node, hugetlbfs mounts
  reserve N [--size 2M|1G] [--node K|--all-nodes]
                                    set the pool of SIZE pages to N (system-wide,
                                    on node K, or N on every node); verifies the
                                    kernel actually provided them
  mount [DIR] [--size 2M|1G]        mount hugetlbfs (default DIR: /dev/hugepages
                                    for 2M, /dev/hugepages-1G for 1G)
  clear [--size 2M|1G]              set reservations to 0 (all sizes by default)
                                    and unmount the mounts rvs created, unless in use

Options (anywhere on the command line):
  --dry-run     print the writes/commands that would be done, change nothing
  -h, --help    show this help

Changing actions need root (not with --dry-run). Reserving an amount that is
already reserved is a no-op. A reservation the kernel cannot fully satisfy
(fragmented memory) is rolled back and reported as an error.

Exit codes: 0 ok, 1 error, 2 usage.
EOF
}

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
usage_err() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    printf 'Try %s --help\n' "$PROG" >&2
    exit 2
}
msg() { printf '%s\n' "$*"; }

need_root() {
    [ "$DRY_RUN" -eq 1 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "'$1' changes kernel settings and must run as root (try: sudo $PROG $1 ...), or use --dry-run"
}

# write_sys VALUE FILE: write to sysfs, or print the write on --dry-run.
write_sys() {
    if [ "$DRY_RUN" -eq 1 ]; then
        msg "[dry-run] echo $1 > $2"
        return 0
    fi
    # A failed write (EINVAL/EPERM, read-only sysfs in a container) must be an error.
    if ! printf '%s\n' "$1" 2>/dev/null >"$2"; then
        die "cannot write $1 to $2 (read-only /sys? running in a container?)"
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

# parse_size ARG -> prints size in kB (2048 or 1048576)
parse_size() {
    case ${1^^} in
        2M|2MB|2048K|2048KB|2048) echo 2048 ;;
        1G|1GB|1024M|1048576K|1048576KB|1048576) echo 1048576 ;;
        *) usage_err "unsupported page size '$1' (use 2M or 1G)" ;;
    esac
}

size_name() { # kB -> 2M / 1G
    case $1 in
        2048) echo 2M ;;
        1048576) echo 1G ;;
        *) if [ $(($1 % 1048576)) -eq 0 ]; then echo "$(($1 / 1048576))G";
           elif [ $(($1 % 1024)) -eq 0 ]; then echo "$(($1 / 1024))M";
           else echo "${1}K"; fi ;;
    esac
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# check_size_supported KB: clear error when the kernel/CPU lacks this size.
check_size_supported() {
    local kb=$1
    if [ "$kb" -eq 1048576 ]; then
        if ! grep -qw pdpe1gb /proc/cpuinfo 2>/dev/null; then
            die "1 GiB hugepages are not supported: the CPU lacks the pdpe1gb flag (use --size 2M)"
        fi
        if [ ! -d "$SYS_HP/hugepages-1048576kB" ]; then
            die "1 GiB hugepages are not supported by this kernel: $SYS_HP/hugepages-1048576kB does not exist (use --size 2M, or boot with hugepagesz=1G)"
        fi
    fi
    [ -d "$SYS_HP/hugepages-${kb}kB" ] \
        || die "hugepage size $(size_name "$kb") not supported: $SYS_HP/hugepages-${kb}kB does not exist"
}

nodes() { # prints the online NUMA node numbers, one per line
    local d
    for d in "$SYS_NODE"/node[0-9]*; do
        [ -d "$d" ] && echo "${d##*/node}"
    done | sort -n
}

check_node() {
    is_uint "$1" || usage_err "bad node '$1' (expected a number)"
    if [ ! -d "$SYS_NODE/node$1" ]; then
        local avail
        avail=$(nodes | paste -sd, -)
        die "unknown NUMA node $1 (available: ${avail:-none; no NUMA support in sysfs})"
    fi
}

node_hp_dir() { echo "$SYS_NODE/node$1/hugepages/hugepages-$2kB"; }

read_num() { # FILE -> number (0 when missing)
    local v=0
    [ -r "$1" ] && v=$(<"$1")
    echo "${v:-0}"
}

meminfo() { # FIELD -> kB value from /proc/meminfo (0 if absent)
    awk -v f="$1:" '$1 == f { print $2; found=1 } END { if (!found) print 0 }' /proc/meminfo
}

default_size_kb() { meminfo Hugepagesize; }

# ---------------------------------------------------------------------------
cmd_show() {
    [ $# -eq 0 ] || usage_err "show takes no arguments"
    local d kb name n
    if [ ! -d "$SYS_HP" ]; then
        msg "Hugepages are not supported by this kernel ($SYS_HP missing)."
        return 0
    fi
    msg "Hugepages (default size $(size_name "$(default_size_kb)"), MemAvailable $(( $(meminfo MemAvailable) / 1024 )) MiB)"
    printf '%-6s %-8s %8s %8s %8s %8s %10s\n' SIZE NODE TOTAL FREE RSVD SURPLUS TOTAL_MiB
    for d in "$SYS_HP"/hugepages-*kB; do
        [ -d "$d" ] || continue
        kb=${d##*hugepages-}; kb=${kb%kB}
        name=$(size_name "$kb")
        n=$(read_num "$d/nr_hugepages")
        printf '%-6s %-8s %8s %8s %8s %8s %10s\n' "$name" all "$n" \
            "$(read_num "$d/free_hugepages")" "$(read_num "$d/resv_hugepages")" \
            "$(read_num "$d/surplus_hugepages")" "$(( n * kb / 1024 ))"
        local k nd
        for k in $(nodes); do
            nd=$(node_hp_dir "$k" "$kb")
            [ -d "$nd" ] || continue
            n=$(read_num "$nd/nr_hugepages")
            # the kernel keeps no per-node reserved count
            printf '%-6s %-8s %8s %8s %8s %8s %10s\n' "$name" "node$k" "$n" \
                "$(read_num "$nd/free_hugepages")" - \
                "$(read_num "$nd/surplus_hugepages")" "$(( n * kb / 1024 ))"
        done
    done
    if [ ! -d "$SYS_HP/hugepages-1048576kB" ]; then
        msg "(1G pages: not supported by this kernel)"
    elif ! grep -qw pdpe1gb /proc/cpuinfo 2>/dev/null; then
        msg "(1G pages: CPU has no pdpe1gb flag)"
    fi
    msg ""
    msg "hugetlbfs mounts:"
    local found=0 mnt fstype opts tag
    while read -r _ mnt fstype opts _; do
        [ "$fstype" = hugetlbfs ] || continue
        found=1
        mnt=$(printf '%b' "$mnt")
        tag=""
        if [ -r "$STATE_MOUNTS" ] && grep -qxF "$mnt" "$STATE_MOUNTS"; then tag=" (mounted by rvs)"; fi
        msg "  $mnt  pagesize=$(mount_pagesize_name "$opts")  ($opts)$tag"
    done </proc/mounts
    [ "$found" -eq 1 ] || msg "  (none)"
}

# mount_pagesize_name OPTS -> page size of a hugetlbfs mount (2M, 1G, ...)
mount_pagesize_name() {
    local o
    local IFS=,
    for o in $1; do
        case $o in
            pagesize=*)
                # the kernel prints e.g. pagesize=2M, or pagesize=1024M for 1G
                local v=${o#pagesize=} num unit
                num=${v%%[!0-9]*}; unit=${v#"$num"}
                case ${unit^^} in
                    K|KB) size_name "$num" ;;
                    M|MB) size_name $(( num * 1024 )) ;;
                    G|GB) size_name $(( num * 1048576 )) ;;
                    *) echo "$v" ;;
                esac
                return ;;
        esac
    done
    size_name "$(default_size_kb)"
}

# mount_info DIR -> prints "FSTYPE OPTS" of the mount at DIR, returns 1 if not a mount point
mount_info() {
    local mnt fstype opts out=""
    while read -r _ mnt fstype opts _; do
        mnt=$(printf '%b' "$mnt")
        [ "$mnt" = "$1" ] && out="$fstype $opts"   # last one wins (stacked mounts)
    done </proc/mounts
    [ -n "$out" ] || return 1
    echo "$out"
}

# ---------------------------------------------------------------------------
cmd_reserve() {
    local n="" size_kb="" node="" all_nodes=0
    while [ $# -gt 0 ]; do
        case $1 in
            --size) [ $# -ge 2 ] || usage_err "--size needs a value (2M or 1G)"
                    size_kb=$(parse_size "$2"); shift ;;
            --size=*) size_kb=$(parse_size "${1#--size=}") ;;
            --node) [ $# -ge 2 ] || usage_err "--node needs a node number"
                    node=$2; shift ;;
            --node=*) node=${1#--node=} ;;
            --all-nodes) all_nodes=1 ;;
            -*) usage_err "reserve: unknown option '$1'" ;;
            *) [ -z "$n" ] || usage_err "reserve: unexpected argument '$1'"
               n=$1 ;;
        esac
        shift
    done
    [ -n "$n" ] || usage_err "reserve: missing page count N"
    is_uint "$n" || usage_err "reserve: N must be a non-negative integer, got '$n'"
    n=$((10#$n))
    [ -z "$node" ] || [ "$all_nodes" -eq 0 ] || usage_err "reserve: --node and --all-nodes are exclusive"
    [ -n "$size_kb" ] || size_kb=2048
    [ -z "$node" ] || is_uint "$node" || usage_err "bad node '$node' (expected a number)"

    [ -d "$SYS_HP" ] || die "this kernel has no hugepage support ($SYS_HP missing)"
    check_size_supported "$size_kb"
    [ -z "$node" ] || check_node "$node"

    local name targets=() t
    name=$(size_name "$size_kb")
    if [ -n "$node" ]; then
        targets=("$node")
    elif [ "$all_nodes" -eq 1 ]; then
        mapfile -t targets < <(nodes)
        [ ${#targets[@]} -gt 0 ] || die "--all-nodes: no NUMA nodes found in $SYS_NODE"
    else
        targets=(all)
    fi

    # Work out what changes and how much memory that takes.
    local files=() currents=() need_kb=0 file cur
    for t in "${targets[@]}"; do
        if [ "$t" = all ]; then file=$SYS_HP/hugepages-${size_kb}kB/nr_hugepages
        else file=$(node_hp_dir "$t" "$size_kb")/nr_hugepages; fi
        [ -e "$file" ] || die "$file does not exist"
        cur=$(read_num "$file")
        local where="system-wide"; [ "$t" = all ] || where="on node $t"
        if [ "$cur" -eq "$n" ]; then
            msg "$n x $name pages already reserved $where; nothing to do"
            continue
        fi
        files+=("$file"); currents+=("$cur")
        [ "$n" -le "$cur" ] || need_kb=$(( need_kb + (n - cur) * size_kb ))
    done
    [ ${#files[@]} -gt 0 ] || return 0
    need_root reserve

    if [ "$need_kb" -gt 0 ]; then
        local avail_kb
        avail_kb=$(meminfo MemAvailable)
        if [ "$need_kb" -gt "$avail_kb" ]; then
            die "not enough free memory: reserving needs $(( need_kb / 1024 )) MiB more, MemAvailable is $(( avail_kb / 1024 )) MiB"
        fi
        if [ -n "$node" ]; then
            local node_free
            node_free=$(awk '$3 == "MemFree:" { print $4 }' "$SYS_NODE/node$node/meminfo" 2>/dev/null || true)
            if [ -n "$node_free" ] && [ "$need_kb" -gt "$node_free" ]; then
                die "not enough free memory on node $node: needs $(( need_kb / 1024 )) MiB more, node MemFree is $(( node_free / 1024 )) MiB"
            fi
        fi
    fi

    local i got failed=0
    for i in "${!files[@]}"; do
        file=${files[$i]}; cur=${currents[$i]}
        msg "setting the $name pool to $n pages ($(( n * size_kb / 1024 )) MiB) via $file (was $cur)"
        write_sys "$n" "$file"
        [ "$DRY_RUN" -eq 0 ] || continue
        got=$(read_num "$file")
        if [ "$got" -ne "$n" ]; then
            if [ "$got" -lt "$n" ]; then
                printf '%s: error: shortfall: asked for %s x %s pages, the kernel provided only %s (memory too fragmented? reserve at boot or with hugepages= on the kernel command line)\n' \
                    "$PROG" "$n" "$name" "$got" >&2
                msg "rolling back $file to $cur"
                printf '%s\n' "$cur" >"$file" 2>/dev/null || warn "could not roll back $file to $cur"
            else
                printf '%s: error: asked for %s x %s pages but %s remain in %s (pages still in use?)\n' \
                    "$PROG" "$n" "$name" "$got" "$file" >&2
            fi
            failed=1
        else
            msg "ok: $got x $name pages reserved"
        fi
    done
    return "$failed"
}

# ---------------------------------------------------------------------------
cmd_mount() {
    local dir="" size_kb=""
    while [ $# -gt 0 ]; do
        case $1 in
            --size) [ $# -ge 2 ] || usage_err "--size needs a value (2M or 1G)"
                    size_kb=$(parse_size "$2"); shift ;;
            --size=*) size_kb=$(parse_size "${1#--size=}") ;;
            -*) usage_err "mount: unknown option '$1'" ;;
            *) [ -z "$dir" ] || usage_err "mount: unexpected argument '$1'"
               dir=$1 ;;
        esac
        shift
    done
    [ -n "$size_kb" ] || size_kb=2048
    local name
    name=$(size_name "$size_kb")
    if [ -z "$dir" ]; then
        if [ "$size_kb" -eq 2048 ]; then dir=/dev/hugepages; else dir=/dev/hugepages-$name; fi
    fi
    case $dir in /*) ;; *) usage_err "mount: DIR must be an absolute path, got '$dir'" ;; esac
    dir=${dir%/}; [ -n "$dir" ] || usage_err "mount: refusing to mount on /"
    check_size_supported "$size_kb"

    local info fstype opts have
    if info=$(mount_info "$dir"); then
        fstype=${info%% *}; opts=${info#* }
        [ "$fstype" = hugetlbfs ] || die "$dir is already a mount point of type $fstype, not hugetlbfs"
        have=$(mount_pagesize_name "$opts")
        [ "$have" = "$name" ] || die "$dir is already a hugetlbfs mount with pagesize=$have, not $name (choose another DIR)"
        msg "$dir is already mounted (hugetlbfs, pagesize=$name); nothing to do"
        return 0
    fi
    need_root mount
    local created=0
    if [ ! -e "$dir" ]; then
        run mkdir -p "$dir"
        created=1
    elif [ ! -d "$dir" ]; then
        die "$dir exists and is not a directory"
    fi
    msg "mounting hugetlbfs pagesize=$name on $dir"
    run mount -t hugetlbfs -o "pagesize=$name" nodev "$dir" || die "mount of $dir failed"
    if [ "$DRY_RUN" -eq 1 ]; then
        msg "[dry-run] record $dir in $STATE_MOUNTS"
    else
        mkdir -p "$STATE_DIR"
        grep -qxF "$dir" "$STATE_MOUNTS" 2>/dev/null || printf '%s\n' "$dir" >>"$STATE_MOUNTS"
        if [ "$created" -eq 1 ] && ! grep -qxF "$dir" "$STATE_DIRS" 2>/dev/null; then
            printf '%s\n' "$dir" >>"$STATE_DIRS"
        fi
        msg "ok: $dir mounted"
    fi
}

# ---------------------------------------------------------------------------
cmd_clear() {
    local size_kb=""
    while [ $# -gt 0 ]; do
        case $1 in
            --size) [ $# -ge 2 ] || usage_err "--size needs a value (2M or 1G)"
                    size_kb=$(parse_size "$2"); shift ;;
            --size=*) size_kb=$(parse_size "${1#--size=}") ;;
            *) usage_err "clear: unexpected argument '$1'" ;;
        esac
        shift
    done
    [ -d "$SYS_HP" ] || { msg "no hugepage support; nothing to clear"; return 0; }
    need_root clear
    local failed=0 name

    # 1. Unmount what rvs mounted (matching size), unless something uses it.
    local keep=() mnt info opts
    if [ -r "$STATE_MOUNTS" ]; then
        while IFS= read -r mnt; do
            [ -n "$mnt" ] || continue
            if ! info=$(mount_info "$mnt") || [ "${info%% *}" != hugetlbfs ]; then
                msg "$mnt is no longer mounted; forgetting it"
                continue
            fi
            opts=${info#* }
            if [ -n "$size_kb" ] && [ "$(mount_pagesize_name "$opts")" != "$(size_name "$size_kb")" ]; then
                keep+=("$mnt"); continue
            fi
            if [ -n "$(find "$mnt" -mindepth 1 -maxdepth 1 -print -quit 2>/dev/null)" ] \
               || { command -v fuser >/dev/null 2>&1 && fuser -m "$mnt" >/dev/null 2>&1; }; then
                warn "$mnt is in use (files or processes on it); not unmounting"
                keep+=("$mnt"); failed=1
                continue
            fi
            msg "unmounting $mnt"
            if run umount "$mnt"; then
                # remove the directory only if `mount` created it
                if [ -r "$STATE_DIRS" ] && grep -qxF "$mnt" "$STATE_DIRS"; then
                    run rmdir "$mnt" 2>/dev/null || warn "could not remove $mnt"
                    if [ "$DRY_RUN" -eq 0 ]; then
                        grep -vxF "$mnt" "$STATE_DIRS" >"$STATE_DIRS.tmp" || true
                        mv -f "$STATE_DIRS.tmp" "$STATE_DIRS"
                    fi
                fi
            else
                warn "umount $mnt failed"; keep+=("$mnt"); failed=1
            fi
        done <"$STATE_MOUNTS"
        if [ "$DRY_RUN" -eq 1 ]; then
            msg "[dry-run] update $STATE_MOUNTS"
        elif [ ${#keep[@]} -gt 0 ]; then
            printf '%s\n' "${keep[@]}" >"$STATE_MOUNTS"
        else
            rm -f "$STATE_MOUNTS"
            [ -s "$STATE_DIRS" ] || rm -f "$STATE_DIRS"
            rmdir "$STATE_DIR" 2>/dev/null || true
        fi
    fi

    # 2. Release the pages. The system-wide write also empties every node.
    local d kb cur got
    for d in "$SYS_HP"/hugepages-*kB; do
        [ -d "$d" ] || continue
        kb=${d##*hugepages-}; kb=${kb%kB}
        [ -z "$size_kb" ] || [ "$kb" = "$size_kb" ] || continue
        name=$(size_name "$kb")
        cur=$(read_num "$d/nr_hugepages")
        if [ "$cur" -eq 0 ]; then
            msg "no $name pages reserved; nothing to do"
            continue
        fi
        msg "releasing $cur x $name pages"
        write_sys 0 "$d/nr_hugepages"
        [ "$DRY_RUN" -eq 0 ] || continue
        got=$(read_num "$d/nr_hugepages")
        if [ "$got" -ne 0 ]; then
            warn "$got x $name pages are still allocated (in use by a running process?)"
            failed=1
        else
            msg "ok: $name pages released"
        fi
    done
    return "$failed"
}

# ---------------------------------------------------------------------------
main() {
    local args=() a
    for a in "$@"; do
        case $a in
            --dry-run) DRY_RUN=1 ;;
            -h|--help|help) usage; exit 0 ;;
            *) args+=("$a") ;;
        esac
    done
    [ ${#args[@]} -gt 0 ] || usage_err "missing ACTION (show, reserve, mount, clear)"
    local action=${args[0]}
    case $action in
        show) cmd_show "${args[@]:1}" ;;
        reserve) cmd_reserve "${args[@]:1}" ;;
        mount) cmd_mount "${args[@]:1}" ;;
        clear) cmd_clear "${args[@]:1}" ;;
        *) usage_err "unknown action '$action'" ;;
    esac
}

main "$@"
