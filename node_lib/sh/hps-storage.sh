# shellcheck shell=sh
# hps-storage.sh: the storage host (SCH) side of thin nodes' iSCSI disks. POSIX sh, sourced after
# hps-functions.sh (it calls _n_call, _n_usage and _n_is_volume from there), never executed.
#
#   . /run/hps/hps-functions.sh && . /run/hps/hps-storage.sh
#   n_storage_pool_create /dev/sdb /dev/sdc && n_storage_report && n_storage_sync
#
# One pool per storage host: ZFS (zvols), LVM (logical volumes) or a directory of sparse files.
# Volumes are exported as LUN 1 of one iSCSI target each, through LIO (targetcli) or tgt
# (tgtadm), bound to one initiator. Every backend command line is in one function below
# (_n_zfs_*, _n_lvm_*, _n_file_*, _n_lio_*, _n_tgt_*); only the file pool and tgt are exercised
# by the tests (ZFS and LIO need kernel modules, LVM needs disks).
#
# Exit codes, as in hps-functions.sh: 0 success; 1 not found (no pool, no such volume);
# 2 a command or the IPS failed; 3 refused (a conflict: shrinking, no space left, a disk in
# use, an IQN already exporting another volume); 4 bad usage (nothing is changed).
#
# Settings (environment, all optional): HPS_POOL_NAME (hps: the zpool or volume group),
# HPS_POOL_DIR (/var/lib/hps/pool: the sparse-file pool), HPS_POOL_SIZE (20G: the sparse-file
# pool's capacity), HPS_ISCSI_TARGET (lio | tgt; default: lio when targetcli exists, else tgt),
# HPS_TGT_CONTROL_PORT (tgtd's control port, 0), HPS_ISCSI_PORTAL (ip[:port] the initiators
# use; default: storage network 0's address, else the host's IP, port 3260). The pool made is
# recorded in /var/lib/hps/storage-pool (under HPS_NODE_ROOT, as every system path).

# shellcheck disable=SC2034  # for the scripts that say which library they run
HPS_STORAGE_LIB_VERSION='@HPS_NODE_LIB_VERSION@'

# ---------------------------------------------------------------------------------------------
# Public functions

# Usage: n_storage_pool_create [DISK...] -> prints the pool as <kind>:<name> (zfs:hps, lvm:hps,
# file:/var/lib/hps/pool); exit 0/2/3/4. An existing pool is reused. With disks: a zpool when
# `zpool` exists, else a volume group when `vgcreate` does; without: a directory of sparse files.
n_storage_pool_create() {
    for _n_pc_disk in "$@"; do
        case $_n_pc_disk in
            /dev/?*) [ -b "$_n_pc_disk" ] && continue ;;
        esac
        _n_usage 'n_storage_pool_create [DISK...] (free block devices, /dev/...)'
        return 4
    done
    if _n_pool_load 2>/dev/null; then
        printf '%s:%s\n' "$_n_pool_kind" "$_n_pool_name"
        return 0
    fi
    _n_pool_name=${HPS_POOL_NAME:-hps}
    if [ $# -eq 0 ]; then
        if ! _n_pc_size=$(_n_size_bytes "${HPS_POOL_SIZE:-20G}"); then
            _n_usage 'HPS_POOL_SIZE=SIZE n_storage_pool_create (e.g. 20G)'
            return 4
        fi
        _n_pool_kind=file _n_pool_name=$(_n_pool_dir)
        _n_file_pool_create "$_n_pool_name" "$_n_pc_size" || return 2
    else
        for _n_pc_disk in "$@"; do
            _n_disk_in_use "$_n_pc_disk" || continue
            printf 'hps-node: %s is in use\n' "$_n_pc_disk" >&2
            return 3
        done
        if command -v zpool >/dev/null 2>&1; then
            _n_pool_kind=zfs
        elif command -v vgcreate >/dev/null 2>&1; then
            _n_pool_kind=lvm
        else
            printf 'hps-node: neither zpool nor vgcreate is installed\n' >&2
            return 2
        fi
        "_n_${_n_pool_kind}_pool_create" "$_n_pool_name" "$@" || return 2
    fi
    _n_pool_save || return 2
    printf '%s:%s\n' "$_n_pool_kind" "$_n_pool_name"
}

