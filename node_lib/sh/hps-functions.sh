# shellcheck shell=sh
# hps-functions.sh: the node library of hps-api (docs/node.md). POSIX sh, sourced, never executed.
# Runs unchanged under busybox ash, dash and bash with curl, GNU wget or busybox wget.
#
#   . /run/hps/hps-functions.sh && n_remote_host_variable STATE
#
# Exit codes of every n_ function: 0 success; 1 not found (404, or "no" for n_syslog_check);
# 2 transport failure (IPS unreachable after retries, or an IPS error 5xx); 3 refused
# (400/403/409 and other 4xx, message on stderr); 4 bad usage. Values go to stdout with one
# trailing newline, messages to stderr. Do not `set -e` around these calls: codes are the API.
#
# Finding the API, first match wins: $HPS_API; `hps_api=` on the kernel command line; the URL
# of the IPS that served this file (HPS_API_URL_DEFAULT below, filled in by the server); the file
# /etc/hps/api; `http://<default gateway>`. Anything but $HPS_API is cached in /run/hps/api.
#
# Settings (environment, all optional): HPS_API, HPS_MAC (default: the MAC of the default-route
# interface), HPS_SESSION (default: `hps_session=` on the kernel command line),
# HPS_HTTP_CLIENT (curl | wget | busybox; default: curl, else wget, else busybox wget),
# HPS_CONNECT_TIMEOUT (3), HPS_TIMEOUT (10), HPS_RETRIES (3 retries after the first attempt),
# HPS_RETRY_DELAY (1 s, doubled after each retry), HPS_SPOOL (/var/spool/hps/log),
# HPS_SPOOL_MAX (262144 bytes), HPS_LOG_TAG (the `function` of n_remote_log lines; default:
# the calling function under bash, else the script name), HPS_SYSLOG_HOST / HPS_SYSLOG_PORT
# (514) / HPS_SYSLOG_PROTO (udp | tcp),
# HPS_SYSLOG_WAIT (3 s), HPS_IPS_NAME (the name the dns self-test resolves), HPS_QUEUE (the
# command queue, /run/hps/queue; the old name N_QUEUE_FILE is read too), and HPS_NODE_ROOT,
# a directory prefixed to every system path this file reads or writes (tests).

# Filled in by the IPS when it serves this file (cmd=get_remote_functions).
HPS_API_URL_DEFAULT='@HPS_API_URL@'
HPS_NODE_LIB_VERSION='@HPS_NODE_LIB_VERSION@'

# Host types whose installers write to a local disk (cluster-config/host-types.toml).
_n_disk_types=' SCH CCH DRH '
_n_ready=''
_n_api_found=''
_n_flushing=''
_n_q_running=''
_n_newline='
'

# ---------------------------------------------------------------------------------------------
# Public functions

# Usage: n_ips_command CMD [NAME=VALUE ...] -> the answer's body as it is; exit 0/1/2/3/4
n_ips_command() {
    case ${1:-} in
        '' | *[!a-z_]*) _n_usage 'n_ips_command CMD [NAME=VALUE ...]'; return 4 ;;
    esac
    _n_ips_cmd=$1
    shift
    _n_left=$#
    while [ "$_n_left" -gt 0 ]; do
        _n_arg=$1
        shift
        case $_n_arg in
            [A-Za-z_]*=*) set -- "$@" "${_n_arg%%=*}" "${_n_arg#*=}" ;;
            *) _n_usage 'n_ips_command CMD [NAME=VALUE ...]'; return 4 ;;
        esac
        _n_left=$((_n_left - 1))
    done
    _n_init || return
    _n_call "$_n_ips_cmd" "$@"
}

# Usage: n_remote_log MESSAGE... | n_remote_log <LINES -> nothing; exit 0, or 2 (spooled)
# Lines are tagged HPS_LOG_TAG when set, else (under bash) with the name of the function that
# called n_remote_log, else with the calling script's name ($0): POSIX sh, dash and busybox ash
# do not tell a function who called it.
n_remote_log() {
    _n_init || return
    _n_log_tag=''
    if [ -z "${HPS_LOG_TAG:-}" ] && [ -n "${BASH_VERSION:-}" ]; then
        # bash only; inside eval so that other shells never parse the array syntax
        eval '_n_log_tag=${FUNCNAME[1]:-}'
        case $_n_log_tag in main | source | _n_*) _n_log_tag="" ;; esac
    fi
    [ -n "$_n_log_tag" ] || _n_log_tag=$(_n_log_tag)
    _n_offline=''
    if [ $# -gt 0 ]; then
        _n_log_line "$*"
        return
    fi
    _n_log_rc=0
    while IFS= read -r _n_msg; do
        [ -n "$_n_msg" ] || continue
        _n_log_line "$_n_msg" || _n_log_rc=$?
    done
    return "$_n_log_rc"
}

