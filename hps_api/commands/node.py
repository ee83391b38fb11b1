"""Commands booted nodes use: the node library, syslog proof, self-test reports, storage IPs."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from hps_api.boot.alloc import host_values
from hps_api.commands.base import CommandContext, Reply
from hps_api.errors import Conflict, InvalidInput, NotFound
from hps_api.ids import normalize_key
from hps_api.model import resources
from hps_api.model.network import first_free
from hps_api.observe import eventlog
from hps_api.store import RecordId

#: the served files, as hps_api.model.resources names them
NODE_LIBS = {"sh": "node_lib/sh/hps-functions.sh",
             "python": "node_lib/python/hps_node.py",
             "bootstrap": "node_lib/sh/hps-bootstrap.sh"}
SYSLOG_TAIL_BYTES = 1024 * 1024
MAX_SELFTESTS = 32
_KEY_TEXT = re.compile(r"^[A-Za-z0-9._:-]{4,128}$")
#: what old nodes send as `distro=`: <cpu>-<mfr>-<os id>-<os version>, e.g. x86_64-linux-rocky-10.0
_DISTRO = re.compile(r"^[A-Za-z0-9._+-]{1,64}$")


@lru_cache(maxsize=3)
def node_library(flavour: str = "sh") -> tuple[str, str]:
    """Return a node library's source and its version (first 12 hex of its sha256)."""
    source = resources.find(NODE_LIBS[flavour]).read_text(encoding="utf-8")
    return source, hashlib.sha256(source.encode()).hexdigest()[:12]


def remote_functions(ctx: CommandContext) -> Reply:
    """Return the node library with this IPS's URL and the library version filled in: the sh
    library for any distro string (`distro=python`: the Python client); for
    `node_get_bootstrap_functions` the bootstrap followed by the sh library.

    Raises InvalidInput when `distro=` is not a distro string.
    """
    distro = ctx.params.get("distro", "")
    if distro and not _DISTRO.match(distro):
        raise InvalidInput("distro must be 1-64 letters, digits and ._+- "
                           "(<cpu>-linux-<os>-<version>, or python)")
    if ctx.name == "node_get_bootstrap_functions":
        flavours = ["bootstrap", "sh"]
    else:
        flavours = ["python" if distro.lower() == "python" else "sh"]
    filled = [_filled(flavour, ctx.base_url) for flavour in flavours]
    script = "\n".join(text for text, _ in filled)
    version = filled[0][1]
    return Reply(script, {"version": version, "source": script}, raw=True,
                 title="node bootstrap" if len(filled) > 1 else "node library")


def _filled(flavour: str, base_url: str) -> tuple[str, str]:
    """Return a node library's source with the IPS URL and its version filled in, and the
    version."""
    source, version = node_library(flavour)
    text = source.replace("@HPS_API_URL@", base_url).replace("@HPS_NODE_LIB_VERSION@", version)
    return text, version


def syslog_check(ctx: CommandContext) -> Reply:
    """Answer `yes` when a syslog line containing `key` arrived from the caller's address."""
    key = ctx.param("key")
    if not _KEY_TEXT.match(key):
        raise InvalidInput("key must be 4-128 characters of letters, digits and ._:-")
    found = _syslog_has(ctx.settings.log_dir / "nodes.log", ctx.caller.ip, key)
    return Reply("yes" if found else "no", {"key": key, "arrived": found})


def selftest_report(ctx: CommandContext) -> Reply:
    """Store `name=pass|name=fail:reason|...` as SELFTEST_* keys with a summary; answer `ok`."""
    results = _parse_results(ctx.param("results"))
    ctx.host_items()
    previous = {k: None for k in ctx.host_items() if k.startswith("SELFTEST_")}
    verdict = "pass" if all(v == "pass" for v in results.values()) else "fail"
    changes: dict[str, str | None] = {**previous, **results, "SELFTEST_RESULT": verdict,
                                      "SELFTEST_AT": datetime.now(UTC).strftime(
                                          "%Y-%m-%dT%H:%M:%SZ")}
    ctx.store.update(ctx.host, changes, ctx.actor)
    failed = [k.removeprefix("SELFTEST_").lower() for k, v in results.items() if v != "pass"]
    eventlog.event(logging.WARNING if failed else logging.INFO,
                   f"self-test {verdict}" + (f": {', '.join(failed)}" if failed else ""),
                   host=ctx.mac, session=ctx.session, client=ctx.negotiated.client.value)
    return Reply("ok", {"result": verdict, "tests": results})


def host_allocate_networks(ctx: CommandContext) -> Reply:
    """Allocate (or return) the caller's address on storage network `index`; answer
    `<vlan>:<ip>:<netmask>:<gateway>:<mtu>`."""
    index = _index(ctx.param("index"))
    ctx.host_items()
    with ctx.store.lock(ctx.cluster):
        cluster = ctx.store.items(RecordId.of_cluster(ctx.cluster))
        net = _storage_network(cluster, index)
        key = f"STORAGE{index}_IP"
        ip = ctx.host_items().get(key)
        if not ip:
            ip = _free_address(ctx, net, key)
            ctx.store.update(ctx.host, {key: ip}, ctx.actor)
    netmask = str(net.network.netmask)
    line = f"{net.vlan}:{ip}:{netmask}:{net.gateway}:{net.mtu}"
    return Reply(line, {"index": index, "vlan": net.vlan, "ip": ip, "netmask": netmask,
                        "gateway": str(net.gateway), "mtu": net.mtu})


