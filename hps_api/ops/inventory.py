"""Clusters and hosts as an operator sees them: listing, creating, activating, summarising.

Plain functions over a Store, no Flask: the JSON API calls them, and so can the CLIs and the
web UI. Every error is a domain error (`InvalidInput`, `NotFound`, `Conflict`, `StoreBusy`...).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from hps_api.errors import Conflict, InvalidInput, NotFound
from hps_api.ids import normalize_key, normalize_mac, validate_cluster, validate_value
from hps_api.ops.host_index import HostIndex
from hps_api.ops.host_query import HostQuery, select
from hps_api.ops.stuck import stuck_test
from hps_api.store import Kind, RecordId, Store
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


def list_clusters(store: Store) -> list[dict[str, Any]]:
    """Return every cluster as `{name, active, hosts}` (hosts: how many records), by name."""
    active = active_cluster(store)
    return [
        {"name": rid.cluster, "active": rid.cluster == active,
         "hosts": len(store.list_records(Kind.HOST, rid.cluster))}
        for rid in store.list_records(Kind.CLUSTER)
    ]


def create_cluster(store: Store, name: str, values: Mapping[str, str], actor: str,
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


def activate_cluster(store: Store, name: str, actor: str) -> dict[str, str | None]:
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


def show_host(store: Store, cluster: str, mac: str) -> dict[str, Any]:
    """Return `{mac, cluster, record, summary}` of one host; NotFound when it is not registered."""
    rid = RecordId.of_host(cluster, mac)
    items = store.items(rid)
    return {"mac": rid.name, "cluster": rid.cluster, "record": items,
            "summary": host_summary(rid.name or "", items)}


def list_hosts(store: Store, cluster: str, query: HostQuery | None = None, *,
               index: HostIndex | None = None, now: float | None = None) -> dict[str, Any]:
    """Return `{cluster, hosts, total, page, per_page, pages, unreadable}`: the summaries of
    the cluster's hosts that match `query` (hps_api.ops.host_query: search, filters, sort,
    page), newest activity first unless it sorts otherwise.

    `total` counts every matching host, `hosts` holds the page (every match when the query
    has no per_page). A record that cannot be read is named in `unreadable` (`{mac, error}`);
    an unfiltered, unpaged listing also lists it in `hosts` with every column None and an
    `error`, last, so one bad file neither hides the others nor goes unnoticed. `index` reads
    the records (a fresh one: every record is parsed). NotFound when the cluster does not
    exist, InvalidInput for a bad cluster name.
    """
    query = query or HostQuery()
    hosts = (index or HostIndex()).read(store, validate_cluster(cluster))
    now = time.time() if now is None else now
    found = select(hosts.records, query, now=now,
                   stuck=stuck_test(store, cluster, hosts.records, now))
    rows: list[dict[str, Any]] = [host_summary(mac, items) for mac, items in found.rows]
    unreadable = [{"mac": mac, "error": error} for mac, error in sorted(hosts.problems.items())]
    if not query.filtered and query.per_page is None:
        rows += [{**host_summary(row["mac"], {}), "error": row["error"]} for row in unreadable]
    return {"cluster": cluster, "hosts": rows, "total": found.total, "page": found.page,
            "per_page": found.per_page, "pages": found.pages, "unreadable": unreadable}


def _exists(name: str) -> Conflict:
    return Conflict(f"cluster {name!r} already exists")
