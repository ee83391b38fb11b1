"""Creating the store: the tree, `hps.conf` and a first cluster (what `hps-api init` does)."""

from __future__ import annotations

from dataclasses import dataclass

from hps_api.errors import NotFound
from hps_api.ids import validate_cluster
from hps_api.store.base import Store
from hps_api.store.journal import utc_now
from hps_api.store.records import RecordId


def active_cluster(store: Store) -> str | None:
    """Return ACTIVE_CLUSTER from hps.conf, None when hps.conf or the key is missing or empty.

    The one reader of that key: every caller that needs "the active cluster" starts here and
    decides itself what a missing one means (an error, "(none)", a degraded health answer).
    """
    try:
        return store.items(RecordId.global_()).get("ACTIVE_CLUSTER") or None
    except NotFound:
        return None


@dataclass(frozen=True)
class InitResult:
    """What `initialise` did: the cluster it ensured, the active one, and what it created."""

    cluster: str
    active: str
    created: tuple[str, ...]


def initialise(store: Store, cluster: str, actor: str) -> InitResult:
    """Create whatever is missing of the tree, `cluster` and ACTIVE_CLUSTER; idempotent.

    An existing ACTIVE_CLUSTER is never changed: initialising a second cluster creates it but
    leaves the active one alone (switching is an explicit operator action).
    """
    validate_cluster(cluster)
    created: list[str] = []
    layout = store.layout
    for directory in (layout.root, layout.os_dir, layout.clusters_dir):
        if not directory.is_dir():
            directory.mkdir(parents=True)
            created.append(f"{directory}/")
    cluster_rid = RecordId.of_cluster(cluster)
    if not store.exists(cluster_rid):
        store.update(cluster_rid, {"NAME": cluster, "CREATED": utc_now()}, actor, create=True)
        created.append(str(layout.path(cluster_rid)))
    for directory in (layout.hosts_dir(cluster), layout.services_dir(cluster)):
        directory.mkdir(parents=True, exist_ok=True)  # the etcd backend makes no cluster dir
    active = active_cluster(store)
    if not active:
        if not store.exists(RecordId.global_()):
            created.append(str(layout.hps_conf))
        store.update(RecordId.global_(), {"ACTIVE_CLUSTER": cluster}, actor, create=True)
        active = cluster
    return InitResult(cluster, active, tuple(created))