# Usage: n_remote_host_variable NAME [VALUE | --unset] -> get prints the value; exit 0/1/2/3/4
n_remote_host_variable() {
    if [ $# -lt 1 ] || [ $# -gt 2 ] || ! _n_is_key "$1"; then
        _n_usage 'n_remote_host_variable NAME [VALUE | --unset]'
        return 4
    fi
    _n_init || return
    if [ $# -eq 1 ]; then
        _n_call host_variable name "$1"
    elif [ "$2" = --unset ]; then
        _n_call host_variable name "$1" action unset >/dev/null
    else
        _n_call host_variable name "$1" value "$2" >/dev/null
    fi
}

# Usage: n_remote_cluster_variable NAME [VALUE] -> get prints the cluster key's value; exit
# 0/1/2/3/4. Setting (the old call form) is for admins: a node is refused with 3.
n_remote_cluster_variable() {
    if [ $# -lt 1 ] || [ $# -gt 2 ] || ! _n_is_key "$1"; then
        _n_usage 'n_remote_cluster_variable NAME [VALUE]'
        return 4
    fi
    _n_init || return
    if [ $# -eq 1 ]; then
        _n_call cluster_variable name "$1"
    else
        _n_call cluster_variable name "$1" value "$2" >/dev/null
    fi
}

# Usage: n_load_remote_host_config -> sets HPS_<KEY> for every key of this host; exit 0/1/2/3/4
# The `KEY="value"` lines of host_get_config are parsed, never evaluated: the value is unescaped
# by sed and assigned by reference (`eval "HPS_$key=\$value"`, where only the validated name is
# part of the evaluated text), so no value can run a command or expand anything.
# shellcheck disable=SC2120  # arguments are only counted, to refuse them
n_load_remote_host_config() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_load_remote_host_config'
        return 4
    fi
    _n_init || return
    _n_cfg=$(_n_call host_get_config) || return
    _n_cfg=$(printf '%s\n' "$_n_cfg" |
        sed -n 's/^\([A-Z_][A-Z0-9_]*\)="\(.*\)"$/\1=\2/p' | sed 's/\\\(.\)/\1/g')
    while IFS= read -r _n_line; do
        _n_key=${_n_line%%=*}
        case $_n_key in
            '' | *[!A-Z0-9_]* | [0-9]*) continue ;;
        esac
        if _n_is_setting "$_n_key"; then
            printf 'hps-node: host key %s not loaded: HPS_%s is a library setting\n' \
                "$_n_key" "$_n_key" >&2
            continue
        fi
        _n_value=${_n_line#*=}
        eval "HPS_$_n_key=\$_n_value"
    done <<EOF
$_n_cfg
EOF
    return 0
}

# Usage: n_set_state STATE -> nothing; exit 0, 3 when the transition is not allowed
n_set_state() {
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        _n_usage 'n_set_state STATE'
        return 4
    fi
    _n_init || return
    _n_call set_status status "$1" >/dev/null
}

# Usage: n_boot_session -> prints this boot's session id; exit 0, 1 when there is none
n_boot_session() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_boot_session'
        return 4
    fi
    _n_init || return
    if [ -n "$_n_session" ]; then
        printf '%s\n' "$_n_session"
        return 0
    fi
    _n_call host_variable name BOOT_SESSION
}

# Usage: n_syslog_configure -> points syslog at the IPS, then n_syslog_check; exit 0 yes, 1 no
n_syslog_configure() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_syslog_configure'
        return 4
    fi
    _n_init || return
    _n_sl_host=${HPS_SYSLOG_HOST:-$(_n_api_host)}
    _n_sl_port=${HPS_SYSLOG_PORT:-514}
    case $_n_sl_host in
        '' | *[!A-Za-z0-9.:-]*) printf 'hps-node: no usable syslog host (%s)\n' "$_n_sl_host" >&2
            return 2 ;;
    esac
    _n_dropin_dir=${HPS_NODE_ROOT:-}/etc/rsyslog.d
    if command -v rsyslogd >/dev/null 2>&1 && [ -d "$_n_dropin_dir" ]; then
        if ! _n_rsyslog_dropin "$_n_sl_host" "$_n_sl_port" >"$_n_dropin_dir/.90-hps.conf.$$" ||
            ! mv "$_n_dropin_dir/.90-hps.conf.$$" "$_n_dropin_dir/90-hps.conf"; then
            printf 'hps-node: cannot write %s/90-hps.conf\n' "$_n_dropin_dir" >&2
            return 2
        fi
        _n_restart_rsyslog
    elif command -v syslogd >/dev/null 2>&1; then
        _n_restart_busybox_syslogd "$_n_sl_host:$_n_sl_port" || return 2
    else
        printf 'hps-node: no syslog daemon (rsyslogd or busybox syslogd) on this node\n' >&2
        return 1
    fi
    n_syslog_check
}

# Usage: n_syslog_check -> nothing; exit 0 when a line sent through syslog reached the IPS,
# 1 when it did not arrive within HPS_SYSLOG_WAIT seconds, 2 when the API is unreachable
# shellcheck disable=SC2120  # arguments are only counted, to refuse them
n_syslog_check() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_syslog_check'
        return 4
    fi
    _n_init || return
    _n_sl_key="hps-$(_n_mac12)-$(date +%s)-$$-$(_n_random)"
    if ! _n_syslog_send "syslog-check $_n_sl_key"; then
        printf 'hps-node: logger could not send the syslog line\n' >&2
        return 1
    fi
    _n_sl_wait=$(_n_number "${HPS_SYSLOG_WAIT:-}" 3)
    while :; do
        _n_sl_answer=$(_n_call syslog_check key "$_n_sl_key") || return
        [ "$_n_sl_answer" = yes ] && return 0
        [ "$_n_sl_wait" -gt 0 ] || return 1
        _n_sl_wait=$((_n_sl_wait - 1))
        sleep 1
    done
}

# Usage: n_selftest [--report] -> one `name: pass|fail (reason)` line per check; exit 0 when
# all pass, 1 when one failed, or the code of a failed report (2, 3)
n_selftest() {
    case $# in
        0) _n_st_report='' ;;
        1) [ "$1" = --report ] || { _n_usage 'n_selftest [--report]'; return 4; }
            _n_st_report=1 ;;
        *) _n_usage 'n_selftest [--report]'; return 4 ;;
    esac
    _n_init || return
    _n_st_results=''
    _n_st_failed=0
    _n_st_type=$(_n_call host_variable name TYPE 2>/dev/null)
    _n_st_record api "$(_n_check_api)"
    _n_st_record dns "$(_n_check_dns)"
    _n_st_record syslog "$(_n_check_syslog)"
    _n_st_record time "$(_n_check_time)"
    _n_st_record disk "$(_n_check_disk "$_n_st_type")"
    _n_st_record storage "$(_n_check_storage "$_n_st_type")"
    if [ -n "$_n_st_report" ]; then
        _n_call selftest_report results "${_n_st_results#|}" >/dev/null || return
    fi
    return "$_n_st_failed"
}

# Usage: n_iqn VOLUME -> prints iqn.<yyyy-mm>.<cluster-name>:<hostname>.<volume>; exit 0/1/2/3/4
# yyyy-mm is the month the cluster was created (cluster key CREATED), so the name never changes;
# the current month only when the cluster has no CREATED key.
n_iqn() {
    if [ $# -ne 1 ] || ! _n_is_volume "$1"; then
        _n_usage 'n_iqn VOLUME (letters, digits and -)'
        return 4
    fi
    _n_init || return
    _n_iqn_cluster=$(_n_call cluster_variable name NAME) || return
    _n_iqn_host=$(_n_call host_variable name HOSTNAME) || return
    _n_iqn_month=$(_n_call cluster_variable name CREATED 2>/dev/null)
    case $_n_iqn_month in
        [0-9][0-9][0-9][0-9]-[0-9][0-9]*) _n_iqn_month=$(printf '%s' "$_n_iqn_month" | cut -c1-7) ;;
        *) _n_iqn_month=$(date -u +%Y-%m) ;;
    esac
    printf 'iqn.%s.%s:%s.%s\n' "$_n_iqn_month" "$_n_iqn_cluster" "$_n_iqn_host" \
        "$(printf '%s' "$1" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz')"
}

# Usage: n_storage_network INDEX -> prints `vlan ip netmask gateway mtu`; exit 0/1/2/3/4
n_storage_network() {
    case ${1:-}:$# in
        [0-9]:1 | [0-9][0-9]:1) ;;
        *) _n_usage 'n_storage_network INDEX'; return 4 ;;
    esac
    _n_init || return
    _n_net=$(_n_call host_allocate_networks index "$1") || return
    printf '%s\n' "$_n_net" | tr ':' ' '
}

