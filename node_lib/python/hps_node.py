"""hps-node: the node library of hps-api in Python (docs/node.md), one stdlib-only module.

The same contract as `node_lib/sh/hps-functions.sh`, for node scripts that prefer Python (nodes
may have no pip, so only the standard library is used):

    hps-node host-variable STATE          # prints the value
    python3 hps_node.py remote-log "disk replaced"

Exit codes: 0 success; 1 not found (404, or "no" for syslog-check); 2 transport failure (the IPS
unreachable after retries, or an IPS error 5xx); 3 refused (400/403/409 and other 4xx, message on
stderr); 4 bad usage. Values go to stdout with one trailing newline, messages to stderr.

Every request is a POST of a URL-encoded form (only `cmd=` is in the URL) carrying `mac=<this
node's MAC>`, with `User-Agent: hps-node/<version>` and `Accept: text/plain`, a connect and a
total timeout, and retries (with doubling delays) of transient failures: no answer, or 503. The
API is found, first match wins, in `HPS_API`; `hps_api=` on the kernel command line; the URL of
the IPS that served this file; `/etc/hps/api`; `http://<default gateway>`; anything but `HPS_API`
is cached in `/run/hps/api`. Log lines that cannot be delivered go to a bounded spool (the same
file and format as the sh library's) and are sent, oldest first, after the next successful call.

Settings come from the environment, with the sh library's names and defaults: HPS_API, HPS_MAC,
HPS_SESSION, HPS_CONNECT_TIMEOUT (3), HPS_TIMEOUT (10), HPS_RETRIES (3), HPS_RETRY_DELAY (1),
HPS_SPOOL, HPS_SPOOL_MAX (262144), HPS_LOG_TAG, HPS_SYSLOG_HOST, HPS_SYSLOG_PORT (514),
HPS_SYSLOG_PROTO (udp), HPS_SYSLOG_WAIT (3), HPS_IPS_NAME and HPS_NODE_ROOT (a directory prefixed
to every system path read or written; tests).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

# Filled in by the IPS when it serves this file, like the sh library's placeholders.
API_URL_DEFAULT = "@HPS_API_URL@"
NODE_LIB_VERSION = "@HPS_NODE_LIB_VERSION@"

OK, NOT_FOUND, TRANSPORT, REFUSED, USAGE = 0, 1, 2, 3, 4
ENDPOINT = "/cgi-bin/boot_manager.sh"
DISK_TYPES = frozenset({"SCH", "CCH", "DRH"})  # cluster-config/host-types.toml: install = "disk"
MAX_CLOCK_SKEW = 5
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VOLUME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
_SIZE = re.compile(r"[1-9][0-9]*[KMGTkmgt]?")
_CONFIG_LINE = re.compile(r'([A-Z_][A-Z0-9_]*)="(.*)"')
_UNESCAPE = re.compile(r"\\(.)")
_SESSION = re.compile(r"[0-9A-Za-z_-]+")
_URL = re.compile(r"https?://[A-Za-z0-9:/.%_~\[\]-]+")
_VIRTUAL_DISKS = ("loop", "ram", "zram", "sr", "fd", "nbd", "dm-")


class NodeError(Exception):
    """A failed call: `code` is the exit code (1-4), `str(err)` the message (may be empty)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Answer:
    """One HTTP attempt: status (0 when there was no answer), body, Date header, reason."""

    status: int
    body: bytes = b""
    date: str = ""
    why: str = ""


