"""The lab tier's shared parts (docs/lab.md): a running `scripts/pxe-lab` in a namespace of its
own, and the helpers that read what happened in it.

tests/test_lab.py and tests/test_power_lab.py each declare their own `rescue_image` and `lab`
fixtures (module scope) on `build_rescue_image` and `running_lab`, so each module gets a lab
of its own in pytest's temporary directory, taken down and deleted afterwards even when a test
fails. Needs root and the Debian packages scripts/test installs (qemu-system-x86, ipxe,
dnsmasq-base, iproute2, busybox).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PXE_LAB = REPO / "scripts" / "pxe-lab"
BUILD = REPO / "scripts" / "build-rescue-image"
BIN = Path(sys.executable).parent
IPXE = Path("/usr/lib/ipxe")
IPS = "10.99.0.1"
PORT = 8080
API = f"http://{IPS}:{PORT}"
VM_TIMEOUT = 150  # seconds; TCG on a busy 2-core machine, KVM needs a fraction
TOOLS = ("ip", "dnsmasq", "qemu-system-x86_64", "busybox", "cpio", "apt-get", "dpkg-deb")


def lab_unavailable() -> str | None:
    """Return why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "LAB TIER NOT RUN: needs root (network namespaces, tap devices)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    missing += [str(IPXE / f) for f in ("undionly.kpxe", "ipxe.efi") if not (IPXE / f).exists()]
    if missing:
        return (f"LAB TIER NOT RUN: missing {', '.join(missing)} (apt-get install "
                "qemu-system-x86 ipxe dnsmasq-base iproute2 busybox cpio; scripts/test does)")
    return None


