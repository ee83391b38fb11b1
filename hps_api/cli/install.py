"""`hps-api install`: the whole IPS on a Debian host, step by step, idempotently (docs/install.md).

The steps, in order: the Debian packages, the `hps` account (a sysusers.d file, then adduser),
the directories, the env file the units load, the config tree (`init`), the cluster's service
files (`render-services`), their owner, one systemd unit per daemon, enabling and starting them,
and the self-test. Each step looks first and reports `unchanged` when it would change nothing;
files are compared first and replaced atomically only when they differ. The env file is merged:
settings it lacks are added, a value in it is never changed, and every step takes its settings
from it, never from the caller's environment (the installed services read only that file).

`--dry-run` reports what each step would do and changes nothing. `--root DIR` prefixes every
path with DIR and skips the steps that act on the running system (packages, account, owner,
systemctl, self-test). The first failing step stops the install (exit 3); bad usage or a bad
setting stops it before anything is written (exit 2).
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources as package_files
from pathlib import Path
from typing import Any

from hps_api.cli.common import EXIT_OK, EXIT_STORE, UsageError, cli_actor, fail
from hps_api.errors import HpsError, InvalidInput
from hps_api.ids import validate_cluster
from hps_api.settings import Settings, env_name, load_settings
from hps_api.store import FileStore
from hps_api.store import files as store_files
from hps_api.store.bootstrap import active_cluster as stored_active_cluster
from hps_api.store.layout import Layout

PROG = "hps-api"
# dnsmasq-base, not dnsmasq: the latter starts a dnsmasq.service of its own on ports 53 and 67.
PACKAGES = ("nginx", "dnsmasq-base", "rsyslog", "ipxe")
USER = "hps"
ENV_FILE = Path("/etc/hps/hps.env")
SYSUSERS_FILE = Path("/etc/sysusers.d/hps.conf")
UNIT_DIR = Path("/etc/systemd/system")
UNITS = ("hps-api.service", "hps-dnsmasq.service", "hps-nginx.service", "hps-rsyslog.service")
DEBIAN_NGINX = "nginx.service"  # Debian's own, started by the package, also on port 80
SYSTEM_BINARIES = {"dnsmasq": "/usr/sbin/dnsmasq", "nginx": "/usr/sbin/nginx",
                   "rsyslogd": "/usr/sbin/rsyslogd"}
ENV_DEFAULTS = {
    "HPS_CONFIG_DIR": "/srv/hps-config",
    "HPS_LOG_DIR": "/var/log/hps",
    "HPS_RESOURCES_DIR": "/srv/hps-resources",
    "HPS_BIND": "127.0.0.1:8080",
    "HPS_FRONT_BIND": "0.0.0.0:80",
    "HPS_TRUSTED_PROXIES": "127.0.0.1",
    "HPS_DNSMASQ_PIDFILE": "/run/hps/dnsmasq.pid",
    "HPS_DHCP_LEASES": "/var/lib/hps/dnsmasq.leases",
}
#: the settings naming paths the units and directories are made of
PATH_SETTINGS = ("config_dir", "log_dir", "resources_dir", "dhcp_leases", "dnsmasq_pidfile")
# Written into unit files unquoted: no space, quote, backslash, `$` or `%` (a unit specifier).
_UNIT_PATH = re.compile(r"/[A-Za-z0-9._/+@~=:,-]*")
COMMAND_TIMEOUT = 900
SYSTEMD_RUNNING = Path("/run/systemd/system")

CHANGED, UNCHANGED, SKIPPED = "changed", "unchanged", "skipped"


class StepFailed(HpsError):
    """A step could not do its work (exit 3)."""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add `install` to `hps-api`'s sub-commands; `dispatch` runs it."""
    install = subparsers.add_parser("install", parents=[common], allow_abbrev=False,
                                    help="install the whole IPS on this Debian host "
                                         "(idempotent; see docs/install.md)")
    install.add_argument("--cluster", help="cluster whose services run (default: the active "
                                           "one, else default)")
    install.add_argument("--root", metavar="DIR",
                         help="install under DIR (an image, a test): every path prefixed; "
                              "packages, account, owner, systemctl and self-test skipped")
    install.add_argument("--dry-run", action="store_true",
                         help="print every step it would take; change nothing")


