# shellcheck shell=sh
# hps-bootstrap.sh: the bootstrap of the node library (cmd=node_get_bootstrap_functions). POSIX
# sh, sourced or eval'ed, never executed; runs under busybox ash, dash and bash.
#
#   curl -fsSL "http://ips/cgi-bin/boot_manager.sh?cmd=node_get_bootstrap_functions" \
#       >/usr/local/lib/hps-bootstrap-lib.sh
#   . /usr/local/lib/hps-bootstrap-lib.sh && hps_node_init
#
# The IPS serves this file followed by the node library (hps-functions.sh) as it is at that
# moment, so the n_ functions work as soon as the file is sourced, even when the IPS cannot be
# reached later; these functions use only the library's public n_ functions.
# hps_load_node_functions replaces the library with the one the IPS serves now for this node's
# distro (cmd=node_get_functions&distro=<cpu>-linux-<os>-<version>); hps_node_init does that,
# then runs the command queue (n_queue_run).
#
# Exit codes: 0 success; 2 no IPS found, the fetch failed, or the answer is not the node
# library; 3 the IPS refused; 4 bad usage. hps_node_init returns n_queue_run's code (the number
# of queued commands that failed) once the library is loaded, else the load's code.

# Filled in by the IPS when it serves this file.
HPS_BOOTSTRAP_VERSION='@HPS_NODE_LIB_VERSION@'

# Usage: hps_get_provisioning_node -> prints the IPS as HOST[:PORT] (the default gateway when
# nothing else names it); exit 0, 2 when no IPS is found
# shellcheck disable=SC2120  # arguments are only counted, to refuse them
hps_get_provisioning_node() {
    n_get_provisioning_node "$@"
}

# Usage: hps_url_encode TEXT -> TEXT with every byte outside A-Za-z0-9._~- as %XX; exit 0/4
hps_url_encode() {
    n_url_encode "$@"
}

# Usage: hps_get_distro_string -> prints <cpu>-linux-<os id>-<os version> from uname -m and
# /etc/os-release (`unknown` for what is missing), e.g. x86_64-linux-rocky-10.0; exit 0/4
# shellcheck disable=SC2120  # arguments are only counted, to refuse them
hps_get_distro_string() {
    if [ $# -ne 0 ]; then
        printf 'usage: hps_get_distro_string\n' >&2
        return 4
    fi
    _hps_release=${HPS_NODE_ROOT:-}/etc/os-release
    [ -r "$_hps_release" ] || _hps_release=${HPS_NODE_ROOT:-}/usr/lib/os-release
    printf '%s-linux-%s-%s\n' "$(_hps_distro_word "$(uname -m 2>/dev/null)")" \
        "$(_hps_distro_word "$(_hps_os_release ID "$_hps_release")")" \
        "$(_hps_distro_word "$(_hps_os_release VERSION_ID "$_hps_release")")"
}

# Usage: hps_fetch_node_functions [DISTRO] -> prints the node library the IPS serves for DISTRO
# (default: hps_get_distro_string); exit 0/2/3, 4 when DISTRO is not a distro string
hps_fetch_node_functions() {
    case $# in
        0) _hps_distro=$(hps_get_distro_string) ;;
        1) _hps_distro=$1 ;;
        *) printf 'usage: hps_fetch_node_functions [DISTRO]\n' >&2; return 4 ;;
    esac
    if ! _hps_is_distro "$_hps_distro"; then
        printf "hps-bootstrap: '%s' is not a shell node's distro string %s\\n" "$_hps_distro" \
            '(<cpu>-linux-<os>-<version>: 1-64 letters, digits and ._+-)' >&2
        return 4
    fi
    _hps_library=$(n_ips_command node_get_functions "distro=$_hps_distro") || return
    case $_hps_library in
        *"HPS_NODE_LIB_VERSION="*) ;;
        *) printf 'hps-bootstrap: the answer to node_get_functions is not the node library\n' >&2
            return 2 ;;
    esac
    printf '%s\n' "$_hps_library"
}

# Usage: hps_load_node_functions [DISTRO] -> fetches the node library (hps_fetch_node_functions)
# and evaluates it in this shell; exit 0/2/3/4 (on failure the functions already here stay)
hps_load_node_functions() {
    if [ $# -gt 1 ]; then
        printf 'usage: hps_load_node_functions [DISTRO]\n' >&2
        return 4
    fi
    _hps_library=$(hps_fetch_node_functions "$@") || return
    # the one evaluation of server data: the IPS's own library, which this file exists to load
    eval "$_hps_library"
}

# Usage: hps_node_init -> loads the node library, then runs the command queue; exit: the
# number of queued commands that failed, or the load's code when the library did not load
# (the queue is then left as it is)
hps_node_init() {
    if [ $# -ne 0 ]; then
        printf 'usage: hps_node_init\n' >&2
        return 4
    fi
    hps_load_node_functions || return
    n_queue_run
}

# Usage: hps_reload [DISTRO] -> hps_load_node_functions
hps_reload() {
    hps_load_node_functions "$@"
}

# Usage: hps_status -> prints the IPS, the distro string and the versions, one line each; exit 0/4
hps_status() {
    if [ $# -ne 0 ]; then
        printf 'usage: hps_status\n' >&2
        return 4
    fi
    _hps_ips=$(hps_get_provisioning_node 2>/dev/null) || _hps_ips='not found'
    printf 'ips: %s\n' "$_hps_ips"
    printf 'distro: %s\n' "$(hps_get_distro_string)"
    printf 'bootstrap: %s\n' "$(_hps_version "$HPS_BOOTSTRAP_VERSION")"
    if command -v n_ips_command >/dev/null 2>&1; then
        printf 'node library: %s\n' "$(_hps_version "${HPS_NODE_LIB_VERSION:-}")"
    else
        printf 'node library: not loaded\n'
    fi
}

# Usage: _hps_is_distro TEXT -> exit 0 when TEXT can name a shell node's distro
_hps_is_distro() {
    case $1 in
        '' | *[!A-Za-z0-9._+-]* | [Pp][Yy][Tt][Hh][Oo][Nn]) return 1 ;;
    esac
    [ "${#1}" -le 64 ]
}

# Usage: _hps_os_release NAME FILE -> prints NAME's value in an os-release file, unquoted
_hps_os_release() {
    sed -n "s/^$1=//p" "$2" 2>/dev/null | sed -n '1s/^["'\'']\(.*\)["'\'']$/\1/;1p'
}

# Usage: _hps_distro_word TEXT -> TEXT lower-cased, without characters a distro string cannot
# hold; `unknown` when nothing is left
_hps_distro_word() {
    _hps_word=$(printf '%s' "$1" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz' |
        tr -cd 'abcdefghijklmnopqrstuvwxyz0123456789._+-')
    printf '%s\n' "${_hps_word:-unknown}"
}

# Usage: _hps_version TEXT -> TEXT, or `unserved` for a placeholder the IPS did not fill in
_hps_version() {
    case $1 in
        '' | *@*) printf 'unserved\n' ;;
        *) printf '%s\n' "$1" ;;
    esac
}
