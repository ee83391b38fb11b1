"""`hps-api install` as an operator or an image build runs it: `--dry-run`, and real installs
into a throwaway `--root` (never onto this machine: no package is installed, no unit started)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import BIN

from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise

UNITS = ("hps-api.service", "hps-dnsmasq.service", "hps-nginx.service", "hps-rsyslog.service")
SYSTEM_BINARIES = {"/usr/sbin/dnsmasq", "/usr/sbin/nginx", "/usr/sbin/rsyslogd", "/bin/kill"}
NETWORK = {"NETWORK_CIDR": "10.99.0.0/24", "DHCP_IP": "10.99.0.1", "DHCP_IFACE": "eth0"}
SERVICES = "srv/hps-config/clusters/default/services"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A target root holding a store whose cluster `default` has its network set."""
    target = tmp_path / "root"
    store = FileStore(target / "srv/hps-config")
    initialise(store, "default", "test:setup")
    store.update(RecordId.of_cluster("default"), NETWORK, "test:setup")
    return target


def install(cli, root: Path, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return cli("hps-api", "install", "--root", str(root), *args)  # type: ignore[no-any-return]


def step_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[")]


# -- --dry-run -----------------------------------------------------------------------------------

DRY_RUN = [
    ("[1/14] installing packages nginx dnsmasq-base rsyslog ipxe ... skipped (--root)"),
    ("[2/14] writing {r}/etc/sysusers.d/hps.conf ... would write "),
    ("[3/14] creating system user hps ... skipped (--root: /etc/sysusers.d/hps.conf makes it"),
    ("[4/14] creating {r}/srv/hps-config, {r}/var/log/hps, {r}/srv/hps-resources, "
     "{r}/srv/hps-resources/tftp, {r}/var/lib/hps ... would create {r}/srv/hps-config (mode 0750)"),
    ("[5/14] writing {r}/etc/hps/hps.env ... would write "),
    ("[6/14] initialising {r}/srv/hps-config (cluster default) ... would create "
     "{r}/srv/hps-config/"),
    ("[7/14] rendering the services of cluster default into {r}/" + SERVICES
     + " ... would run: hps-api render-services --cluster default --no-reload"),
    ("[8/14] giving the state and log directories to hps ... skipped (--root)"),
    ("[9/14] writing {r}/etc/systemd/system/hps-api.service ... would write "),
    ("[10/14] writing {r}/etc/systemd/system/hps-dnsmasq.service ... would write "),
    ("[11/14] writing {r}/etc/systemd/system/hps-nginx.service ... would write "),
    ("[12/14] writing {r}/etc/systemd/system/hps-rsyslog.service ... would write "),
    ("[13/14] enabling and starting hps-api.service hps-dnsmasq.service hps-nginx.service "
     "hps-rsyslog.service ... skipped (--root)"),
    ("[14/14] running the self-test ... skipped (--root: it checks the running IPS)"),
]


@pytest.mark.parametrize(("index", "expected"), list(enumerate(DRY_RUN)))
def test_dry_run_prints_every_step_it_would_take(cli, tmp_path: Path, index: int,
                                                 expected: str) -> None:
    target = tmp_path / "fresh"
    result = install(cli, target, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert step_lines(result.stdout)[index].startswith(expected.format(r=target))


def test_dry_run_writes_nothing_in_the_root_nor_the_callers_config_dir(
        cli, root: Path, config_dir: Path, snapshot) -> None:
    before_root, before_config = snapshot(root), snapshot(config_dir)
    result = install(cli, root, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == ("install --dry-run: 14 steps, 8 would change, "
                                              "1 unchanged, 5 skipped; nothing changed")
    assert snapshot(root) == before_root
    assert snapshot(config_dir) == before_config


def test_dry_run_of_a_missing_root_does_not_create_it(cli, tmp_path: Path) -> None:
    assert install(cli, tmp_path / "fresh", "--dry-run").returncode == 0
    assert not (tmp_path / "fresh").exists()


def test_dry_run_on_this_machine_lists_the_packages_and_commands_and_writes_nothing(
        cli) -> None:
    watched = [Path("/etc/hps/hps.env"), Path("/etc/systemd/system/hps-api.service")]
    before = [p.exists() for p in watched]
    result = cli("hps-api", "install", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = step_lines(result.stdout)
    assert len(lines) == 14
    assert lines[0].endswith(" ... unchanged") or " ... would run: apt-get update; apt-get " \
        "install -y --no-install-recommends " in lines[0] or "skipped (no dpkg-query" in lines[0]
    assert lines[12].startswith("[13/14] enabling and starting hps-api.service ")
    assert lines[13] == "[14/14] running the self-test ... would run: hps-api selftest"
    assert [p.exists() for p in watched] == before


# -- a real install into --root ------------------------------------------------------------------


def test_install_into_a_root_writes_every_file_with_its_mode(cli, root: Path) -> None:
    result = install(cli, root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == ("install: 14 steps, 8 changed, 1 unchanged, "
                                              "5 skipped, 0 failed")
    modes = {"etc/hps/hps.env": 0o600, "etc/sysusers.d/hps.conf": 0o644,
             **{f"etc/systemd/system/{unit}": 0o644 for unit in UNITS},
             "var/log/hps": 0o750, "srv/hps-resources": 0o755, "srv/hps-resources/tftp": 0o755,
             "var/lib/hps": 0o755}
    for name, mode in modes.items():
        assert stat.S_IMODE((root / name).stat().st_mode) == mode, name
    for name in ("dnsmasq.conf", "rsyslog.conf", "nginx.conf"):
        assert (root / SERVICES / name).is_file(), name
    env = (root / "etc/hps/hps.env").read_text()
    for line in ("HPS_CONFIG_DIR=/srv/hps-config", "HPS_LOG_DIR=/var/log/hps",
                 "HPS_RESOURCES_DIR=/srv/hps-resources", "HPS_BIND=127.0.0.1:8080",
                 "HPS_FRONT_BIND=0.0.0.0:80", "HPS_TRUSTED_PROXIES=127.0.0.1",
                 "HPS_DNSMASQ_PIDFILE=/run/hps/dnsmasq.pid"):
        assert line in env.splitlines()


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Return a unit file's sections as (key, value) lists (keys may repeat, as in systemd)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, eq, value = line.partition("=")
        assert eq and current is not None, f"not a unit line: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


@pytest.mark.parametrize("name", UNITS)
def test_every_unit_has_the_hardening_and_commands_that_exist(cli, root: Path,
                                                               name: str) -> None:
    assert install(cli, root).returncode == 0
    unit = parse_unit((root / "etc/systemd/system" / name).read_text())
    assert values(unit, "Unit", "Description")
    assert values(unit, "Install", "WantedBy") == ["multi-user.target"]
    for key, expected in (("EnvironmentFile", "/etc/hps/hps.env"), ("NoNewPrivileges", "yes"),
                          ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                          ("Restart", "on-failure")):
        assert values(unit, "Service", key) == [expected], key
    for path in " ".join(values(unit, "Service", "ReadWritePaths")).split():
        assert (root / path.lstrip("-/")).is_dir(), path
    commands = [command for key in ("ExecStartPre", "ExecStart", "ExecReload")
                for command in values(unit, "Service", key)]
    for command in commands:
        binary = command.lstrip("-@:+!").split()[0]
        assert binary in SYSTEM_BINARIES or binary == str(BIN / "hps-api"), binary
    assert Path(values(unit, "Service", "ExecStart")[0].split()[0]).is_absolute()


def test_the_units_carry_the_user_and_capabilities_each_daemon_needs(cli, root: Path) -> None:
    assert install(cli, root).returncode == 0
    units = {n: parse_unit((root / "etc/systemd/system" / n).read_text()) for n in UNITS}
    assert values(units["hps-api.service"], "Service", "User") == ["hps"]
    assert values(units["hps-api.service"], "Service", "ExecStart") == [f"{BIN}/hps-api serve"]
    dnsmasq_caps = values(units["hps-dnsmasq.service"], "Service", "CapabilityBoundingSet")[0]
    assert {"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"} <= set(dnsmasq_caps.split())
    assert (f"--conf-file=/{SERVICES}/dnsmasq.conf"
            in values(units["hps-dnsmasq.service"], "Service", "ExecStart")[0])
    assert (f"-c /{SERVICES}/nginx.conf"
            in values(units["hps-nginx.service"], "Service", "ExecStart")[0])
    assert "CAP_NET_BIND_SERVICE" in values(units["hps-nginx.service"], "Service",
                                            "CapabilityBoundingSet")[0]


def test_systemd_accepts_the_units_where_it_can_check_them(cli, root: Path) -> None:
    """systemd-analyze verify needs no running systemd, but checks that every command exists:
    where systemd-analyze or a daemon is missing, the parse above is the check."""
    assert install(cli, root).returncode == 0
    units = [root / "etc/systemd/system" / name for name in UNITS]
    checkable = shutil.which("systemd-analyze") and all(Path(b).exists() for b in SYSTEM_BINARIES)
    if checkable:
        done = subprocess.run(["systemd-analyze", "verify", *map(str, units)],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "Unknown key" not in done.stderr and "Unknown section" not in done.stderr
    for unit in units:
        assert set(parse_unit(unit.read_text())) == {"Unit", "Service", "Install"}


def test_a_second_install_reports_every_step_unchanged_and_changes_no_byte(
        cli, root: Path, snapshot) -> None:
    assert install(cli, root).returncode == 0
    before = snapshot(root)
    again = install(cli, root)
    assert again.returncode == 0, again.stderr
    for line in step_lines(again.stdout):
        assert line.endswith(" ... unchanged") or " ... skipped (--root" in line, line
    assert again.stdout.splitlines()[-1] == ("install: 14 steps, 0 changed, 9 unchanged, "
                                             "5 skipped, 0 failed")
    assert snapshot(root) == before


def test_an_operators_env_value_and_comment_survive_a_second_install(cli, root: Path) -> None:
    assert install(cli, root).returncode == 0
    env = root / "etc/hps/hps.env"
    edited = env.read_text().replace("HPS_BIND=127.0.0.1:8080", "# moved\nHPS_BIND=127.0.0.1:9090")
    env.write_text(edited)
    again = install(cli, root)
    assert again.returncode == 0, again.stderr
    assert f"writing {env} ... unchanged" in again.stdout
    assert env.read_text() == edited
    assert "HPS_BIND=127.0.0.1:9090" in (root / SERVICES / "front-end.env").read_text()


def test_a_setting_missing_from_the_env_file_is_added_and_the_rest_kept(cli, root: Path) -> None:
    assert install(cli, root).returncode == 0
    env = root / "etc/hps/hps.env"
    kept = [line for line in env.read_text().splitlines() if not line.startswith("HPS_LOG_DIR=")]
    env.write_text("\n".join(kept))  # no newline at the end, as an editor may leave it
    assert install(cli, root).returncode == 0
    assert env.read_text().splitlines() == [*kept, "HPS_LOG_DIR=/var/log/hps"]


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--root", "{file}"], "not a directory"),
    (["--root", "{root}", "--bogus"], "unrecognized arguments: --bogus"),
    (["--root", "{root}", "--cluster", "Bad_Name"], "Bad_Name"),
])
def test_bad_usage_exits_2_with_one_line_and_writes_nothing(cli, tmp_path: Path, args: list[str],
                                                            message: str) -> None:
    file, target = tmp_path / "a-file", tmp_path / "root"
    file.write_text("x")
    result = cli("hps-api", "install", *(a.format(file=file, root=target) for a in args))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("hps-api: ")
    assert message in result.stderr
    assert result.stdout == ""
    assert not target.exists() and file.read_text() == "x"


def test_a_bad_setting_in_the_env_file_exits_2_naming_it(cli, root: Path, snapshot) -> None:
    env = root / "etc/hps/hps.env"
    env.parent.mkdir(parents=True)
    env.write_text("HPS_DNSMASQ_PIDFILE=/run/dnsmasq.pid\n")
    before = snapshot(root)
    result = install(cli, root)
    assert result.returncode == 2
    assert result.stderr.startswith("hps-api: HPS_DNSMASQ_PIDFILE=/run/dnsmasq.pid: must be")
    assert result.stderr.count("\n") == 1
    assert snapshot(root) == before


def test_a_cluster_without_its_network_stops_at_the_render_with_exit_3(cli, tmp_path: Path) -> None:
    target = tmp_path / "root"
    result = install(cli, target)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "failed: cluster default: NETWORK_CIDR is required" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout.splitlines()[-1] == ("install: 14 steps, 4 changed, 0 unchanged, "
                                              "2 skipped, 1 failed, 7 not run")
    assert not (target / "etc/systemd/system").exists()
