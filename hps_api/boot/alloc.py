"""Identity allocation: HOSTNAME and IP under the cluster allocation lock (docs/boot.md).

Two hosts configured at the same instant never get the same name or address: the scan of the
cluster's hosts and the write of the result happen under one cluster-wide lock. A host that
already has a HOSTNAME or IP keeps it. Every address pool (the static pool of the provisioning
network here, a storage network's hosts for `host_allocate_networks`) is handed out by the same
rule, `hps_api.model.network.first_free`: its first address no host holds.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

from hps_api.errors import Conflict, NotFound
from hps_api.model.network import ClusterNetwork, first_free
from hps_api.store import Kind, RecordId, Store

_NUMBERED = re.compile(r"^([a-z]+)-(\d{3,})$")


def next_hostname(host_type: str, taken: Iterable[str]) -> str:
    """Return `<type lower>-NNN` with the lowest number no other host uses."""
    prefix = host_type.lower()
    used = {int(m.group(2)) for m in map(_NUMBERED.match, taken) if m and m.group(1) == prefix}
    number = next(n for n in range(1, len(used) + 2) if n not in used)
    return f"{prefix}-{number:03d}"


def next_ip(network: ClusterNetwork, taken: Iterable[str]) -> str:
    """Return the first free static address; Conflict when the pool is exhausted."""
    address = first_free(network.static_pool(), taken)
    if address is None:
        raise Conflict(f"no free address left in the static pool of {network.network} "
                       f"(outside {network.range_start}-{network.range_end})")
    return str(address)


def host_values(store: Store, cluster: str, key: str) -> list[str]:
    """Return the value of `key` of every host of the cluster that has it (call it under the
    cluster allocation lock: the answer is what an allocation must not hand out again)."""
    return [items[key] for _, items in _all_hosts(store, cluster) if items.get(key)]


def allocate_identity(
    store: Store, cluster: str, mac: str, host_type: str, extra: Mapping[str, str | None],
    actor: str,
) -> dict[str, str]:
    """Give the host a HOSTNAME, IP and NETMASK (kept if it has them) and write them together
    with `extra` in one update, all under the cluster allocation lock; return the new record.

    Raises Conflict (pool exhausted), InvalidInput (the cluster's network keys missing or bad),
    NotFound, StoreBusy.
    """
    network = ClusterNetwork.of(store.items(RecordId.of_cluster(cluster)))
    rid = RecordId.of_host(cluster, mac)
    with store.lock(cluster):
        current = _items_or_empty(store, rid)
        others = [items for other, items in _all_hosts(store, cluster) if other != rid.name]
        changes: dict[str, str | None] = dict(extra)
        if not current.get("HOSTNAME"):
            changes["HOSTNAME"] = next_hostname(host_type, (h.get("HOSTNAME", "") for h in others))
        if not _valid_ip(current.get("IP", ""), network):
            changes["IP"] = next_ip(network, (h.get("IP", "") for h in others))
        changes["NETMASK"] = network.netmask
        return store.update(rid, changes, actor, create=True)


def _all_hosts(store: Store, cluster: str) -> list[tuple[str | None, dict[str, str]]]:
    found = []
    for rid in store.list_records(Kind.HOST, cluster):
        try:
            found.append((rid.name, store.items(rid)))
        except NotFound:
            continue
    return found


def _items_or_empty(store: Store, rid: RecordId) -> dict[str, str]:
    try:
        return store.items(rid)
    except NotFound:
        return {}


def _valid_ip(text: str, network: ClusterNetwork) -> bool:
    """Return True when a kept IP is still a static address of the network."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return network.is_host_address(address) and not network.in_range(address) \
        and address != network.ips