# Usage: n_storage_volume_create VOLUME SIZE -> nothing; exit 0 (also when it exists at least
# that big), 1 no pool, 2, 3 (exists smaller, or no space), 4
n_storage_volume_create() {
    _n_volume_args 'n_storage_volume_create VOLUME SIZE (e.g. root0 40G)' 2 "$@" || return 4
    _n_pool_load || return
    _n_vc_have=$(_n_volume_size "$1")
    if [ -n "$_n_vc_have" ]; then
        [ "$_n_vc_have" -ge "$_n_vol_bytes" ] && return 0
        printf 'hps-node: volume %s exists with %s bytes\n' "$1" "$_n_vc_have" >&2
        return 3
    fi
    _n_room_for "$_n_vol_bytes" || return 3
    "_n_${_n_pool_kind}_volume_create" "$_n_pool_name" "$1" "$_n_vol_bytes" || return 2
}

# Usage: n_storage_volume_list -> prints `<volume> <bytes>`, one line each; exit 0, 1 no pool,
# 2, 4
# shellcheck disable=SC2120  # arguments are only counted, to refuse them
n_storage_volume_list() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_storage_volume_list'
        return 4
    fi
    _n_pool_load || return
    "_n_${_n_pool_kind}_volume_list" "$_n_pool_name" || return 2
}

# Usage: n_storage_volume_resize VOLUME SIZE -> grows the volume (and the LUN exporting it);
# exit 0 (also when it already has that size), 1 no pool or volume, 2, 3 shrinking or no space, 4
n_storage_volume_resize() {
    _n_volume_args 'n_storage_volume_resize VOLUME SIZE (grow only)' 2 "$@" || return 4
    _n_pool_load || return
    _n_vr_have=$(_n_volume_size "$1")
    if [ -z "$_n_vr_have" ]; then
        printf 'hps-node: no volume %s\n' "$1" >&2
        return 1
    fi
    [ "$_n_vol_bytes" -ne "$_n_vr_have" ] || return 0
    if [ "$_n_vol_bytes" -lt "$_n_vr_have" ]; then
        printf 'hps-node: volume %s has %s bytes: volumes only grow\n' "$1" "$_n_vr_have" >&2
        return 3
    fi
    _n_room_for "$((_n_vol_bytes - _n_vr_have))" || return 3
    "_n_${_n_pool_kind}_volume_resize" "$_n_pool_name" "$1" "$_n_vol_bytes" || return 2
    _n_vr_path=$(_n_volume_path "$1")
    for _n_vr_iqn in $(_n_exports_of "$1" "$_n_vr_path"); do
        "_n_$(_n_target_kind)_refresh" "$1" "$_n_vr_path" "$_n_vr_iqn" || return 2
    done
}

# Usage: n_storage_volume_delete VOLUME -> nothing; exit 0, 1 no pool or volume, 2, 3 the
# volume is exported (n_storage_unexport first), 4
n_storage_volume_delete() {
    _n_volume_args 'n_storage_volume_delete VOLUME' 1 "$@" || return 4
    _n_pool_load || return
    if [ -z "$(_n_volume_size "$1")" ]; then
        printf 'hps-node: no volume %s\n' "$1" >&2
        return 1
    fi
    _n_vd_iqns=$(_n_exports_of "$1" "$(_n_volume_path "$1")")
    if [ -n "$_n_vd_iqns" ]; then
        printf 'hps-node: volume %s is exported as %s\n' "$1" "$_n_vd_iqns" >&2
        return 3
    fi
    "_n_${_n_pool_kind}_volume_delete" "$_n_pool_name" "$1" || return 2
}

