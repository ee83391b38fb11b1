"""Stuck hosts (docs/stuck.md): the rules as a table at their boundaries, the thresholds an
operator sets (and the values refused), the scan over a store that real requests wrote, the
announcement made once, the watch that runs in one process, `/metrics`, the dashboard's group,
the host list's filter, the API, the CSV export and `hps-api stuck`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_browser
import webtest
from prometheus_client.parser import text_string_to_metric_families
from test_gunicorn import BIN, START_TIMEOUT, Server, fetch, free_port, server_env, stop_server
from test_webhook import SECRET, running_receiver, verified

from hps_api import create_app
from hps_api.boot import flow
from hps_api.model.cluster_keys import InvalidKey
from hps_api.model.stuck import (
    DEFAULT_LIMITS,
    LIMITS,
    NO_HISTORY,
    RULES,
    HostHistory,
    Limits,
    findings,
)
from hps_api.observe import eventlog
from hps_api.observe.webhook import HEADER
from hps_api.ops import clusters
from hps_api.ops import hosts as host_ops
from hps_api.ops.announce import Announcer, Watch, payload
from hps_api.ops.stuck import JournalHistory, find_stuck, history_for, iso
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.kvfile import format_record, from_mapping

NOW = 1_736_000_000.0  # 2025-01-04T14:13:20Z
WEEK = 7 * 86400
URL = "/cgi-bin/boot_manager.sh"
IPXE = {"User-Agent": "iPXE/1.21.1+"}
ANACONDA = {"User-Agent": "anaconda/40.22.3"}
#: the headless Chromium of tests/test_browser.py, one for the module
driver = test_browser.driver
#: the lab's hosts: MAC -> the address the ARP table gives it
LAB = {"525400aabb01": "10.99.0.21", "525400aabb02": "10.99.0.22", "525400aabb03": "10.99.0.23"}
INSTALLER, LOOPER, WAITER = LAB


def ago(seconds: float, now: float = NOW) -> str:
    return iso(now - seconds) or ""


def known(**values: Any) -> HostHistory:
    """A history that covers the last week."""
    return HostHistory(known_from=NOW - WEEK, **values)


def boots(*seconds_ago: float) -> tuple[float, ...]:
    return tuple(sorted(NOW - s for s in seconds_ago))


INSTALLING = {"STATE": "INSTALLING"}
SIX_BOOTS = boots(1800, 1500, 1200, 900, 600, 300)

#: (rule, record, history, stuck?) — each rule on both sides of its boundary (defaults)
CASES: list[tuple[str, str, dict[str, str], HostHistory, bool]] = [
    # kernel fetch: 10 min after the installer's decision, no kickstart since
    ("kernel-at-10-min", "kernel_fetch", INSTALLING,
     known(state_at=NOW - 600, state="INSTALLING"), True),
    ("kernel-before-10-min", "kernel_fetch", INSTALLING,
     known(state_at=NOW - 599, state="INSTALLING"), False),
    ("kernel-kickstart-fetched", "kernel_fetch", INSTALLING,
     known(state_at=NOW - 900, state="INSTALLING", kickstart_at=NOW - 890), False),
    ("kernel-kickstart-of-an-earlier-boot", "kernel_fetch",
     {**INSTALLING, "BOOT_TIME": str(int(NOW - 600))},
     known(state_at=NOW - 3600, state="INSTALLING", kickstart_at=NOW - 3590), True),
    ("kernel-this-boot-just-began", "kernel_fetch",
     {**INSTALLING, "BOOT_TIME": str(int(NOW - 599))},
     known(state_at=NOW - 3600, state="INSTALLING", kickstart_at=NOW - 3590), False),
    # a host that cannot load the installer asks again every 30 s: the wait runs from the first
    ("kernel-retried-every-30-s", "kernel_fetch", {**INSTALLING, "BOOT_TIME": str(int(NOW - 30))},
     known(boots=boots(*range(570, 0, -30)), state_at=NOW - 600, state="INSTALLING"), True),
    ("kernel-retried-since-the-kickstart", "kernel_fetch",
     {**INSTALLING, "BOOT_TIME": str(int(NOW - 30))},
     known(boots=boots(*range(1200, 0, -30)), state_at=NOW - 1300, state="INSTALLING",
           kickstart_at=NOW - 580), False),
    ("kernel-no-history", "kernel_fetch", {**INSTALLING, "BOOT_TIME": str(int(NOW - 3600))},
     NO_HISTORY, False),
    ("kernel-decision-before-the-journal", "kernel_fetch",
     {**INSTALLING, "BOOT_TIME": str(int(NOW - WEEK - 60))}, known(), False),
    ("kernel-installed", "kernel_fetch", {"STATE": "INSTALLED"},
     known(state_at=NOW - 3600, state="INSTALLED"), False),
    # install gave up: INSTALL_FAILED is stuck from the change, whatever the time
    ("failed-just-now", "install_failed", {"STATE": "INSTALL_FAILED", "INSTALL_ATTEMPTS": "3"},
     known(state_at=NOW - 1, state="INSTALL_FAILED"), True),
    ("failed-changed-past-the-journal", "install_failed",
     {"STATE": "INSTALL_FAILED", "UPDATED": ago(WEEK * 2)}, known(state_at=NOW - 60,
                                                                  state="INSTALLING"), True),
    ("failed-not", "install_failed", INSTALLING, known(state_at=NOW - 60, state="INSTALLING"),
     False),
    # boot loop: more than 5 boots in 30 min, none after a state change
    ("loop-six-in-30-min", "boot_loop", {"STATE": "INSTALLED"}, known(boots=SIX_BOOTS), True),
    ("loop-first-just-outside", "boot_loop", {"STATE": "INSTALLED"},
     known(boots=boots(1801, 1500, 1200, 900, 600, 300)), False),
    ("loop-five", "boot_loop", {"STATE": "INSTALLED"}, known(boots=SIX_BOOTS[1:]), False),
    ("loop-progress-after-the-first", "boot_loop", INSTALLING,
     known(boots=SIX_BOOTS, state_at=NOW - 1700, state="INSTALLING"), False),
    ("loop-progress-before", "boot_loop", INSTALLING,
     known(boots=SIX_BOOTS, state_at=NOW - 1800, state="INSTALLING"), True),
    # install timeout: INSTALLING for 45 min
    ("timeout-at-45-min", "install_timeout", INSTALLING,
     known(state_at=NOW - 2700, state="INSTALLING", kickstart_at=NOW - 2690), True),
    ("timeout-before-45-min", "install_timeout", INSTALLING,
     known(state_at=NOW - 2699, state="INSTALLING"), False),
    ("timeout-journal-says-otherwise", "install_timeout", INSTALLING,
     known(state_at=NOW - 9000, state="INSTALLED"), False),
    ("timeout-since-before-the-journal", "install_timeout", INSTALLING,
     HostHistory(known_from=NOW - 2700), True),
    ("timeout-no-history", "install_timeout", INSTALLING, NO_HISTORY, False),
    # install gone silent: sent to the installer, nothing heard for an hour
    ("silent-an-hour", "install_silent", {"STATE": "CONFIGURED", "LAST_SEEN": ago(3600)},
     NO_HISTORY, True),
    ("silent-not-yet", "install_silent", {"STATE": "CONFIGURED", "LAST_SEEN": ago(3599)},
     NO_HISTORY, False),
    ("silent-updated-only", "install_silent", {"STATE": "REINSTALL", "UPDATED": ago(3600)},
     NO_HISTORY, True),
    ("silent-installed", "install_silent", {"STATE": "INSTALLED", "LAST_SEEN": ago(WEEK)},
     NO_HISTORY, False),
    # menu wait: at the menu for a day and still polling (seen within 15 min)
    ("menu-a-day", "menu_wait", {"STATE": "UNCONFIGURED", "LAST_SEEN": ago(60)},
     known(state_at=NOW - 86400, state="UNCONFIGURED"), True),
    ("menu-not-a-day", "menu_wait", {"STATE": "UNCONFIGURED", "LAST_SEEN": ago(60)},
     known(state_at=NOW - 86399, state="UNCONFIGURED"), False),
    ("menu-seen-15-min-ago", "menu_wait", {"STATE": "INSTALL_FAILED", "LAST_SEEN": ago(900)},
     known(state_at=NOW - 2 * 86400, state="INSTALL_FAILED"), True),
    ("menu-no-longer-polling", "menu_wait", {"STATE": "INSTALL_FAILED", "LAST_SEEN": ago(901)},
     known(state_at=NOW - 2 * 86400, state="INSTALL_FAILED"), False),
    ("menu-no-state-is-unconfigured", "menu_wait", {"LAST_SEEN": ago(10)},
     HostHistory(known_from=NOW - 2 * 86400), True),
    ("menu-installed", "menu_wait", {"STATE": "INSTALLED", "LAST_SEEN": ago(10)},
     known(state_at=NOW - WEEK, state="INSTALLED"), False),
    # self-test: a running host whose last report is not a pass
    ("selftest-fail", "selftest", {"STATE": "INSTALLED", "SELFTEST_RESULT": "fail",
                                   "SELFTEST_DNS": "fail:no resolver"}, NO_HISTORY, True),
    ("selftest-diskless-fail", "selftest", {"STATE": "NETWORK_BOOT", "SELFTEST_RESULT": "fail"},
     NO_HISTORY, True),
    ("selftest-pass", "selftest", {"STATE": "INSTALLED", "SELFTEST_RESULT": "pass"},
     NO_HISTORY, False),
    ("selftest-old-report-at-the-menu", "selftest",
     {"STATE": "INSTALL_FAILED", "SELFTEST_RESULT": "fail"}, NO_HISTORY, False),
    ("selftest-never-reported", "selftest", {"STATE": "INSTALLED"}, NO_HISTORY, False),
]


@pytest.mark.parametrize(("rule", "record", "history", "stuck"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_rule_on_both_sides_of_its_boundary(rule: str, record: dict[str, str],
                                                 history: HostHistory, stuck: bool) -> None:
    found = RULES[rule](record, history, NOW, DEFAULT_LIMITS)
    assert (found is not None) == stuck
    if found is not None:
        assert found.rule == rule and found.detail
        assert rule in [f.rule for f in findings(record, history, NOW)]


def test_every_rule_is_in_the_table() -> None:
    assert {case[1] for case in CASES} == set(RULES)


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_findings_asks_only_the_rules_of_the_state_and_misses_none(case) -> None:
    _, _, record, history, _ = case
    every = tuple(found for rule in RULES.values()
                  if (found := rule(record, history, NOW, DEFAULT_LIMITS)) is not None)
    assert findings(record, history, NOW) == every


def test_findings_name_since_when_and_put_the_most_telling_rule_first() -> None:
    record = {**INSTALLING, "LAST_SEEN": ago(4000), "HOSTNAME": "sch-001"}
    found = findings(record, known(state_at=NOW - 4000, state="INSTALLING"), NOW)
    assert [f.rule for f in found] == ["kernel_fetch", "install_timeout", "install_silent"]
    assert found[0].since == NOW - 4000
    assert found[1].detail == "INSTALLING for 1 h 6 min (INSTALL_TIMEOUT=45 min)"
    since_journal = findings(INSTALLING, HostHistory(known_from=NOW - 3600), NOW)
    assert since_journal[0].detail.startswith("INSTALLING for at least 1 h")


def test_the_cluster_record_moves_the_boundaries_and_a_hand_edited_value_counts_as_default(
) -> None:
    limits = Limits.of({"INSTALL_TIMEOUT": "60", "BOOT_LOOP_COUNT": "many",
                        "MENU_TIMEOUT": "600", "MENU_WAIT_HOURS": "0"})
    assert (limits.install_timeout, limits.boot_loop_count, limits.menu_wait_hours,
            limits.menu_timeout) == (60, 5, 24, 600)
    rule = RULES["install_timeout"]
    assert rule(INSTALLING, known(state_at=NOW - 3599, state="INSTALLING"), NOW, limits) is None
    assert rule(INSTALLING, known(state_at=NOW - 3600, state="INSTALLING"), NOW, limits)
    polling = {"STATE": "UNCONFIGURED", "LAST_SEEN": ago(1800)}  # 3 x MENU_TIMEOUT=600
    history = known(state_at=NOW - 86400, state="UNCONFIGURED")
    assert RULES["menu_wait"](polling, history, NOW, limits)
    assert RULES["menu_wait"](polling, history, NOW, DEFAULT_LIMITS) is None


# -- the thresholds an operator sets -------------------------------------------------------------

BAD_VALUES = [(key, value) for key, limit in LIMITS.items()
              for value in (str(limit.low - 1), str(limit.high + 1), "abc", "-5", "1.5", "")]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES,
                         ids=[f"{k}={v or 'empty'}" for k, v in BAD_VALUES])
def test_a_bad_threshold_is_refused_naming_the_key_and_nothing_is_written(
        store: FileStore, settings: Settings, key: str, value: str) -> None:
    before = store.items(RecordId.of_cluster("default"))
    with pytest.raises(InvalidKey) as refused:
        clusters.set_key(store, settings, "default", key, value, "test:admin")
    assert refused.value.key == key
    assert store.items(RecordId.of_cluster("default")) == before


def test_a_good_threshold_is_kept_in_canonical_form_and_the_scan_uses_it(
        store: FileStore, settings: Settings) -> None:
    record = clusters.set_key(store, settings, "default", "install_timeout", "090", "test:admin")
    assert record["INSTALL_TIMEOUT"] == "90"
    assert find_stuck(store, "default").limits.install_timeout == 90


def test_cluster_config_refuses_a_bad_threshold_with_exit_2(cli, store: FileStore) -> None:
    refused = cli("cluster_config", "set", "BOOT_LOOP_MINUTES", "0")
    assert refused.returncode == 2
    assert "BOOT_LOOP_MINUTES" in refused.stderr and "from 1 to 1440" in refused.stderr
    assert "BOOT_LOOP_MINUTES" not in store.items(RecordId.of_cluster("default"))
    assert cli("cluster_config", "set", "BOOT_LOOP_MINUTES", "20").returncode == 0
    assert store.items(RecordId.of_cluster("default"))["BOOT_LOOP_MINUTES"] == "20"


# -- a lab: real requests write the store the scan reads ------------------------------------------


@pytest.fixture
def lab(tmp_path: Path, store: FileStore) -> Settings:
    """A bootable cluster (an SCH OS whose files exist) and an ARP table naming LAB's hosts."""
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24"}, "test:setup")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH", "REPO_PATH": "rocky/10", "KERNEL": "vmlinuz",
        "INITRD": "initrd.img"}, "test:setup", create=True)
    distro = tmp_path / "resources/distros/rocky/10"
    distro.mkdir(parents=True)
    for name in ("vmlinuz", "initrd.img"):
        (distro / name).write_bytes(b"boot file\n")
    rows = [f"{ip:<17}0x1         0x2         {':'.join(mac[i:i + 2] for i in range(0, 12, 2))}"
            "     *        br0" for mac, ip in LAB.items()]
    (tmp_path / "arp").write_text("IP address       HW type     Flags       HW address            "
                                  "Mask     Device\n" + "\n".join(rows) + "\n")
    return Settings(config_dir=store.layout.root, log_dir=tmp_path / "log",
                    arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                    resources_dir=tmp_path / "resources", admin_token="admin-token-1",
                    dnsmasq_pidfile=tmp_path / "dnsmasq.pid", lock_timeout=0.5)


