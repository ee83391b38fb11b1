"""The front end (docs/deploy.md): nginx on ports 80 and 443 in front of gunicorn, `nginx.conf`.

A complete main configuration, started as it is: `nginx -e HPS_LOG_DIR/nginx-error.log -c
services/nginx.conf`. nginx writes only under HPS_LOG_DIR (`nginx-access.log`,
`nginx-error.log`) and the runtime directory, the one HPS_DNSMASQ_PIDFILE is in (`/run` by
default: `hps-nginx.pid` and one `hps-nginx-<kind>` directory per temp path, which nginx makes
itself at start, so nothing needs to exist beforehand).

- Boot files: `/distros/...` and `/packages/...` from `HPS_RESOURCES_DIR/<tree>`, and the iPXE
  binaries (`/undionly.kpxe`, `/ipxe.efi`, `/snponly.efi`) from the TFTP root, are sent by nginx
  itself (sendfile, Range, no listing). nginx normalises the URI before it maps it to a file
  (`..` and `%2e%2e` never leave the root) and follows no symlink below the root. Anything it
  will not send (a directory, a missing file, a path through a symlink) goes to the app, which
  answers exactly as it does without nginx (hps_api.web.static): 404, or the file when the
  symlink stays inside the tree.
- Everything else, `/boot.ipxe` included (rendered per request with the URL the client used), is
  proxied to gunicorn at HPS_BIND with buffering on both ways: nginx reads the whole request and
  takes the whole answer at loopback speed, so a slow client never holds a gthread slot.
  `X-Forwarded-For` is set to the peer's address, replacing whatever the client sent, and
  `X-Forwarded-Proto` to the scheme; every other forwarding header a client could send is
  dropped. gunicorn must trust the proxy's address (`HPS_TRUSTED_PROXIES`, see `proxy_address`):
  then a LAN caller is identified by its own address, and loopback rights stay with loopback.
- HTTPS on port 443 of HPS_FRONT_BIND's address when HPS_TLS_CERT and HPS_TLS_KEY are set.
- The access log has one line per request in a fixed field order (`TIMELINE_FORMAT`,
  docs/deploy.md "Access log"); no query value is logged except `cmd` and `mac`.

`render_nginx` is pure: settings in, text out. A bad setting is an InvalidInput naming it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import re
from dataclasses import dataclass
from pathlib import Path

from hps_api.errors import InvalidInput
from hps_api.settings import Settings

NGINX_CONF = "nginx.conf"
FRONT_END_ENV = "front-end.env"
ACCESS_LOG = "nginx-access.log"
ERROR_LOG = "nginx-error.log"
PID_FILE = "hps-nginx.pid"
TLS_PORT = 443
# The account nginx's workers run as when root starts it: the first that exists.
WORKER_USERS = ("www-data", "nginx", "nobody")
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
STATIC_TREES = ("distros", "packages")
IPXE_FILES = ("undionly.kpxe", "ipxe.efi", "snponly.efi")
# Same limit as the app (hps_api.web.failures.MAX_BODY_BYTES), so nginx refuses what the app would.
MAX_BODY = "1m"
# time, client, method, path, status, body bytes, request s, upstream s ("-": nginx sent it),
# then the legacy selectors. nginx escapes `"`, `\` and control bytes as \xHH.
TIMELINE_FORMAT = ('$time_iso8601 $remote_addr $request_method "$uri" $status '
                   '$body_bytes_sent $request_time $upstream_response_time '
                   '"$arg_cmd" "$arg_mac"')
# Paths and names written into nginx.conf unquoted: no space, `;`, quote, `$`, `{` or `}`.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+@%~=:,-]*")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Endpoint:
    """A validated TCP address: host (IP literal) and port."""

    host: str
    port: int

    def __str__(self) -> str:
        """Return `host:port`, IPv6 hosts in brackets (nginx's and gunicorn's syntax)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def wildcard(self) -> bool:
        """Return True for 0.0.0.0 or ::."""
        return ipaddress.ip_address(self.host).is_unspecified

    def with_port(self, port: int) -> Endpoint:
        """Return the same host on another port."""
        return Endpoint(self.host, port)