# Usage: n_storage_export VOLUME IQN INITIATOR_IQN -> LUN 1 of target IQN is the volume, for
# that initiator only; exit 0 (also when it already is), 1 no pool or volume, 2, 3 IQN exports
# another volume, 4
n_storage_export() {
    if [ $# -ne 3 ] || ! _n_is_volume "$1" || ! _n_is_iqn "$2" || ! _n_is_iqn "$3"; then
        _n_usage 'n_storage_export VOLUME IQN INITIATOR_IQN'
        return 4
    fi
    _n_pool_load || return
    if [ -z "$(_n_volume_size "$1")" ]; then
        printf 'hps-node: no volume %s\n' "$1" >&2
        return 1
    fi
    "_n_$(_n_target_kind)_export" "$1" "$(_n_volume_path "$1")" "$2" "$3"
}

# Usage: n_storage_unexport IQN -> removes target IQN (the volume stays); exit 0 (also when
# there is no such target), 2, 4
n_storage_unexport() {
    if [ $# -ne 1 ] || ! _n_is_iqn "$1"; then
        _n_usage 'n_storage_unexport IQN'
        return 4
    fi
    "_n_$(_n_target_kind)_unexport" "$1"
}

# Usage: n_storage_report -> sets this host's STORAGE_FREE (bytes) and STORAGE_POOL
# (<kind>:<name>) on the IPS; exit 0, 1 no pool, 2/3 (the IPS), 4
# shellcheck disable=SC2120  # arguments are only counted, to refuse them
n_storage_report() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_storage_report'
        return 4
    fi
    _n_pool_load || return
    _n_sr_free=$("_n_${_n_pool_kind}_free" "$_n_pool_name") || return 2
    _n_call host_variable name STORAGE_FREE value "$_n_sr_free" >/dev/null || return
    _n_call host_variable name STORAGE_POOL value "$_n_pool_kind:$_n_pool_name" >/dev/null
}

# Usage: n_storage_sync -> does the IPS's work for this host (cmd=storage_work), reporting each
# job (cmd=storage_report) and then the capacity (n_storage_report); exit 0 all done (or no
# work), 1 a job failed (reported as failed), 2/3 the IPS (3 also: another sync is running), 4.
# Run it at boot and on a timer; runs never overlap (/run/hps/storage-sync.lock).
# shellcheck disable=SC2120  # arguments are only counted, to refuse them
n_storage_sync() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_storage_sync'
        return 4
    fi
    _n_sync_lock || return 3
    _n_sync_locked
    _n_ss_rc=$?
    rm -rf "$_n_ss_lock"
    return "$_n_ss_rc"
}

# ---------------------------------------------------------------------------------------------
# The jobs of n_storage_sync

# Usage: _n_sync_lock -> takes the sync lock (one left by a sync that died is taken over);
# exit 1 while another sync holds it
_n_sync_lock() {
    _n_ss_lock=${HPS_NODE_ROOT:-}/run/hps/storage-sync.lock
    mkdir -p "${_n_ss_lock%/*}" 2>/dev/null
    if ! mkdir "$_n_ss_lock" 2>/dev/null; then
        _n_ss_pid=$(_n_first_line "$_n_ss_lock/pid")
        if [ -n "$_n_ss_pid" ] && kill -0 "$_n_ss_pid" 2>/dev/null; then
            printf 'hps-node: n_storage_sync already runs (pid %s)\n' "$_n_ss_pid" >&2
            return 1
        fi
    fi
    printf '%s\n' "$$" >"$_n_ss_lock/pid"
}

# Usage: _n_sync_locked -> fetches the work and does each job; n_storage_sync's codes
_n_sync_locked() {
    _n_ss_work=$(_n_call storage_work) || return
    [ -n "$_n_ss_work" ] || return 0
    _n_ss_err=$(mktemp "${TMPDIR:-/tmp}/hps-storage.XXXXXX") || return 2
    _n_ss_rc=0
    while IFS= read -r _n_ss_line; do
        [ -n "$_n_ss_line" ] || continue
        # no job reads the work lines: a tool that reads stdin gets nothing
        _n_storage_job "$_n_ss_line" "$_n_ss_err" </dev/null
        _n_ss_job=$?
        case $_n_ss_job in
            0) ;;
            1) [ "$_n_ss_rc" -ne 0 ] || _n_ss_rc=1 ;;
            *) _n_ss_rc=$_n_ss_job ;;
        esac
    done <<EOF
$_n_ss_work
EOF
    rm -f "$_n_ss_err"
    return "$_n_ss_rc"
}

