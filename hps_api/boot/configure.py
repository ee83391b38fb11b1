"""Configuring a host: type, profile, OS and identity in one step (menu, config_host, API).

The service files that follow the new reservation are the caller's step: `hps_api.ops.hosts`.
"""

from __future__ import annotations

import logging

from hps_api.boot.alloc import allocate_identity
from hps_api.errors import Conflict, HpsError, NotFound
from hps_api.model.catalog import STORAGE_TYPE, HostType, host_type, load_catalog, profile_of
from hps_api.observe import eventlog
from hps_api.store import Kind, RecordId, Store


def configure_host(
    store: Store, cluster: str, mac: str, type_name: str, profile: str | None, actor: str,
    *, admin: bool,
) -> dict[str, str]:
    """Set TYPE, PROFILE and OS_ID, allocate HOSTNAME and IP, set STATE=CONFIGURED; return the
    record. Raises InvalidInput (unknown type/profile), Conflict (type not offered yet, no OS,
    pool exhausted), NotFound, StoreBusy.
    """
    kind = host_type(type_name)
    chosen = profile_of(kind, profile)
    if kind.needs_storage and not admin and not storage_ready(store, cluster):
        raise Conflict(f"{kind.name} needs an INSTALLED {STORAGE_TYPE} first")
    cluster_items = store.items(RecordId.of_cluster(cluster))
    arch = _host_arch(store, cluster, mac)
    os_id = _resolve(store, cluster_items, kind, arch)
    record = allocate_identity(store, cluster, mac, kind.name, {
        "TYPE": kind.name, "PROFILE": chosen, "OS_ID": os_id, "STATE": "CONFIGURED",
        "INSTALL_ATTEMPTS": None, "FORCE_INSTALL": None}, actor)
    eventlog.event(logging.INFO, f"configured as {kind.name}/{chosen} ({os_id}), "
                   f"{record.get('HOSTNAME')} {record.get('IP')}", host=mac)
    return record


def offered_types(store: Store, cluster: str) -> list[HostType]:
    """Return the host types the install menu offers now (storage-dependent ones only once a
    storage host is INSTALLED)."""
    ready = storage_ready(store, cluster)
    return [kind for kind in load_catalog().values() if ready or not kind.needs_storage]


def storage_ready(store: Store, cluster: str) -> bool:
    """Return True when the cluster has an INSTALLED storage host (SCH)."""
    for rid in store.list_records(Kind.HOST, cluster):
        try:
            items = store.items(rid)
        except HpsError:
            continue
        if items.get("TYPE") == STORAGE_TYPE and items.get("STATE") == "INSTALLED":
            return True
    return False


def _resolve(store: Store, cluster_items: dict[str, str], kind: HostType, arch: str) -> str:
    from hps_api.model.osreg import resolve_os

    found = resolve_os(store, cluster_items, kind.name, arch)
    if not found:
        raise Conflict(f"no OS for {kind.name} on {arch}: register one with 'hps-api os add' "
                       f"or set OS_{kind.name}")
    return found[0]


def _host_arch(store: Store, cluster: str, mac: str) -> str:
    try:
        return store.items(RecordId.of_host(cluster, mac)).get("ARCH") or "x86_64"
    except NotFound:
        return "x86_64"