def parse_endpoint(text: str, name: str) -> Endpoint:
    """Return `host:port` / `[v6]:port` as an Endpoint; InvalidInput naming `name` otherwise."""
    raw = text.strip()
    host, sep, port = raw.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if not sep or address is None or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"{name}={raw[:60]!r}: must be ADDRESS:PORT with an IP address "
                           "(0.0.0.0:80, [::]:80, 10.0.0.1:80)")
    return Endpoint(str(address), int(port))


def front_bind(settings: Settings) -> Endpoint:
    """Return HPS_FRONT_BIND, where nginx listens for plain HTTP."""
    return parse_endpoint(settings.front_bind, "HPS_FRONT_BIND")


def upstream(settings: Settings) -> Endpoint:
    """Return the address nginx proxies to: HPS_BIND, a wildcard bind reached over loopback."""
    bind = parse_endpoint(settings.bind, "HPS_BIND")
    if not bind.wildcard:
        return bind
    return Endpoint("::1" if ":" in bind.host else "127.0.0.1", bind.port)


def proxy_address(settings: Settings) -> str:
    """Return the address gunicorn sees nginx's requests come from (HPS_TRUSTED_PROXIES needs it).

    A connection to a local address leaves from that same address, so it is the upstream's host.
    """
    return upstream(settings).host


def shares_port(settings: Settings) -> bool:
    """Return True when gunicorn itself binds the front end's port (the layout without nginx)."""
    front, back = front_bind(settings), parse_endpoint(settings.bind, "HPS_BIND")
    return front.port == back.port and (front.wildcard or back.wildcard or front.host == back.host)


def tls_files(settings: Settings) -> tuple[str, str] | None:
    """Return (certificate, key) paths, or None without TLS; InvalidInput for half or bad paths."""
    cert, key = settings.tls_cert.strip(), settings.tls_key.strip()
    if not cert and not key:
        return None
    if not cert or not key:
        missing = "HPS_TLS_KEY" if cert else "HPS_TLS_CERT"
        raise InvalidInput(f"{missing} is required when the other of HPS_TLS_CERT/HPS_TLS_KEY "
                           "is set")
    for name, value in (("HPS_TLS_CERT", cert), ("HPS_TLS_KEY", key)):
        _safe(Path(value), name)
        if not Path(value).is_file():
            raise InvalidInput(f"{name}={value[:80]!r}: no such file")
    return cert, key


def worker_user() -> str | None:
    """Return the account nginx's workers run as when root starts it; None when not root."""
    if os.geteuid() != 0:
        return None
    for name in WORKER_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    return None


def runtime_dir(settings: Settings) -> Path:
    """Return where nginx keeps its pid file and temp files: HPS_DNSMASQ_PIDFILE's directory."""
    return settings.dnsmasq_pidfile.parent


def render_front_end_env(settings: Settings) -> str:
    """Return the environment hps-api needs behind this nginx (`front-end.env`, docs/deploy.md)."""
    trusted = [*settings.trusted_proxies]
    if proxy_address(settings) not in trusted:
        trusted.append(proxy_address(settings))
    return ("# hps-api behind services/nginx.conf: written by `hps-api render-services`; do not "
            "edit.\n# nginx forwards every request from this address with X-Forwarded-For set "
            "to the caller.\n"
            f"HPS_BIND={settings.bind}\nHPS_TRUSTED_PROXIES={','.join(trusted)}\n")


def render_nginx(settings: Settings, cluster: str, *, user: str | None = None) -> str:
    """Return `nginx.conf`; `user` is the workers' account (give it only when nginx runs as root).

    Raises InvalidInput naming HPS_FRONT_BIND, HPS_BIND, HPS_TLS_CERT/KEY, a path nginx.conf
    cannot hold, or a bad user name.
    """
    front, back, tls = front_bind(settings), upstream(settings), tls_files(settings)
    log = _safe(settings.log_dir, "HPS_LOG_DIR")
    run = _safe(runtime_dir(settings), "HPS_DNSMASQ_PIDFILE's directory")
    resources = _safe(settings.resources_dir, "HPS_RESOURCES_DIR")
    if user is not None and not _USER.fullmatch(user):
        raise InvalidInput(f"nginx user {user[:40]!r} is not an account name")
    temp = "\n".join(f"    {kind}_temp_path {run}/hps-nginx-{kind.replace('_', '-')};"
                     for kind in TEMP_KINDS)
    return _TEMPLATE.format(
        cluster=cluster, log=log, run=run, pid=PID_FILE, access=ACCESS_LOG, error=ERROR_LOG,
        user=f"user {user};\n" if user else "", temp=temp, timeline=TIMELINE_FORMAT,
        max_body=MAX_BODY, upstream=back, listen=_listen(front, tls), root=resources,
        static=_static_locations(resources))