@dataclass(frozen=True)
class Settings:
    """The node's settings, read from the environment once."""

    api: str = ""
    mac: str = ""
    session: str = ""
    connect_timeout: int = 3
    timeout: int = 10
    retries: int = 3
    retry_delay: int = 1
    spool: Path = Path("/var/spool/hps/log")
    spool_max: int = 262144
    log_tag: str = "hps-node"
    syslog_host: str = ""
    syslog_port: int = 514
    syslog_proto: str = "udp"
    syslog_wait: int = 3
    ips_name: str = ""
    root: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Return the settings in `environ` (default: os.environ); bad numbers take defaults."""
        env = os.environ if environ is None else environ
        root = env.get("HPS_NODE_ROOT", "")

        def number(name: str, default: int) -> int:
            text = env.get(name, "")
            return int(text) if text.isdigit() else default

        return cls(
            api=env.get("HPS_API", "").rstrip("/"),
            mac=env.get("HPS_MAC", ""),
            session=env.get("HPS_SESSION", ""),
            connect_timeout=number("HPS_CONNECT_TIMEOUT", 3),
            timeout=number("HPS_TIMEOUT", 10),
            retries=number("HPS_RETRIES", 3),
            retry_delay=number("HPS_RETRY_DELAY", 1),
            spool=Path(env.get("HPS_SPOOL") or f"{root}/var/spool/hps/log"),
            spool_max=number("HPS_SPOOL_MAX", 262144),
            # the calling script's name when HPS_LOG_TAG is not set (the sh library's $0)
            log_tag=env.get("HPS_LOG_TAG") or Path(sys.argv[0]).name.lstrip("-") or "hps-node",
            syslog_host=env.get("HPS_SYSLOG_HOST", ""),
            syslog_port=number("HPS_SYSLOG_PORT", 514),
            syslog_proto=env.get("HPS_SYSLOG_PROTO", "udp"),
            syslog_wait=number("HPS_SYSLOG_WAIT", 3),
            ips_name=env.get("HPS_IPS_NAME", ""),
            root=root,
        )

    def path(self, system_path: str) -> Path:
        """Return a system path under HPS_NODE_ROOT."""
        return Path(self.root + system_path)


def version() -> str:
    """Return the library version: the one the IPS filled in, else a hash of this file."""
    if "@" not in NODE_LIB_VERSION:
        return NODE_LIB_VERSION
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def urlencode(text: str) -> str:
    """Return UTF-8 `text` with every byte outside `A-Za-z0-9._~-` as %XX."""
    return urllib.parse.quote(text, safe="")


def form(pairs: Iterable[tuple[str, str]]) -> str:
    """Return `name=value&...`, both sides URL-encoded."""
    return "&".join(f"{urlencode(name)}={urlencode(value)}" for name, value in pairs)


def unescape_config(text: str) -> dict[str, str]:
    """Return the keys of host_get_config's `KEY="value"` lines, backslash escapes undone."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        match = _CONFIG_LINE.fullmatch(line)
        if match:
            config[match[1]] = _UNESCAPE.sub(r"\1", match[2])
    return config


