"""Clusters and hosts as an operator sees them: listing, creating, activating, summarising.

Plain functions over a FileStore, no Flask: the JSON API calls them, and so can the CLIs and the
web UI. Every error is a domain error (`InvalidInput`, `NotFound`, `Conflict`, `StoreBusy`...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hps_api.errors import Conflict, HpsError, InvalidInput, NotFound
from hps_api.ids import normalize_key, normalize_mac, validate_cluster, validate_value
from hps_api.model.states import parse_state
from hps_api.store import FileStore, Kind, RecordId
from hps_api.store.bootstrap import active_cluster
from hps_api.store.journal import utc_now

#: cluster keys the server writes itself; a create request may not set them
RESERVED_CLUSTER_KEYS = frozenset({"NAME", "CREATED", "UPDATED"})

#: summary column -> host key
SUMMARY_COLUMNS = {
    "hostname": "HOSTNAME",
    "type": "TYPE",
    "profile": "PROFILE",
    "state": "STATE",
    "ip": "IP",
    "last_seen": "LAST_SEEN",
    "boot_session": "BOOT_SESSION",
    "selftest": "SELFTEST_RESULT",
}


def list_clusters(store: FileStore) -> list[dict[str, Any]]:
    """Return every cluster as `{name, active, hosts}` (hosts: how many records), by name."""
    active = active_cluster(store)
    return [
        {"name": rid.cluster, "active": rid.cluster == active,
         "hosts": len(store.list_records(Kind.HOST, rid.cluster))}
        for rid in store.list_records(Kind.CLUSTER)
    ]


def create_cluster(store: FileStore, name: str, values: Mapping[str, str], actor: str,
                   ) -> dict[str, str]:
    """Create a cluster record with NAME, CREATED and `values`; return the new record.

    The active cluster is never changed (switching is `activate_cluster`, an explicit act).
    Raises InvalidInput (bad name, key or value, or a reserved key; nothing is written) and
    Conflict when the cluster exists (also when a concurrent request created it first).
    """
    rid = RecordId.of_cluster(name)
    changes = {normalize_key(k): validate_value(v) for k, v in values.items()}
    reserved = sorted(RESERVED_CLUSTER_KEYS.intersection(changes))
    if reserved:
        raise InvalidInput(f"{', '.join(reserved)} is set by the server, not by the request")
    if store.exists(rid):
        raise _exists(name)
    try:
        # `expect` re-checks under the record's lock: of two racing creates, one gets Conflict
        return store.update(rid, {"NAME": name, "CREATED": utc_now(), **changes}, actor,
                            create=True, expect={"NAME": None})
    except Conflict:
        raise _exists(name) from None


def activate_cluster(store: FileStore, name: str, actor: str) -> dict[str, str | None]:
    """Make `name` the active cluster; return `{active, previous}`.

    Raises InvalidInput for a bad name and NotFound when the cluster does not exist.
    """
    rid = RecordId.of_cluster(name)
    if not store.exists(rid):
        raise NotFound(f"cluster {name!r} not found")
    previous = active_cluster(store)
    store.update(RecordId.global_(), {"ACTIVE_CLUSTER": name}, actor, create=True)
    return {"active": name, "previous": previous}


def host_summary(mac: str, items: Mapping[str, str]) -> dict[str, str | None]:
    """Return the summary columns of one host (None where the key is not set)."""
    summary: dict[str, str | None] = {"mac": normalize_mac(mac)}
    summary.update({column: items.get(key) for column, key in SUMMARY_COLUMNS.items()})
    return summary


def show_host(store: FileStore, cluster: str, mac: str) -> dict[str, Any]:
    """Return `{mac, cluster, record, summary}` of one host; NotFound when it is not registered."""
    rid = RecordId.of_host(cluster, mac)
    items = store.items(rid)
    return {"mac": rid.name, "cluster": rid.cluster, "record": items,
            "summary": host_summary(rid.name or "", items)}


def list_hosts(store: FileStore, cluster: str, state: str | None = None,
               type: str | None = None) -> list[dict[str, str | None]]:
    """Return the summaries of a cluster's hosts, newest activity first.

    Sorted by LAST_SEEN, then UPDATED, descending (hosts never seen last), then by MAC.
    `state` must be a known state (InvalidInput otherwise); `type` matches case-insensitively.
    A record that cannot be read is listed with every column None and an `error`, so one bad
    file neither hides the others nor goes unnoticed; filters never match it.
    NotFound when the cluster does not exist.
    """
    wanted_state = parse_state(state) if state else None
    wanted_type = type.upper() if type else None
    rows: list[tuple[tuple[str, str], dict[str, str | None]]] = []
    for rid in store.list_records(Kind.HOST, validate_cluster(cluster)):
        mac = rid.name or ""
        try:
            items = store.items(rid)
        except NotFound:
            continue  # deleted since the directory was listed
        except HpsError as err:
            if wanted_state is None and wanted_type is None:
                rows.append((("", ""), {**host_summary(mac, {}), "error": str(err)}))
            continue
        if _matches(items, wanted_state, wanted_type):
            recency = (items.get("LAST_SEEN", ""), items.get("UPDATED", ""))
            rows.append((recency, host_summary(mac, items)))
    rows.sort(key=lambda row: row[1]["mac"] or "")
    rows.sort(key=lambda row: row[0], reverse=True)
    return [summary for _, summary in rows]


def _matches(items: Mapping[str, str], state: str | None, type_: str | None) -> bool:
    if state is not None and items.get("STATE", "").upper() != state:
        return False
    return type_ is None or items.get("TYPE", "").upper() == type_


def _exists(name: str) -> Conflict:
    return Conflict(f"cluster {name!r} already exists")
