"""The managed host keys and the rule each value must meet, whoever writes it (docs/api.md,
"Managed keys").

A managed key means something to hps-api itself: it decides the boot (STATE, TYPE, PROFILE,
OS_ID) or reaches dnsmasq, DNS and the installers (HOSTNAME, IP, the storage addresses). A bad
value written through any door would surface later and elsewhere (a refused kickstart, a
dnsmasq file that cannot be rendered), so every operation that writes one checks it here first
and refuses it with the reason (InvalidInput: HTTP 400, exit 2) before anything is written.

The rules that compare a host with the others (HOSTNAME and IP unique in the cluster) read the
other hosts; the caller holds the cluster's allocation lock around the check and the write, as
the allocator does, so two writers cannot both take the last free name or address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping

from hps_api.errors import HpsError, InvalidInput, NotFound, StoreBusy
from hps_api.ids import check_host_value, normalize_os_id
from hps_api.model.catalog import load_catalog
from hps_api.model.network import ClusterNetwork, storage_network
from hps_api.model.states import parse_state
from hps_api.store import Kind, RecordId, Store

#: a storage network address: STORAGE<index>_IP
STORAGE_IP = re.compile(r"^STORAGE(\d{1,2})_IP$")
#: keys compared with every other host of the cluster: checked under the cluster's lock
UNIQUE_KEYS = frozenset({"HOSTNAME", "IP"})


def is_managed(key: str) -> bool:
    """Return True when hps-api checks values of `key` (an upper-case host key)."""
    return key in RULES or STORAGE_IP.match(key) is not None


def needs_cluster_lock(key: str) -> bool:
    """Return True when checking `key` reads the other hosts (take the cluster lock)."""
    return key in UNIQUE_KEYS or STORAGE_IP.match(key) is not None


def check(store: Store, rid: RecordId, key: str, value: str,
          record: Mapping[str, str]) -> str:
    """Return `value` as it is to be stored (normalised), or raise InvalidInput saying why it
    cannot be. `record` is the host's current record (empty when it is being created). An empty
    value means "not set" (as the old clients write it) and is stored as it is."""
    if not value.strip() and key != "STATE":
        return value
    match = STORAGE_IP.match(key)
    if match:
        return _storage_ip(store, rid, key, int(match.group(1)), value)
    rule = RULES.get(key)
    return rule(store, rid, value, record) if rule else value


def precheck(key: str, value: str) -> None:
    """Raise InvalidInput for a value refused on its own (a malformed name or address), so a
    plainly bad value is refused before the cluster's lock is taken."""
    check_host_value(key, value)
    if value.strip() and (key == "IP" or STORAGE_IP.match(key)):
        _address(value, key)


def _state(store: Store, rid: RecordId, value: str, record: Mapping[str, str]) -> str:
    return parse_state(value)


def _type(store: Store, rid: RecordId, value: str, record: Mapping[str, str]) -> str:
    name = value.strip().upper()
    catalog = load_catalog()
    if name not in catalog:
        raise InvalidInput(f"unknown host type {value!r} (one of: {', '.join(catalog)})")
    return name


def _profile(store: Store, rid: RecordId, value: str, record: Mapping[str, str]) -> str:
    type_name = record.get("TYPE", "").strip().upper()
    kind = load_catalog().get(type_name)
    if kind is None:
        raise InvalidInput("PROFILE needs the host's TYPE: set TYPE first (or configure the "
                           "host as TYPE/PROFILE)")
    name = value.strip().upper()
    if name not in kind.profiles:
        raise InvalidInput(f"{kind.name} has no profile {value!r} (one of: "
                           f"{', '.join(kind.profiles)})")
    return name


def _os_id(store: Store, rid: RecordId, value: str, record: Mapping[str, str]) -> str:
    os_id = normalize_os_id(value)
    if not store.exists(RecordId.of_os(os_id)):
        raise InvalidInput(f"OS_ID {os_id}: no such OS record (see 'hps-api os list')")
    return os_id


