"""The IPS self-test (docs/node.md): is this server fit to provision? One line per check.

Run by `hps-api selftest`, at server start (results logged) and by `/api/v1/health?deep=1`.
Every check is independent and bounded in time; none changes provisioning state (the only
writes are a probe file and a lock in the config and log directories, removed at once).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hps_api.boot.decide import BootInputs, decide
from hps_api.boot.flow import missing_os_files, script_of
from hps_api.errors import HpsError
from hps_api.model.catalog import load_catalog
from hps_api.model.network import ClusterNetwork
from hps_api.model.states import STATES
from hps_api.observe import metrics
from hps_api.render import ipxe
from hps_api.settings import Settings
from hps_api.store import Kind, RecordId, Store
from hps_api.store.bootstrap import active_cluster as current_cluster
from hps_api.store.fsck import check_store

MIN_FREE_BYTES = 512 * 1024 * 1024
MIN_FREE_FRACTION = 0.05
COMMAND_TIMEOUT = 15


@dataclass(frozen=True)
class Check:
    """One check's outcome: its name, whether it passed, and why (or what it saw)."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        """Return `name: pass (detail)` or `name: fail (detail)`."""
        return f"{self.name}: {'pass' if self.ok else 'fail'} ({self.detail})"


def run_selftest(store: Store, settings: Settings) -> list[Check]:
    """Return the result of every IPS check, in a fixed order (each also kept for /metrics)."""
    checks = [_guarded(name, check, store, settings) for name, check in CHECKS]
    metrics.record_selftest((c.name, c.ok) for c in checks)
    return checks


def summary(checks: list[Check]) -> dict[str, object]:
    """Return the checks as data: overall result and one entry per check."""
    return {"result": "pass" if all(c.ok for c in checks) else "fail",
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]}


def _guarded(name: str, check: Callable[[Store, Settings], str], store: Store,
             settings: Settings) -> Check:
    try:
        return Check(name, True, check(store, settings))
    except (HpsError, OSError, subprocess.SubprocessError) as err:
        return Check(name, False, str(err) or type(err).__name__)


def config_dir(store: Store, settings: Settings) -> str:
    """The config dir exists, is writable and can be locked."""
    from filelock import FileLock

    root = store.layout.root
    with tempfile.NamedTemporaryFile(dir=root, prefix=".selftest.", suffix=".tmp"):
        pass
    with FileLock(str(root / ".selftest.lock"), timeout=1):
        pass
    return f"{root} writable and lockable"


def active_cluster(store: Store, settings: Settings) -> str:
    """The active cluster exists and its network keys are consistent."""
    name = _active(store)
    network = ClusterNetwork.of(store.items(RecordId.of_cluster(name)))
    return f"{name}: {network.network}, IPS {network.ips}, " \
           f"range {network.range_start}-{network.range_end}"


def records(store: Store, settings: Settings) -> str:
    """Every record parses."""
    bad = [p for p in check_store(store) if p.kind in ("corrupt", "unreadable")]
    if bad:
        raise HpsError(f"{len(bad)} bad record(s), first: {bad[0]}")
    return "every record parses"


def templates(store: Store, settings: Settings) -> str:
    """Every iPXE template renders for every state and host type."""
    count = 0
    for state in STATES:
        for kind in [None, *load_catalog()]:
            script_of(decide(_sample(state, kind)))
            count += 1
    ipxe.render("bootstrap.ipxe", {"base_url": "http://192.0.2.1"})
    return f"{count} decisions rendered"


def os_files(store: Store, settings: Settings) -> str:
    """Every OS record that is not retired has its kernel and initrd under
    HPS_RESOURCES_DIR/distros (what `init` sends an installing host to fetch)."""
    problems, count = [], 0
    for rid in store.list_records(Kind.OS):
        record = store.items(rid)
        if record.get("STATUS", "").strip().lower() == "retired":
            continue
        count += 1
        missing = missing_os_files(record, settings.resources_dir)
        if missing:
            problems.append(f"{rid.name}: {', '.join(missing)}")
    if problems:
        raise HpsError(f"missing under {settings.resources_dir}: {'; '.join(problems)}")
    return f"kernel and initrd of {count} OS record(s) in {settings.resources_dir / 'distros'}"