def _listen(front: Endpoint, tls: tuple[str, str] | None) -> str:
    dual = " ipv6only=off" if front.host == "::" else ""
    lines = [f"listen {front} default_server{dual};"]
    if tls is not None:
        lines += [f"listen {front.with_port(TLS_PORT)} ssl default_server{dual};",
                  f"ssl_certificate {tls[0]};", f"ssl_certificate_key {tls[1]};",
                  "ssl_protocols TLSv1.2 TLSv1.3;", "ssl_session_cache shared:hps_tls:1m;"]
    return "\n        ".join(lines)


def _static_locations(resources: str) -> str:
    blocks = [f"location /{tree}/ {{\n            root {resources};\n"
              "            try_files $uri @hps_api;\n        }" for tree in STATIC_TREES]
    names = "|".join(re.escape(name) for name in IPXE_FILES)
    blocks.append(f"location ~ ^/({names})$ {{\n            root {resources}/tftp;\n"
                  "            try_files $uri @hps_api;\n        }")
    return "\n        ".join(blocks)


def _safe(path: Path, what: str) -> str:
    text = str(path)
    if not _SAFE_PATH.fullmatch(text):
        raise InvalidInput(f"{what} {text[:80]!r} cannot be written into nginx.conf (absolute "
                           "path of letters, digits and ._/+@%~=:,- only)")
    return text.rstrip("/") or "/"


_TEMPLATE = """\
# nginx in front of hps-api for cluster {cluster}: written by `hps-api render-services`; do not
# edit. Change HPS_FRONT_BIND, HPS_BIND, HPS_TLS_CERT, HPS_TLS_KEY, HPS_RESOURCES_DIR or
# HPS_LOG_DIR and render again. Start: nginx -e {log}/{error} -c <this file>
# hps-api must trust this proxy: HPS_TRUSTED_PROXIES (see front-end.env beside this file).
{user}worker_processes auto;
worker_rlimit_nofile 8192;
pid {run}/{pid};
error_log {log}/{error} warn;

events {{
    worker_connections 4096;
}}

http {{
{temp}

    default_type application/octet-stream;
    types {{
        text/plain ipxe ks cfg txt sh;
        application/x-iso9660-image iso;
        application/gzip gz tgz;
        application/x-xz xz;
        application/x-rpm rpm;
        application/json json;
        application/xml xml;
    }}

    # One line per request, fields in a fixed order (docs/deploy.md, "Access log").
    log_format hps_timeline '{timeline}';
    access_log {log}/{access} hps_timeline;

    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    client_max_body_size {max_body};

    # The Host the client sent, port included (login and Origin checks compare it).
    map $http_host $hps_host {{
        "" $host;
        default $http_host;
    }}

    upstream hps_api {{
        server {upstream};
        keepalive 16;
        # Shorter than gunicorn's keep-alive (2 s), so nginx never reuses a closing connection.
        keepalive_timeout 1s;
    }}

    server {{
        {listen}
        server_name _;
        root {root};
        autoindex off;
        disable_symlinks on from=$document_root;

        # Buffered both ways: the app reads and answers at loopback speed, whoever the client.
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $hps_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Forwarded "";
        proxy_set_header X-Real-IP "";
        proxy_set_header X-Forwarded-Host "";
        proxy_set_header X-Forwarded-Ssl "";
        proxy_set_header X-Forwarded-Protocol "";
        proxy_buffering on;
        proxy_request_buffering on;
        proxy_buffers 32 16k;
        proxy_redirect off;
        proxy_read_timeout 60s;

        location / {{
            proxy_pass http://hps_api;
        }}

        # A directory is never listed: the app answers it (404 under the boot trees).
        location ~ /$ {{
            proxy_pass http://hps_api;
        }}

        # Boot files nginx sends itself; what it will not send, the app answers.
        {static}

        location @hps_api {{
            proxy_pass http://hps_api;
        }}
    }}
}}
"""