def _hostname(store: Store, rid: RecordId, value: str, record: Mapping[str, str]) -> str:
    wanted = value.strip()
    for other, items in _other_hosts(store, rid):
        if items.get("HOSTNAME", "").lower() == wanted.lower():
            raise InvalidInput(f"HOSTNAME {wanted} is already host {other}'s")
    return wanted


def _ip(store: Store, rid: RecordId, value: str, record: Mapping[str, str]) -> str:
    address = _address(value, "IP")
    network = _cluster_network(store, rid)
    if network is None:
        _unique_address(store, rid, "IP", address)
        return str(address)
    if not network.is_host_address(address):
        raise InvalidInput(f"IP {address} is not a host address of the cluster network "
                           f"{network.network}")
    if address == network.ips:
        raise InvalidInput(f"IP {address} is the IPS's own address (DHCP_IP)")
    if network.in_range(address):
        raise InvalidInput(f"IP {address} lies in the DHCP range {network.range_start}-"
                           f"{network.range_end}: a fixed address must be outside it")
    _unique_address(store, rid, "IP", address)
    return str(address)


def _storage_ip(store: Store, rid: RecordId, key: str, index: int, value: str) -> str:
    address = _address(value, key)
    cluster = store.items(RecordId.of_cluster(_cluster_of(rid)))
    try:
        net = storage_network(cluster, index)  # either spelling: current or bash-era keys
    except NotFound as err:
        raise InvalidInput(f"{key}: {err}") from None
    network = net.network
    if address not in network or address in (network.network_address,
                                              network.broadcast_address):
        raise InvalidInput(f"{key} {address} is not a host address of storage network {index} "
                           f"({network})")
    if address == net.gateway:
        raise InvalidInput(f"{key} {address} is storage network {index}'s gateway")
    _unique_address(store, rid, key, address)
    return str(address)


def _address(value: str, key: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value.strip())
    except ValueError:
        raise InvalidInput(f"{key} {value[:40]!r} is not an IPv4 address") from None


def _unique_address(store: Store, rid: RecordId, key: str,
                    address: ipaddress.IPv4Address) -> None:
    for other, items in _other_hosts(store, rid):
        if items.get(key, "").strip() == str(address):
            raise InvalidInput(f"{key} {address} is already host {other}'s")


def _cluster_network(store: Store, rid: RecordId) -> ClusterNetwork | None:
    """Return the cluster's network; None while it is not configured (no NETWORK_CIDR or
    DHCP_IP yet): an operator may prepare hosts first, and `render-services` checks their
    addresses once the network exists. A configured but inconsistent network is refused."""
    cluster = store.items(RecordId.of_cluster(_cluster_of(rid)))
    if not cluster.get("NETWORK_CIDR") or not cluster.get("DHCP_IP"):
        return None
    try:
        return ClusterNetwork.of(cluster)
    except StoreBusy:
        raise
    except HpsError as err:
        raise InvalidInput(f"IP cannot be checked: the cluster network is wrong ({err})") from None


def _cluster_of(rid: RecordId) -> str:
    if not rid.cluster:
        raise InvalidInput(f"record {rid} is not a host of a cluster")
    return rid.cluster


def _other_hosts(store: Store, rid: RecordId) -> Iterator[tuple[str, dict[str, str]]]:
    for other in store.list_records(Kind.HOST, _cluster_of(rid)):
        if other.name == rid.name:
            continue
        try:
            yield other.name or "", store.items(other)
        except NotFound:
            continue  # deleted since the listing


Rule = Callable[[Store, RecordId, str, Mapping[str, str]], str]
RULES: dict[str, Rule] = {
    "STATE": _state, "TYPE": _type, "PROFILE": _profile, "OS_ID": _os_id,
    "HOSTNAME": _hostname, "IP": _ip,
}