def dispatch(args: argparse.Namespace) -> int:
    """Run `hps-api install` for a parsed command line; return its exit code."""
    target = prepare(args)
    return run_steps(target, plan(target))


# -- what to install where -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the install goes: `root` ("/" for this system) and the settings as the installed
    services see them (paths without the root)."""

    root: Path
    settings: Settings
    cluster: str
    env_text: str
    hps_api: Path
    dry_run: bool

    @property
    def system(self) -> bool:
        """Return True when installing onto the running system itself."""
        return self.root == Path("/")

    def disk(self, path: Path) -> Path:
        """Return where a path of the installed system is on this machine's disk."""
        return self.root / path.relative_to("/")

    def disk_settings(self) -> Settings:
        """Return the settings with every path on this machine's disk."""
        return self.settings.with_overrides(
            **{name: self.disk(getattr(self.settings, name)) for name in PATH_SETTINGS})

    def store(self) -> FileStore:
        """Return the store on this machine's disk (creating nothing)."""
        disk = self.disk_settings()
        return FileStore(disk.config_dir, disk.lock_timeout, disk.sensitive_keys)

    def services_dir(self) -> Path:
        """Return the cluster's services directory, as the installed system sees it."""
        return Layout(self.settings.config_dir).services_dir(self.cluster)


def prepare(args: argparse.Namespace) -> Target:
    """Return the install target of a command line; UsageError or InvalidInput (exit 2) for bad
    options or settings, before anything is written."""
    root = _root(args.root)
    if root == Path("/") and not args.dry_run and os.geteuid() != 0:
        raise UsageError("install writes /etc, /srv and /var: run it as root, or pass --root DIR "
                         "or --dry-run")
    env_file = root / ENV_FILE.relative_to("/")
    existing = env_file.read_text("utf-8", "surrogateescape") if env_file.is_file() else None
    defaults = dict(ENV_DEFAULTS)
    config_dir = getattr(args, "config_dir", None)
    if config_dir:
        defaults["HPS_CONFIG_DIR"] = str(Path(config_dir).absolute())
    env_text, values = merge_env(existing, defaults)
    if config_dir and values["HPS_CONFIG_DIR"] != defaults["HPS_CONFIG_DIR"]:
        raise UsageError(f"--config-dir {config_dir}: {env_file} sets HPS_CONFIG_DIR="
                         f"{values['HPS_CONFIG_DIR']}; edit it there")
    settings = target_settings(values)
    cluster = _cluster(args.cluster, root, settings)
    return Target(root, settings, cluster, env_text, _hps_api_command(), args.dry_run)


def _root(raw: str | None) -> Path:
    if raw is None:
        return Path("/")
    if not raw:
        raise UsageError("--root: give a directory")
    root = Path(raw).absolute()
    if root.exists() and not root.is_dir():
        raise UsageError(f"--root {raw}: not a directory")
    return root


