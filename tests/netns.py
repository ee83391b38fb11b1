"""Two test hosts on one machine: an IPS namespace and a node namespace joined by a veth pair.

Shared by the tiers that call a real server from a real LAN neighbour (test_compat,
test_nginx). `ip netns exec` lays `/etc/netns/<node>/hosts` over `/etc/hosts`, so the node
resolves `ips` as the cluster's DNS would. Everything a neighbourhood starts is killed and the
namespaces are deleted on the way out, even when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Link:
    """The veth pair: its two ends' names, the node end's MAC, and each end's addresses."""

    ips_end: str
    node_end: str
    node_mac: str
    ips_addresses: tuple[str, ...]
    node_addresses: tuple[str, ...]
    gateway: str | None = None


def clean_env() -> dict[str, str]:
    """Return this process's environment without HPS_* settings or proxy variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPS_", "http_", "HTTP"))}
    env.pop("no_proxy", None)
    return env


def ip(*argv: str) -> None:
    """Run `ip ARGV...`; raise when it fails."""
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=20)


def delete_namespace(ns: str) -> None:
    """Kill whatever still runs in `ns` and delete it."""
    listed = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                            check=False)
    for pid in listed.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)


@contextlib.contextmanager
def neighbourhood(ips_ns: str, node_ns: str, link: Link, ips_name: str) -> Iterator[None]:
    """The two namespaces joined by `link`; `ips` on the node names `ips_name` (an address)."""
    netns_etc = Path("/etc/netns") / node_ns
    try:
        for ns in (ips_ns, node_ns):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("link", "add", link.ips_end, "netns", ips_ns, "type", "veth", "peer", "name",
           link.node_end, "netns", node_ns, "address", link.node_mac)
        for ns, end, addresses in ((ips_ns, link.ips_end, link.ips_addresses),
                                   (node_ns, link.node_end, link.node_addresses)):
            for address in addresses:
                ip("-n", ns, "addr", "add", address, "dev", end,
                   *(["nodad"] if ":" in address else []))
            ip("-n", ns, "link", "set", end, "up")
        if link.gateway:
            ip("-n", node_ns, "route", "add", "default", "via", link.gateway)
        netns_etc.mkdir(parents=True, exist_ok=True)
        (netns_etc / "hosts").write_text(f"127.0.0.1 localhost\n{ips_name} ips\n")
        yield
    finally:
        for ns in (node_ns, ips_ns):
            delete_namespace(ns)
        shutil.rmtree(netns_etc, ignore_errors=True)