def _syslog_has(path: Path, ip: str, key: str) -> bool:
    """Return True when the last MiB of the node log has a line from `ip` containing `key`."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - SYSLOG_TAIL_BYTES))
            tail = handle.read()
    except FileNotFoundError:
        return False
    needle, source = key.encode(), ip.encode()
    for line in tail.splitlines():
        fields = line.split(b" ", 2)
        if len(fields) >= 2 and fields[1] == source and needle in line:
            return True
    return False


def _parse_results(text: str) -> dict[str, str]:
    results: dict[str, str] = {}
    for part in filter(None, text.split("|")):
        name, sep, outcome = part.partition("=")
        if not sep:
            raise InvalidInput(f"self-test result {part[:40]!r} is not name=pass|fail:reason")
        key = "SELFTEST_" + normalize_key(name.strip())
        if outcome != "pass" and not outcome.startswith("fail"):
            raise InvalidInput(f"self-test {name!r}: outcome must be pass or fail:<reason>")
        results[key] = outcome
    if not results or len(results) > MAX_SELFTESTS:
        raise InvalidInput(f"results must name 1 to {MAX_SELFTESTS} self-tests")
    return results


def _index(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) < 16:
        raise InvalidInput(f"index must be a storage network number, not {text!r}")
    return int(text)


@dataclass(frozen=True)
class StorageNetwork:
    """Storage network `index` of a cluster (cluster keys STORAGE<i>_VLAN/_CIDR/_GATEWAY/_MTU)."""

    network: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    vlan: str
    mtu: str


def _storage_network(cluster: dict[str, str], index: int) -> StorageNetwork:
    """Return the storage network `index`; NotFound when it is not configured.

    A cluster configured by the bash-era IPS (NETWORK_STORAGE_COUNT and no STORAGE_NETWORKS)
    is read in its own keys, so its old nodes and this allocator agree.
    """
    if not cluster.get("STORAGE_NETWORKS") and cluster.get("NETWORK_STORAGE_COUNT"):
        return _old_storage_network(cluster, index)
    count = _count(cluster, "STORAGE_NETWORKS")
    prefix = f"STORAGE{index}_"
    if index >= count or not cluster.get(prefix + "CIDR"):
        raise NotFound(f"storage network {index} is not configured (STORAGE_NETWORKS={count})")
    return _storage_network_of(index, cluster[prefix + "CIDR"], cluster.get(prefix + "GATEWAY"),
                               cluster.get(prefix + "VLAN", "0"),
                               cluster.get(prefix + "MTU", "1500"))


def _old_storage_network(cluster: dict[str, str], index: int) -> StorageNetwork:
    """Storage network `index` in the bash-era keys: VLAN NETWORK_STORAGE_BASE_VLAN + index,
    then NETWORK_STORAGE_VLAN<vlan>_SUBNET (`10.31.0.0/24`, or an address with _NETMASK),
    _GATEWAY, and one NETWORK_STORAGE_MTU for all."""
    count = _count(cluster, "NETWORK_STORAGE_COUNT")
    base = cluster.get("NETWORK_STORAGE_BASE_VLAN", "")
    if not base.strip().isdigit():
        raise NotFound("storage network not initialised: NETWORK_STORAGE_BASE_VLAN is not set")
    vlan = int(base) + index
    prefix = f"NETWORK_STORAGE_VLAN{vlan}_"
    subnet = cluster.get(prefix + "SUBNET", "").strip()
    if index >= count or not subnet:
        raise NotFound(f"storage network {index} (VLAN {vlan}) is not configured "
                       f"(NETWORK_STORAGE_COUNT={count})")
    if "/" not in subnet and cluster.get(prefix + "NETMASK"):
        subnet = f"{subnet}/{cluster[prefix + 'NETMASK'].strip()}"
    return _storage_network_of(index, subnet, cluster.get(prefix + "GATEWAY"), str(vlan),
                               cluster.get("NETWORK_STORAGE_MTU") or "1500")


def _count(cluster: dict[str, str], key: str) -> int:
    text = (cluster.get(key) or "0").strip()
    if not text.isdigit():
        raise InvalidInput(f"cluster key {key}={text[:20]!r} is not a number")
    return int(text)


def _storage_network_of(index: int, cidr: str, gateway: str | None, vlan: str,
                        mtu: str) -> StorageNetwork:
    try:
        network = ipaddress.IPv4Network(cidr, strict=False)
        address = ipaddress.IPv4Address(gateway or str(next(network.hosts())))
    except ValueError as err:
        raise InvalidInput(f"storage network {index}: {err}") from None
    return StorageNetwork(network, address, vlan, mtu)


def _free_address(ctx: CommandContext, net: StorageNetwork, key: str) -> str:
    taken = [str(net.gateway), *host_values(ctx.store, ctx.cluster, key)]
    address = first_free(net.network.hosts(), taken)
    if address is None:
        raise Conflict(f"storage network {net.network} has no free address left")
    return str(address)
