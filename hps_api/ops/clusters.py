"""Operations on a cluster's record, the same from every door (`cluster_config`, `hps-api cluster
create`, /api/v1, the legacy `cluster_variable`): create, set or unset a key.

Every key with a meaning (the network, the DHCP range, storage networks, OS choices... see
`hps_api.model.cluster_keys`) is checked alone and then with the rest of the record, as the
wizard checks it, so a change that would leave the cluster unusable (a DHCP_IP outside
NETWORK_CIDR, a range that covers the IPS) is refused with the key to fix (InvalidKey: HTTP
400, exit 2) and nothing is written. A change to a key dnsmasq's files are made of regenerates
them, as a host's HOSTNAME or IP does.
"""

from __future__ import annotations

from collections.abc import Mapping

from hps_api.errors import Conflict, HpsError, InvalidInput
from hps_api.ids import normalize_key
from hps_api.model.cluster_keys import check_all, check_values, validate
from hps_api.model.osreg import list_os
from hps_api.ops import inventory
from hps_api.ops.services import Refreshed, refresh_services, render_and_reload
from hps_api.settings import Settings
from hps_api.store import RecordId, Store

Changes = Mapping[str, str | None]
#: cluster keys dnsmasq's files are made of: a change re-renders them
SERVICE_CLUSTER_KEYS = frozenset({
    "NETWORK_CIDR", "DHCP_IP", "DHCP_RANGE_START", "DHCP_RANGE_END", "DHCP_IFACE",
    "DNS_DOMAIN", "HPS_PORT", "SYSLOG_PORT"})


def create(store: Store, name: str, values: Mapping[str, str], actor: str) -> dict[str, str]:
    """Create a cluster with `values` checked as a whole; return its record. Raises InvalidKey,
    InvalidInput (nothing written) and Conflict (the cluster exists)."""
    checked = check_values(values, dict(list_os(store)))
    return inventory.create_cluster(store, name, checked, actor)


def set_key(store: Store, settings: Settings, cluster: str, key: str, value: str,
            actor: str) -> dict[str, str]:
    """Set one key of a cluster, checked alone and with the rest of the record (see
    `_still_consistent`); return the record. The write expects the key's previous value, so a
    concurrent change of the same key is a Conflict rather than a check made against a record
    that no longer exists."""
    rid = RecordId.of_cluster(cluster)
    name = normalize_key(key)
    current = store.items(rid)
    checked = validate(name, value, dict(list_os(store)))
    _still_consistent(current, {**current, name: checked})
    record = store.update(rid, {name: checked}, actor, expect={name: current.get(name)})
    _follow(store, settings, cluster, name, current, record)
    return record


def unset_key(store: Store, settings: Settings, cluster: str, key: str,
              actor: str) -> dict[str, str]:
    """Remove one key of a cluster when the rest stays consistent; return the record."""
    rid = RecordId.of_cluster(cluster)
    name = normalize_key(key)
    current = store.items(rid)
    _still_consistent(current, {k: v for k, v in current.items() if k != name})
    record = store.unset(rid, name, actor)
    _follow(store, settings, cluster, name, current, record)
    return record


def configure(store: Store, settings: Settings, cluster: str, changes: Changes,
              expect: Changes, actor: str) -> Refreshed | HpsError | OSError:
    """Write a whole set of cluster changes (the wizard's plan, checked with the rest of the
    record as it was asked) in one update, only if none of the `expect`ed keys changed since
    they were read (Conflict naming them otherwise, nothing written); then render the service
    files and reload dnsmasq. Returns what the render did, or the error that stopped it: the
    changes are made either way, and the caller says how to render again."""
    rid = RecordId.of_cluster(cluster)
    try:
        store.update(rid, changes, actor, expect=expect)
    except Conflict:
        moved = ", ".join(changed_meanwhile(store.items(rid), expect)) or "a key"
        raise Conflict(f"{rid.label} changed while the wizard ran ({moved} changed by someone "
                       "else); nothing written") from None
    try:
        return render_and_reload(store, settings, cluster)
    except (HpsError, OSError) as err:
        return err


def changed_meanwhile(current: Mapping[str, str], expect: Changes) -> list[str]:
    """Return the keys whose value is no longer the one `expect` holds."""
    return [key for key, value in expect.items() if current.get(key) != value]


def _still_consistent(before: Mapping[str, str], after: Mapping[str, str]) -> None:
    """Raise InvalidKey when a consistent record would stop being so.

    The cross-field checks start once the record has a network (NETWORK_CIDR and DHCP_IP):
    before that the cluster is being built key by key (the old scripts set DHCP_IP, then
    NETWORK_CIDR...), and each key is checked alone. A record that already fails them
    (hand-edited, imported) does not block changes elsewhere in it either; the wizard and
    `render-services` name what is wrong."""
    if not (after.get("NETWORK_CIDR") and after.get("DHCP_IP")):
        return
    try:
        check_all(before)
    except InvalidInput:
        if before.get("NETWORK_CIDR") and before.get("DHCP_IP"):
            return
    check_all(after)


def _follow(store: Store, settings: Settings, cluster: str, name: str,
            before: Mapping[str, str], after: Mapping[str, str]) -> None:
    if name in SERVICE_CLUSTER_KEYS and before.get(name) != after.get(name):
        refresh_services(store, settings, cluster)
