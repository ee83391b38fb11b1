#!/bin/sh
# Usage: copy (or symlink) to <cgi-bin>/boot_manager.sh; the web server runs it once per request.
# Answers the legacy endpoint /cgi-bin/boot_manager.sh by exec'ing `hps-api cgi` (docs/api.md §1):
# the request comes from the CGI environment and stdin, the answer (Status:, headers, body)
# goes to stdout; exit 0, or 2 when hps-api could not start (it still answers Status: 500).
#
# HPS_VENV is the virtualenv hps-api is installed in (the one scripts/serve creates is
# <checkout>/.venv). Edit the default below, or pass it from the web server, e.g. for nginx +
# fcgiwrap: fastcgi_param HPS_VENV /opt/hps-api/.venv;
# The HPS_* settings (HPS_CONFIG_DIR, HPS_LOG_DIR, ...) come the same way, or from a .env file
# in the working directory the web server gives the script; the user the web server runs CGI
# as (often www-data) must be able to write HPS_CONFIG_DIR and HPS_LOG_DIR.
# Arguments are ignored on purpose: some servers pass a query without '=' as argv (RFC 3875).

HPS_VENV=${HPS_VENV:-/opt/hps-api/.venv}

if [ ! -x "$HPS_VENV/bin/hps-api" ]; then
    printf '%s\n' "hps-api: cannot start: $HPS_VENV/bin/hps-api not found (set HPS_VENV)" >&2
    printf 'Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n%s\n' \
        "hps-api: cannot start: not installed where HPS_VENV says"
    exit 2
fi
exec "$HPS_VENV/bin/hps-api" cgi