# Usage: _n_storage_job LINE ERRFILE -> does one `<job-id> <action> <volume> <size> <iqn>
# <initiator-iqn>` line and reports it; exit 0 done, 1 failed (reported), 2/3 a report failed
_n_storage_job() {
    # set -f: a field is never a glob; the caller's setting is put back after
    case $- in *f*) _n_sj_f='' ;; *) _n_sj_f=1; set -f ;; esac
    # shellcheck disable=SC2086  # split into the six fields on purpose
    set -- $1 "$2"
    [ -z "$_n_sj_f" ] || set +f
    _n_sj_id=$1
    case $_n_sj_id in
        '' | *[!A-Za-z0-9._:-]*)
            printf 'hps-node: storage job without a usable id skipped: %s\n' "$1" >&2
            return 1 ;;
    esac
    if [ $# -ne 7 ]; then
        _n_job_report "$_n_sj_id" failed detail 'malformed job: not 6 fields'
        return
    fi
    _n_sj_errfile=$7
    _n_sj_action=$2 _n_sj_volume=$3 _n_sj_size=$4 _n_sj_iqn=$5 _n_sj_initiator=$6
    _n_sj_bytes=0
    _n_job_do >"$_n_sj_errfile" 2>&1
    _n_sj_rc=$?
    cat "$_n_sj_errfile" >&2
    if [ "$_n_sj_rc" -ne 0 ]; then
        # shellcheck disable=SC2016  # sed's $ (the last line), not the shell's
        _n_sj_why=$(sed -n 's/^hps-node: //; s/^usage: /bad job: /; /./h; ${x;p;}' "$_n_sj_errfile")
        [ -n "$_n_sj_why" ] || _n_sj_why="$_n_sj_action failed (exit $_n_sj_rc)"
        _n_job_report "$_n_sj_id" failed detail "$_n_sj_why"
        return
    fi
    _n_sj_lun=-
    [ "$_n_sj_iqn" = - ] || _n_sj_lun=$(_n_portal):$_n_sj_iqn
    [ "$_n_sj_action" = delete ] || _n_sj_bytes=$(_n_volume_size "$_n_sj_volume")
    _n_job_report "$_n_sj_id" ok lun "$_n_sj_lun" size "${_n_sj_bytes:-0}" || return
    return 0
}

# Usage: _n_job_do -> the action of the job in _n_sj_*; its code (usage errors are 4)
_n_job_do() {
    case $_n_sj_action in
        provision)
            n_storage_volume_create "$_n_sj_volume" "$_n_sj_size" &&
                n_storage_export "$_n_sj_volume" "$_n_sj_iqn" "$_n_sj_initiator" ;;
        expand)
            # done when the volume has the size already: a job done twice, or LVM's rounding
            # up to whole extents. The LUNs exporting it grow with it.
            _n_jd_have=''
            if _n_pool_load 2>/dev/null && _n_jd_want=$(_n_size_bytes "$_n_sj_size"); then
                _n_jd_have=$(_n_volume_size "$_n_sj_volume")
            fi
            if [ -z "$_n_jd_have" ] || [ "$_n_jd_have" -lt "$_n_jd_want" ]; then
                n_storage_volume_resize "$_n_sj_volume" "$_n_sj_size" || return
            fi
            [ "$_n_sj_iqn" = - ] || [ "$_n_sj_initiator" = - ] ||
                n_storage_export "$_n_sj_volume" "$_n_sj_iqn" "$_n_sj_initiator" ;;
        delete)
            if [ "$_n_sj_iqn" != - ]; then
                n_storage_unexport "$_n_sj_iqn" || return
            fi
            n_storage_volume_delete "$_n_sj_volume"
            _n_jd_rc=$?
            # a volume already gone is what the job asks for
            [ "$_n_jd_rc" -eq 1 ] || return "$_n_jd_rc" ;;
        *)
            printf 'hps-node: unknown action %s\n' "$_n_sj_action" >&2
            return 4 ;;
    esac
}

# Usage: _n_job_report ID ok|failed NAME VALUE... -> cmd=storage_report, then n_storage_report;
# exit 0 ok reported, 1 failed reported, 2/3 the IPS
_n_job_report() {
    _n_jr_id=$1 _n_jr_status=$2
    shift 2
    _n_call storage_report job "$_n_jr_id" status "$_n_jr_status" "$@" >/dev/null || return
    n_storage_report >/dev/null 2>&1
    [ "$_n_jr_status" = ok ]
}

# Usage: _n_portal -> prints ip:port of this host's iSCSI portal
_n_portal() {
    _n_pt=${HPS_ISCSI_PORTAL:-}
    if [ -z "$_n_pt" ]; then
        _n_pt=$(n_storage_network 0 2>/dev/null | awk '{ print $2 }')
        [ -n "$_n_pt" ] || _n_pt=$(_n_call host_variable name IP 2>/dev/null)
    fi
    case $_n_pt in
        *:*) printf '%s\n' "$_n_pt" ;;
        *) printf '%s:3260\n' "$_n_pt" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# The pool: which one, and one interface over its kinds

# Usage: _n_pool_load -> sets _n_pool_kind and _n_pool_name from the pool record; exit 1 if none
_n_pool_load() {
    _n_pl=$(_n_first_line "$(_n_pool_record)")
    _n_pool_kind=${_n_pl%%:*} _n_pool_name=${_n_pl#*:}
    case $_n_pool_kind in
        zfs | lvm | file) [ -n "$_n_pool_name" ] && "_n_${_n_pool_kind}_pool_exists" \
            "$_n_pool_name" && return 0 ;;
    esac
    printf 'hps-node: no storage pool (n_storage_pool_create makes one)\n' >&2
    return 1
}