@dataclass(frozen=True)
class Lab:
    """A running lab: its namespace, state directory and the environment pxe-lab needs."""

    ns: str
    dir: Path
    env: dict[str, str]

    @property
    def config_dir(self) -> Path:
        return self.dir / "hps-config"

    @property
    def access_log(self) -> Path:
        return self.dir / "log" / "access.log"

    @property
    def event_log(self) -> Path:
        return self.dir / "log" / "hps-api.log"

    def pxe_lab(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run scripts/pxe-lab with this lab's environment."""
        return subprocess.run([str(PXE_LAB), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def cli(self, prog: str, *args: str, netns: bool = False,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run an hps-api console script against the lab's store and paths; with `netns`,
        inside the lab's namespace (where hps-api serves and the lab's BMCs listen)."""
        env = {**self.env, "HPS_CONFIG_DIR": str(self.config_dir),
               "HPS_RESOURCES_DIR": self.env["HPS_LAB_RESOURCES_DIR"],
               # as pxe-lab runs hps-api: render-services writes it into rsyslog.conf
               "HPS_LOG_DIR": str(self.dir / "log"),
               "HPS_DHCP_LEASES": str(self.dir / "dnsmasq.leases"),
               "HPS_DNSMASQ_PIDFILE": str(self.dir / "dnsmasq.pid")}
        where = ["ip", "netns", "exec", self.ns] if netns else []
        return subprocess.run([*where, str(BIN / prog), *args], env=env, capture_output=True,
                              text=True, timeout=timeout, check=False, cwd=self.dir)


def lab_env(ns: str, directory: Path, resources: Path, accel: str = "auto") -> dict[str, str]:
    """Return the environment of a lab living in `directory` (no HPS_* from outside)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    env.update({"HPS_LAB_NS": ns, "HPS_LAB_DIR": str(directory),
                "HPS_LAB_RESOURCES_DIR": str(resources), "HPS_LAB_PORT": str(PORT),
                "HPS_LAB_ACCEL": accel})
    return env


def delete_namespace(ns: str) -> None:
    """Kill whatever still runs in `ns` and delete it (the last line of every cleanup)."""
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                          check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)


def build_rescue_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the rescue image into the session's `rescue-image` directory (the one
    test_rescue_image.py uses; a second build from the same inputs does nothing) and return
    it; skip loudly when the lab cannot run here."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    outdir = tmp_path_factory.getbasetemp() / "rescue-image"
    built = subprocess.run([str(BUILD), str(outdir)], capture_output=True, text=True,
                           timeout=600, check=False)
    assert built.returncode == 0, built.stderr
    return outdir


@contextlib.contextmanager
def running_lab(directory: Path, rescue_image: Path,
                extra_env: Mapping[str, str] | None = None) -> Iterator[Lab]:
    """`scripts/pxe-lab up` in a namespace of our own living in `directory`, with the rescue
    image under /distros/rescue and hps-api given `extra_env`; always `down` and deleted
    afterwards."""
    resources = directory / "resources"
    (resources / "distros").mkdir(parents=True)
    # A copy, not a symlink: /distros never follows a link out of the resources tree.
    shutil.copytree(rescue_image, resources / "distros" / "rescue")
    ns = f"hpst{secrets.token_hex(3)}"
    env = lab_env(ns, directory, resources)
    # hps-api inherits it from pxe-lab: admin calls of the JSON API from inside the namespace
    env["HPS_ADMIN_TOKEN"] = secrets.token_hex(16)
    env.update(extra_env or {})
    running = Lab(ns, directory, env)
    try:
        up = running.pxe_lab("up", timeout=180)
        assert up.returncode == 0, f"pxe-lab up failed:\n{up.stdout}\n{up.stderr}"
        yield running
    finally:
        running.pxe_lab("down", timeout=60)
        delete_namespace(running.ns)


def in_ns(ns: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace."""
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout, check=False)


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:g} s for {what}")
        time.sleep(0.5)


def read(path: Path) -> str:
    """Return a log file's text ('' while it does not exist)."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for_init(lab: Lab, mac: str) -> None:
    """Wait until the VM's iPXE has asked `cmd=init` (DHCP's filename) and got a 200."""
    init = re.compile(rf'"GET /cgi-bin/boot_manager\.sh\?cmd=init&mac={mac.replace(":", "-")}&'
                      r'\S* HTTP/1\.1" 200 .*"iPXE/')
    wait_for(lambda: init.search(read(lab.access_log)) is not None, VM_TIMEOUT,
             f"iPXE in VM {mac} to chain cmd=init")


def events(lab: Lab, mac12: str) -> list[list[str]]:
    """Return hps-api.log lines about one host as [time, level, host, session, client, msg]."""
    lines = read(lab.event_log).splitlines()
    return [line.split(" ", 5) for line in lines if line.split(" ")[2:3] == [mac12]]


def host_record(lab: Lab, mac: str) -> dict[str, str]:
    """Return a host's keys as the lab's store has them (`host_config --json MAC list`)."""
    listed = lab.cli("host_config", "--json", mac, "list")
    assert listed.returncode == 0, listed.stderr
    record: dict[str, str] = json.loads(listed.stdout)
    return record


def admin_call(lab: Lab, path: str, body: dict[str, str] | None = None) -> dict[str, object]:
    """GET `path` of hps-api's JSON API (POST a JSON `body` when given) from inside the lab
    namespace, as an admin (`Authorization: Bearer HPS_ADMIN_TOKEN`); return the answer's
    `data`."""
    code = ("import json, os, sys, urllib.request\n"
            "body = sys.argv[2].encode() if len(sys.argv) > 2 else None\n"
            "headers = {'Authorization': 'Bearer ' + os.environ['HPS_ADMIN_TOKEN'],\n"
            "           'Accept': 'application/json'}\n"
            "if body is not None:\n"
            "    headers['Content-Type'] = 'application/json'\n"
            "request = urllib.request.Request(sys.argv[1], data=body, headers=headers)\n"
            "print(urllib.request.urlopen(request, timeout=30).read().decode())\n")
    sent = [] if body is None else [json.dumps(body)]
    answer = subprocess.run(["ip", "netns", "exec", lab.ns, sys.executable, "-c", code,
                             f"{API}{path}", *sent], capture_output=True, text=True,
                            timeout=60, check=False,
                            env={**os.environ, "HPS_ADMIN_TOKEN": lab.env["HPS_ADMIN_TOKEN"]})
    assert answer.returncode == 0, answer.stderr
    reply = json.loads(answer.stdout)
    assert reply["ok"] is True, reply
    data: dict[str, object] = reply["data"]
    return data