class Node:
    """This node talking to its IPS: every public method is one `n_` function of docs/node.md.

    Methods return values or raise NodeError with the exit code of the sh library.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.user_agent = f"hps-node/{version()}"
        self._mac = self.settings.mac or detect_mac(self.settings)
        session = self.settings.session or cmdline_value(self.settings, "hps_session")
        self.session = session if _SESSION.fullmatch(session) else ""
        self._api = ""
        self._flushing = False

    # -- the n_ functions ---------------------------------------------------------------------

    def ips_command(self, cmd: str, pairs: Sequence[tuple[str, str]]) -> str:
        """Return the body of any legacy command (n_ips_command)."""
        if not re.fullmatch(r"[a-z_]+", cmd):
            raise NodeError(USAGE, "usage: ips-command CMD [NAME=VALUE ...]")
        return self.call(cmd, pairs)

    def remote_log(self, messages: Iterable[str]) -> None:
        """Send each message with log_message; once the IPS proves unreachable, spool the rest.

        Raises the last failure (a refused message does not stop the others).
        """
        failure: NodeError | None = None
        offline = False
        for message in messages:
            if not offline:
                try:
                    self.call("log_message", [("function", self.settings.log_tag),
                                              ("message", message)])
                    continue
                except NodeError as err:
                    failure = err
                    if err.code != TRANSPORT:
                        continue
                    offline = True
            self._spool_add(message)
            failure = NodeError(TRANSPORT, f"IPS unreachable: message kept in "
                                           f"{self.settings.spool}")
        if failure is not None:
            raise failure

    def host_variable(self, name: str) -> str:
        """Return a key of this host (NodeError 1 when it is not set)."""
        return self._value(self.call("host_variable", [("name", _key(name))]))

    def set_host_variable(self, name: str, value: str) -> None:
        """Set a key of this host (an empty value is a value)."""
        self.call("host_variable", [("name", _key(name)), ("value", value)])

    def unset_host_variable(self, name: str) -> None:
        """Remove a key of this host."""
        self.call("host_variable", [("name", _key(name)), ("action", "unset")])

    def cluster_variable(self, name: str) -> str:
        """Return a key of the active cluster."""
        return self._value(self.call("cluster_variable", [("name", _key(name))]))

    def set_cluster_variable(self, name: str, value: str) -> None:
        """Set a key of the active cluster (the old call form; admins only: a node gets
        NodeError 3)."""
        self.call("cluster_variable", [("name", _key(name)), ("value", value)])

    def host_config(self) -> dict[str, str]:
        """Return this host's record (n_load_remote_host_config), parsed, never evaluated."""
        return unescape_config(self.call("host_get_config", []))

    def set_state(self, state: str) -> None:
        """Report a new STATE (set_status); NodeError 3 when the transition is not allowed."""
        if not state:
            raise NodeError(USAGE, "usage: set-state STATE")
        self.call("set_status", [("status", state)])

    def boot_session(self) -> str:
        """Return this boot's session id: HPS_SESSION, `hps_session=`, else the host's key."""
        return self.session or self.host_variable("BOOT_SESSION")

    def syslog_check(self) -> bool:
        """Return True when a line sent through syslog reached the IPS within HPS_SYSLOG_WAIT."""
        key = f"hps-{mac12(self.mac)}-{int(time.time())}-{os.getpid()}-{os.urandom(4).hex()}"
        if not self._syslog_send(f"syslog-check {key}"):
            raise NodeError(NOT_FOUND, "logger could not send the syslog line")
        for attempt in range(self.settings.syslog_wait + 1):
            if attempt:
                time.sleep(1)
            if self._value(self.call("syslog_check", [("key", key)])) == "yes":
                return True
        return False

    def syslog_configure(self) -> bool:
        """Forward this node's syslog to the IPS (rsyslog drop-in or busybox syslogd -R),
        then return syslog_check()."""
        host = self.settings.syslog_host or api_host(self.api())
        port = self.settings.syslog_port
        if not re.fullmatch(r"[A-Za-z0-9.:-]+", host):
            raise NodeError(TRANSPORT, f"no usable syslog host ({host})")
        dropins = self.settings.path("/etc/rsyslog.d")
        if shutil.which("rsyslogd") and dropins.is_dir():
            _write_atomic(dropins / "90-hps.conf", rsyslog_dropin(host, port))
            _restart_rsyslog()
        elif shutil.which("syslogd"):
            _restart_busybox_syslogd(self.settings, f"{host}:{port}")
        else:
            raise NodeError(NOT_FOUND, "no syslog daemon (rsyslogd or busybox syslogd)")
        return self.syslog_check()

    def selftest(self) -> list[tuple[str, str]]:
        """Run the node checks; return (name, reason) pairs, reason "" for a pass."""
        try:
            host_type = self.host_variable("TYPE")
        except NodeError:
            host_type = ""
        return [("api", self._check_api()), ("dns", self._check_dns()),
                ("syslog", self._check_syslog()), ("time", _check_time()),
                ("disk", _check_disk(self.settings, host_type)),
                ("storage", _check_storage(host_type))]

    def report_selftest(self, results: Sequence[tuple[str, str]]) -> None:
        """Send self-test results as selftest_report (`name=pass|name=fail:reason|...`)."""
        text = "|".join(f"{name}=pass" if not why else f"{name}=fail:{why.replace('|', '/')}"
                        for name, why in results)
        self.call("selftest_report", [("results", text)])

    def iqn(self, volume: str) -> str:
        """Return `iqn.<yyyy-mm>.<cluster>:<hostname>.<volume>`; yyyy-mm is the month the
        cluster was created (CREATED), the current month only when that key is missing."""
        if not _VOLUME.fullmatch(volume):
            raise NodeError(USAGE, "usage: iqn VOLUME (letters, digits and -)")
        cluster = self.cluster_variable("NAME")
        hostname = self.host_variable("HOSTNAME")
        try:
            created = self.cluster_variable("CREATED")
        except NodeError:
            created = ""
        month = created[:7] if re.match(r"[0-9]{4}-[0-9]{2}", created) else (
            datetime.now(UTC).strftime("%Y-%m"))
        return f"iqn.{month}.{cluster}:{hostname}.{volume.lower()}"

    def storage_network(self, index: str) -> str:
        """Return `vlan ip netmask gateway mtu` of storage network `index` (allocated once)."""
        if not re.fullmatch(r"[0-9]{1,2}", index):
            raise NodeError(USAGE, "usage: storage-network INDEX")
        answer = self._value(self.call("host_allocate_networks", [("index", index)]))
        return answer.replace(":", " ")

    def storage_provision_request(self, volume: str, size: str) -> str:
        """Record ISCSI_REQ_<VOLUME>=<SIZE> for the storage hosts; return the volume's IQN."""
        if not _VOLUME.fullmatch(volume) or not _SIZE.fullmatch(size):
            raise NodeError(USAGE, "usage: storage-provision-request VOLUME SIZE (e.g. root0 40G)")
        iqn = self.iqn(volume)
        key = "ISCSI_REQ_" + volume.upper().replace("-", "_")
        self.set_host_variable(key, size.upper())
        return iqn

    # -- talking to the API -------------------------------------------------------------------

    @property
    def mac(self) -> str:
        """Return the MAC sent with every call (may be empty when none could be found)."""
        return self._mac

    def api(self) -> str:
        """Return the API base URL; NodeError 2 when none can be found."""
        if self.settings.api:
            return self.settings.api
        if not self._api:
            self._api = discover_api(self.settings)
        if not self._api:
            raise NodeError(TRANSPORT, "cannot find the IPS (set HPS_API or hps_api= on the "
                                       "kernel command line)")
        return self._api

    def call(self, cmd: str, pairs: Sequence[tuple[str, str]]) -> str:
        """Return the text body of a 2xx answer to `cmd`; NodeError(1/2/3) otherwise."""
        answer = self.request(cmd, pairs)
        if not self._flushing and (answer.status < 500 and answer.status != 0):
            self._spool_flush()
        return _outcome(cmd, answer, self.api())

    def request(self, cmd: str, pairs: Sequence[tuple[str, str]]) -> Answer:
        """Return the answer to `cmd`, retrying transient failures (no answer, 503)."""
        base: list[tuple[str, str]] = [("mac", self.mac)] if self.mac else []
        if self.session:
            base.append(("session", self.session))
        body = form([*base, *pairs]).encode("ascii")
        url = f"{self.api()}{ENDPOINT}?cmd={urlencode(cmd)}"
        delay = self.settings.retry_delay
        for attempt in range(self.settings.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            answer = self.post(url, body)
            if answer.status not in (0, 503):
                break
        return answer

    def post(self, url: str, body: bytes) -> Answer:
        """Return one POST attempt's answer (status 0 when the IPS did not answer in time)."""
        parts = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        deadline = time.monotonic() + self.settings.timeout
        connection = cls(parts.hostname or "", parts.port,
                         timeout=min(self.settings.connect_timeout, self.settings.timeout))
        try:
            connection.connect()
            connection.sock.settimeout(max(0.05, deadline - time.monotonic()))
            connection.request("POST", f"{parts.path}?{parts.query}", body=body, headers={
                "User-Agent": self.user_agent, "Accept": "text/plain",
                "Content-Type": "application/x-www-form-urlencoded"})
            response = connection.getresponse()
            chunks = []
            while chunk := response.read(65536):
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise TimeoutError("answer took longer than HPS_TIMEOUT")
            return Answer(response.status, b"".join(chunks), response.getheader("Date", ""),
                          f"HTTP {response.status} {response.reason}")
        except (OSError, http.client.HTTPException) as err:
            return Answer(0, why=str(err) or type(err).__name__)
        finally:
            connection.close()

    @staticmethod
    def _value(body: str) -> str:
        return body[:-1] if body.endswith("\n") else body

    # -- the offline log spool ----------------------------------------------------------------

    def _spool_add(self, message: str) -> None:
        """Append a log_message form to the spool; drop the oldest lines beyond HPS_SPOOL_MAX."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields = [("function", self.settings.log_tag), ("message", f"{message} [spooled {stamp}]")]
        line = form(fields) + (f"&session={self.session}" if self.session else "") + "\n"
        spool = self.settings.spool
        try:
            spool.parent.mkdir(parents=True, exist_ok=True)
            with spool.open("a", encoding="ascii") as out:
                out.write(line)
            if spool.stat().st_size > self.settings.spool_max:
                data = spool.read_bytes()[-self.settings.spool_max:]
                _write_atomic(spool, data.split(b"\n", 1)[1].decode("ascii") if b"\n" in data
                              else "")
        except OSError as err:
            print(f"hps-node: cannot spool the log line: {err}", file=sys.stderr)

    def _spool_flush(self) -> None:
        """Send spooled lines oldest first, one attempt each; put back what was not sent."""
        spool = self.settings.spool
        claim = spool.with_name(f"{spool.name}.flush.{os.getpid()}")
        try:
            if spool.stat().st_size == 0:
                return
            spool.rename(claim)  # claims the lines: two flushers never send one twice
        except OSError:
            return
        self._flushing = True
        try:
            lines = claim.read_text(encoding="ascii").splitlines()
            url = f"{self.api()}{ENDPOINT}?cmd=log_message"
            mac = f"mac={urlencode(self.mac)}&" if self.mac else ""
            sent = 0
            for line in lines:
                answer = self.post(url, (mac + line).encode("ascii"))
                if answer.status == 0 or answer.status >= 500:
                    break
                sent += 1
            if sent < len(lines):
                newer = spool.read_text(encoding="ascii") if spool.exists() else ""
                _write_atomic(spool, "".join(f"{line}\n" for line in lines[sent:]) + newer)
        finally:
            self._flushing = False
            claim.unlink(missing_ok=True)

    # -- syslog and self-tests ----------------------------------------------------------------

    def _syslog_send(self, message: str) -> bool:
        """Send one syslog line: straight to HPS_SYSLOG_HOST when set, else via `logger`."""
        settings = self.settings
        if not settings.syslog_host:
            return Path("/dev/log").is_socket() and subprocess.run(
                ["logger", "-t", "hps-node", "--", message], capture_output=True,
                check=False).returncode == 0
        now = datetime.now()
        line = (f"<13>{now:%b} {now.day:2d} {now:%H:%M:%S} {socket.gethostname()} "
                f"hps-node: {message}\n").encode()
        kind = socket.SOCK_STREAM if settings.syslog_proto == "tcp" else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.settimeout(settings.connect_timeout)
                sock.connect((settings.syslog_host, settings.syslog_port))
                sock.sendall(line)
        except OSError:
            return False
        return True

    def _check_api(self) -> str:
        answer = self.request("cluster_variable", [("name", "NAME")])
        if answer.status == 0 or answer.status >= 500:
            return "IPS unreachable"
        try:
            ips_time = parsedate_to_datetime(answer.date).timestamp()
        except (TypeError, ValueError):
            return "no Date header in the answer"
        skew = abs(int(time.time()) - int(ips_time))
        return f"clock off by {skew} s" if skew > MAX_CLOCK_SKEW else ""

    def _check_dns(self) -> str:
        try:
            resolv = self.settings.path("/etc/resolv.conf").read_text(errors="replace")
        except OSError:
            resolv = ""
        configured = re.search(r"(?m)^\s*nameserver\s", resolv) is not None
        if not configured and not self.settings.ips_name:
            return ""
        name = self.settings.ips_name or api_host(self.api())
        if not name or re.fullmatch(r"[0-9.]+", name) or name.startswith("["):
            name = "ips"
        try:
            socket.getaddrinfo(name, None)
        except (OSError, UnicodeError):
            return f"{name} does not resolve"
        return ""

    def _check_syslog(self) -> str:
        try:
            return "" if self.syslog_check() else "syslog line did not arrive"
        except NodeError as err:
            return {NOT_FOUND: "syslog line did not arrive",
                    TRANSPORT: "IPS unreachable"}.get(err.code, "syslog check failed")


# -- discovery ---------------------------------------------------------------------------------


def discover_api(settings: Settings) -> str:
    """Return the API URL (cache, `hps_api=`, served URL, /etc/hps/api, gateway); "" if none.

    A URL found without the cache is written to /run/hps/api for the next caller.
    """
    cache = settings.path("/run/hps/api")
    cached = _first_line(cache)
    if _URL.fullmatch(cached):
        return cached.rstrip("/")
    candidates: tuple[Callable[[], str], ...] = (
        lambda: cmdline_value(settings, "hps_api"), lambda: API_URL_DEFAULT,
        lambda: _first_line(settings.path("/etc/hps/api")), lambda: gateway_url(settings))
    for candidate in candidates:
        url = candidate()
        if _URL.fullmatch(url):
            url = url.rstrip("/")
            with contextlib.suppress(OSError):
                cache.parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(cache, url + "\n")
            return url
    return ""


def cmdline_value(settings: Settings, name: str) -> str:
    """Return the value of `name=` on the kernel command line ("" when absent)."""
    value = ""
    for word in _first_line(settings.path("/proc/cmdline")).split():
        if word.startswith(name + "="):
            value = word[len(name) + 1:]
    return value


def default_route(settings: Settings) -> tuple[str, str]:
    """Return (interface, gateway) of the default route from /proc/net/route or `ip route`."""
    try:
        lines = settings.path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            gateway = ""
            if re.fullmatch(r"[0-9A-Fa-f]{8}", fields[2]):
                gateway = ".".join(str(b) for b in reversed(bytes.fromhex(fields[2])))
            return fields[0], gateway
    if settings.root or not shutil.which("ip"):
        return "", ""
    words = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True,
                           check=False).stdout.split()
    after = {words[i]: words[i + 1] for i in range(len(words) - 1)}
    return after.get("dev", ""), after.get("via", "")


def gateway_url(settings: Settings) -> str:
    """Return `http://<default gateway>` ("" when there is no default route)."""
    gateway = default_route(settings)[1]
    return f"http://{gateway}" if gateway else ""


def detect_mac(settings: Settings) -> str:
    """Return the MAC of the default-route interface ("" when unknown)."""
    interface = default_route(settings)[0]
    if not interface or "/" in interface or interface.startswith("."):
        return ""
    return _first_line(settings.path(f"/sys/class/net/{interface}/address"))


def api_host(url: str) -> str:
    """Return the host part of a URL (IPv6 in brackets)."""
    netloc = urllib.parse.urlsplit(url).netloc
    if netloc.startswith("["):
        return netloc.split("]")[0] + "]"
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc


def mac12(mac: str) -> str:
    """Return a MAC as 12 lower-case hex digits (`unknown` when empty)."""
    return re.sub(r"[:.-]", "", mac).lower() or "unknown"


def rsyslog_dropin(host: str, port: int) -> str:
    """Return an rsyslog.d file forwarding every message to the IPS over TCP with a queue."""
    return ("# Written by n_syslog_configure (hps-node): every message also goes to the IPS.\n"
            f'*.* action(type="omfwd" target="{host}" port="{port}" protocol="tcp"\n'
            '       queue.type="LinkedList" queue.size="10000" action.resumeRetryCount="-1")\n')


# -- helpers -----------------------------------------------------------------------------------


def _outcome(cmd: str, answer: Answer, api: str) -> str:
    """Return a 2xx body; raise NodeError with the sh library's code and message otherwise."""
    if 200 <= answer.status < 300:
        return answer.body.decode("utf-8", errors="replace")
    if answer.status == 404:
        raise NodeError(NOT_FOUND)
    text = answer.body[:300].decode("utf-8", errors="replace").split("\n")[0] or answer.why
    if 400 <= answer.status < 500:
        raise NodeError(REFUSED, f"{cmd} refused: {text}")
    if answer.status == 0:
        raise NodeError(TRANSPORT, f"{cmd}: IPS {api} unreachable: {text}")
    raise NodeError(TRANSPORT, f"{cmd}: IPS error {answer.status}: {text}")


def _key(name: str) -> str:
    if not _KEY.fullmatch(name):
        raise NodeError(USAGE, f"not a key name: {name!r}")
    return name


def _first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.readline().rstrip("\n")
    except OSError:
        return ""


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _restart_rsyslog() -> None:
    for command in (["systemctl", "restart", "rsyslog"], ["rc-service", "rsyslog", "restart"],
                    ["service", "rsyslog", "restart"]):
        if shutil.which(command[0]) and subprocess.run(
                command, capture_output=True, check=False).returncode == 0:
            return
    print("hps-node: could not restart rsyslog", file=sys.stderr)


def _restart_busybox_syslogd(settings: Settings, target: str) -> None:
    usage = subprocess.run(["syslogd", "--help"], capture_output=True, text=True, check=False)
    if "-R " not in usage.stdout + usage.stderr:
        raise NodeError(TRANSPORT, "this syslogd cannot forward (-R)")
    pid = _first_line(settings.path("/var/run/syslogd.pid"))
    if pid.isdigit():
        with contextlib.suppress(OSError):
            os.kill(int(pid), 15)
            time.sleep(1)
    if subprocess.run(["syslogd", "-R", target, "-L"], check=False).returncode != 0:
        return
    # syslogd makes /dev/log after it forked: a line logged before that would be lost
    deadline = time.monotonic() + 2
    while not Path("/dev/log").is_socket() and time.monotonic() < deadline:
        time.sleep(0.1)


def _check_time() -> str:
    year = datetime.now(UTC).year
    return "" if year >= 2020 else f"clock not set ({year})"


def _check_disk(settings: Settings, host_type: str) -> str:
    if host_type not in DISK_TYPES:
        return ""
    try:
        devices = os.listdir(settings.path("/sys/block"))
    except OSError:
        devices = []
    if any(not name.startswith(_VIRTUAL_DISKS) for name in devices):
        return ""
    return f"no disk for TYPE {host_type}"


def _check_storage(host_type: str) -> str:
    if host_type != "SCH":
        return ""
    if not shutil.which("zpool"):
        return "zpool missing"
    if not (shutil.which("targetcli") or shutil.which("tgtadm")):
        return "iSCSI target tools missing (targetcli or tgtadm)"
    return ""


# -- the command line --------------------------------------------------------------------------

VERBS = {
    "ips-command": "CMD [NAME=VALUE ...]   any legacy command; prints the body",
    "remote-log": "[MESSAGE ...]          log_message (lines on stdin when no message)",
    "host-variable": "NAME [VALUE|--unset]  get / set / unset a key of this host",
    "cluster-variable": "NAME [VALUE]       read a cluster key (setting one is for admins)",
    "load-host-config": "                   prints this host's keys as HPS_<KEY>=<value> lines",
    "set-state": "STATE                     set_status",
    "boot-session": "                       prints the boot session id",
    "syslog-configure": "                   forward syslog to the IPS, then syslog-check",
    "syslog-check": "                       0 when a syslog line reaches the IPS, 1 when not",
    "selftest": "[--report]                 the node checks, one `name: pass|fail (reason)` each",
    "iqn": "VOLUME                          prints iqn.<yyyy-mm>.<cluster>:<hostname>.<volume>",
    "storage-network": "INDEX               prints `vlan ip netmask gateway mtu`",
    "storage-provision-request": "VOLUME SIZE  records ISCSI_REQ_<VOLUME>; prints the IQN",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"hps-node: {message}", file=sys.stderr)
        raise SystemExit(USAGE)


def _parser() -> argparse.ArgumentParser:
    verbs = "\n".join(f"  {verb} {text}" for verb, text in VERBS.items())
    parser = _Parser(prog="hps-node", formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="The hps-api node client (docs/node.md).",
                     epilog=f"verbs:\n{verbs}\n\nexit codes: 0 ok, 1 not found, 2 IPS "
                            "unreachable, 3 refused, 4 bad usage")
    parser.add_argument("verb", choices=sorted(VERBS), metavar="VERB")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the verb's arguments")
    return parser


@dataclass(frozen=True)
class Outcome:
    """What a verb prints and the code it exits with (a message goes to stderr)."""

    lines: list[str]
    code: int = OK
    message: str = ""


def run(node: Node, verb: str, args: Sequence[str], stdin: Iterable[str]) -> Outcome:
    """Run one verb; raise NodeError for a failure that prints nothing on stdout."""
    arity = {"load-host-config": 0, "set-state": 1, "boot-session": 0,
             "syslog-configure": 0, "syslog-check": 0, "iqn": 1, "storage-network": 1,
             "storage-provision-request": 2}
    valid = {
        "ips-command": len(args) >= 1 and all(re.match(r"[A-Za-z_][^=]*=", a) for a in args[1:]),
        "remote-log": True,
        "host-variable": len(args) in (1, 2),
        "cluster-variable": len(args) in (1, 2),
        "selftest": list(args) in ([], ["--report"]),
    }.get(verb, len(args) == arity.get(verb, -1))
    if not valid:
        raise NodeError(USAGE, f"usage: hps-node {verb} {VERBS[verb].split('  ')[0].strip()}")
    if verb == "ips-command":
        body = node.ips_command(args[0], [(a.split("=", 1)[0], a.split("=", 1)[1])
                                          for a in args[1:]])
        return Outcome([body[:-1]] if body.endswith("\n") else ([body] if body else []))
    if verb == "remote-log":
        node.remote_log([" ".join(args)] if args else
                        [line.rstrip("\n") for line in stdin if line.rstrip("\n")])
        return Outcome([])
    if verb == "selftest":
        return _selftest(node, report=bool(args))
    if verb in ("syslog-check", "syslog-configure"):
        arrived = node.syslog_check() if verb == "syslog-check" else node.syslog_configure()
        return Outcome([], OK if arrived else NOT_FOUND)
    if verb == "host-variable" and len(args) == 2:
        if args[1] == "--unset":
            node.unset_host_variable(args[0])
        else:
            node.set_host_variable(args[0], args[1])
        return Outcome([])
    if verb == "cluster-variable" and len(args) == 2:
        node.set_cluster_variable(args[0], args[1])
        return Outcome([])
    if verb == "set-state":
        node.set_state(args[0])
        return Outcome([])
    if verb == "load-host-config":
        return Outcome([f"HPS_{key}={value}" for key, value in node.host_config().items()])
    return Outcome([_value_verb(node, verb, args)])


def _value_verb(node: Node, verb: str, args: Sequence[str]) -> str:
    if verb == "host-variable":
        return node.host_variable(args[0])
    if verb == "cluster-variable":
        return node.cluster_variable(args[0])
    if verb == "boot-session":
        return node.boot_session()
    if verb == "iqn":
        return node.iqn(args[0])
    if verb == "storage-network":
        return node.storage_network(args[0])
    return node.storage_provision_request(args[0], args[1])


def _selftest(node: Node, *, report: bool) -> Outcome:
    results = node.selftest()
    lines = [f"{name}: pass" if not why else f"{name}: fail ({why})" for name, why in results]
    if report:
        try:
            node.report_selftest(results)
        except NodeError as err:
            return Outcome(lines, err.code, str(err))
    return Outcome(lines, NOT_FOUND if any(why for _, why in results) else OK)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `hps-node VERB [ARGS...]`; return the exit code."""
    options = _parser().parse_args(argv)
    try:
        outcome = run(Node(), options.verb, options.args, sys.stdin)
    except NodeError as err:
        outcome = Outcome([], err.code, str(err))
    # bytes, not text: values are UTF-8 whatever the node's locale says
    sys.stdout.buffer.write("".join(f"{line}\n" for line in outcome.lines).encode(
        "utf-8", errors="surrogateescape"))
    sys.stdout.flush()
    if outcome.message:
        print(f"hps-node: {outcome.message}", file=sys.stderr)
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