# Usage: _n_pool_save -> records _n_pool_kind:_n_pool_name; exit 1 when it cannot
_n_pool_save() {
    _n_ps=$(_n_pool_record)
    mkdir -p "${_n_ps%/*}" && printf '%s:%s\n' "$_n_pool_kind" "$_n_pool_name" >"$_n_ps.$$" &&
        mv -f "$_n_ps.$$" "$_n_ps"
}

_n_pool_record() {
    printf '%s\n' "${HPS_NODE_ROOT:-}/var/lib/hps/storage-pool"
}

_n_pool_dir() {
    printf '%s\n' "${HPS_POOL_DIR:-${HPS_NODE_ROOT:-}/var/lib/hps/pool}"
}

# Usage: _n_volume_size VOLUME -> prints its bytes (nothing when there is no such volume)
_n_volume_size() {
    "_n_${_n_pool_kind}_volume_list" "$_n_pool_name" 2>/dev/null |
        awk -v v="$1" '$1 == v { print $2; exit }'
}

# Usage: _n_volume_path VOLUME -> prints the block device or file of the volume
_n_volume_path() {
    case $_n_pool_kind in
        zfs) printf '/dev/zvol/%s/%s\n' "$_n_pool_name" "$1" ;;
        lvm) printf '/dev/%s/%s\n' "$_n_pool_name" "$1" ;;
        file) printf '%s/%s.img\n' "$_n_pool_name" "$1" ;;
    esac
}

# Usage: _n_room_for BYTES -> exit 0 when the pool has that much free, else 1 with a message
_n_room_for() {
    _n_rf=$("_n_${_n_pool_kind}_free" "$_n_pool_name") || return 1
    [ "$1" -gt "$_n_rf" ] || return 0
    printf 'hps-node: the pool has %s bytes free, %s asked\n' "$_n_rf" "$1" >&2
    return 1
}

# Usage: _n_disk_in_use DISK -> exit 0 when DISK or a partition of it is mounted or swap
_n_disk_in_use() {
    cat "${HPS_NODE_ROOT:-}/proc/mounts" "${HPS_NODE_ROOT:-}/proc/swaps" 2>/dev/null |
        awk -v d="$1" 'index($1, d) == 1 { found = 1 } END { exit !found }'
}

# ---------------------------------------------------------------------------------------------
# ZFS: a zpool of the given disks, a sparse zvol per volume

_n_zfs_pool_exists() { zpool list -H -o name "$1" >/dev/null 2>&1; }

_n_zfs_pool_create() {
    _n_zp=$1
    shift
    # a pool already on these disks (a reinstalled host) is imported, not overwritten
    zpool import -f "$_n_zp" >/dev/null 2>&1 || zpool create -f -m none "$_n_zp" "$@"
}

_n_zfs_volume_create() { zfs create -s -V "$3" "$1/$2"; }

_n_zfs_volume_list() {
    zfs list -H -p -r -t volume -o name,volsize "$1" |
        awk -v p="$1/" 'index($1, p) == 1 { print substr($1, length(p) + 1), $2 }'
}

_n_zfs_volume_resize() { zfs set volsize="$3" "$1/$2"; }

_n_zfs_volume_delete() { zfs destroy "$1/$2"; }

_n_zfs_free() { zfs get -H -p -o value available "$1"; }

# ---------------------------------------------------------------------------------------------
# LVM: a volume group of the given disks, a logical volume per volume

_n_lvm_pool_exists() { vgs "$1" >/dev/null 2>&1; }

_n_lvm_pool_create() {
    _n_vg=$1
    shift
    vgcreate -y "$_n_vg" "$@"
}

_n_lvm_volume_create() { lvcreate -y -W y -n "$2" -L "${3}b" "$1"; }

_n_lvm_volume_list() {
    lvs --noheadings --units b --nosuffix -o lv_name,lv_size "$1" | awk 'NF == 2 { print $1, $2 }'
}

_n_lvm_volume_resize() { lvextend -L "${3}b" "$1/$2"; }

_n_lvm_volume_delete() { lvremove -f "$1/$2"; }

_n_lvm_free() { vgs --noheadings --units b --nosuffix -o vg_free "$1" | tr -d ' '; }

# ---------------------------------------------------------------------------------------------
# Sparse files: a directory holding its capacity in .hps-pool, a <volume>.img per volume