# Usage: n_storage_provision_request VOLUME SIZE -> records ISCSI_REQ_<VOLUME>=<SIZE> and
# prints the IQN the volume will have; exit 0/1/2/3/4
n_storage_provision_request() {
    if [ $# -ne 2 ] || ! _n_is_volume "$1"; then
        _n_usage 'n_storage_provision_request VOLUME SIZE (e.g. root0 40G)'
        return 4
    fi
    case ${2%[KMGTkmgt]} in
        '' | 0* | *[!0-9]*) _n_usage 'n_storage_provision_request VOLUME SIZE (e.g. root0 40G)'; return 4 ;;
    esac
    _n_init || return
    _n_req_iqn=$(n_iqn "$1") || return
    _n_req_key=ISCSI_REQ_$(printf '%s' "$1" |
        tr 'abcdefghijklmnopqrstuvwxyz-' 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_')
    _n_req_size=$(printf '%s' "$2" | tr 'kmgt' 'KMGT')
    _n_call host_variable name "$_n_req_key" value "$_n_req_size" >/dev/null || return
    printf '%s\n' "$_n_req_iqn"
}

# ---------------------------------------------------------------------------------------------
# What the old node scripts call (kickstart %pre/%post, the TCH overlay's local.d start script,
# install-hps-libs.sh): the IPS's address, URL encoding, a node summary and the command queue

# Usage: n_get_provisioning_node -> prints the IPS as HOST[:PORT], so that
# `http://$(n_get_provisioning_node)/...` reaches the API; exit 0, 2 when no IPS is found.
# The IPS is the API found as every call finds it: the default gateway when nothing else says.
# shellcheck disable=SC2120  # arguments are only counted, to refuse them
n_get_provisioning_node() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_get_provisioning_node'
        return 4
    fi
    _n_gp_url=$(_n_api) || return 2
    _n_gp_url=${_n_gp_url#*://}
    printf '%s\n' "${_n_gp_url%%/*}"
}

# Usage: n_url_encode TEXT -> TEXT with every byte outside A-Za-z0-9._~- as %XX; exit 0/4
n_url_encode() {
    if [ $# -ne 1 ]; then
        _n_usage 'n_url_encode TEXT'
        return 4
    fi
    _n_urlencode "$1"
    printf '\n'
}

# Usage: n_node_information -> prints a summary of this node, one `name: value` line each, and
# sets HPS_<KEY> as n_load_remote_host_config does; exit 0, or that function's code (1/2/3)
n_node_information() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_node_information'
        return 4
    fi
    n_load_remote_host_config || return
    _n_ni_ips=$(n_get_provisioning_node 2>/dev/null) || _n_ni_ips=''
    _n_ni_domain=$(_n_call cluster_variable name DNS_DOMAIN 2>/dev/null) || _n_ni_domain=''
    _n_ni_up=''
    _n_ni_secs=$(_n_first_line "${HPS_NODE_ROOT:-}/proc/uptime")
    _n_ni_secs=${_n_ni_secs%%.*}
    case ${_n_ni_secs:-x} in
        *[!0-9]*) ;;
        *) _n_ni_up=$(printf '%dd %dh %dm' "$((_n_ni_secs / 86400))" \
               "$((_n_ni_secs % 86400 / 3600))" "$((_n_ni_secs % 3600 / 60))") ;;
    esac
    _n_ni_line hostname "${HPS_HOSTNAME:-}"
    _n_ni_line type "${HPS_TYPE:-}"
    _n_ni_line profile "${HPS_PROFILE:-${HPS_HOST_PROFILE:-}}"
    _n_ni_line state "${HPS_STATE:-}"
    _n_ni_line ip "${HPS_IP:-}${HPS_NETMASK:+/$HPS_NETMASK}"
    _n_ni_line mac "${HPS_MAC:-${_n_mac_found:-}}"
    _n_ni_line ips "$_n_ni_ips"
    _n_ni_line domain "$_n_ni_domain"
    _n_ni_line uptime "$_n_ni_up"
    _n_ni_line updated "${HPS_UPDATED:-}"
}

# Usage: n_queue_add COMMAND [ARG...] -> queues one command for n_queue_run; exit 0, 2 when the
# queue cannot be written, 4 bad usage. One argument is a command line, run as shell text, as
# the old queue did (`n_queue_add "rc-service modloop status || rc-service modloop start"`);
# with more, each argument stays one word (`n_queue_add n_install_packages 'a b'` passes one).
n_queue_add() {
    case ${1:-} in
        *[![:space:]]*) ;;
        *) _n_usage 'n_queue_add COMMAND [ARG...]'; return 4 ;;
    esac
    for _n_qa_arg in "$@"; do
        case $_n_qa_arg in
            *"$_n_newline"*) printf 'hps-node: n_queue_add: a queued command is one line\n' >&2
                return 4 ;;
        esac
    done
    if [ $# -eq 1 ]; then
        _n_qa_line=$1
    else
        _n_qa_line=$(_n_shell_words "$@")
    fi
    _n_qa_file=$(_n_queue_path)
    if ! { mkdir -p "${_n_qa_file%/*}" &&
        (umask 077 && printf '%s\n' "$_n_qa_line" >>"$_n_qa_file"); } 2>/dev/null; then
        printf 'hps-node: cannot write the queue %s\n' "$_n_qa_file" >&2
        return 2
    fi
}

# Usage: n_queue_list -> prints the queued commands, one line each, in the order they will run;
# exit 0 (nothing printed when the queue is empty), 2 when the queue cannot be read
n_queue_list() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_queue_list'
        return 4
    fi
    _n_ql_file=$(_n_queue_path)
    [ -e "$_n_ql_file" ] || return 0
    if ! cat "$_n_ql_file" 2>/dev/null; then
        printf 'hps-node: cannot read the queue %s\n' "$_n_ql_file" >&2
        return 2
    fi
}

# Usage: n_queue_clear -> empties the queue; exit 0, 2 when it cannot be removed
n_queue_clear() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_queue_clear'
        return 4
    fi
    _n_qc_file=$(_n_queue_path)
    [ -e "$_n_qc_file" ] || return 0
    if ! rm -f "$_n_qc_file" 2>/dev/null || [ -e "$_n_qc_file" ]; then
        printf 'hps-node: cannot remove the queue %s\n' "$_n_qc_file" >&2
        return 2
    fi
}

