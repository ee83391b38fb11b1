"""What the IPS's files say a host did (docs/timeline.md, "The sources"): a parser per format.

Each parser turns one line into a small frozen record, or returns None for a line it cannot
read: a torn last line, a line of another format, a hand edit. A bad line is skipped, never an
error, because one garbled byte must not take an operator's timeline away. Times are Unix
seconds (floats); a record's `at` is when the thing *started* (an access log writes its line
when the answer is finished, so its duration is taken off).

The formats, as their writers define them:

- `hps-api.log` (hps_api.observe.eventlog): `<UTC time> <level> <host> <session> <client>
  <message>`.
- `access.log` (gunicorn, hps_api/entry/server.py ACCESS_FORMAT): `<ip> [<time>] "<request
  line>" <status> <bytes> <ms>ms "<agent>"`, query values other than the selectors redacted.
- `nginx-access.log` (hps_api/services/nginx.py TIMELINE_FORMAT): `<ISO time> <ip> <method>
  "<path>" <status> <bytes> <request s> <upstream s> "<cmd>" "<mac>"`; the time is the end.
- `nodes.log` (hps_api/services/rsyslog.py): `<RFC 3339 time> <sender ip> <hostname> <tag>
  <message>`.
- dnsmasq's lease file: `<expiry> <mac> <ip> <hostname> <client id>`; the lease was given (or
  last renewed) LEASE_SECONDS before it expires.
- dnsmasq's log, when it writes one (`log-facility=<file>`): syslog-style local times without a
  year, `<Mon> <day> <hh:mm:ss> dnsmasq-dhcp[<pid>]: [<id> ]DHCPACK(<iface>) <ip> <mac> ...`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote

from hps_api.errors import InvalidInput
from hps_api.ids import normalize_mac

#: the lease time of the dhcp-range hps-api renders (hps_api/services/dnsmasq.py LEASE_TIME;
#: tests/test_timeline.py holds the two equal)
LEASE_SECONDS = 12 * 3600
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_GUNICORN = re.compile(r'(\S+) \[(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d{4})\] '
                       r'"([A-Z]+) (\S+) [^"]*" (\d{3}) (\d+|-) (\d+)ms')
_NGINX = re.compile(r'(\S+) (\S+) (\S+) "([^"]*)" (\d{3}) (\d+) ([\d.]+) (\S+) "([^"]*)" '
                    r'"([^"]*)"')
_DNSMASQ_ACK = re.compile(r"(\w{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) dnsmasq-dhcp\[\d+\]: "
                          r"(?:\d+ )?DHCPACK\([^)]*\) (\S+) (\S+)")


@dataclass(frozen=True)
class Event:
    """One line of the event log."""

    at: float
    level: str
    host: str
    session: str
    client: str
    message: str


@dataclass(frozen=True)
class Fetch:
    """One HTTP request from an access log (`source`: `access` for gunicorn's, `nginx`)."""

    at: float
    ip: str
    method: str
    path: str
    status: int
    size: int
    seconds: float
    cmd: str
    mac: str
    source: str


@dataclass(frozen=True)
class NodeLine:
    """One syslog line a node sent (nodes.log)."""

    at: float
    ip: str
    hostname: str
    text: str


@dataclass(frozen=True)
class Lease:
    """An address dnsmasq gave a MAC (`source`: `leases` for the lease file, `dnsmasq` for
    a DHCPACK line of its log)."""

    at: float
    mac: str
    ip: str
    source: str


def parse_time(text: str) -> float | None:
    """Return the Unix time of an ISO 8601 time with a zone (`...Z`, `...+00:00`, fractions
    allowed), None for anything else (a time without a zone is not a moment)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def parse_event(line: str) -> Event | None:
    """Return the event-log line as an Event, None when it is not one."""
    fields = line.rstrip("\r\n").split(" ", 5)
    at = parse_time(fields[0]) if len(fields) == 6 else None
    if at is None:
        return None
    return Event(at, fields[1], fields[2], fields[3], fields[4], fields[5])


def parse_access(line: str) -> Fetch | None:
    """Return a line of gunicorn's access log as a Fetch, None when it is not one."""
    found = _GUNICORN.match(line)
    month = _MONTHS.get(found[3]) if found else None
    if found is None or month is None:
        return None
    offset = (int(found[8][1:3]) * 3600 + int(found[8][3:]) * 60) * (
        1 if found[8][0] == "+" else -1)
    try:
        ended = datetime(int(found[4]), month, int(found[2]), int(found[5]), int(found[6]),
                         int(found[7]), tzinfo=UTC).timestamp() - offset
    except ValueError:
        return None
    seconds = int(found[13]) / 1000
    path, _, query = found[10].partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    return Fetch(ended - seconds, found[1], found[9], unquote(path), int(found[11]),
                 0 if found[12] == "-" else int(found[12]), seconds, params.get("cmd", ""),
                 _mac(params.get("mac", "")), "access")


def parse_nginx(line: str) -> Fetch | None:
    """Return a line of the front end's access log as a Fetch, None when it is not one."""
    found = _NGINX.fullmatch(line.rstrip("\r\n"))
    ended = parse_time(found[1]) if found else None
    if found is None or ended is None:
        return None
    seconds = float(found[7])
    return Fetch(ended - seconds, found[2], found[3], found[4], int(found[5]), int(found[6]),
                 seconds, found[9], _mac(unquote(found[10])), "nginx")


def parse_node_line(line: str) -> NodeLine | None:
    """Return a nodes.log line as a NodeLine, None when it is not one."""
    fields = line.rstrip("\r\n").split(" ", 3)
    at = parse_time(fields[0]) if len(fields) == 4 else None
    if at is None:
        return None
    return NodeLine(at, fields[1], fields[2], fields[3])


def parse_lease(line: str, lease_seconds: int = LEASE_SECONDS) -> Lease | None:
    """Return a lease-file line as the Lease it records, None for other lines (the `duid`
    line, an infinite lease: expiry 0, which says nothing of when it was given)."""
    fields = line.split()
    if len(fields) < 3 or not fields[0].isdigit() or int(fields[0]) == 0:
        return None
    mac = _mac(fields[1])
    return Lease(int(fields[0]) - lease_seconds, mac, fields[2], "leases") if mac else None


def parse_dnsmasq(line: str, now: float) -> Lease | None:
    """Return the Lease a DHCPACK line of dnsmasq's log records, None for any other line.

    The line's time has no year and is local time (dnsmasq's own clock on this machine): the
    year is the one that puts it at most a day after `now`.
    """
    found = _DNSMASQ_ACK.match(line)
    month = _MONTHS.get(found[1]) if found else None
    mac = _mac(found[7]) if found else ""
    if found is None or month is None or not mac:
        return None
    year = time.localtime(now).tm_year
    for candidate in (year, year - 1):
        try:
            at = time.mktime((candidate, month, int(found[2]), int(found[3]), int(found[4]),
                              int(found[5]), 0, 0, -1))
        except (OverflowError, ValueError):
            return None
        if at <= now + 86400:
            return Lease(at, mac, found[6], "dnsmasq")
    return None


def _mac(text: str) -> str:
    """Return a MAC as 12 hex digits, "" when the text is none."""
    try:
        return normalize_mac(text) if text else ""
    except InvalidInput:
        return ""