_n_file_pool_exists() { [ -f "$1/.hps-pool" ]; }

_n_file_pool_create() {
    mkdir -p "$1" && printf '%s\n' "$2" >"$1/.hps-pool"
}

_n_file_volume_create() { truncate -s "$3" "$1/$2.img"; }

_n_file_volume_list() {
    # shellcheck disable=SC2012  # names are checked volume names; a glob fails under set -f
    ls "$1" | while IFS= read -r _n_fv; do
        case $_n_fv in
            *.img) _n_is_volume "${_n_fv%.img}" &&
                printf '%s %s\n' "${_n_fv%.img}" "$(stat -c %s "$1/$_n_fv")" ;;
        esac
    done
}

_n_file_volume_resize() { truncate -s "$3" "$1/$2.img"; }

_n_file_volume_delete() { rm -f "$1/$2.img"; }

# the capacity less what the volumes may grow to: sparse files are promised, not yet written
_n_file_free() {
    _n_ff=$(_n_first_line "$1/.hps-pool")
    _n_ff_used=$(_n_file_volume_list "$1" | awk '{ s += $2 } END { printf "%.0f\n", s }')
    _n_ff=$((_n_ff - _n_ff_used))
    [ "$_n_ff" -ge 0 ] || _n_ff=0
    printf '%s\n' "$_n_ff"
}

# ---------------------------------------------------------------------------------------------
# iSCSI targets: each backend has _export VOLUME PATH IQN INITIATOR, _unexport IQN,
# _refresh VOLUME PATH IQN (a grown volume's new size) and _exports_of VOLUME PATH

# Usage: _n_target_kind -> prints lio or tgt
_n_target_kind() {
    case ${HPS_ISCSI_TARGET:-} in
        lio | tgt) printf '%s\n' "$HPS_ISCSI_TARGET" ;;
        *) if command -v targetcli >/dev/null 2>&1; then echo lio; else echo tgt; fi ;;
    esac
}

# Usage: _n_exports_of VOLUME PATH -> prints the IQNs whose LUN 1 is the volume
_n_exports_of() {
    "_n_$(_n_target_kind)_exports_of" "$@"
}

# -- tgt (tgtd and tgtadm); LUN 0 of every target is tgt's controller ---------------------------

_n_tgt() {
    tgtadm -C "${HPS_TGT_CONTROL_PORT:-0}" --lld iscsi "$@"
}

# Usage: _n_tgt_table -> one line per fact of `tgtadm --op show`: `target TID IQN`,
# `lun1 TID IQN MB PATH` (LUN 1: size in tgt's MB, 10^6 bytes rounded, and backing file) and
# `acl TID IQN INITIATOR`
_n_tgt_table() {
    _n_tgt --op show --mode target | awk '
        /^Target [0-9]+: / { tid = $2; sub(/:$/, "", tid); iqn = $3; lun = ""; acl = 0
                             print "target", tid, iqn; next }
        /^ +LUN: [0-9]+$/ { lun = $2; next }
        /^ +Size: / { size = $2 }
        /^ +Backing store path: / && lun == "1" {
            path = $0; sub(/^ +Backing store path: /, "", path)
            print "lun1", tid, iqn, size, path }
        /^ +ACL information:/ { acl = 1; next }
        /^ +[A-Za-z ]+:/ { acl = 0 }
        acl && NF == 1 { print "acl", tid, iqn, $1 }'
}

_n_tgt_export() {
    _n_te_table=$(_n_tgt_table) || return 2
    _n_te_tid=$(printf '%s\n' "$_n_te_table" |
        awk -v q="$3" '$1 == "target" && $3 == q { print $2 }')
    if [ -z "$_n_te_tid" ]; then
        _n_te_tid=$(printf '%s\n' "$_n_te_table" |
            awk '$1 == "target" && $2 > m { m = $2 } END { print m + 1 }')
        _n_tgt --op new --mode target --tid "$_n_te_tid" --targetname "$3" || return 2
    fi
    _n_te_lun=$(printf '%s\n' "$_n_te_table" |
        awk -v t="$_n_te_tid" '$1 == "lun1" && $2 == t { $1 = $2 = $3 = ""; print substr($0, 4) }')
    if [ -z "$_n_te_lun" ]; then
        _n_tgt --op new --mode logicalunit --tid "$_n_te_tid" --lun 1 --backing-store "$2" ||
            return 2
    elif [ "${_n_te_lun#* }" != "$2" ]; then
        printf 'hps-node: %s already exports %s\n' "$3" "${_n_te_lun#* }" >&2
        return 3
    elif [ "${_n_te_lun%% *}" != "$((($(_n_volume_size "$1") + 500000) / 1000000))" ]; then
        _n_tgt_refresh "$1" "$2" "$3" || return 2
    fi
    for _n_te_acl in $(printf '%s\n' "$_n_te_table" |
        awk -v t="$_n_te_tid" '$1 == "acl" && $2 == t { print $4 }'); do
        [ "$_n_te_acl" = "$4" ] && continue
        _n_tgt --op unbind --mode target --tid "$_n_te_tid" --initiator-name "$_n_te_acl" ||
            return 2
    done
    printf '%s\n' "$_n_te_table" |
        awk -v t="$_n_te_tid" -v i="$4" '$1 == "acl" && $2 == t && $4 == i { f = 1 }
                                         END { exit !f }' && return 0
    _n_tgt --op bind --mode target --tid "$_n_te_tid" --initiator-name "$4" || return 2
}