# Usage: n_queue_run -> runs the queued commands in order, each in a subshell (an `exit` in one
# ends only that one), logging its start and its success or failure with n_remote_log; carries
# on past failures and empties the queue. Exit: the number of commands that failed (0: all
# succeeded; at most 255), 1 when the queue could not be taken, 4 bad usage. Commands queued
# while the queue runs are kept for the next run.
# shellcheck disable=SC2120  # arguments are only counted, to refuse them
n_queue_run() {
    if [ $# -ne 0 ]; then
        _n_usage 'n_queue_run'
        return 4
    fi
    if [ -n "$_n_q_running" ]; then
        printf 'hps-node: n_queue_run: the queue is already running\n' >&2
        return 1
    fi
    _n_q_file=$(_n_queue_path)
    [ -e "$_n_q_file" ] || return 0
    # the rename claims the queue: two runs never run a command twice
    _n_q_claim=$_n_q_file.run.$$
    if ! mv -f "$_n_q_file" "$_n_q_claim" 2>/dev/null; then
        printf 'hps-node: cannot take the queue %s\n' "$_n_q_file" >&2
        return 1
    fi
    _n_q_total=$(grep -c . "$_n_q_claim")
    _n_q_number=0
    _n_q_failed=0
    _n_q_running=1
    while IFS= read -r _n_q_entry <&3; do
        [ -n "$_n_q_entry" ] || continue
        _n_q_number=$((_n_q_number + 1))
        _n_q_at="[$_n_q_number/$_n_q_total]"
        n_remote_log "queue $_n_q_at start: $_n_q_entry"
        _n_q_start=$(date +%s)
        (eval "$_n_q_entry") 3<&-
        _n_q_rc=$?
        _n_q_took="$(($(date +%s) - _n_q_start))s"
        if [ "$_n_q_rc" -eq 0 ]; then
            n_remote_log "queue $_n_q_at ok after $_n_q_took: $_n_q_entry"
        else
            _n_q_failed=$((_n_q_failed + 1))
            n_remote_log "queue $_n_q_at failed (exit $_n_q_rc) after $_n_q_took: $_n_q_entry"
            printf 'hps-node: queue %s failed (exit %s): %s\n' "$_n_q_at" "$_n_q_rc" \
                "$_n_q_entry" >&2
        fi
    done 3<"$_n_q_claim"
    n_remote_log "queue done: $((_n_q_number - _n_q_failed)) ok, $_n_q_failed failed"
    rm -f "$_n_q_claim"
    _n_q_running=''
    [ "$_n_q_failed" -le 255 ] || _n_q_failed=255
    return "$_n_q_failed"
}

# ---------------------------------------------------------------------------------------------
# Calling the API

# Usage: _n_init -> sets the version, user agent, HTTP client, MAC and session once; exit 0 or 2
_n_init() {
    [ -z "$_n_ready" ] || return 0
    case $HPS_NODE_LIB_VERSION in
        '' | *@*) _n_ua=hps-node/unserved ;;
        *) _n_ua=hps-node/$HPS_NODE_LIB_VERSION ;;
    esac
    _n_detect_http || return 2
    _n_mac_found=$(_n_detect_mac)
    _n_session=${HPS_SESSION:-$(_n_cmdline_value hps_session)}
    case $_n_session in
        *[!0-9A-Za-z_-]*) _n_session='' ;;
    esac
    _n_ready=1
}

# Usage: _n_call CMD [NAME VALUE]... -> the 2xx body on stdout; errors on stderr; exit 0/1/2/3
_n_call() {
    _n_init || return
    _n_c_cmd=$1
    shift
    _n_c_mac=${HPS_MAC:-$_n_mac_found}
    _n_c_form=${_n_c_mac:+mac=$(_n_urlencode "$_n_c_mac")}
    [ -z "$_n_session" ] || _n_c_form="$_n_c_form&session=$_n_session"
    while [ $# -ge 2 ]; do
        _n_c_form="$_n_c_form&$(_n_urlencode "$1")=$(_n_urlencode "$2")"
        shift 2
    done
    _n_c_tmp=$(mktemp -d "${TMPDIR:-/tmp}/hps-node.XXXXXX") || {
        printf 'hps-node: cannot create a temporary directory\n' >&2
        return 2
    }
    printf '%s' "${_n_c_form#&}" >"$_n_c_tmp/form"
    if _n_request "$_n_c_cmd" "$_n_c_tmp/form" "$_n_c_tmp/body"; then
        _n_outcome "$_n_c_cmd" "$_n_c_tmp/body"
        _n_c_rc=$?
    else
        _n_c_rc=2
    fi
    rm -rf "$_n_c_tmp"
    if [ "$_n_c_rc" -ne 2 ]; then
        # the flush makes requests of its own: keep this call's answer (the api check reads
        # its Date header)
        _n_c_answer="$_n_status $_n_date"
        _n_c_why=$_n_why
        _n_spool_flush
        _n_status=${_n_c_answer%% *} _n_date=${_n_c_answer#* } _n_why=$_n_c_why
    fi
    return "$_n_c_rc"
}

# Usage: _n_request CMD FORMFILE BODYFILE -> sets _n_status (000: no answer) after retrying
# transient failures; exit 2 when no API URL could be found
_n_request() {
    _n_r_api=$(_n_api) || return 2
    _n_r_url="$_n_r_api/cgi-bin/boot_manager.sh?cmd=$1"
    _n_r_left=$(_n_number "${HPS_RETRIES:-}" 3)
    _n_r_delay=$(_n_number "${HPS_RETRY_DELAY:-}" 1)
    while :; do
        _n_http_once "$_n_r_url" "$2" "$3"
        case $_n_status in
            000 | 503) ;;
            *) return 0 ;;
        esac
        [ "$_n_r_left" -gt 0 ] || return 0
        _n_r_left=$((_n_r_left - 1))
        sleep "$_n_r_delay"
        _n_r_delay=$((_n_r_delay * 2))
    done
}

# Usage: _n_http_once URL FORMFILE BODYFILE -> sets _n_status, _n_date (Date header), _n_why
_n_http_once() {
    : >"$3"
    _n_h_meta=$(_n_http_tool "$1" "$2" "$3" </dev/null 2>&1)
    _n_h_rc=$?
    _n_h_parsed=$(printf '%s\n' "$_n_h_meta" | awk '
        { sub(/\r$/, "") }
        $1 ~ /^HTTP\/[0-9.]+$/ && $2 ~ /^[0-9][0-9][0-9]$/ { status = $2; text = $0 }
        tolower($1) == "date:" { date = $0; sub(/^[ \t]*[^:]*:[ \t]*/, "", date) }
        NF { last = $0 }
        END { why = (status == "" ? last : text); sub(/^[ \t]*/, "", why)
              printf "%s\n%s\n%s\n", (status == "" ? "000" : status), date, why }')
    { IFS= read -r _n_status; IFS= read -r _n_date; IFS= read -r _n_why; } <<EOF
$_n_h_parsed
EOF
    case $_n_status:$_n_h_rc in
        2??:0 | [345]??:*) ;;
        2??:*) _n_status=000 _n_why="$_n_http exit $_n_h_rc during the answer" ;;
    esac
    [ -n "$_n_why" ] || _n_why="$_n_http exit $_n_h_rc"
}

