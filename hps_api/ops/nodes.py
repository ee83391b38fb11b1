"""Operations a host's own boot and reports make: register and stamp a boot (`init`), apply a
boot decision, take the installer's config (INSTALLING), keep a hardware audit and a self-test
report, allocate a storage network address.

The legacy commands that call these parse the request and present the answer; the writes, their
conditions (`expect`) and their locks are here, beside the operator's operations of
`hps_api.ops.hosts`, so that every write to a host record is one function of this layer.
"""

from __future__ import annotations

from collections.abc import Mapping

from hps_api.boot.alloc import host_values
from hps_api.errors import Conflict
from hps_api.model.network import StorageNetwork, first_free, storage_network
from hps_api.store import RecordId, Store

Changes = Mapping[str, str | None]


def record_boot(store: Store, rid: RecordId, registered: bool, stamps: Mapping[str, str],
                changes: Changes, actor: str) -> None:
    """Write what `init` learnt: a new host's registration, the boot stamps and the decision's
    changes in one durable update; the stamps alone (a registered host whose decision changes
    nothing) go to the host's stamp file (`Store.stamp`): no record rewrite, no fsync."""
    if registered and not changes:
        store.stamp(rid, stamps, actor)
    else:
        store.update(rid, {**stamps, **changes}, actor, create=not registered)


def apply_decision(store: Store, rid: RecordId, changes: Changes, actor: str) -> None:
    """Write the changes of a boot decision taken outside `init` (a menu item acted on)."""
    if changes:
        store.update(rid, dict(changes), actor)


def force_install(store: Store, rid: RecordId, on: bool, actor: str) -> dict[str, str]:
    """Set FORCE_INSTALL (yes/no): whether the next boot installs again whatever the state."""
    return store.update(rid, {"FORCE_INSTALL": "yes" if on else "no"}, actor)


def start_install(store: Store, rid: RecordId, state: str, actor: str) -> None:
    """STATE=INSTALLING as the installer fetches its config, on the condition that the state is
    still the one the config was made for (Conflict otherwise)."""
    store.update(rid, {"STATE": "INSTALLING"}, actor, expect={"STATE": state})


def record_audit(store: Store, rid: RecordId, changes: Changes, hash_before: str | None,
                 actor: str) -> None:
    """Keep a hardware audit's facts, on the condition that no other audit changed the host's
    HW_HASH meanwhile (Conflict otherwise)."""
    store.update(rid, changes, actor, expect={"HW_HASH": hash_before})


def record_selftest(store: Store, rid: RecordId, results: Mapping[str, str], verdict: str,
                    at: str, actor: str) -> None:
    """Replace the host's SELFTEST_* keys with a new report and its summary, in one update."""
    previous = {key: None for key in store.items(rid) if key.startswith("SELFTEST_")}
    store.update(rid, {**previous, **results, "SELFTEST_RESULT": verdict, "SELFTEST_AT": at},
                 actor)


def storage_address(store: Store, rid: RecordId, index: int,
                    actor: str) -> tuple[StorageNetwork, str]:
    """Return storage network `index` and the host's address on it, allocating the first free one
    (not the gateway, no other host's) under the cluster's allocation lock when it has none.
    Raises NotFound (network not configured), Conflict (no address left), InvalidInput."""
    cluster = rid.cluster or ""
    key = f"STORAGE{index}_IP"
    with store.lock(cluster):
        net = storage_network(store.items(RecordId.of_cluster(cluster)), index)
        ip = store.items(rid).get(key)
        if not ip:
            taken = [str(net.gateway), *host_values(store, cluster, key)]
            address = first_free(net.network.hosts(), taken)
            if address is None:
                raise Conflict(f"storage network {net.network} has no free address left")
            ip = str(address)
            store.update(rid, {key: ip}, actor)
    return net, ip