@pytest.fixture
def app(lab: Settings) -> webtest.TestApp:
    """The real app, called by default from a LAN address that is no host."""
    return webtest.TestApp(create_app(lab), extra_environ={"REMOTE_ADDR": "10.99.0.77"})


def from_host(app: webtest.TestApp, mac: str, query: str, agent: dict[str, str] = IPXE,
              status: int = 200) -> webtest.TestResponse:
    return app.get(f"{URL}?{query}", headers=agent, status=status,
                   extra_environ={"REMOTE_ADDR": LAB[mac]})


@pytest.fixture
def later_boots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make each boot one minute after the last as `init` sees it (a new session id each), as a
    host that restarts does; the journal keeps the real times."""
    clock = iter(range(int(time.time()), int(time.time()) + 10**6, 60))

    class Clock:
        @staticmethod
        def time() -> float:
            return float(next(clock))

    monkeypatch.setattr(flow, "time", Clock)


def rules_of(store: FileStore, at: float) -> dict[str, list[str]]:
    return {mac: [f.rule for f in host.findings]
            for mac, host in find_stuck(store, "default", at).hosts.items()}


def test_an_install_from_decision_to_report_through_real_requests(
        app: webtest.TestApp, store: FileStore, lab: Settings) -> None:
    from_host(app, INSTALLER, f"cmd=init&mac={INSTALLER}")  # registers, UNCONFIGURED
    host_ops.configure(store, lab, "default", INSTALLER, "SCH", None, "test:admin", admin=True)
    assert "kernel" in from_host(app, INSTALLER, f"cmd=init&mac={INSTALLER}").text
    decided = time.time()
    assert store.items(RecordId.of_host("default", INSTALLER))["STATE"] == "INSTALLING"
    assert rules_of(store, decided) == {}
    assert rules_of(store, decided + 11 * 60) == {INSTALLER: ["kernel_fetch"]}
    from_host(app, INSTALLER, "cmd=kickstart", ANACONDA)
    assert rules_of(store, decided + 11 * 60) == {}
    assert rules_of(store, decided + 46 * 60) == {INSTALLER: ["install_timeout"]}
    from_host(app, INSTALLER, "cmd=set_status&status=INSTALLED", ANACONDA)
    assert rules_of(store, decided + 46 * 60) == {}


@pytest.mark.usefixtures("later_boots")
def test_a_host_that_keeps_restarting_is_a_boot_loop_which_its_record_alone_does_not_show(
        app: webtest.TestApp, store: FileStore) -> None:
    store.update(RecordId.of_host("default", LOOPER), {
        "STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": "sch-002"}, "test:setup", create=True)
    for _ in range(5):
        from_host(app, LOOPER, f"cmd=init&mac={LOOPER}")
    assert rules_of(store, time.time()) == {}
    from_host(app, LOOPER, f"cmd=init&mac={LOOPER}")
    assert rules_of(store, time.time()) == {LOOPER: ["boot_loop"]}
    assert not findings(store.items(RecordId.of_host("default", LOOPER)), NO_HISTORY,
                        time.time())
    assert rules_of(store, time.time() + 31 * 60) == {}


def test_a_host_polling_its_menu_for_a_day_is_stuck_and_a_poll_is_no_new_boot(
        app: webtest.TestApp, store: FileStore) -> None:
    script = from_host(app, WAITER, f"cmd=init&mac={WAITER}").text  # registered: the menu
    session = store.items(RecordId.of_host("default", WAITER))["BOOT_SESSION"]
    assert f"session={session}" in script
    for _ in range(3):  # the menu's polls
        from_host(app, WAITER, f"cmd=init&mac={WAITER}&session={session}")
    assert len(history_for(store.layout.journal("default")).read()[WAITER].boots) == 1
    registered = time.time()
    assert rules_of(store, registered + 86400 + 60) == {}  # not seen for a day: not polling
    rid = RecordId.of_host("default", WAITER)
    store.stamp(rid, {"LAST_SEEN": ago(60, registered + 86400 + 60)}, "test:later-poll")
    assert rules_of(store, registered + 86400 + 60) == {WAITER: ["menu_wait"]}
    assert rules_of(store, registered + 86400 - 60) == {}


def test_a_journal_read_again_only_reads_what_was_appended_and_follows_a_rotation(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.log"

    def line(mac: str, key: str, new: str | None, at: float) -> str:
        return json.dumps({"time": iso(at), "record": f"host/{mac}", "key": key, "old": None,
                           "new": new, "actor": "t"}) + "\n"

    path.write_text(line(INSTALLER, "STATE", "INSTALLING", NOW - 900)
                    + line(INSTALLER, "BOOT_SESSION", "aaaaaa", NOW - 900) + '{"torn')
    history = JournalHistory(path)
    first = history.read()[INSTALLER]
    assert (first.state, first.state_at, first.boots, first.known_from) == (
        "INSTALLING", NOW - 900, (NOW - 900,), NOW - 900)
    with path.open("a") as handle:  # the torn line is finished, then a kickstart is served
        handle.write('", "x": 1}\n' + line(INSTALLER, ".ks", "f" * 64, NOW - 800))
    assert history.read()[INSTALLER].kickstart_at == NOW - 800
    os.link(path, tmp_path / "journal.log.1")  # what hps_api.store.rotation does
    with path.open("a") as handle:  # a line appended just before the rename
        handle.write(line(INSTALLER, "BOOT_SESSION", "bbbbbb", NOW - 700))
    fresh = tmp_path / "fresh"
    fresh.write_text(line(LOOPER, "BOOT_SESSION", "cccccc", NOW - 600))
    fresh.rename(path)
    found = history.read()
    assert found[INSTALLER].boots == (NOW - 900, NOW - 700)
    assert found[INSTALLER].known_from == NOW - 900 and found[LOOPER].boots == (NOW - 600,)
    assert history_for(path) is history_for(path)


# -- where they show ----------------------------------------------------------------------------


@pytest.fixture
def stuck_hosts(store: FileStore) -> dict[str, str]:
    """Two stuck hosts a record shows (a failing self-test, a silent install) and one fine."""
    hosts = {"525400cc0001": {"STATE": "INSTALLED", "HOSTNAME": "sch-101", "TYPE": "SCH",
                              "SELFTEST_RESULT": "fail", "SELFTEST_NTP": "fail:unreachable",
                              "SELFTEST_AT": ago(120, time.time())},
             "525400cc0002": {"STATE": "CONFIGURED", "HOSTNAME": "sch-102", "TYPE": "SCH",
                              "LAST_SEEN": ago(3 * 3600, time.time())},
             "525400cc0003": {"STATE": "INSTALLED", "HOSTNAME": "sch-103", "TYPE": "SCH",
                              "SELFTEST_RESULT": "pass"}}
    for mac, values in hosts.items():
        store.update(RecordId.of_host("default", mac), values, "test:setup", create=True)
    return {"525400cc0001": "selftest", "525400cc0002": "install_silent"}


def test_the_dashboard_groups_the_stuck_hosts_with_their_rule(web: webtest.TestApp,
                                                              stuck_hosts: dict[str, str]) -> None:
    page = web.get("/").html
    group = page.find(id="attention-stuck")
    assert group.h3.a.text == "Stuck: 2" and group.h3.a["href"] == "/hosts?stuck=1"
    notes = {row.find("a").text: row.find("td", class_="note").text
             for row in group.find_all("tr")}
    assert notes == {"52:54:00:cc:00:01": "self-test failing: ntp failed in the last report",
                     "52:54:00:cc:00:02": "install gone silent: CONFIGURED, nothing heard from "
                                          "it for 3 h (INSTALL_SILENT_MINUTES=60)"}


def test_the_filter_the_api_and_the_export_list_the_same_stuck_hosts(
        web: webtest.TestApp, stuck_hosts: dict[str, str]) -> None:
    listed = web.get("/hosts?stuck=1").html.select("table#hosts tr td a.mono")
    assert [a.text for a in listed] == ["52:54:00:cc:00:02", "52:54:00:cc:00:01"]
    api = web.get("/api/v1/hosts?stuck=1&sort=mac",
                  headers={"Authorization": "Bearer admin-token-1"}).json
    assert [h["mac"] for h in api["data"]["hosts"]] == list(stuck_hosts)
    csv = web.get("/hosts.csv?stuck=1").text.splitlines()
    assert len(csv) == 3 and "52:54:00:cc:00:01" in csv[1] + csv[2]


@pytest.mark.usefixtures("later_boots")
def test_the_filter_sees_what_only_the_journal_shows(app: webtest.TestApp,
                                                    store: FileStore) -> None:
    store.update(RecordId.of_host("default", LOOPER), {
        "STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": "sch-002"}, "test:setup", create=True)
    for _ in range(6):
        from_host(app, LOOPER, f"cmd=init&mac={LOOPER}")
    listed = app.get("/hosts?stuck=1").html.select("table#hosts tr td a.mono")
    assert [a.text for a in listed] == ["52:54:00:aa:bb:02"]
    group = app.get("/").html.find(id="attention-stuck")
    assert "boot loop: 6 boots in" in group.find("td", class_="note").text


def metric(text: str, name: str, **labels: str) -> list[float]:
    return [s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name and labels.items() <= s.labels.items()]


def test_metrics_count_the_stuck_hosts_per_rule_without_naming_them(
        web: webtest.TestApp, stuck_hosts: dict[str, str]) -> None:
    text = web.get("/metrics").text
    counts = {rule: metric(text, "hps_hosts_stuck", cluster="default", rule=rule)
              for rule in RULES}
    assert counts == {rule: [1.0 if rule in stuck_hosts.values() else 0.0] for rule in RULES}
    assert "525400cc" not in text and "sch-101" not in text


# -- announced once -----------------------------------------------------------------------------


class Recorder:
    """A webhook that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, body: dict[str, Any]) -> bool:
        self.sent.append(body)
        return True