_n_tgt_unexport() {
    _n_tu_tid=$(_n_tgt_table | awk -v q="$1" '$1 == "target" && $3 == q { print $2 }')
    [ -n "$_n_tu_tid" ] || return 0
    _n_tgt --op delete --mode target --tid "$_n_tu_tid" --force || return 2
}

# tgt reads a backing file's size when the LUN is made: a grown volume's LUN is made again
_n_tgt_refresh() {
    _n_tr_tid=$(_n_tgt_table | awk -v q="$3" '$1 == "target" && $3 == q { print $2 }')
    [ -n "$_n_tr_tid" ] || return 0
    _n_tgt --op delete --mode logicalunit --tid "$_n_tr_tid" --lun 1 &&
        _n_tgt --op new --mode logicalunit --tid "$_n_tr_tid" --lun 1 --backing-store "$2"
}

_n_tgt_exports_of() {
    _n_tgt_table 2>/dev/null | awk -v p="$2" '$1 == "lun1" {
        path = $0; sub(/^lun1 [^ ]+ [^ ]+ [^ ]+ /, "", path); if (path == p) print $3 }'
}

# -- LIO (targetcli, configfs); not exercised by the tests: it needs the kernel's target modules

_n_lio_cfs() { printf '%s\n' "${HPS_NODE_ROOT:-}/sys/kernel/config/target"; }

_n_lio_export() {
    _n_le_cfs=$(_n_lio_cfs)
    _n_le_tpg=$_n_le_cfs/iscsi/$3/tpgt_1
    _n_le_bs=block
    [ -b "$2" ] || _n_le_bs=fileio
    _n_le_have=$(_n_lio_lun_backstore "$3")
    if [ -n "$_n_le_have" ] && [ "$_n_le_have" != "hps-$1" ]; then
        printf 'hps-node: %s already exports %s\n' "$3" "$_n_le_have" >&2
        return 3
    fi
    if [ -z "$(find "$_n_le_cfs/core" -mindepth 2 -maxdepth 2 -name "hps-$1" 2>/dev/null)" ]; then
        if [ "$_n_le_bs" = block ]; then
            targetcli /backstores/block create name="hps-$1" dev="$2" || return 2
        else
            targetcli /backstores/fileio create name="hps-$1" file_or_dev="$2" || return 2
        fi
    fi
    if [ ! -d "$_n_le_tpg" ]; then
        # ACLs admit the initiators; no CHAP (the storage network is the boundary)
        targetcli /iscsi create "$3" &&
            targetcli "/iscsi/$3/tpg1" set attribute authentication=0 || return 2
    fi
    [ -n "$_n_le_have" ] ||
        targetcli "/iscsi/$3/tpg1/luns" create "/backstores/$_n_le_bs/hps-$1" lun=1 || return 2
    for _n_le_acl in $(_n_lio_acls "$3"); do
        [ "$_n_le_acl" = "$4" ] || targetcli "/iscsi/$3/tpg1/acls" delete "$_n_le_acl" || return 2
    done
    [ -d "$_n_le_tpg/acls/$4" ] ||
        targetcli "/iscsi/$3/tpg1/acls" create "$4" add_mapped_luns=true || return 2
    targetcli saveconfig >/dev/null || return 2
}

