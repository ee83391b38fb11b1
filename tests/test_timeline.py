"""The provisioning timeline (docs/timeline.md): each log's parser as a table of lines, reading
only the tail a story needs, the assembly of phases as a table of stories, and the three doors
(`GET /api/v1/hosts/<mac>/timeline`, `hps-api timeline MAC`, the host page's section)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import webtest
from fakes import BrokenStore

from hps_api import create_app
from hps_api.cli.main import main as cli_main
from hps_api.cli.timeline import table as timeline_table
from hps_api.entry import server
from hps_api.errors import CorruptRecord, HpsError, StoreBusy
from hps_api.observe import logtail
from hps_api.observe.later_phases import HostFacts
from hps_api.observe.sightings import (
    LEASE_SECONDS,
    Event,
    Fetch,
    Lease,
    NodeLine,
    parse_access,
    parse_dnsmasq,
    parse_event,
    parse_lease,
    parse_nginx,
    parse_node_line,
)
from hps_api.observe.timeline import PHASE_NAMES, Timeline, assemble, human
from hps_api.observe.timeline_logs import (
    ACCESS,
    DNSMASQ,
    EVENTS,
    NGINX,
    NODES,
    LogFiles,
    fetch_ranges,
    host_timeline,
    spellings,
)
from hps_api.services import dnsmasq, nginx, rsyslog
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId, factory
from hps_api.store.journal import Change
from hps_api.web.app import build_app

MAC, MAC12, OTHER = "52:54:00:aa:bb:01", "525400aabb01", "525400aabb02"
SESSION = "3fa2c1"
T0 = 1796630000.0  # 2026-12-07T...: every story's first init
IPXE_IP, OS_IP = "10.99.0.150", "10.99.0.20"
KERNEL = "/distros/rocky/10/images/pxeboot/vmlinuz"
INITRD = "/distros/rocky/10/images/pxeboot/initrd.img"


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def event(offset: float, message: str, *, client: str = "ipxe", session: str = SESSION,
          host: str = MAC12) -> str:
    """An hps-api.log line `offset` seconds after T0."""
    return f"{at(offset):%Y-%m-%dT%H:%M:%SZ} INFO {host} {session} {client} {message}"


def access(offset: float, ip: str, target: str, *, status: int = 200, size: str = "512",
           ms: int = 0, agent: str = "iPXE/1.21.1") -> str:
    """A gunicorn access.log line, in server.ACCESS_FORMAT, of a request that began at
    `offset` (gunicorn writes the time the answer was done, whole seconds)."""
    done = at(offset + ms / 1000)
    return server.ACCESS_FORMAT % {"h": ip, "t": f"[{done:%d/%b/%Y:%H:%M:%S +0000}]",
                                   "r": f"GET {target} HTTP/1.1", "s": status, "b": size,
                                   "M": ms, "a": agent}


def front(offset: float, ip: str, path: str, *, status: int = 200, size: int = 1000,
          seconds: float = 0.5, cmd: str = "", mac: str = "") -> str:
    """An nginx-access.log line, in nginx.TIMELINE_FORMAT, of a request begun at `offset`."""
    values = {"$time_iso8601": f"{at(offset + seconds):%Y-%m-%dT%H:%M:%S+00:00}",
              "$remote_addr": ip, "$request_method": "GET", "$uri": path, "$status": str(status),
              "$body_bytes_sent": str(size), "$request_time": f"{seconds:.3f}",
              "$upstream_response_time": "-", "$arg_cmd": cmd, "$arg_mac": mac}
    line = nginx.TIMELINE_FORMAT
    for name in sorted(values, key=len, reverse=True):
        line = line.replace(name, values[name])
    return line


def syslog(offset: float, ip: str, text: str) -> str:
    """A nodes.log line (rsyslog's RFC 3339 time, sender, hostname, tag and message)."""
    return f"{at(offset):%Y-%m-%dT%H:%M:%S.%f+00:00} {ip} sch-001 {text}"


def lease(offset: float, ip: str, mac: str = MAC) -> str:
    """A dnsmasq lease-file line for an address given at `offset`."""
    return f"{int(T0 + offset + LEASE_SECONDS)} {mac} {ip} * 01:{mac}"


def ack(offset: float, ip: str, mac: str = MAC) -> str:
    """A DHCPACK line of dnsmasq's log (local time, no year; --log-dhcp's transaction id)."""
    local = time.localtime(T0 + offset)
    return (f"{time.strftime('%b', local)} {local.tm_mday:2d} {time.strftime('%H:%M:%S', local)}"
            f" dnsmasq-dhcp[812]: 2718 DHCPACK(hpsbr0) {ip} {mac} sch-001")


# -- the parsers, one table per log ------------------------------------------------------------


@pytest.mark.parametrize(("line", "expected"), [
    (event(0, "init: install (CONFIGURED: unattended install of SCH)"),
     Event(T0, "INFO", MAC12, SESSION, "ipxe", "init: install (CONFIGURED: unattended install "
                                               "of SCH)")),
    (event(3, "[anaconda] a message with  two spaces", client="script"),
     Event(T0 + 3, "INFO", MAC12, SESSION, "script", "[anaconda] a message with  two spaces")),
    ("2026-12-07T08:42:54Z WARNING 10.99.0.7 - - cmd=x failed\r\n",
     Event(datetime(2026, 12, 7, 8, 42, 54, tzinfo=UTC).timestamp(), "WARNING", "10.99.0.7",
           "-", "-", "cmd=x failed")),
    ("", None),
    ("2026-12-07T08:42:54Z INFO 525400aabb01 3fa2c1 ipxe", None),  # no message field
    ("2026-12-07 08:42:54 INFO 525400aabb01 3fa2c1 ipxe init: menu (x)", None),  # not one time
    ("2026-12-07T08:42:54 INFO 525400aabb01 3fa2c1 ipxe init: menu (x)", None),  # no zone
    ("garbage \x00\x01 line with six or more fields", None),
])
def test_event_log_lines(line: str, expected: Event | None) -> None:
    assert parse_event(line) == expected


@pytest.mark.parametrize(("line", "expected"), [
    (access(2, IPXE_IP, "/cgi-bin/boot_manager.sh?cmd=init&mac=52-54-00-aa-bb-01&arch=*"),
     Fetch(T0 + 2, IPXE_IP, "GET", "/cgi-bin/boot_manager.sh", 200, 512, 0.0, "init", MAC12,
           "access")),
    (access(7, IPXE_IP, KERNEL, size="14000000", ms=2000),
     Fetch(T0 + 7, IPXE_IP, "GET", KERNEL, 200, 14000000, 2.0, "", "", "access")),
    (access(9, IPXE_IP, "/distros/x/vmlinuz", status=404, size="-", ms=5),  # whole seconds
     Fetch(T0 + 9 - 0.005, IPXE_IP, "GET", "/distros/x/vmlinuz", 404, 0, 0.005, "", "",
           "access")),
    (access(4, OS_IP, "/cgi-bin/boot_manager.sh?cmd=kickstart&mac=525400AABB01&session=*"),
     Fetch(T0 + 4, OS_IP, "GET", "/cgi-bin/boot_manager.sh", 200, 512, 0.0, "kickstart",
           MAC12, "access")),
    (access(1, IPXE_IP, "/cgi-bin/boot_manager.sh?cmd=init&mac=not-a-mac"),
     Fetch(T0 + 1, IPXE_IP, "GET", "/cgi-bin/boot_manager.sh", 200, 512, 0.0, "init", "",
           "access")),
    ('10.0.0.1 [07/Dec/2026:08:42:54 +0100] "GET /boot.ipxe HTTP/1.1" 200 80 1000ms "iPXE"',
     Fetch(datetime(2026, 12, 7, 7, 42, 53, tzinfo=UTC).timestamp(), "10.0.0.1", "GET",
           "/boot.ipxe", 200, 80, 1.0, "", "", "access")),
    ('10.0.0.1 [07/Foo/2026:08:42:54 +0000] "GET /boot.ipxe HTTP/1.1" 200 80 1ms "iPXE"', None),
    ('10.0.0.1 [31/Feb/2026:08:42:54 +0000] "GET /boot.ipxe HTTP/1.1" 200 80 1ms "iPXE"', None),
    ('10.0.0.1 - - "GET /boot.ipxe HTTP/1.1" 200 80 1ms "iPXE"', None),
    ("[2026-12-07 08:42:54 +0000] [812] [INFO] Booting worker with pid: 812", None),
    ("", None),
])
def test_gunicorn_access_log_lines(line: str, expected: Fetch | None) -> None:
    assert parse_access(line) == expected


@pytest.mark.parametrize(("line", "expected"), [
    # nginx writes whole seconds of the end: 8.25 s is written 8, and began 1.25 s earlier
    (front(7, IPXE_IP, KERNEL, size=14000000, seconds=1.25),
     Fetch(T0 + 6.75, IPXE_IP, "GET", KERNEL, 200, 14000000, 1.25, "", "", "nginx")),
    (front(0, IPXE_IP, "/cgi-bin/boot_manager.sh", cmd="init", mac="52%3A54%3A00%3Aaa%3Abb%3A01",
           seconds=0.003),
     Fetch(T0 - 0.003, IPXE_IP, "GET", "/cgi-bin/boot_manager.sh", 200, 1000, 0.003, "init",
           MAC12, "nginx")),
    (front(0, IPXE_IP, "/cgi-bin/boot_manager.sh", cmd="init", mac="52-54-00-AA-BB-01",
           seconds=0.0),
     Fetch(T0, IPXE_IP, "GET", "/cgi-bin/boot_manager.sh", 200, 1000, 0.0, "init", MAC12,
           "nginx")),
    ('2026-12-07T08:42:54+00:00 10.96.0.2 GET "/x" 200 5 0.001 0.001, 0.002 "" ""', None),
    ('2026-12-07T08:42:54+00:00 10.96.0.2 GET "/x" 200 5 0.001 - "" "" trailing', None),
    ('2026-12-07T08:42:54 10.96.0.2 GET "/x" 200 5 0.001 - "" ""', None),  # no zone
    ("", None),
])
def test_nginx_access_log_lines(line: str, expected: Fetch | None) -> None:
    assert parse_nginx(line) == expected


@pytest.mark.parametrize(("line", "expected"), [
    (syslog(5, OS_IP, "anaconda[812]: Installing packages"),
     NodeLine(T0 + 5, OS_IP, "sch-001", "anaconda[812]: Installing packages")),
    ("2026-12-07T09:42:54.5+01:00 10.99.0.3 h hps-node: x",
     NodeLine(datetime(2026, 12, 7, 8, 42, 54, 500000, tzinfo=UTC).timestamp(), "10.99.0.3",
              "h", "hps-node: x")),
    ("2026-12-07T08:42:54+00:00 10.99.0.3 h", None),
    ("Dec  7 08:42:54 10.99.0.3 h hps-node: x", None),
    ("", None),
])
def test_node_syslog_lines(line: str, expected: NodeLine | None) -> None:
    assert parse_node_line(line) == expected


@pytest.mark.parametrize(("line", "expected"), [
    (lease(-10, IPXE_IP), Lease(T0 - 10, MAC12, IPXE_IP, "leases")),
    (f"{int(T0)} 52:54:00:AA:BB:01 {IPXE_IP} sch-001 *", Lease(T0 - LEASE_SECONDS, MAC12,
                                                               IPXE_IP, "leases")),
    (f"0 {MAC} {IPXE_IP} * *", None),  # an infinite lease: when it was given is unknown
    ("duid 00:01:00:01:2c:aa:bb:cc:52:54:00:12:34:56", None),
    (f"{int(T0)} not-a-mac {IPXE_IP} * *", None),
    (f"{int(T0)} {MAC}", None),
    ("", None),
])
def test_dhcp_lease_file_lines(line: str, expected: Lease | None) -> None:
    assert parse_lease(line) == expected


@pytest.mark.parametrize(("line", "expected"), [
    (ack(-10, IPXE_IP), Lease(T0 - 10, MAC12, IPXE_IP, "dnsmasq")),
    (ack(-10, IPXE_IP).replace(" 2718 ", " "), Lease(T0 - 10, MAC12, IPXE_IP, "dnsmasq")),
    (ack(-10, IPXE_IP).replace("DHCPACK", "DHCPOFFER"), None),
    (ack(-10, IPXE_IP).replace(MAC, "zz:54:00:aa:bb:01"), None),
    ("Dec  7 08:42:54 dnsmasq[812]: read /etc/hosts - 4 names", None),
    ("Zzz  7 08:42:54 dnsmasq-dhcp[812]: DHCPACK(br0) 10.0.0.1 52:54:00:aa:bb:01", None),
    ("", None),
])
def test_dnsmasq_log_lines(line: str, expected: Lease | None) -> None:
    assert parse_dnsmasq(line, T0 + 3600) == expected


def test_a_dnsmasq_line_of_late_december_read_in_january_is_last_year() -> None:
    new_year = time.mktime((2027, 1, 1, 0, 10, 0, 0, 0, -1))
    found = parse_dnsmasq("Dec 31 23:59:00 dnsmasq-dhcp[1]: DHCPACK(br0) 10.0.0.9 "
                          "52:54:00:aa:bb:01", new_year)
    assert found is not None and found.at == new_year - 11 * 60


def test_the_timeline_reads_the_files_and_lease_time_the_writers_use() -> None:
    assert f"{LEASE_SECONDS // 3600}h" == dnsmasq.LEASE_TIME
    assert (ACCESS, NGINX, NODES) == (server.ACCESS_LOG, nginx.ACCESS_LOG, rsyslog.NODES_LOG)
    assert EVENTS == "hps-api.log"  # hps_api.observe.eventlog.setup
    assert DNSMASQ == "dnsmasq.log"


def test_a_mac_is_looked_for_in_every_spelling_a_request_uses() -> None:
    assert spellings(MAC12) == [MAC12, "52-54-00-aa-bb-01", MAC, "52%3a54%3a00%3aaa%3abb%3a01"]


def test_durations_read_as_people_say_them() -> None:
    assert [human(s) for s in (0, 0.9, 42, 60, 200, 3600, 7500, 86400, 3 * 86400 + 4 * 3600,
                               -5)] == ["0 s", "0 s", "42 s", "1 min", "3 min 20 s", "1 h",
                                        "2 h 5 min", "1 days", "3 days 4 h", "0 s"]


# -- reading only the tail ------------------------------------------------------------------


def lines_file(path: Path, count: int, start: float = T0, step: float = 1.0) -> Path:
    """Write `count` event-log lines, one per `step` seconds from `start`."""
    path.write_text("".join(event(start - T0 + n * step, f"cmd=x ok {n}", host=OTHER) + "\n"
                            for n in range(count)))
    return path


def event_time(line: str) -> float | None:
    found = parse_event(line)
    return None if found is None else found.at


def test_read_between_to_the_end_keeps_the_newest_lines_within_its_limit(
        tmp_path: Path) -> None:
    path = lines_file(tmp_path / "log", 20000)  # 20,000 lines of ~75 bytes: 1.5 MB
    window = logtail.read_between(path, T0 + 19990, None, event_time, limit=1 << 30)
    first = window.decode().splitlines()[0]
    assert (parse_event(first) or pytest.fail(first)).at <= T0 + 19990
    assert window.endswith(b"cmd=x ok 19999\n")
    assert len(window) <= 2 * logtail.BISECT_BYTES  # the last seconds, not the file
    capped = logtail.read_between(path, T0 - 1, None, event_time, limit=100_000, newest=True)
    assert 99_000 < len(capped) <= 100_000 and capped.endswith(b"cmd=x ok 19999\n")
    assert all(parse_event(line) for line in capped.decode().splitlines())  # whole lines


def test_a_small_file_is_read_whole_and_a_missing_one_as_nothing(tmp_path: Path) -> None:
    path = lines_file(tmp_path / "log", 10)
    assert logtail.read_between(path, T0 - 1, None, event_time, limit=1 << 20) == \
        path.read_bytes()
    assert logtail.read_between(tmp_path / "none", T0, None, event_time, limit=1 << 20) == b""
    assert logtail.read_head(path, 1 << 20) == path.read_bytes()
    assert logtail.read_head(path, 100) == path.read_bytes()[:path.read_bytes().index(b"\n") + 1]
    assert logtail.read_head(tmp_path / "none", 100) == b""
    assert logtail.head_time(path, event_time) == T0
    assert logtail.head_time(tmp_path / "none", event_time) is None


def test_read_between_finds_a_range_of_time_by_bisection(tmp_path: Path) -> None:
    path = lines_file(tmp_path / "log", 40000)  # 3 MB, a line a second from T0
    window = logtail.read_between(path, T0 + 20000, T0 + 20100, event_time, limit=1 << 30)
    times = [(parse_event(line) or pytest.fail(line)).at for line in window.decode().splitlines()]
    assert times[0] <= T0 + 20000 and times[-1] >= T0 + 20100  # the whole range, no line cut
    assert len(window) < 3 * logtail.BISECT_BYTES  # the range and its margins, not the file
    assert times == sorted(times) and len(times) == len(set(times))


@pytest.mark.parametrize(("since", "until", "first", "last"), [
    (T0 - 100, T0 + 5, 0, 9),  # before the file: from its start
    (T0 + 5, T0 + 9999, 0, 9),  # beyond its end: to its end (a small file is read whole)
])
def test_read_between_at_the_edges_of_a_small_file(tmp_path: Path, since: float, until: float,
                                                   first: int, last: int) -> None:
    path = lines_file(tmp_path / "log", 10)
    lines = logtail.read_between(path, since, until, event_time, limit=1 << 20).splitlines()
    assert [int(line.rsplit(b" ", 1)[1]) for line in lines] == list(range(first, last + 1))


def test_read_between_keeps_to_its_limit_and_garbled_probes_only_widen_it(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with path.open("w") as out:
        for n in range(40000):
            out.write("\x00garbled\n" if n % 2000 < 30 else event(n, f"x {n}", host=OTHER) + "\n")
    window = logtail.read_between(path, T0 + 20000, T0 + 20100, event_time, limit=1 << 30)
    numbers = [int(line.rsplit(" ", 1)[1]) for line in window.decode().splitlines()
               if parse_event(line)]
    assert numbers[0] <= 20000 and numbers[-1] >= 20100
    capped = logtail.read_between(path, T0, T0 + 40000, event_time, limit=10_000)
    assert 9_000 < len(capped) <= 10_000 and capped.endswith(b"\n")
    assert logtail.read_between(tmp_path / "none", T0, T0 + 1, event_time, limit=10) == b""


@pytest.mark.parametrize(("decided", "ranges"), [
    (None, [(-600, 60)]),
    (30, [(-600, 30 + 1200)]),  # a decision right after the start: one range
    (7200, [(-600, 60), (7140, 7200 + 1200)]),  # two hours at the menu: two ranges
])
def test_the_access_logs_are_read_around_the_start_and_after_the_decision(
        decided: float | None, ranges: list[tuple[float, float]]) -> None:
    found = fetch_ranges(T0, None if decided is None else T0 + decided)
    assert [(since - T0, until - T0) for since, until in found] == ranges


def test_lines_with_finds_each_line_once_in_file_order_in_any_case_when_asked() -> None:
    data = b"a 5254.00AA.BB01 x\nb nothing\nc 52:54:00:aa:bb:01 10.99.0.150 \nd 10.99.0.150 "
    needles = ["5254.00aa.bb01", MAC, "10.99.0.150 "]
    assert logtail.lines_with(data, needles, any_case=True) == [
        "a 5254.00AA.BB01 x", "c 52:54:00:aa:bb:01 10.99.0.150 ", "d 10.99.0.150 "]
    assert logtail.lines_with(data, needles) == ["c 52:54:00:aa:bb:01 10.99.0.150 ",
                                                 "d 10.99.0.150 "]
    assert logtail.lines_with(data, []) == []


# -- assembling the phases: a table of stories -----------------------------------------------

#: the whole life of a disk host: DHCP, /boot.ipxe, a minute at the menu, configured, install
INSTALL = {
    DNSMASQ: [ack(-10, IPXE_IP), ack(-6, IPXE_IP), ack(90, OS_IP)],
    ACCESS: [access(-8, IPXE_IP, "/boot.ipxe"),
             access(0, IPXE_IP, "/cgi-bin/boot_manager.sh?cmd=init&mac=52-54-00-aa-bb-01"),
             access(66, IPXE_IP, f"/cgi-bin/boot_manager.sh?cmd=init&mac={MAC12}&session=*"),
             access(67, IPXE_IP, KERNEL, size="14000000", ms=2000),
             access(69, IPXE_IP, INITRD, size="90000000", ms=5000),
             access(95, OS_IP, f"/cgi-bin/boot_manager.sh?cmd=kickstart&mac={MAC12}",
                    agent="curl/8")],
    EVENTS: [event(0, "init: menu (UNCONFIGURED: waiting for a type)"),
             event(5, "init: menu (UNCONFIGURED: waiting for a type)"),
             event(65, "configured as SCH/DEFAULT (x86_64:rocky:10), sch-001 10.99.0.20",
                   client="-"),
             event(66, "init: install (CONFIGURED: unattended install of SCH)"),
             event(95, "[anaconda] fetching the kickstart", client="script"),
             event(95, "kickstart served: SCH x86_64:rocky:10, state INSTALLING -> INSTALLING",
                   client="script"),
             event(100, "[anaconda] installing packages", client="script"),
             event(300, "state INSTALLING -> INSTALLED", client="script"),
             event(400, "self-test pass", client="script", session="9c0ffe")],
    NODES: [syslog(110, OS_IP, "anaconda[812]: disk partitioned")],
}
INSTALL_RECORD = {"STATE": "INSTALLED", "TYPE": "SCH", "IP": OS_IP, "OS_ID": "x86_64:rocky:10",
                  "BOOT_SESSION": "9c0ffe", "BOOT_TIME": str(int(T0 + 390))}


def parsed(story: dict[str, list[str]], now: float) -> dict[str, list[Any]]:
    """The story's lines as each parser reads them (bad lines dropped, as the readers do)."""
    parse: dict[str, Callable[[str], Any]] = {
        EVENTS: parse_event, ACCESS: parse_access, NGINX: parse_nginx, NODES: parse_node_line,
        DNSMASQ: lambda line: parse_dnsmasq(line, now), "leases": parse_lease}
    return {name: [item for item in map(parse[name], story.get(name, [])) if item is not None]
            for name in parse}


def assembled(story: dict[str, list[str]], record: dict[str, str], now: float,
              changes: tuple[Change, ...] = ()) -> Timeline:
    found = parsed(story, now)
    return assemble(HostFacts(MAC12, "default", record, KERNEL, INITRD), found[EVENTS],
                    found[ACCESS] + found[NGINX], found[NODES], found[DNSMASQ] + found["leases"],
                    changes, now)


def shape(timeline: Timeline) -> tuple[dict[str, tuple[float | None, float | None]],
                                       str | None]:
    """Each phase seen as (start after T0, took), and the phase the host waits in."""
    seen = {p.name: (None if p.at is None else round(p.at - T0, 3),
                     None if p.took is None else round(p.took, 3))
            for p in timeline.phases if p.at is not None}
    return seen, timeline.waiting.name if timeline.waiting else None


#: the journal's line of a report of INSTALLED at T0 + 300
REPORTED = (Change(f"{at(300):%Y-%m-%dT%H:%M:%SZ}", "host/525400aabb01", "STATE", "INSTALLING",
                   "INSTALLED", "api:525400aabb01"),)
STORIES: list[tuple[str, dict[str, list[str]], dict[str, str], float,
                    dict[str, tuple[float | None, float | None]], str | None]] = [
    ("a whole install, each phase after the one before",
     INSTALL, INSTALL_RECORD, T0 + 500,
     {"dhcp": (-10, 2), "bootstrap": (-8, 8), "menu": (0, 66), "decision": (66, 1),
      "kernel": (67, 2), "initrd": (69, 26), "kickstart": (95, 5), "installing": (100, 200),
      "installed": (300, 100), "first-selftest": (400, None)}, None),
    ("installed, no self-test yet: it waits for one",
     {**INSTALL, EVENTS: INSTALL[EVENTS][:-1]}, INSTALL_RECORD, T0 + 500,
     {"dhcp": (-10, 2), "bootstrap": (-8, 8), "menu": (0, 66), "decision": (66, 1),
      "kernel": (67, 2), "initrd": (69, 26), "kickstart": (95, 5), "installing": (100, 200),
      "installed": (300, None)}, "installed"),
    ("stuck after the kernel: the initrd never came",
     {DNSMASQ: INSTALL[DNSMASQ][:2], ACCESS: INSTALL[ACCESS][:4],
      EVENTS: INSTALL[EVENTS][:4]}, {"STATE": "INSTALLING", "BOOT_SESSION": SESSION}, T0 + 900,
     {"dhcp": (-10, 2), "bootstrap": (-8, 8), "menu": (0, 66), "decision": (66, 1),
      "kernel": (67, None)}, "kernel"),
    ("at the menu since its first init",
     {DNSMASQ: INSTALL[DNSMASQ][:2], ACCESS: INSTALL[ACCESS][:2], EVENTS: INSTALL[EVENTS][:2]},
     {"STATE": "UNCONFIGURED", "BOOT_SESSION": SESSION, "BOOT_TIME": str(int(T0))}, T0 + 600,
     {"dhcp": (-10, 2), "bootstrap": (-8, 8), "menu": (0, None)}, "menu"),
    ("a lease and nothing else: waiting after DHCP (TFTP, iPXE)",
     {"leases": [lease(-30, IPXE_IP), lease(-5, "10.99.0.151", "52:54:00:aa:bb:02")]},
     {"STATE": "UNCONFIGURED"}, T0 + 60, {"dhcp": (-30, None)}, "dhcp"),
    ("an installed host's own lease, no boot seen: nothing awaited",
     {"leases": [lease(-30, OS_IP)]}, {"STATE": "INSTALLED", "IP": OS_IP}, T0 + 60,
     {"dhcp": (-30, None)}, None),
    ("an installed host whose last boot the log no longer holds: nothing awaited",
     {"leases": [lease(-30, OS_IP)]}, {"STATE": "INSTALLED", "IP": OS_IP,
                                       "BOOT_SESSION": "1d1e00", "BOOT_TIME": str(int(T0))},
     T0 + 60, {"dhcp": (-30, 30), "bootstrap": (0, None)}, None),
    ("a host sent to the installer whose boot the log no longer holds waits there",
     {}, {"STATE": "CONFIGURED", "BOOT_SESSION": "1d1e00", "BOOT_TIME": str(int(T0))},
     T0 + 60, {"bootstrap": (0, None)}, "bootstrap"),
    ("empty logs: nothing seen",
     {}, {"STATE": "UNCONFIGURED"}, T0, {}, None),
    ("only malformed lines: nothing seen",
     {name: ["garbage", "", "\x00\x01 x y z w v u"] for name in (EVENTS, ACCESS, NGINX, NODES,
                                                                  DNSMASQ, "leases")},
     {"STATE": "UNCONFIGURED"}, T0, {}, None),
    ("malformed lines among the story's change nothing",
     {name: [x for line in lines for x in (line, "garbage \x00 line", line[:15])]
      for name, lines in INSTALL.items()}, INSTALL_RECORD, T0 + 500,
     {"dhcp": (-10, 2), "bootstrap": (-8, 8), "menu": (0, 66), "decision": (66, 1),
      "kernel": (67, 2), "initrd": (69, 26), "kickstart": (95, 5), "installing": (100, 200),
      "installed": (300, 100), "first-selftest": (400, None)}, None),
    ("an installed host booting from its disk: nothing more awaited",
     {ACCESS: [access(-1, OS_IP, "/boot.ipxe"),
               access(0, OS_IP, f"/cgi-bin/boot_manager.sh?cmd=init&mac={MAC12}")],
      EVENTS: [event(0, "init: localboot (INSTALLED: booting from the local disk)")]},
     {"STATE": "INSTALLED", "IP": OS_IP, "BOOT_SESSION": SESSION}, T0 + 50,
     {"bootstrap": (-1, 1), "decision": (0, None)}, None),
    ("after the install the host rebooted: the install's story is still told",
     {**INSTALL, EVENTS: [*INSTALL[EVENTS], event(
         390, "init: localboot (INSTALLED: booting from the local disk)", session="9c0ffe")]},
     INSTALL_RECORD, T0 + 500,
     {"dhcp": (-10, 2), "bootstrap": (-8, 8), "menu": (0, 66), "decision": (66, 1),
      "kernel": (67, 2), "initrd": (69, 26), "kickstart": (95, 5), "installing": (100, 200),
      "installed": (300, 100), "first-selftest": (400, None)}, None),
    ("through the front end: nginx's lines, the proxied ones in gunicorn's log from loopback",
     {NGINX: [front(-8, IPXE_IP, "/boot.ipxe", seconds=0),
              front(0, IPXE_IP, "/cgi-bin/boot_manager.sh", cmd="init",
                    mac="52-54-00-aa-bb-01", seconds=0),
              front(1, IPXE_IP, KERNEL, seconds=3), front(4, IPXE_IP, INITRD, seconds=9)],
      ACCESS: [access(-8, "127.0.0.1", "/boot.ipxe"),
               access(0, "127.0.0.1", "/cgi-bin/boot_manager.sh?cmd=init&mac=525400aabb03")],
      EVENTS: [event(0, "init: install (CONFIGURED: unattended install of SCH)")]},
     {"STATE": "INSTALLING", "BOOT_SESSION": SESSION}, T0 + 100,
     {"bootstrap": (-8, 8), "decision": (0, 1), "kernel": (1, 3), "initrd": (4, None)},
     "initrd"),
    ("a boot file from an address another host named nearer in time is not this host's",
     {ACCESS: [access(0, IPXE_IP, f"/cgi-bin/boot_manager.sh?cmd=init&mac={MAC12}"),
               access(500, IPXE_IP, f"/cgi-bin/boot_manager.sh?cmd=init&mac={OTHER}"),
               access(501, IPXE_IP, KERNEL)],
      EVENTS: [event(0, "init: install (CONFIGURED: unattended install of SCH)")]},
     {"STATE": "INSTALLING"}, T0 + 600,
     {"bootstrap": (0, 0), "decision": (0, None)}, "decision"),
]


@pytest.mark.parametrize(("story", "record", "now", "phases", "waiting"),
                         [case[1:] for case in STORIES], ids=[case[0] for case in STORIES])
def test_the_phases_of_a_story(story: dict[str, list[str]], record: dict[str, str], now: float,
                               phases: dict[str, tuple[float | None, float | None]],
                               waiting: str | None) -> None:
    assert shape(assembled(story, record, now)) == (phases, waiting)


def test_installed_comes_from_the_journal_when_the_event_log_lost_its_line() -> None:
    """... and a self-test reported before INSTALLED is not the first after it."""
    story = {EVENTS: [e for e in INSTALL[EVENTS] if "INSTALLED" not in e and "self-test" not in e]
             + [event(250, "self-test fail: disk", client="script")], ACCESS: INSTALL[ACCESS]}
    record = {**INSTALL_RECORD, "SELFTEST_AT": f"{at(450):%Y-%m-%dT%H:%M:%SZ}"}
    assert shape(assembled(story, record, T0 + 500, REPORTED)) == (
        {"bootstrap": (-8, 8), "menu": (0, 66), "decision": (66, 1), "kernel": (67, 2),
         "initrd": (69, 26), "kickstart": (95, 5), "installing": (100, 200),
         "installed": (300, None)}, "installed")
    found = {p.name: p for p in assembled(story, record, T0 + 500, REPORTED).phases}
    assert (found["installed"].source, found["installed"].detail) == (
        "journal", "STATE INSTALLING -> INSTALLED by api:525400aabb01")
    assert shape(assembled(story, record, T0 + 500))[1] == "installing"  # without the journal


def test_the_latest_self_test_stands_in_when_the_log_has_none() -> None:
    story = {EVENTS: [e for e in INSTALL[EVENTS] if "self-test" not in e],
             ACCESS: INSTALL[ACCESS]}
    record = {**INSTALL_RECORD, "SELFTEST_AT": f"{at(450):%Y-%m-%dT%H:%M:%SZ}",
              "SELFTEST_RESULT": "pass"}
    found = {p.name: p for p in assembled(story, record, T0 + 500).phases}
    selftest = found["first-selftest"]
    assert (selftest.at, selftest.source) == (T0 + 450, "record")
    assert selftest.detail.startswith("SELFTEST_RESULT=pass")
    record["SELFTEST_AT"] = f"{at(200):%Y-%m-%dT%H:%M:%SZ}"  # before INSTALLED: not the first
    assert {p.name: p for p in assembled(story, record, T0 + 500).phases}[
        "first-selftest"].at is None


def test_every_phase_is_listed_in_order_even_when_not_seen() -> None:
    found = assembled({}, {"STATE": "UNCONFIGURED"}, T0)
    assert [p.name for p in found.phases] == list(PHASE_NAMES)
    assert found.waiting is None and found.session is None


def test_each_phase_says_what_its_log_said() -> None:
    found = {p.name: (p.source, p.detail) for p in assembled(INSTALL, INSTALL_RECORD,
                                                              T0 + 500).phases}
    assert found["dhcp"] == ("dnsmasq", f"{IPXE_IP} (dnsmasq's log)")
    assert found["bootstrap"] == ("access", "GET /boot.ipxe 200")
    assert found["menu"] == ("events", "2 menu answers; the last: UNCONFIGURED: waiting for a "
                                       "type")
    assert found["decision"] == ("events", "install (CONFIGURED: unattended install of SCH)")
    assert found["kernel"] == ("access", f"GET {KERNEL} 200, 14,000,000 bytes in 2 s")
    assert found["kickstart"][1].startswith("kickstart served: SCH x86_64:rocky:10")
    assert found["installing"] == ("events", "2 reports; the latest: syslog anaconda[812]: "
                                             "disk partitioned")
    assert found["installed"] == ("events", "state INSTALLING -> INSTALLED")
    assert found["first-selftest"] == ("events", "self-test pass")


def test_the_kickstart_is_the_event_logs_line_and_the_request_only_without_it() -> None:
    early = [line if "cmd=kickstart" not in line else access(
        95, OS_IP, f"/cgi-bin/boot_manager.sh?cmd=kickstart&mac={MAC12}", ms=500)
        for line in INSTALL[ACCESS]]  # written at 95 s, begun half a second before
    phases = {p.name: p for p in assembled({**INSTALL, ACCESS: early}, INSTALL_RECORD,
                                           T0 + 500).phases}
    assert (phases["kickstart"].at, phases["kickstart"].source) == (T0 + 95, "events")
    without = [line for line in INSTALL[EVENTS] if "kickstart served" not in line]
    phases = {p.name: p for p in assembled({**INSTALL, ACCESS: early, EVENTS: without},
                                           INSTALL_RECORD, T0 + 500).phases}
    assert (phases["kickstart"].at, phases["kickstart"].detail) == (T0 + 94.5,
                                                                    "GET cmd=kickstart 200")


def test_a_phase_logged_in_whole_seconds_never_starts_before_the_one_before() -> None:
    """gunicorn writes the second its answer ended: a kernel asked for at 66.2 s and sent in
    0.5 s reads as begun at 65.5 s, before the decision logged at 66 s."""
    story = {EVENTS: INSTALL[EVENTS][:4],
             ACCESS: [*INSTALL[ACCESS][:3], access(66.2, IPXE_IP, KERNEL, ms=500)]}
    phases = {p.name: p for p in assembled(story, {"STATE": "INSTALLING"}, T0 + 100).phases}
    assert phases["decision"].at == phases["kernel"].at == T0 + 66
    assert phases["decision"].took == 0


def test_the_latest_report_shown_is_one_that_says_something() -> None:
    chatty = [*INSTALL[EVENTS][:-2], event(120, "cmd=host_variable ok", client="cli"),
              *INSTALL[EVENTS][-2:]]
    phases = {p.name: p for p in assembled({**INSTALL, EVENTS: chatty}, INSTALL_RECORD,
                                           T0 + 500).phases}
    assert phases["installing"].detail == ("3 reports; the latest: syslog anaconda[812]: disk "
                                            "partitioned")
    quiet = [line for line in chatty if "[anaconda]" not in line]
    phases = {p.name: p for p in assembled({EVENTS: quiet, ACCESS: INSTALL[ACCESS]},
                                           INSTALL_RECORD, T0 + 500).phases}
    assert (phases["installing"].at, phases["installing"].detail) == (
        T0 + 120, "1 report; the latest: cmd=host_variable ok")


def test_the_json_form_has_iso_times_and_seconds() -> None:
    data = assembled({ACCESS: INSTALL[ACCESS][:5], EVENTS: INSTALL[EVENTS][:4]},
                     {"STATE": "INSTALLING"}, T0 + 900).as_json()
    assert data["waiting"] == {"phase": "initrd", "since": f"{at(69):%Y-%m-%dT%H:%M:%SZ}",
                               "for": 831.0}
    assert data["phases"][4] == {"phase": "kernel", "at": f"{at(67):%Y-%m-%dT%H:%M:%SZ}",
                                 "took": 2.0, "source": "access",
                                 "detail": f"GET {KERNEL} 200, 14,000,000 bytes in 2 s"}
    assert data["phases"][6] == {"phase": "kickstart", "at": None, "took": None, "source": None,
                                 "detail": None}
    assert (data["mac"], data["state"], data["session"]) == (MAC12, "INSTALLING", SESSION)


# -- reading a host's timeline from its files ------------------------------------------------


def write_story(log_dir: Path, leases: Path, story: dict[str, list[str]]) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    for name, lines in story.items():
        path = leases if name == "leases" else log_dir / name
        path.write_text("".join(f"{line}\n" for line in lines))


@pytest.fixture
def installed(store: FileStore, host: RecordId, tmp_path: Path) -> LogFiles:
    """The whole install's story in the files, the host's record and OS as the store has them;
    other hosts' lines around it."""
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "REPO_PATH": "/rocky/10/", "KERNEL": "images/pxeboot/vmlinuz",
        "INITRD": "images/pxeboot/initrd.img", "STATUS": "prod"}, "t", create=True)
    store.update(host, INSTALL_RECORD, "t")
    noise = [event(n, f"cmd=x ok {n}", host=OTHER) for n in range(-100, 500, 3)]
    story = {**INSTALL, EVENTS: sorted(INSTALL[EVENTS] + noise, key=lambda line: line[:20]),
             "leases": [lease(-100, "10.99.0.160", "52:54:00:aa:bb:02"), lease(90, OS_IP)]}
    write_story(tmp_path / "log", tmp_path / "leases", story)
    return LogFiles.under(tmp_path / "log", tmp_path / "leases")