# Usage: _n_http_tool URL FORMFILE BODYFILE -> body to BODYFILE; status lines, headers and
# errors on stdout/stderr. Proxies are off: the IPS is on the provisioning network.
_n_http_tool() {
    case $_n_http in
        curl)
            curl -sS -D - -o "$3" --noproxy '*' --data-binary "@$2" -A "$_n_ua" \
                -H 'Accept: text/plain' --connect-timeout "$_n_ct" --max-time "$_n_tt" "$1" ;;
        wget)
            _n_timeout wget -S -q --content-on-error --no-proxy --tries=1 --max-redirect=0 \
                --connect-timeout="$_n_ct" --read-timeout="$_n_tt" -U "$_n_ua" \
                --header='Accept: text/plain' --post-file="$2" -O "$3" "$1" ;;
        wget-applet)
            _n_busybox_wget wget "$@" ;;
        busybox)
            _n_busybox_wget busybox wget "$@" ;;
    esac
}

# Usage: _n_busybox_wget CMD... URL FORMFILE BODYFILE -> busybox wget; its body is lost on
# errors (the status line from -S is all there is); -T only where the build has it
_n_busybox_wget() {
    if [ "$1" = busybox ]; then
        shift 2
        _n_timeout busybox wget -S -q -Y off ${_n_bb_t:+-T} ${_n_bb_t:+"$_n_tt"} -U "$_n_ua" \
            --header 'Accept: text/plain' --post-file "$2" -O "$3" "$1"
    else
        shift
        _n_timeout wget -S -q -Y off ${_n_bb_t:+-T} ${_n_bb_t:+"$_n_tt"} -U "$_n_ua" \
            --header 'Accept: text/plain' --post-file "$2" -O "$3" "$1"
    fi
}

# Usage: _n_timeout PROGRAM ARGS... -> runs PROGRAM, killed after HPS_TIMEOUT when `timeout` exists
_n_timeout() {
    if [ -n "$_n_has_timeout" ]; then
        timeout "$_n_tt" "$@"
    else
        "$@"
    fi
}

# Usage: _n_detect_http -> sets _n_http (curl | wget | wget-applet | busybox); exit 1 if none
_n_detect_http() {
    _n_ct=$(_n_number "${HPS_CONNECT_TIMEOUT:-}" 3)
    _n_tt=$(_n_number "${HPS_TIMEOUT:-}" 10)
    _n_has_timeout=''
    ! command -v timeout >/dev/null 2>&1 || _n_has_timeout=1
    _n_http=${HPS_HTTP_CLIENT:-}
    if [ -z "$_n_http" ]; then
        if command -v curl >/dev/null 2>&1; then
            _n_http=curl
        elif command -v wget >/dev/null 2>&1; then
            _n_http=wget
        elif command -v busybox >/dev/null 2>&1; then
            _n_http=busybox
        fi
    fi
    if [ "$_n_http" = wget ]; then
        case $(wget --version 2>&1) in
            *'GNU Wget'*) ;;
            *) _n_http=wget-applet ;;
        esac
    fi
    case $_n_http in
        curl | wget) return 0 ;;
        wget-applet) _n_bb_help=$(wget --help 2>&1) ;;
        busybox) _n_bb_help=$(busybox wget --help 2>&1) ;;
        *) printf 'hps-node: no HTTP client (curl, wget or busybox wget) found\n' >&2
            return 1 ;;
    esac
    # Debian's busybox wget is built without -T and crashes on it: use it only when listed.
    _n_bb_t=''
    case $_n_bb_help in
        *'-T SEC'*) _n_bb_t=1 ;;
    esac
    return 0
}

# Usage: _n_outcome CMD BODYFILE -> prints the body (2xx) or a message; exit 0/1/2/3
_n_outcome() {
    case $_n_status in
        2??) cat "$2"; return 0 ;;
        404) return 1 ;;
    esac
    _n_o_text=$(head -c 300 "$2" 2>/dev/null | head -n 1)
    [ -n "$_n_o_text" ] || _n_o_text=$_n_why
    case $_n_status in
        4??) printf 'hps-node: %s refused: %s\n' "$1" "$_n_o_text" >&2; return 3 ;;
        000) printf 'hps-node: %s: IPS %s unreachable: %s\n' "$1" "$_n_r_api" "$_n_o_text" >&2 ;;
        *) printf 'hps-node: %s: IPS error %s: %s\n' "$1" "$_n_status" "$_n_o_text" >&2 ;;
    esac
    return 2
}

# ---------------------------------------------------------------------------------------------
# Finding the API, this node's MAC and the boot session

# Usage: _n_api -> prints the API base URL (no trailing /); exit 2 when none is found
_n_api() {
    if [ -n "${HPS_API:-}" ]; then
        printf '%s\n' "${HPS_API%/}"
        return 0
    fi
    if [ -z "$_n_api_found" ]; then
        _n_api_found=$(_n_discover_api)
        if [ -z "$_n_api_found" ]; then
            printf 'hps-node: cannot find the IPS (set HPS_API or hps_api= on the kernel command line)\n' >&2
            return 2
        fi
    fi
    printf '%s\n' "$_n_api_found"
}

# Usage: _n_discover_api -> prints the first URL found (and caches it in /run/hps/api)
_n_discover_api() {
    _n_d_cache=${HPS_NODE_ROOT:-}/run/hps/api
    _n_d_url=$(_n_first_line "$_n_d_cache")
    if _n_is_url "$_n_d_url"; then
        printf '%s\n' "${_n_d_url%/}"
        return 0
    fi
    _n_d_url=$(_n_cmdline_value hps_api)
    _n_is_url "$_n_d_url" || _n_d_url=$HPS_API_URL_DEFAULT
    _n_is_url "$_n_d_url" || _n_d_url=$(_n_first_line "${HPS_NODE_ROOT:-}/etc/hps/api")
    _n_is_url "$_n_d_url" || _n_d_url=$(_n_gateway_url)
    _n_is_url "$_n_d_url" || return 0
    _n_d_url=${_n_d_url%/}
    { mkdir -p "${_n_d_cache%/*}" && printf '%s\n' "$_n_d_url" >"$_n_d_cache.$$" &&
        mv "$_n_d_cache.$$" "$_n_d_cache"; } 2>/dev/null
    printf '%s\n' "$_n_d_url"
}

# Usage: _n_is_url TEXT -> exit 0 for http(s)://HOST... without quotes or spaces
_n_is_url() {
    case $1 in
        http://?* | https://?*) ;;
        *) return 1 ;;
    esac
    case $(printf '%s' "$1" | tr -d '[]') in
        *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:/.%_~-]*) return 1 ;;
    esac
    return 0
}