_n_lio_unexport() {
    [ -d "$(_n_lio_cfs)/iscsi/$1" ] || return 0
    _n_lu_bs=$(_n_lio_lun_backstore "$1")
    targetcli /iscsi delete "$1" || return 2
    if [ -n "$_n_lu_bs" ] && [ -z "$(_n_lio_exports_of "${_n_lu_bs#hps-}" '')" ]; then
        targetcli "/backstores/$(_n_lio_backstore_type "$_n_lu_bs")" delete "$_n_lu_bs" ||
            return 2
    fi
    targetcli saveconfig >/dev/null || return 2
}

# a block backstore follows its device's size; a fileio one keeps the size it was made with
_n_lio_refresh() {
    [ "$(_n_lio_backstore_type "hps-$1")" = fileio ] || return 0
    _n_lr_acl=$(_n_lio_acls "$3" | head -n 1)
    _n_lio_unexport "$3" && _n_lio_export "$1" "$2" "$3" "$_n_lr_acl"
}

_n_lio_exports_of() {
    find "$(_n_lio_cfs)/iscsi" -mindepth 1 -maxdepth 1 -name 'iqn.*' 2>/dev/null |
        while IFS= read -r _n_lx; do
            [ "$(_n_lio_lun_backstore "${_n_lx##*/}")" = "hps-$1" ] && printf '%s\n' "${_n_lx##*/}"
        done
}

# Usage: _n_lio_lun_backstore IQN -> prints the name of the backstore of the target's LUN 1
_n_lio_lun_backstore() {
    _n_lb=$(find "$(_n_lio_cfs)/iscsi/$1/tpgt_1/lun/lun_1" -maxdepth 1 -type l 2>/dev/null |
        head -n 1)
    [ -z "$_n_lb" ] || basename "$(readlink "$_n_lb")"
}

# Usage: _n_lio_acls IQN -> prints the initiators the target admits
_n_lio_acls() {
    find "$(_n_lio_cfs)/iscsi/$1/tpgt_1/acls" -mindepth 1 -maxdepth 1 -type d 2>/dev/null |
        sed 's|.*/||'
}

# Usage: _n_lio_backstore_type NAME -> prints block or fileio (iblock_N or fileio_N in configfs)
_n_lio_backstore_type() {
    case $(find "$(_n_lio_cfs)/core" -mindepth 2 -maxdepth 2 -name "$1" 2>/dev/null) in
        */fileio_*) echo fileio ;;
        *) echo block ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Checking arguments

# Usage: _n_volume_args USAGE COUNT VOLUME [SIZE] -> sets _n_vol_bytes; exit 4 with the usage
# line when the arguments are not COUNT, a volume name and (COUNT 2) a size
_n_volume_args() {
    _n_va_usage=$1 _n_va_count=$2
    shift 2
    if [ $# -eq "$_n_va_count" ] && _n_is_volume "$1"; then
        [ $# -eq 1 ] && return 0
        _n_vol_bytes=$(_n_size_bytes "$2") && return 0
    fi
    _n_usage "$_n_va_usage"
    return 4
}

# Usage: _n_size_bytes SIZE -> prints the bytes of N[K|M|G|T] (powers of 1024, a whole number
# of MiB); exit 1 for anything else
_n_size_bytes() {
    _n_sz=${1%[KkMmGgTt]}
    case $_n_sz in
        '' | 0* | *[!0-9]*) return 1 ;;
    esac
    case $1 in
        *[Kk]) _n_sz_max=12 _n_sz_unit=1024 ;;
        *[Mm]) _n_sz_max=9 _n_sz_unit=1048576 ;;
        *[Gg]) _n_sz_max=9 _n_sz_unit=1073741824 ;;
        *[Tt]) _n_sz_max=6 _n_sz_unit=1099511627776 ;;
        *) _n_sz_max=15 _n_sz_unit=1 ;;
    esac
    [ "${#_n_sz}" -le "$_n_sz_max" ] || return 1
    _n_sz=$((_n_sz * _n_sz_unit))
    [ $((_n_sz % 1048576)) -eq 0 ] || return 1
    printf '%s\n' "$_n_sz"
}

# Usage: _n_is_iqn NAME -> exit 0 for iqn.<yyyy-mm>.<name>[:<more>]: lower-case letters, digits,
# `.`, `-` and `:`, at most 223 bytes (RFC 3720)
_n_is_iqn() {
    case $1 in
        iqn.[0-9][0-9][0-9][0-9]-[0-9][0-9].[a-z0-9]*) ;;
        *) return 1 ;;
    esac
    case $1 in
        *[!a-z0-9.:-]*) return 1 ;;
    esac
    [ "${#1}" -le 223 ]
}