@pytest.fixture
def syslog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A local syslog socket the event log writes to (and the log dir tmp_path/log)."""
    address = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(0.2)
    monkeypatch.setattr(eventlog, "_SYSLOG_SOCKET", address)
    eventlog.setup(tmp_path / "log")
    try:
        yield server
    finally:
        server.close()
        monkeypatch.undo()
        eventlog.setup(tmp_path / "log")


def received(server: socket.socket) -> list[str]:
    lines = []
    while True:
        try:
            lines.append(server.recv(8192).decode())
        except TimeoutError:
            return lines


def test_a_host_is_announced_once_when_it_becomes_stuck_and_again_after_it_recovered(
        store: FileStore, stuck_hosts: dict[str, str], syslog: socket.socket,
        tmp_path: Path) -> None:
    webhook = Recorder()
    announcer = Announcer(store.layout.root, webhook)  # type: ignore[arg-type]
    scan = find_stuck(store, "default")
    assert [h.mac for h in announcer.announce(scan)] == list(stuck_hosts)
    assert announcer.announce(find_stuck(store, "default")) == []
    again = Announcer(store.layout.root, webhook)  # a restarted server  # type: ignore[arg-type]
    assert again.announce(find_stuck(store, "default")) == []
    log = (tmp_path / "log/hps-api.log").read_text().splitlines()
    warnings = [line for line in log if " WARNING " in line]
    assert len(warnings) == 2
    assert warnings[0].split()[2] == "525400cc0001"
    assert warnings[0].endswith("stuck: self-test failing (selftest): ntp failed in the last "
                                "report")
    assert sum(" WARNING 525400cc000" in line for line in received(syslog)) == 2
    assert [b["mac"] for b in webhook.sent] == list(stuck_hosts)
    assert webhook.sent[1] == {
        "event": "host_stuck", "cluster": "default", "mac": "525400cc0002",
        "hostname": "sch-102", "rule": "install_silent",
        "since": store.items(RecordId.of_host("default", "525400cc0002"))["LAST_SEEN"],
        "detail": "CONFIGURED, nothing heard from it for 3 h (INSTALL_SILENT_MINUTES=60)"}
    assert set(again.announced("default")) == set(stuck_hosts)
    rid = RecordId.of_host("default", "525400cc0001")
    store.update(rid, {"SELFTEST_RESULT": "pass", "SELFTEST_NTP": "pass"}, "test:node")
    assert again.announce(find_stuck(store, "default")) == []
    assert "no longer stuck (selftest)" in (tmp_path / "log/hps-api.log").read_text()
    store.update(rid, {"SELFTEST_RESULT": "fail"}, "test:node")
    assert [h.mac for h in again.announce(find_stuck(store, "default"))] == ["525400cc0001"]
    assert len(webhook.sent) == 3
    # stuck under another rule is news: the silent install, given up on, is announced again
    store.update(RecordId.of_host("default", "525400cc0002"), {"STATE": "INSTALL_FAILED"}, "t")
    assert [h.mac for h in again.announce(find_stuck(store, "default"))] == ["525400cc0002"]
    assert webhook.sent[3]["rule"] == "install_failed" and len(webhook.sent) == 4
    assert again.announce(find_stuck(store, "default")) == []


def test_only_one_watch_of_a_config_dir_scans(store: FileStore,
                                              stuck_hosts: dict[str, str]) -> None:
    first, second = (Watch(store, Announcer(store.layout.root), interval=0.05)
                     for _ in range(2))
    assert first.leads() and not second.leads()
    assert [sorted(scan.hosts) for scan in first.scan_once()] == [sorted(stuck_hosts)]
    thread = first.start()
    first.stop()
    thread.join(5)
    assert not thread.is_alive() and second.leads()  # the lock went with the first


def test_the_payload_names_host_rule_since_and_why(store: FileStore,
                                                   stuck_hosts: dict[str, str]) -> None:
    host = find_stuck(store, "default").hosts["525400cc0001"]
    body = payload("default", host)
    assert set(body) == {"event", "cluster", "mac", "hostname", "rule", "since", "detail"}
    assert (body["rule"], body["hostname"]) == ("selftest", "sch-101")


# -- hps-api stuck ------------------------------------------------------------------------------


def test_the_cli_lists_the_stuck_hosts_and_exits_1(cli, stuck_hosts: dict[str, str]) -> None:
    listed = cli("hps-api", "stuck")
    assert listed.returncode == 1, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t")[:4] == ["52:54:00:cc:00:01", "sch-101", "INSTALLED",
                                        "self-test failing"]
    assert lines[-1] == "2 stuck of 3 host(s) in cluster default"
    data = json.loads(cli("hps-api", "stuck", "--json").stdout)
    assert [(h["mac"], h["rule"]) for h in data["stuck"]] == list(stuck_hosts.items())
    assert data["checked"] == 3 and data["limits"]["INSTALL_TIMEOUT"] == 45


def test_the_cli_exits_0_when_no_host_is_stuck_and_names_a_bad_cluster(cli) -> None:
    quiet = cli("hps-api", "stuck")
    assert (quiet.returncode, quiet.stdout) == (0, "0 stuck of 0 host(s) in cluster default\n")
    unknown = cli("hps-api", "stuck", "--cluster", "nosuch")
    assert unknown.returncode == 1 and "nosuch" in unknown.stderr


# -- in the server: one worker scans and announces ------------------------------------------------


@pytest.mark.slow
def test_the_server_announces_a_stuck_host_once_whatever_the_worker_count(tmp_path: Path) -> None:
    with running_receiver() as hook:
        env = server_env(tmp_path, HPS_WEBHOOK_URL=hook.url, HPS_WEBHOOK_SECRET=SECRET,
                         HPS_STUCK_SCAN_SECONDS="0.3", HPS_METRICS="off")
        subprocess.run([str(BIN / "hps-api"), "init"], env=env, cwd=tmp_path, check=True,
                       capture_output=True, timeout=30)
        FileStore(env["HPS_CONFIG_DIR"]).update(RecordId.of_host("default", "525400cc0001"), {
            "STATE": "INSTALLED", "HOSTNAME": "sch-101", "SELFTEST_RESULT": "fail"},
            "test:setup", create=True)
        port = free_port()
        with (tmp_path / "gunicorn.stderr").open("wb") as err:
            process = subprocess.Popen(
                [str(BIN / "hps-api"), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "3"],
                env=env, cwd=tmp_path, stdout=err, stderr=err, start_new_session=True)
        server = Server(process, f"http://127.0.0.1:{port}", Path(env["HPS_CONFIG_DIR"]),
                        Path(env["HPS_LOG_DIR"]), tmp_path / "gunicorn.stderr")
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not hook.got and time.monotonic() < deadline:
                time.sleep(0.1)
            assert hook.got, (tmp_path / "gunicorn.stderr").read_text()
            time.sleep(2)  # six more scans, in whichever worker holds the lock
            assert fetch(server, "/api/v1/health").status == 200
        finally:
            stop_server(server)
    (got,) = hook.got
    assert verified(SECRET, got.body, got.headers[HEADER])
    assert json.loads(got.body)["mac"] == "525400cc0001"
    log = (Path(env["HPS_LOG_DIR"]) / "hps-api.log").read_text()
    assert log.count("WARNING 525400cc0001 - - stuck: self-test failing") == 1


# -- the dashboard in a browser, and its screenshot (docs/ui-stuck.png) ---------------------------


def seed_lab_rack(store: FileStore, now: float) -> None:
    """A small rack where one host is stuck by each rule, and some that are fine: the records
    and the journal written as the store writes them, with their pasts."""
    hosts = {
        "525400dd0001": ({"STATE": "INSTALLING", "HOSTNAME": "sch-001", "TYPE": "SCH",
                          "IP": "10.99.0.11", "LAST_SEEN": ago(25 * 60, now),
                          "BOOT_TIME": str(int(now - 25 * 60))},
                         [("STATE", "INSTALLING", 25 * 60), ("BOOT_SESSION", "a1a1a1", 25 * 60)]),
        "525400dd0002": ({"STATE": "INSTALLED", "HOSTNAME": "cch-002", "TYPE": "CCH",
                          "IP": "10.99.0.12", "LAST_SEEN": ago(90, now)},
                         [("STATE", "INSTALLED", 3 * 86400)] + [
                             ("BOOT_SESSION", f"b{n:05x}", 90 + n * 150) for n in range(8)]),
        "525400dd0003": ({"STATE": "INSTALLING", "HOSTNAME": "sch-003", "TYPE": "SCH",
                          "IP": "10.99.0.13", "LAST_SEEN": ago(20 * 60, now),
                          "BOOT_TIME": str(int(now - 72 * 60))},
                         [("STATE", "INSTALLING", 72 * 60), ("BOOT_SESSION", "c3c3c3", 72 * 60),
                          (".ks", "9f2c4e0b" * 8, 71 * 60)]),
        "525400dd0004": ({"STATE": "UNCONFIGURED", "LAST_SEEN": ago(40, now), "ARCH": "x86_64"},
                         [("STATE", "UNCONFIGURED", 3 * 86400 + 600),
                          ("BOOT_SESSION", "d4d4d4", 3 * 86400 + 600)]),
        "525400dd0005": ({"STATE": "INSTALLED", "HOSTNAME": "sch-005", "TYPE": "SCH",
                          "IP": "10.99.0.15", "LAST_SEEN": ago(6 * 3600, now),
                          "SELFTEST_RESULT": "fail", "SELFTEST_DISK": "fail:sdb SMART errors",
                          "SELFTEST_NTP": "pass", "SELFTEST_AT": ago(6 * 3600, now)},
                         [("STATE", "INSTALLED", 5 * 86400)]),
        "525400dd0006": ({"STATE": "CONFIGURED", "HOSTNAME": "tch-006", "TYPE": "TCH",
                          "IP": "10.99.0.16", "UPDATED": ago(2 * 3600, now)},
                         [("STATE", "CONFIGURED", 2 * 3600)]),
    }
    for n in range(7, 13):
        hosts[f"525400dd00{n:02x}"] = ({"STATE": "INSTALLED", "HOSTNAME": f"sch-{n:03d}",
                                        "TYPE": "SCH", "IP": f"10.99.0.{10 + n}",
                                        "LAST_SEEN": ago(n * 600, now),
                                        "SELFTEST_RESULT": "pass"},
                                       [("STATE", "INSTALLED", 4 * 86400)])
    lines = []
    for mac, (values, past) in hosts.items():
        path = store.layout.path(RecordId.of_host("default", mac))
        path.write_bytes(format_record(from_mapping(values)))
        lines += [(now - seconds, json.dumps({
            "time": ago(seconds, now), "record": f"host/{mac}", "key": key, "old": None,
            "new": new, "actor": "admin:alice" if new == "CONFIGURED" else f"api:{mac}"}) + "\n")
            for key, new, seconds in past]
    store.layout.journal("default").write_text("".join(line for _, line in sorted(lines)))


@pytest.mark.slow
def test_the_dashboard_lists_a_host_stuck_by_each_rule(driver: Any, tmp_path: Path,
                                                       store: FileStore) -> None:
    import test_browser_ui
    from selenium.webdriver.common.by import By
    from test_browser import open_page, serve

    store.update(RecordId.of_cluster("default"), {
        "DESCRIPTION": "lab rack 7", "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24"},
        "test:setup")
    seed_lab_rack(store, time.time())
    app = create_app(Settings(config_dir=store.layout.root, log_dir=tmp_path / "log",
                              arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                              resources_dir=tmp_path / "resources"))
    server, thread = serve(app)
    try:
        open_page(driver, f"http://127.0.0.1:{server.server_port}/", "Cluster default")
        group = driver.find_element(By.ID, "attention-stuck")
        assert group.find_element(By.CSS_SELECTOR, "h3 a").text == "Stuck: 6"
        notes = [cell.text for cell in group.find_elements(By.CSS_SELECTOR, "td.note")]
        assert [note.split(":")[0] for note in notes] == [  # the five most recently seen
            "waiting at its menu", "boot loop", "install too long", "kernel never fetched",
            "self-test failing"]
        test_browser_ui.shoot(driver, "stuck", tmp_path)
        driver.find_element(By.CSS_SELECTOR, "#attention-stuck h3 a").click()
        open_page(driver, driver.current_url, "Hosts")
        assert driver.find_element(By.ID, "found").text.startswith("6 hosts")
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def test_the_benchmark_seeds_scans_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))
    import stuck as bench
    import ui

    monkeypatch.setattr(ui, "SETTLE", 0)
    monkeypatch.setattr(ui, "PAGES", bench.PAGES)
    rows = bench.measure(argparse.Namespace(hosts=40, days=2, runs=2), lambda text: None)
    assert rows[0].startswith("40 hosts, journal ") and "stuck" in rows[0]
    assert [row.split("|")[1].strip() for row in rows if row.startswith("| `")] == [
        f"`{page}`" for page in bench.PAGES]