# Usage: _n_api_host -> prints the host part of the API URL (brackets kept for IPv6)
_n_api_host() {
    _n_ah=$(_n_api 2>/dev/null) || return 0
    _n_ah=${_n_ah#*://}
    _n_ah=${_n_ah%%/*}
    case $_n_ah in
        \[*) printf '%s]\n' "${_n_ah%%]*}" ;;
        *) printf '%s\n' "${_n_ah%:*}" ;;
    esac
}

# Usage: _n_default_route -> prints `<interface> <gateway hex>` from /proc/net/route
_n_default_route() {
    awk 'NR > 1 && $2 == "00000000" && $8 == "00000000" { print $1, $3; exit }' \
        "${HPS_NODE_ROOT:-}/proc/net/route" 2>/dev/null
}

# Usage: _n_gateway_url -> prints http://<default gateway>, from /proc/net/route or `ip route`
_n_gateway_url() {
    _n_gw=$(_n_default_route)
    _n_gw=${_n_gw#* }
    case $_n_gw in
        [0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f])
            # little-endian hex: 0100A8C0 is 192.168.0.1
            printf 'http://%d.%d.%d.%d\n' "$((0x${_n_gw#??????}))" \
                "$((0x$(printf '%s' "$_n_gw" | cut -c5-6)))" \
                "$((0x$(printf '%s' "$_n_gw" | cut -c3-4)))" "$((0x${_n_gw%??????}))"
            return 0 ;;
    esac
    [ -z "${HPS_NODE_ROOT:-}" ] || return 0
    _n_gw=$(ip route show default 2>/dev/null |
        awk '{ for (i = 1; i < NF; i++) if ($i == "via") { print $(i + 1); exit } }')
    [ -z "$_n_gw" ] || printf 'http://%s\n' "$_n_gw"
}

# Usage: _n_detect_mac -> prints the MAC of the default-route interface (nothing if unknown)
_n_detect_mac() {
    _n_if=$(_n_default_route)
    _n_if=${_n_if%% *}
    if [ -z "$_n_if" ] && [ -z "${HPS_NODE_ROOT:-}" ]; then
        _n_if=$(ip route show default 2>/dev/null |
            awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
    fi
    case $_n_if in
        '' | */* | .*) return 0 ;;
    esac
    _n_first_line "${HPS_NODE_ROOT:-}/sys/class/net/$_n_if/address"
}

# Usage: _n_mac12 -> prints this node's MAC as 12 hex digits (or `unknown`)
_n_mac12() {
    _n_m=$(printf '%s' "${HPS_MAC:-$_n_mac_found}" | tr -d ':.-' | tr 'ABCDEF' 'abcdef')
    printf '%s\n' "${_n_m:-unknown}"
}

# Usage: _n_cmdline_value NAME -> prints the value of NAME= on the kernel command line
_n_cmdline_value() {
    awk -v key="$1=" '{ for (i = 1; i <= NF; i++) if (index($i, key) == 1)
                            value = substr($i, length(key) + 1) }
                      END { if (value != "") print value }' \
        "${HPS_NODE_ROOT:-}/proc/cmdline" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# The offline log spool

# Usage: _n_log_line MESSAGE -> log_message; spooled when the IPS is unreachable; exit 0/2/3
_n_log_line() {
    if [ -z "$_n_offline" ]; then
        _n_call log_message function "$_n_log_tag" message "$1" >/dev/null
        _n_ll_rc=$?
        [ "$_n_ll_rc" -eq 2 ] || return "$_n_ll_rc"
        _n_offline=1
        printf 'hps-node: log lines kept in %s until the IPS answers\n' "$(_n_spool_path)" >&2
    fi
    _n_spool_add "$_n_log_tag" "$1" ||
        printf 'hps-node: cannot write %s: log line lost\n' "$(_n_spool_path)" >&2
    return 2
}

# Usage: _n_spool_path -> prints the spool file's path
_n_spool_path() {
    printf '%s\n' "${HPS_SPOOL:-${HPS_NODE_ROOT:-}/var/spool/hps/log}"
}

# Usage: _n_spool_add TAG MESSAGE -> appends one log_message form to the spool, oldest lines
# dropped beyond HPS_SPOOL_MAX bytes
_n_spool_add() {
    _n_sp=$(_n_spool_path)
    mkdir -p "${_n_sp%/*}" 2>/dev/null
    _n_sp_line="function=$(_n_urlencode "$1")&message=$(_n_urlencode \
        "$2 [spooled $(date -u +%Y-%m-%dT%H:%M:%SZ)]")${_n_session:+&session=$_n_session}"
    printf '%s\n' "$_n_sp_line" >>"$_n_sp" 2>/dev/null || return 1
    _n_sp_max=$(_n_number "${HPS_SPOOL_MAX:-}" 262144)
    _n_sp_size=$(wc -c <"$_n_sp" | tr -d ' ')
    if [ "$_n_sp_size" -gt "$_n_sp_max" ] && _n_sp_tmp=$(mktemp "$_n_sp.XXXXXX"); then
        # the cut may fall inside a line: the first line kept is always dropped
        tail -c "$_n_sp_max" "$_n_sp" | sed 1d >"$_n_sp_tmp" && mv -f "$_n_sp_tmp" "$_n_sp"
        rm -f "$_n_sp_tmp"
    fi
    return 0
}

# Usage: _n_spool_flush -> sends spooled lines oldest first (one attempt each); what could not
# be sent goes back in front of the spool
_n_spool_flush() {
    [ -z "$_n_flushing" ] || return 0
    _n_fl=$(_n_spool_path)
    [ -s "$_n_fl" ] || return 0
    # The rename claims the lines: two flushing processes never send a line twice.
    _n_fl_claim=$(mktemp "$_n_fl.flush.XXXXXX" 2>/dev/null) || return 0
    if ! mv -f "$_n_fl" "$_n_fl_claim" 2>/dev/null; then
        rm -f "$_n_fl_claim"
        return 0
    fi
    _n_flushing=1
    _n_fl_tmp=$(mktemp -d "${TMPDIR:-/tmp}/hps-node.XXXXXX") || _n_fl_tmp=''
    _n_fl_sent=0
    _n_fl_url="$(_n_api)/cgi-bin/boot_manager.sh?cmd=log_message"
    _n_fl_mac=${HPS_MAC:-$_n_mac_found}
    while [ -n "$_n_fl_tmp" ] && IFS= read -r _n_fl_line; do
        printf '%s' "${_n_fl_mac:+mac=$(_n_urlencode "$_n_fl_mac")&}$_n_fl_line" \
            >"$_n_fl_tmp/form"
        _n_http_once "$_n_fl_url" "$_n_fl_tmp/form" "$_n_fl_tmp/body"
        case $_n_status in
            000 | 5??) break ;;
        esac
        _n_fl_sent=$((_n_fl_sent + 1))
    done <"$_n_fl_claim"
    if [ "$(wc -l <"$_n_fl_claim" | tr -d ' ')" -gt "$_n_fl_sent" ]; then
        { tail -n "+$((_n_fl_sent + 1))" "$_n_fl_claim"; cat "$_n_fl" 2>/dev/null; } \
            >"$_n_fl_claim.left" && mv -f "$_n_fl_claim.left" "$_n_fl"
    fi
    rm -f "$_n_fl_claim"
    [ -z "$_n_fl_tmp" ] || rm -rf "$_n_fl_tmp"
    _n_flushing=''
}

