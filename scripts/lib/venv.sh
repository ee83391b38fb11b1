# Sourced by scripts/serve and scripts/test: make .venv and install the package into it.
# Usage: hps_venv [EXTRAS]   (e.g. hps_venv test) — re-installs only when pyproject.toml changed.

hps_venv() {
    extras=${1:-}
    python=${HPS_PYTHON:-}
    if [ -z "$python" ]; then
        for candidate in python3.11 python3 python; do
            if command -v "$candidate" >/dev/null 2>&1 &&
                "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
                python=$candidate
                break
            fi
        done
    fi
    if [ -z "$python" ]; then
        echo "hps-api needs Python 3.11 or newer (set HPS_PYTHON to its path)" >&2
        return 1
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating .venv with $python"
        "$python" -m venv .venv || return 1
    fi
    spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    stamp=".venv/.installed-$(cat pyproject.toml scripts/lib/venv.sh | sha256sum | cut -c1-16)-${extras:-base}"
    if [ ! -f "$stamp" ]; then
        echo "==> installing hps-api${extras:+ with $extras extras} into .venv"
        # compat mode: a plain .pth path entry; the default editable finder costs ~30 ms at
        # every start of every console script, and operators run host_config in loops.
        .venv/bin/python -m pip install --quiet --disable-pip-version-check \
            --config-settings editable_mode=compat -e "$spec" || return 1
        touch "$stamp"
    fi
}