def merge_env(existing: str | None, defaults: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Return the env file's text with the settings it lacks appended, and the values in force.

    Every line of an existing file stays as it is; a key it sets keeps its value.
    """
    values = parse_env(existing or "")
    text = existing if existing is not None else _template("hps.env")
    missing = [f"{key}={value}\n" for key, value in defaults.items() if key not in values]
    if missing and text and not text.endswith("\n"):
        text += "\n"
    return text + "".join(missing), {**defaults, **values}


def parse_env(text: str) -> dict[str, str]:
    """Return the `KEY=value` pairs of an env file (systemd's EnvironmentFile= syntax)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, eq, value = line.partition("=")
        if not eq or not key.strip() or line[0] in "#;":
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def target_settings(values: dict[str, str]) -> Settings:
    """Return the settings the env file's values give; InvalidInput naming a bad one."""
    from hps_api.services import nginx

    settings = load_settings(values, dotenv=False)
    for name in PATH_SETTINGS:
        path = str(getattr(settings, name))
        if not _UNIT_PATH.fullmatch(path) or path.rstrip("/") == "":
            raise InvalidInput(f"{env_name(name)}={path!r}: must be an absolute path of letters, "
                               "digits and ._/+@~=:,- (it goes into the systemd units)")
    run_dir = settings.dnsmasq_pidfile.parent
    if run_dir == Path("/run") or not run_dir.is_relative_to("/run"):
        raise InvalidInput(f"HPS_DNSMASQ_PIDFILE={settings.dnsmasq_pidfile}: must be "
                           "/run/<dir>/<file> (systemd makes that directory at every start)")
    if nginx.shares_port(settings):
        raise InvalidInput(f"HPS_BIND={settings.bind} takes HPS_FRONT_BIND's port "
                           f"({settings.front_bind}): install puts nginx in front; bind hps-api "
                           "to 127.0.0.1:8080")
    return settings


def _cluster(requested: str | None, root: Path, settings: Settings) -> str:
    if requested is not None:
        return validate_cluster(requested)
    store = FileStore(root / settings.config_dir.relative_to("/"))
    return stored_active_cluster(store) or "default"


def _hps_api_command() -> Path:
    """Return the `hps-api` the units run: the one beside this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "hps-api"
    found = beside if beside.is_file() else shutil.which("hps-api")
    if found is None:
        raise InvalidInput(f"cannot find the hps-api command beside {sys.executable} nor on PATH")
    if not _UNIT_PATH.fullmatch(str(found)):
        raise InvalidInput(f"{found}: the hps-api command's path cannot go into a systemd unit")
    return Path(found)


def _template(name: str) -> str:
    return (package_files.files("hps_api") / "deploy" / name).read_text(encoding="utf-8")


def unit_text(target: Target, name: str) -> str:
    """Return the systemd unit `name` for this target."""
    s = target.settings
    run_dir = s.dnsmasq_pidfile.parent
    return _template(name).format(
        user=USER, env_file=ENV_FILE, hps_api=target.hps_api, cluster=target.cluster,
        config_dir=s.config_dir, log_dir=s.log_dir, tftp_dir=s.resources_dir / "tftp",
        lease_dir=s.dhcp_leases.parent, run_dir=run_dir.relative_to("/run"), run_path=run_dir,
        services_dir=target.services_dir(), **SYSTEM_BINARIES)


def directories(target: Target) -> list[tuple[Path, int]]:
    """Return the directories the install makes (as the installed system sees them), with the
    mode each gets when it is created."""
    s = target.settings
    return [(s.config_dir, 0o750), (s.log_dir, 0o750), (s.resources_dir, 0o755),
            (s.resources_dir / "tftp", 0o755), (s.dhcp_leases.parent, 0o755)]


# -- running the steps ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a step did (or, in a dry run, would do): a status, what it did, and what to print."""

    status: str
    note: str = ""
    word: str = ""

    def text(self, dry_run: bool) -> str:
        """Return the end of the step's line: done, would ..., unchanged, skipped (why)."""
        if self.word:
            return self.word
        if self.status == CHANGED:
            return f"would {self.note}" if dry_run else "done"
        if self.status == SKIPPED:
            return f"skipped ({self.note})"
        return UNCHANGED


Action = Callable[["Target", set[str]], Outcome]


@dataclass(frozen=True)
class Step:
    """One step: a key (what later steps ask `changed` about), a title, and its action."""

    key: str
    title: str
    action: Action


@dataclass
class Tally:
    """How many steps ended how."""

    counts: dict[str, int] = field(default_factory=lambda: {CHANGED: 0, UNCHANGED: 0,
                                                            SKIPPED: 0})

    def line(self, total: int, dry_run: bool, failed: int = 0) -> str:
        """Return the one-line summary."""
        c = self.counts
        if dry_run:
            return (f"install --dry-run: {total} steps, {c[CHANGED]} would change, "
                    f"{c[UNCHANGED]} unchanged, {c[SKIPPED]} skipped; nothing changed")
        done = sum(c.values()) + failed
        rest = f", {total - done} not run" if done < total else ""
        return (f"install: {total} steps, {c[CHANGED]} changed, {c[UNCHANGED]} unchanged, "
                f"{c[SKIPPED]} skipped, {failed} failed{rest}")


def run_steps(target: Target, steps: list[Step]) -> int:
    """Run the steps in order, one progress line each, then a summary; stop at the first that
    fails (one error line on stderr, exit 3)."""
    tally = Tally()
    changed: set[str] = set()
    for index, step in enumerate(steps, 1):
        _emit(f"[{index}/{len(steps)}] {step.title} ... ", end="")
        try:
            outcome = step.action(target, changed)
        except (HpsError, OSError, subprocess.SubprocessError) as err:
            _emit("failed")
            fail(PROG, f"install: step {index} ({step.title}) failed: {_reason(err)}")
            _emit(tally.line(len(steps), target.dry_run, failed=1))
            return EXIT_STORE
        _emit(outcome.text(target.dry_run))
        tally.counts[outcome.status] += 1
        if outcome.status == CHANGED:
            changed.add(step.key)
    _emit(tally.line(len(steps), target.dry_run))
    return EXIT_OK


def _emit(text: str, end: str = "\n") -> None:
    sys.stdout.buffer.write((text + end).encode("utf-8", "surrogateescape"))
    sys.stdout.flush()


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def plan(target: Target) -> list[Step]:
    """Return the steps of an install, in order."""
    disk = target.disk
    return [
        Step("packages", f"installing packages {' '.join(PACKAGES)}", _packages),
        _file_step("sysusers", disk(SYSUSERS_FILE), _template("hps.sysusers").format(user=USER),
                   0o644),
        Step("account", f"creating system user {USER}", _account),
        Step("directories", "creating " + ", ".join(str(disk(p)) for p, _ in
                                                     directories(target)), _directories),
        _file_step("env", disk(ENV_FILE), target.env_text, 0o600),
        Step("init", f"initialising {disk(target.settings.config_dir)} (cluster "
                     f"{target.cluster})", _init),
        Step("render", f"rendering the services of cluster {target.cluster} into "
                       f"{disk(target.services_dir())}", _render),
        Step("owner", f"giving the state and log directories to {USER}", _owner),
        *(_file_step(name, disk(UNIT_DIR / name), unit_text(target, name), 0o644)
          for name in UNITS),
        Step("systemd", f"enabling and starting {' '.join(UNITS)}", _systemd),
        Step("selftest", "running the self-test", _selftest),
    ]


# -- the steps -----------------------------------------------------------------------------------


def _file_step(key: str, path: Path, text: str, mode: int) -> Step:
    data = text.encode("utf-8", "surrogateescape")
    return Step(key, f"writing {path}",
                lambda target, changed: write_file(path, data, mode, target.dry_run))


def write_file(path: Path, data: bytes, mode: int, dry_run: bool) -> Outcome:
    """Make `path` hold `data` with `mode`: unchanged when it does, else replaced atomically."""
    try:
        old: bytes | None = path.read_bytes()
    except FileNotFoundError:
        old = None
    if old == data and stat.S_IMODE(path.stat().st_mode) == mode:
        return Outcome(UNCHANGED)
    if old is None:
        note = f"write {len(data)} bytes (new file, mode {mode:04o})"
    else:
        note = "replace it (content differs)" if old != data else f"set its mode to {mode:04o}"
    if not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        store_files.write_durably(path, data, mode=mode)
    return Outcome(CHANGED, note)


def _packages(target: Target, changed: set[str]) -> Outcome:
    if not target.system:
        return Outcome(SKIPPED, "--root")
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        return Outcome(SKIPPED, "no dpkg-query or apt-get: install nginx, dnsmasq, rsyslog and "
                                "ipxe yourself")
    missing = [name for name in PACKAGES if not _installed(name)]
    if not missing:
        return Outcome(UNCHANGED)
    commands = [["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", *missing]]
    return _commands(commands, target.dry_run)


def _installed(package: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT, check=False)
    return done.returncode == 0 and done.stdout.strip() == "install ok installed"


def _account(target: Target, changed: set[str]) -> Outcome:
    if not target.system:
        return Outcome(SKIPPED, f"--root: {SYSUSERS_FILE} makes it at first boot")
    if _uid_gid(USER) is not None:
        return Outcome(UNCHANGED)
    if shutil.which("adduser"):
        command = ["adduser", "--system", "--group", "--no-create-home", "--home",
                   "/nonexistent", "--shell", "/usr/sbin/nologin", USER]
    elif shutil.which("useradd"):
        command = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                   "/nonexistent", "--shell", "/usr/sbin/nologin", USER]
    else:
        raise StepFailed("neither adduser nor useradd is installed")
    return _commands([command], target.dry_run)


def _uid_gid(user: str) -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _directories(target: Target, changed: set[str]) -> Outcome:
    wanted = [(target.disk(path), mode) for path, mode in directories(target)]
    for path, _ in wanted:
        if path.exists() and not path.is_dir():
            raise StepFailed(f"{path} exists and is not a directory")
    missing = [(path, mode) for path, mode in wanted if not path.is_dir()]
    if not missing:
        return Outcome(UNCHANGED)
    if not target.dry_run:
        for path, mode in missing:
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(mode)
    return Outcome(CHANGED, "create " + ", ".join(f"{p} (mode {m:04o})" for p, m in missing))


def _init(target: Target, changed: set[str]) -> Outcome:
    from hps_api.store.bootstrap import initialise

    store = target.store()
    if target.dry_run:
        missing = _init_missing(store, target.cluster)
        return Outcome(CHANGED, "create " + ", ".join(missing)) if missing else Outcome(UNCHANGED)
    created = initialise(store, target.cluster, cli_actor()).created
    return Outcome(CHANGED if created else UNCHANGED)


def _init_missing(store: FileStore, cluster: str) -> list[str]:
    from hps_api.store import RecordId

    layout = store.layout
    missing = [f"{d}/" for d in (layout.root, layout.os_dir, layout.clusters_dir)
               if not d.is_dir()]
    if not store.exists(RecordId.of_cluster(cluster)):
        missing.append(f"{layout.path(RecordId.of_cluster(cluster))}")
    if stored_active_cluster(store) is None:
        missing.append(f"{layout.hps_conf} (ACTIVE_CLUSTER={cluster})")
    return missing


def _render(target: Target, changed: set[str]) -> Outcome:
    from hps_api.ops.services import render_and_reload

    settings, store = target.disk_settings(), target.store()
    services, tftp = store.layout.services_dir(target.cluster), settings.resources_dir / "tftp"
    if target.dry_run:
        return Outcome(CHANGED, f"run: hps-api render-services --cluster {target.cluster} "
                                f"--no-reload (dnsmasq, rsyslog and nginx files into {services}, "
                                f"the iPXE binaries into {tftp})")
    before = _contents(services, tftp)
    try:
        render_and_reload(store, settings, target.cluster, reload=False)
    except InvalidInput as err:
        raise StepFailed(f"{err}; set it (hps-api cluster configure {target.cluster}), then run "
                         "install again") from None
    return Outcome(CHANGED if _contents(services, tftp) != before else UNCHANGED)


def _contents(*roots: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for root in roots if root.is_dir()
            for path in sorted(root.iterdir()) if path.is_file()}


def _owner(target: Target, changed: set[str]) -> Outcome:
    if not target.system:
        return Outcome(SKIPPED, "--root")
    s = target.settings
    roots = [s.config_dir, s.log_dir, s.resources_dir / "tftp"]
    ids = _uid_gid(USER)
    if ids is None:
        if target.dry_run:
            return Outcome(CHANGED, f"run: chown -R {USER}:{USER} " + " ".join(map(str, roots)))
        raise StepFailed(f"no account {USER}")
    wrong = [p for p in _tree(roots) if (p.lstat().st_uid, p.lstat().st_gid) != ids]
    if not wrong:
        return Outcome(UNCHANGED)
    if not target.dry_run:
        for path in wrong:
            os.lchown(path, *ids)
    return Outcome(CHANGED, f"give {len(wrong)} files and directories under "
                            f"{', '.join(map(str, roots))} to {USER}:{USER}")


def _tree(roots: list[Path]) -> list[Path]:
    paths: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        paths.append(root)
        for folder, dirs, names in os.walk(root):
            paths += [Path(folder, name) for name in (*dirs, *names)]
    return paths


def _systemd(target: Target, changed: set[str]) -> Outcome:
    if not target.system:
        return Outcome(SKIPPED, "--root")
    if not SYSTEMD_RUNNING.is_dir():
        if target.dry_run:
            return Outcome(CHANGED, "run: systemctl daemon-reload; systemctl enable --now "
                                    f"{' '.join(UNITS)} (systemd is not running here)")
        raise StepFailed(f"systemd is not running (no {SYSTEMD_RUNNING}): start the units "
                         "another way")
    commands: list[list[str]] = []
    if changed & set(UNITS):
        commands.append(["systemctl", "daemon-reload"])
    if _systemctl("is-enabled", DEBIAN_NGINX) or _systemctl("is-active", DEBIAN_NGINX):
        commands.append(["systemctl", "disable", "--now", DEBIAN_NGINX])
    start = [u for u in UNITS if not (_systemctl("is-enabled", u) and _systemctl("is-active", u))]
    if start:
        commands.append(["systemctl", "enable", "--now", *start])
    restart = [u for u in UNITS if u not in start and _inputs_changed(u, changed)]
    if restart:
        commands.append(["systemctl", "restart", *restart])
    return _commands(commands, target.dry_run) if commands else Outcome(UNCHANGED)


def _systemctl(verb: str, unit: str) -> bool:
    return subprocess.run(["systemctl", verb, "--quiet", unit], capture_output=True,
                          timeout=COMMAND_TIMEOUT, check=False).returncode == 0


def _inputs_changed(unit: str, changed: set[str]) -> bool:
    """Return True when a file the unit's daemon reads at start changed in this run."""
    inputs = {unit, "env"} if unit == "hps-api.service" else {unit, "env", "render"}
    return bool(changed & inputs)


def _selftest(target: Target, changed: set[str]) -> Outcome:
    from hps_api.ops.selftest import run_selftest

    if not target.system:
        return Outcome(SKIPPED, "--root: it checks the running IPS")
    if target.dry_run:
        return Outcome(UNCHANGED, word="would run: hps-api selftest")
    checks = run_selftest(target.store(), target.disk_settings())
    failed = [check for check in checks if not check.ok]
    if failed:
        raise StepFailed(f"{len(failed)} of {len(checks)} checks failed, first: "
                         f"{failed[0].line()} (hps-api selftest shows them all)")
    return Outcome(UNCHANGED, word=f"passed ({len(checks)} checks)")


def _commands(commands: list[list[str]], dry_run: bool) -> Outcome:
    """Run the commands in order (unless `dry_run`); StepFailed naming the first that fails."""
    if not dry_run:
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT, check=False)
            if done.returncode != 0:
                said = (done.stderr or done.stdout).strip().splitlines()
                raise StepFailed(f"{' '.join(command)} exited {done.returncode}"
                                 + (f": {said[-1]}" if said else ""))
    return Outcome(CHANGED, "run: " + "; ".join(" ".join(c) for c in commands))