def dnsmasq_config(store: Store, settings: Settings) -> str:
    """The generated dnsmasq config passes `dnsmasq --test`."""
    conf = store.layout.services_dir(_active(store)) / "dnsmasq.conf"
    return _validate(conf, ["dnsmasq", "--test", f"--conf-file={conf}"])


def rsyslog_config(store: Store, settings: Settings) -> str:
    """The generated rsyslog config passes `rsyslogd -N1`."""
    conf = store.layout.services_dir(_active(store)) / "rsyslog.conf"
    return _validate(conf, ["rsyslogd", "-N1", "-f", str(conf)])


def ipxe_binaries(store: Store, settings: Settings) -> str:
    """The iPXE binaries DHCP hands out are in the TFTP root."""
    from hps_api.services import IPXE_BINARIES, tftp_root

    root = tftp_root(settings)
    missing = [name for name in IPXE_BINARIES if not (root / name).is_file()]
    if missing:
        raise HpsError(f"missing in {root}: {', '.join(missing)} (run hps-api render-services)")
    return f"{', '.join(IPXE_BINARIES)} in {root}"


def disk_space(store: Store, settings: Settings) -> str:
    """The config dir's file system has room (512 MiB and 5 % free at least)."""
    usage = shutil.disk_usage(store.layout.root)
    free_mib = usage.free // (1024 * 1024)
    if usage.free < MIN_FREE_BYTES or usage.free < usage.total * MIN_FREE_FRACTION:
        raise HpsError(f"only {free_mib} MiB free under {store.layout.root}")
    return f"{free_mib} MiB free"


def log_dir(store: Store, settings: Settings) -> str:
    """The log directory is writable."""
    if not os.access(settings.log_dir, os.W_OK | os.X_OK):
        raise HpsError(f"{settings.log_dir} is not writable")
    with tempfile.NamedTemporaryFile(dir=settings.log_dir, prefix=".selftest."):
        pass
    return f"{settings.log_dir} writable"


CHECKS: list[tuple[str, Callable[[Store, Settings], str]]] = [
    ("config_dir", config_dir), ("active_cluster", active_cluster), ("records", records),
    ("templates", templates), ("os_files", os_files), ("dnsmasq_config", dnsmasq_config),
    ("rsyslog_config", rsyslog_config), ("ipxe_binaries", ipxe_binaries),
    ("disk_space", disk_space), ("log_dir", log_dir),
]


def _active(store: Store) -> str:
    active = current_cluster(store)
    if not active:
        raise HpsError("no active cluster (run hps-api init)")
    return active


def _validate(conf: Path, command: list[str]) -> str:
    if not conf.is_file():
        raise HpsError(f"{conf} not generated yet (run hps-api render-services)")
    if shutil.which(command[0]) is None:
        raise HpsError(f"{command[0]} is not installed")
    done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                          check=False)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise HpsError(f"{command[0]} rejects {conf.name}: {said[-1] if said else done.returncode}")
    return f"{conf.name} accepted by {command[0]}"


def _sample(state: str, kind: str | None) -> BootInputs:
    host = {"STATE": state, "HOSTNAME": "selftest-001", "IP": "192.0.2.10",
            "NETMASK": "255.255.255.0"}
    if kind:
        host.update({"TYPE": kind, "PROFILE": "DEFAULT"})
    return BootInputs(mac="525400000001", host=host, cluster={"DHCP_IP": "192.0.2.1"},
                      types=load_catalog(), os_id="x86_64:sample:1",
                      os={"REPO_PATH": "sample", "KERNEL": "vmlinuz", "INITRD": "initrd.img"},
                      base_url="http://192.0.2.1", session="000000", now="")