# ---------------------------------------------------------------------------------------------
# Syslog

# Usage: _n_syslog_send MESSAGE -> logger, to HPS_SYSLOG_HOST directly when set, else through
# the local syslog daemon (which n_syslog_configure forwards to the IPS)
_n_syslog_send() {
    if [ -n "${HPS_SYSLOG_HOST:-}" ]; then
        if [ "${HPS_SYSLOG_PROTO:-udp}" = tcp ]; then
            logger -T -n "$HPS_SYSLOG_HOST" -P "${HPS_SYSLOG_PORT:-514}" -t hps-node -- "$1"
        else
            logger -d -n "$HPS_SYSLOG_HOST" -P "${HPS_SYSLOG_PORT:-514}" -t hps-node -- "$1"
        fi
    elif [ -S /dev/log ]; then
        logger -t hps-node -- "$1"
    else
        return 1
    fi
}

# Usage: _n_rsyslog_dropin HOST PORT -> prints an rsyslog.d file forwarding everything to the IPS
# (TCP with a memory queue: an IPS outage delays lines, never blocks local logging)
_n_rsyslog_dropin() {
    printf '# Written by n_syslog_configure (hps-node): every message also goes to the IPS.\n'
    printf '*.* action(type="omfwd" target="%s" port="%s" protocol="tcp"\n' "$1" "$2"
    printf '       queue.type="LinkedList" queue.size="10000" action.resumeRetryCount="-1")\n'
}

# Usage: _n_restart_rsyslog -> restarts rsyslog through whichever service manager exists
_n_restart_rsyslog() {
    if command -v systemctl >/dev/null 2>&1 && systemctl restart rsyslog 2>/dev/null; then
        return 0
    elif command -v rc-service >/dev/null 2>&1 && rc-service rsyslog restart >/dev/null 2>&1; then
        return 0
    elif command -v service >/dev/null 2>&1 && service rsyslog restart >/dev/null 2>&1; then
        return 0
    fi
    printf 'hps-node: could not restart rsyslog\n' >&2
    return 1
}

# Usage: _n_restart_busybox_syslogd HOST:PORT -> (re)starts busybox syslogd forwarding there
_n_restart_busybox_syslogd() {
    case $(syslogd --help 2>&1) in
        *'-R '*) ;;
        *) printf 'hps-node: this syslogd cannot forward (-R)\n' >&2; return 1 ;;
    esac
    _n_pid=$(_n_first_line "${HPS_NODE_ROOT:-}/var/run/syslogd.pid")
    case $_n_pid in
        '' | *[!0-9]*) ;;
        *) kill "$_n_pid" 2>/dev/null && sleep 1 ;;
    esac
    syslogd -R "$1" -L || return
    # syslogd makes /dev/log after it forked: a line logged before that would be lost
    _n_sl_tries=0
    while [ ! -S /dev/log ] && [ "$_n_sl_tries" -lt 20 ]; do
        sleep 0.1 2>/dev/null || sleep 1
        _n_sl_tries=$((_n_sl_tries + 1))
    done
}

# ---------------------------------------------------------------------------------------------
# Self-tests: each _n_check_ prints nothing on pass, the reason on failure

# Usage: _n_st_record NAME REASON -> prints the line and adds it to the report
_n_st_record() {
    if [ -z "$2" ]; then
        printf '%s: pass\n' "$1"
        _n_st_results="$_n_st_results|$1=pass"
    else
        printf '%s: fail (%s)\n' "$1" "$2"
        _n_st_results="$_n_st_results|$1=fail:$(printf '%s' "$2" | tr '|' '/')"
        _n_st_failed=1
    fi
}

# (busybox wget shows no headers of an error answer: ask for a key every cluster has)
_n_check_api() {
    _n_call cluster_variable name NAME >/dev/null 2>&1
    case $? in
        0 | 1) ;;
        *) printf 'IPS unreachable\n'; return 0 ;;
    esac
    _n_ips_time=$(_n_http_date_epoch "$_n_date")
    if [ -z "$_n_ips_time" ]; then
        printf 'no Date header in the answer\n'
        return 0
    fi
    _n_skew=$(($(date -u +%s) - _n_ips_time))
    [ "$_n_skew" -ge 0 ] || _n_skew=$((-_n_skew))
    [ "$_n_skew" -le 5 ] || printf 'clock off by %s s\n' "$_n_skew"
}

_n_check_dns() {
    grep -q '^[[:space:]]*nameserver[[:space:]]' "${HPS_NODE_ROOT:-}/etc/resolv.conf" \
        2>/dev/null || [ -n "${HPS_IPS_NAME:-}" ] || return 0
    _n_dns_name=${HPS_IPS_NAME:-$(_n_api_host)}
    case $_n_dns_name in
        '' | *[!0-9.]*) ;;
        *) _n_dns_name=ips ;;
    esac
    case $_n_dns_name in
        \[*) _n_dns_name=ips ;;
    esac
    if command -v getent >/dev/null 2>&1; then
        getent hosts "$_n_dns_name" >/dev/null 2>&1 && return 0
    elif nslookup "$_n_dns_name" >/dev/null 2>&1; then
        return 0
    fi
    printf '%s does not resolve\n' "$_n_dns_name"
}

_n_check_syslog() {
    n_syslog_check >/dev/null 2>&1
    case $? in
        0) ;;
        1) printf 'syslog line did not arrive\n' ;;
        2) printf 'IPS unreachable\n' ;;
        *) printf 'syslog check failed\n' ;;
    esac
}

_n_check_time() {
    _n_year=$(date -u +%Y)
    [ "$_n_year" -ge 2020 ] 2>/dev/null || printf 'clock not set (%s)\n' "$_n_year"
}

_n_check_disk() {
    case $_n_disk_types in
        *" $1 "*) ;;
        *) return 0 ;;
    esac
    # shellcheck disable=SC2010  # a glob does not expand under `set -f` (the rescue init)
    ls "${HPS_NODE_ROOT:-}/sys/block" 2>/dev/null |
        grep -qvE '^(loop|ram|zram|sr|fd|nbd|dm-)' && return 0
    printf 'no disk for TYPE %s\n' "$1"
}