def test_host_timeline_reads_the_files_and_the_store(store: FileStore, host: RecordId,
                                                     installed: LogFiles) -> None:
    changes = [Change(f"{at(66):%Y-%m-%dT%H:%M:%SZ}", "host/525400aabb01", "STATE",
                      "CONFIGURED", "INSTALLING", "api:x")]
    found = host_timeline(store, host, installed, T0 + 500, changes=changes)
    assert shape(found) == shape(assembled(INSTALL, INSTALL_RECORD, T0 + 500))
    assert found.session == SESSION


def test_a_host_whose_logs_are_empty_has_an_empty_timeline(store: FileStore, host: RecordId,
                                                           tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    for name in (EVENTS, ACCESS, NGINX, NODES, DNSMASQ):
        (tmp_path / "log" / name).write_text("")
    found = host_timeline(store, host, LogFiles.under(tmp_path / "log", tmp_path / "leases"), T0)
    assert all(p.at is None for p in found.phases) and found.waiting is None
    assert found.state == "UNCONFIGURED"


def test_an_unknown_host_has_no_timeline(store: FileStore, tmp_path: Path) -> None:
    from hps_api.errors import NotFound

    with pytest.raises(NotFound, match="525400aabb99 not found"):
        host_timeline(store, RecordId.of_host("default", "525400aabb99"),
                      LogFiles.under(tmp_path, tmp_path / "leases"), T0)


def test_only_the_tail_the_story_needs_is_read(store: FileStore, host: RecordId,
                                               tmp_path: Path, monkeypatch) -> None:
    """A host that booted a minute ago costs the last minutes of a big log, not the file."""
    store.update(host, {"BOOT_SESSION": SESSION, "BOOT_TIME": str(int(T0))}, "t")
    log = tmp_path / "log"
    log.mkdir()
    with (log / EVENTS).open("w") as out:  # 30 MB of another host's lines, 1 MB recent, ours
        out.write((event(-86400, "cmd=x ok " + "x" * 60, host=OTHER) + "\n") * 290_000)
        out.write((event(-60, "cmd=x ok " + "x" * 60, host=OTHER) + "\n") * 10_000)
        out.write(event(0, "init: menu (UNCONFIGURED: waiting for a type)") + "\n")
    read: list[int] = []
    real = logtail.read_between

    def counting(*args: Any, **kwargs: Any) -> bytes:
        data = real(*args, **kwargs)
        read.append(len(data))
        return data

    monkeypatch.setattr(logtail, "read_between", counting)
    found = host_timeline(store, host, LogFiles.under(log, tmp_path / "leases"), T0 + 60)
    assert shape(found) == ({"bootstrap": (0, 0), "menu": (0, None)}, "menu")
    assert max(read) < 3 * 1024 * 1024, read  # the window doubled until it passed the start
    assert (log / EVENTS).stat().st_size > 30_000_000


@pytest.mark.parametrize(("rotated", "read_files"), [
    (False, ["leases", EVENTS]),  # the log goes back further than the host's last boot
    (True, ["leases"]),  # the log begins after it: nothing in it can be the host's story
])
def test_a_host_running_its_system_costs_at_most_the_leases_and_the_event_logs_cap(
        store: FileStore, host: RecordId, tmp_path: Path, monkeypatch, rotated: bool,
        read_files: list[str]) -> None:
    store.update(host, {"STATE": "INSTALLED", "BOOT_SESSION": "1d1e00",
                        "BOOT_TIME": str(int(T0 - 20 * 86400))}, "t")
    log = tmp_path / "log"
    log.mkdir()
    others = (event(0, "cmd=x ok " + "x" * 60, host=OTHER) + "\n") * 40_000  # 4 MB each
    for name in (EVENTS, ACCESS, NGINX, NODES, DNSMASQ):
        (log / name).write_text(others)
    if not rotated:
        (log / EVENTS).write_text(event(-30 * 86400, "cmd=x ok", host=OTHER) + "\n" + others)
    monkeypatch.setattr("hps_api.observe.timeline_logs.MAX_EVENT_BYTES", 1 << 20)
    read: list[tuple[str, int]] = []
    def counting(real: Callable[..., bytes]) -> Callable[..., bytes]:
        def call(path: Path, *args: Any, **kwargs: Any) -> bytes:
            data = real(path, *args, **kwargs)
            read.append((path.name, len(data)))
            return data
        return call

    for name in ("read_between", "read_head"):
        monkeypatch.setattr(logtail, name, counting(getattr(logtail, name)))
    found = host_timeline(store, host, LogFiles.under(log, tmp_path / "leases"), T0)
    assert [name for name, _ in read] == read_files
    assert all(size <= 1 << 20 for _, size in read)  # the event log's cap, not its 4 MB
    assert rotated or read[1][1] > (1 << 20) - 200
    assert shape(found) == ({"bootstrap": (-20 * 86400, None)}, None)


# -- the doors ---------------------------------------------------------------------------------


@pytest.fixture
def app_settings(config_dir: Path, tmp_path: Path) -> Settings:
    return Settings(config_dir=config_dir, log_dir=tmp_path / "log", arp_table=tmp_path / "arp",
                    dhcp_leases=tmp_path / "leases", admin_token="admin-token-1",
                    lock_timeout=0.5)


def test_the_api_answers_the_timeline_as_json(installed: LogFiles, app_settings: Settings) -> None:
    admin = webtest.TestApp(create_app(app_settings), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    data = admin.get(f"/api/v1/hosts/{MAC}/timeline").json["data"]
    assert (data["mac"], data["cluster"], data["state"]) == (MAC12, "default", "INSTALLED")
    assert [p["phase"] for p in data["phases"] if p["at"]] == list(PHASE_NAMES)
    assert data["waiting"] is None  # the story is over: installed, then its first self-test
    assert data["phases"][4]["detail"] == f"GET {KERNEL} 200, 14,000,000 bytes in 2 s"
    assert data["phases"][5]["took"] == 26.0


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/api/v1/hosts/52:54:00:aa:bb:99/timeline", 404, "host/525400aabb99 not found"),
    ("/api/v1/hosts/52:54:00:zz:bb:01/timeline", 400, "invalid MAC address"),
    ("/api/v1/hosts/01:00:5e:00:00:01/timeline", 400, "not a host MAC address"),
    (f"/api/v1/hosts/{MAC}/timeline?cluster=nope", 404, "not found"),
])
def test_the_api_refuses_what_names_no_host(app_settings: Settings, host: RecordId, path: str,
                                            status: int, message: str) -> None:
    admin = webtest.TestApp(create_app(app_settings), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    answer = admin.get(path, status=status)
    assert answer.json["ok"] is False and message in answer.json["error"]["message"]


def test_the_api_timeline_is_for_admins_only(app_settings: Settings, host: RecordId) -> None:
    lan = webtest.TestApp(create_app(app_settings), extra_environ={"REMOTE_ADDR": "10.99.0.21"})
    assert lan.get(f"/api/v1/hosts/{MAC}/timeline", status=403).json["ok"] is False


@pytest.mark.parametrize(("error", "status", "code"), [
    (StoreBusy("525400aabb01.conf.lock: still locked after 0.5 s; try again"), 503, 3),
    (CorruptRecord("hosts/525400aabb01.conf", 3, "not a KEY=value line"), 500, 3),
])
def test_a_failing_store_is_answered_as_by_every_other_door(
        app_settings: Settings, tmp_path: Path, monkeypatch, capsys, error: HpsError,
        status: int, code: int) -> None:
    """tests/test_store_errors_by_door.py's table, for the timeline's API and CLI."""
    broken = BrokenStore(error, app_settings.config_dir)
    admin = webtest.TestApp(build_app(app_settings, store=broken),
                            extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    answer = admin.get(f"/api/v1/hosts/{MAC}/timeline", status=status).json
    assert answer["error"] == {"code": status, "message": str(error)}
    monkeypatch.setattr(factory, "open_store", lambda settings: broken)
    monkeypatch.setenv("HPS_CONFIG_DIR", str(app_settings.config_dir))
    monkeypatch.setenv("HPS_LOG_DIR", str(tmp_path / "log"))
    assert cli_main(["timeline", MAC]) == code
    assert capsys.readouterr().err == f"hps-api: {error}\n"
    assert broken.calls[0] == "items"


def cli_env(tmp_path: Path) -> dict[str, str | None]:
    return {"HPS_LOG_DIR": str(tmp_path / "log"), "HPS_DHCP_LEASES": str(tmp_path / "leases")}


def test_the_cli_prints_a_table_of_phase_at_took(cli, installed: LogFiles,
                                                 tmp_path: Path) -> None:
    done = cli("hps-api", "timeline", MAC, env=cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["PHASE", "AT", "TOOK", "DETAIL"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert list(rows) == list(PHASE_NAMES)
    assert rows["kernel"].split()[1:4] == [f"{at(67):%Y-%m-%dT%H:%M:%SZ}", "2", "s"]
    assert f"GET {KERNEL} 200" in rows["kernel"]
    assert rows["menu"].split()[1:5] == [f"{at(0):%Y-%m-%dT%H:%M:%SZ}", "1", "min", "6"]
    assert lines[-1] == f"host {MAC12} (INSTALLED): nothing more is awaited"


def test_the_cli_json_is_the_apis_answer(cli, installed: LogFiles, app_settings: Settings,
                                         tmp_path: Path) -> None:
    done = cli("hps-api", "timeline", "--json", MAC12, env=cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    admin = webtest.TestApp(create_app(app_settings), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    api = admin.get(f"/api/v1/hosts/{MAC}/timeline").json["data"]
    shown = json.loads(done.stdout)
    assert {**shown, "now": None} == {**api, "now": None}


def test_the_cli_names_the_phase_a_host_waits_in(cli, store: FileStore, host: RecordId,
                                                 tmp_path: Path) -> None:
    store.update(host, {"BOOT_SESSION": SESSION, "BOOT_TIME": str(int(time.time()) - 125)}, "t")
    write_story(tmp_path / "log", tmp_path / "leases", {EVENTS: [
        event(time.time() - T0 - 125, "init: menu (UNCONFIGURED: waiting for a type)")]})
    done = cli("hps-api", "timeline", MAC, env=cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"host {MAC12} (UNCONFIGURED): in menu for 2 "
                                                   "min")
    menu = next(line for line in done.stdout.splitlines() if line.startswith("menu "))
    assert "so far" in menu and "1 menu answer; the last: UNCONFIGURED" in menu


def test_the_cli_table_cuts_long_details_and_says_when_nothing_was_seen() -> None:
    long = [*INSTALL[EVENTS][:-2], event(120, "[anaconda] " + "x" * 300, client="script"),
            *INSTALL[EVENTS][-2:]]
    lines = timeline_table(assembled({**INSTALL, EVENTS: long}, INSTALL_RECORD, T0 + 500))
    installing = next(line for line in lines if line.startswith("installing "))
    assert installing.endswith("x...") and len(installing.split("  ")[-1]) == 100
    empty = timeline_table(assembled({}, {"STATE": "CONFIGURED"}, T0))
    assert empty[-1] == f"host {MAC12} (CONFIGURED): nothing of it in the logs"
    assert [line.split() for line in empty[1:-1]] == [[name, "-", "-"] for name in PHASE_NAMES]


@pytest.mark.parametrize(("mac", "code", "message"), [
    ("52:54:00:aa:bb:99", 1, "host/525400aabb99 not found"),
    ("52:54:00:aa:bb", 2, "invalid MAC address"),
    ("ff:ff:ff:ff:ff:ff", 2, "not a host MAC address"),
])
def test_the_cli_exit_codes_as_the_other_commands(cli, host: RecordId, tmp_path: Path, mac: str,
                                                  code: int, message: str) -> None:
    done = cli("hps-api", "timeline", mac, env=cli_env(tmp_path))
    assert (done.returncode, done.stdout) == (code, "")
    assert done.stderr.startswith("hps-api: ") and message in done.stderr


def test_the_cli_without_a_mac_is_usage(cli, tmp_path: Path) -> None:
    done = cli("hps-api", "timeline", env=cli_env(tmp_path))
    assert done.returncode == 2 and "MAC" in done.stderr


def test_the_host_page_has_a_timeline_section(installed: LogFiles,
                                              app_settings: Settings) -> None:
    lan = webtest.TestApp(create_app(app_settings), extra_environ={"REMOTE_ADDR": "10.99.0.21"})
    page = lan.get(f"/hosts/{MAC}").html
    section = page.find("section", id="timeline")
    assert section.h2.text == "Timeline"
    rows = {tr["id"]: [cell.get_text(" ", strip=True) for cell in tr.find_all(["th", "td"])]
            for tr in section.find_all("tr", id=True)}
    assert list(rows) == [f"phase-{name}" for name in PHASE_NAMES]
    assert rows["phase-kernel"][:3] == ["kernel", f"{at(67):%H:%M:%S}", "2 s"]
    moment = section.find("tr", id="phase-kernel").find("time")
    assert moment["datetime"] == f"{at(67):%Y-%m-%dT%H:%M:%SZ}"
    assert moment["title"].endswith(f" ago, {at(67):%Y-%m-%dT%H:%M:%SZ}")
    assert rows["phase-kernel"][3:] == ["access.log",
                                        f"GET {KERNEL} 200, 14,000,000 bytes in 2 s"]
    assert "this provisioning's story is over" in section.find(id="timeline-now").text


def test_the_host_page_names_the_phase_a_host_waits_in_and_what_was_not_seen(
        store: FileStore, host: RecordId, app_settings: Settings, tmp_path: Path) -> None:
    now = time.time()
    store.update(host, {"STATE": "INSTALLING", "BOOT_SESSION": SESSION}, "t")
    write_story(tmp_path / "log", tmp_path / "leases", {
        EVENTS: [event(now - T0 - 400, "init: install (CONFIGURED: unattended install of SCH)")],
        ACCESS: [access(now - T0 - 399, IPXE_IP, f"/cgi-bin/boot_manager.sh?cmd=x&mac={MAC12}"),
                 access(now - T0 - 398, IPXE_IP, KERNEL)]})
    lan = webtest.TestApp(create_app(app_settings), extra_environ={"REMOTE_ADDR": "10.99.0.21"})
    section = lan.get(f"/hosts/{MAC}").html.find("section", id="timeline")
    assert re.fullmatch(r"In kernel for 6 min 3[89] s, since \d\d:\d\d:\d\d UTC\. Boot "
                        rf"session {SESSION}\.", section.find(id="timeline-now").text.strip())
    kernel = section.find("tr", id="phase-kernel")
    assert re.fullmatch(r"6 min 3[89] s so far", kernel.find("strong").text)
    assert section.find("tr", id="phase-initrd").td.text == "not seen"


def test_the_host_page_says_when_nothing_was_seen(app_settings: Settings, host: RecordId) -> None:
    lan = webtest.TestApp(create_app(app_settings), extra_environ={"REMOTE_ADDR": "10.99.0.21"})
    section = lan.get(f"/hosts/{MAC}").html.find("section", id="timeline")
    assert section.find("p", class_="empty").text.startswith("Nothing of this host in the logs")
    assert section.find("table") is None
