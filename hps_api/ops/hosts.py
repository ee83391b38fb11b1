"""Operations on one host: configure, set or unset a key as an admin, delete.

Each writes through the store (validated there: HOSTNAME, shell-special names, values) and then
takes its side effect as an explicit step: when HOSTNAME or IP changed, the cluster's dnsmasq
files are regenerated and dnsmasq reloaded, so reservations and names never go stale,
whichever door made the change.
"""

from __future__ import annotations

from hps_api.boot.configure import configure_host
from hps_api.ids import normalize_key
from hps_api.model.states import parse_state
from hps_api.ops.services import refresh_services, touches_services
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId


def configure(store: FileStore, settings: Settings, cluster: str, mac: str, type_name: str,
              profile: str | None, actor: str, *, admin: bool) -> dict[str, str]:
    """Configure a host as TYPE/PROFILE (type, OS, hostname, IP, CONFIGURED), then refresh the
    service files. Raises what `boot.configure.configure_host` raises."""
    record = configure_host(store, cluster, mac, type_name, profile, actor, admin=admin)
    refresh_services(store, settings, cluster)
    return record


def set_key(store: FileStore, settings: Settings, rid: RecordId, key: str, value: str,
            actor: str, *, create: bool = False) -> dict[str, str]:
    """Set one key of a host as an admin and return the new record (`create`: register the host
    first, as `host_config MAC set` does); STATE must be a known state. Refreshes the service
    files when HOSTNAME or IP changed. Raises InvalidInput, NotFound, StoreBusy..."""
    name = normalize_key(key)
    if name == "STATE":
        value = parse_state(value)
    before = store.items(rid) if store.exists(rid) else None
    after = store.update(rid, {name: value}, actor, create=create)
    _follow(store, settings, rid, before, after)
    return after


def unset_key(store: FileStore, settings: Settings, rid: RecordId, key: str,
              actor: str) -> dict[str, str]:
    """Remove one key of a host and return the new record; KeyNotSet when it was not set."""
    before = store.items(rid)
    after = store.unset(rid, key, actor)
    _follow(store, settings, rid, before, after)
    return after


def delete(store: FileStore, settings: Settings, rid: RecordId, actor: str) -> None:
    """Delete a host's record; refresh the service files when it held a reservation."""
    before = store.items(rid)
    store.delete(rid, actor)
    _follow(store, settings, rid, before, None)


def _follow(store: FileStore, settings: Settings, rid: RecordId,
            before: dict[str, str] | None, after: dict[str, str] | None) -> None:
    if rid.cluster and touches_services(before, after):
        refresh_services(store, settings, rid.cluster)