_n_check_storage() {
    [ "$1" = SCH ] || return 0
    # a pool as hps-storage.sh makes one: ZFS, else LVM, else a sparse file (truncate)
    if ! command -v zpool >/dev/null 2>&1 && ! command -v lvcreate >/dev/null 2>&1 &&
        ! command -v truncate >/dev/null 2>&1; then
        printf 'no pool tool (zpool, lvcreate or truncate)\n'
    elif ! command -v targetcli >/dev/null 2>&1 && ! command -v tgtadm >/dev/null 2>&1; then
        printf 'iSCSI target tools missing (targetcli or tgtadm)\n'
    fi
}

# Usage: _n_http_date_epoch 'Sat, 21 Nov 2026 19:40:08 GMT' -> prints seconds since 1970
_n_http_date_epoch() {
    IFS=' :' read -r _ _n_dd _n_mon _n_yy _n_hh _n_mi _n_ss _ <<EOF
$1
EOF
    case $_n_mon in
        Jan) _n_mo=1 ;; Feb) _n_mo=2 ;; Mar) _n_mo=3 ;; Apr) _n_mo=4 ;; May) _n_mo=5 ;;
        Jun) _n_mo=6 ;; Jul) _n_mo=7 ;; Aug) _n_mo=8 ;; Sep) _n_mo=9 ;; Oct) _n_mo=10 ;;
        Nov) _n_mo=11 ;; Dec) _n_mo=12 ;; *) return 0 ;;
    esac
    case $_n_dd$_n_hh$_n_mi$_n_ss:$_n_yy in
        [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]:[0-9][0-9][0-9][0-9]) ;;
        *) return 0 ;;
    esac
    # days from civil (H. Hinnant); 1$x - 100 reads two digits without octal surprises
    _n_y=$((_n_yy - (_n_mo <= 2)))
    _n_era=$((_n_y / 400))
    _n_yoe=$((_n_y - _n_era * 400))
    _n_doy=$(((153 * (_n_mo > 2 ? _n_mo - 3 : _n_mo + 9) + 2) / 5 + 1$_n_dd - 101))
    _n_doe=$((_n_yoe * 365 + _n_yoe / 4 - _n_yoe / 100 + _n_doy))
    _n_days=$((_n_era * 146097 + _n_doe - 719468))
    printf '%s\n' "$((_n_days * 86400 + (1$_n_hh - 100) * 3600 + (1$_n_mi - 100) * 60 + 1$_n_ss - 100))"
}

# ---------------------------------------------------------------------------------------------
# Small helpers

# Usage: _n_urlencode TEXT -> TEXT with every byte outside A-Za-z0-9._~- as %XX (UTF-8 safe)
_n_urlencode() {
    case $1 in
        *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-]*) ;;
        *) printf '%s' "$1"; return 0 ;;
    esac
    printf '%s' "$1" | od -An -v -tx1 | awk '
        BEGIN {
            for (n = 0; n < 256; n++) code[sprintf("%02x", n)] = sprintf("%%%02X", n)
            for (n = 48; n <= 57; n++) code[sprintf("%02x", n)] = sprintf("%c", n)
            for (n = 65; n <= 90; n++) code[sprintf("%02x", n)] = sprintf("%c", n)
            for (n = 97; n <= 122; n++) code[sprintf("%02x", n)] = sprintf("%c", n)
            code["2d"] = "-"; code["2e"] = "."; code["5f"] = "_"; code["7e"] = "~"
        }
        { for (i = 1; i <= NF; i++) printf "%s", code[$i] }'
}

# Usage: _n_is_setting KEY -> exit 0 when HPS_<KEY> is one of this library's settings, which
# n_load_remote_host_config must not overwrite
_n_is_setting() {
    case $1 in
        API | API_URL_DEFAULT | CONNECT_TIMEOUT | HTTP_CLIENT | IPS_NAME | LOG_TAG | MAC | \
            NODE_LIB_VERSION | NODE_ROOT | RETRIES | RETRY_DELAY | SESSION | SPOOL | SPOOL_MAX | \
            SYSLOG_HOST | SYSLOG_PORT | SYSLOG_PROTO | SYSLOG_WAIT | TIMEOUT | QUEUE | \
            POOL_NAME | POOL_DIR | POOL_SIZE | ISCSI_TARGET | TGT_CONTROL_PORT | ISCSI_PORTAL)
            return 0 ;;
    esac
    return 1
}

# Usage: _n_log_tag -> prints HPS_LOG_TAG, else the calling script's name (a login shell's
# `-sh` as `sh`), else hps-node
_n_log_tag() {
    _n_lt=${HPS_LOG_TAG:-${0##*/}}
    _n_lt=${_n_lt#-}
    printf '%s\n' "${_n_lt:-hps-node}"
}

# Usage: _n_number TEXT DEFAULT -> prints TEXT when it is a whole number, else DEFAULT
_n_number() {
    case $1 in
        '' | *[!0-9]*) printf '%s\n' "$2" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# Usage: _n_is_key NAME -> exit 0 when NAME can be a record key
_n_is_key() {
    case $1 in
        '' | [0-9]* | *[!A-Za-z0-9_]*) return 1 ;;
    esac
    return 0
}

# Usage: _n_is_volume NAME -> exit 0 for 1-32 letters, digits and `-`, not starting with `-`
_n_is_volume() {
    case $1 in
        '' | -* | *[!A-Za-z0-9-]*) return 1 ;;
    esac
    [ "${#1}" -le 32 ]
}

# Usage: _n_first_line FILE -> prints the file's first line (nothing when unreadable)
_n_first_line() {
    [ -r "$1" ] || return 0
    IFS= read -r _n_fl_text <"$1" || [ -n "$_n_fl_text" ] || return 0
    printf '%s\n' "$_n_fl_text"
}

# Usage: _n_random -> prints 8 random hex digits
_n_random() {
    od -An -N4 -tx1 /dev/urandom 2>/dev/null | tr -d ' \n'
    printf '\n'
}

# Usage: _n_queue_path -> prints the queue file's path
_n_queue_path() {
    printf '%s\n' "${HPS_QUEUE:-${N_QUEUE_FILE:-${HPS_NODE_ROOT:-}/run/hps/queue}}"
}

# Usage: _n_shell_words WORD... -> the words as shell text that gives them back: each as it
# is when it needs no quoting, else in single quotes (each ' as '\''), one space between
_n_shell_words() {
    _n_sw_sep=''
    for _n_sw in "$@"; do
        case $_n_sw in
            '' | *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-]*)
                _n_sw="'$(printf '%s' "$_n_sw" | sed "s/'/'\\\\''/g")'" ;;
        esac
        printf '%s%s' "$_n_sw_sep" "$_n_sw"
        _n_sw_sep=' '
    done
}

# Usage: _n_ni_line NAME VALUE -> one line of n_node_information (`unknown` for no value)
_n_ni_line() {
    printf '%-9s %s\n' "$1:" "${2:-unknown}"
}

# Usage: _n_usage TEXT -> the usage line on stderr
_n_usage() {
    printf 'usage: %s\n' "$1" >&2
}
