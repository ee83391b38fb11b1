"""The cluster keys and their validation: one table for `cluster create` and the wizard.

`key_table()` lists the keys an operator sets when creating a cluster (docs/boot.md, "Cluster keys"
table, DESCRIPTION, and `OS_<TYPE>` for every host type of the catalog); `spec_for` also knows the
keys that follow a pattern (`OS_<TYPE>_<ARCH>`, `STORAGE_NETWORKS`, `STORAGE<i>_VLAN|CIDR|GATEWAY|
MTU`). Each key names a validator in `VALIDATORS`; a validator returns the value in canonical form
(`SANBOOT` -> `sanboot`, `060` -> `60`) or raises InvalidInput with the reason alone, and
`validate` adds the key (`InvalidKey`). Cross-field rules live in `CHECKS`, each blaming the key
to fix, so the wizard can ask that one again.

OS ids must name a registered OS record, neither retired nor of another architecture than an
`OS_<TYPE>_<ARCH>` key says: the boot flow refuses those (osreg.resolve_os), so we refuse them
when they are set rather than when a host first boots.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hps_api.errors import Conflict, InvalidInput
from hps_api.ids import DOMAIN_PATTERN, MAX_DOMAIN, normalize_key, normalize_os_id, validate_value
from hps_api.model.catalog import load_catalog
from hps_api.model.network import ClusterNetwork, default_range
from hps_api.model.osreg import check_named, normalize_arch
from hps_api.model.stuck import LIMITS

IPv4 = ipaddress.IPv4Address
IPv4Net = ipaddress.IPv4Network
OsRecords = Mapping[str, Mapping[str, str]]
_Parsed = TypeVar("_Parsed", IPv4, IPv4Net)

#: storage networks are numbered 0..MAX-1 (the node library's `index`)
MAX_STORAGE_NETWORKS = 16
MAX_DESCRIPTION = 200
#: where Linux lists network interfaces; those with a `device` link are physical NICs
SYS_NET = Path("/sys/class/net")
RANGE_KEYS = ("DHCP_RANGE_START", "DHCP_RANGE_END")

_IFACE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
_DIGITS = re.compile(r"[0-9]{1,9}")
_STORAGE_KEY = re.compile(r"STORAGE([0-9]{1,2})_(VLAN|CIDR|GATEWAY|MTU)")
_OS_KEY = re.compile(r"OS_([A-Z][A-Z0-9]*)(?:_([A-Z0-9_]+))?")


class InvalidKey(InvalidInput):
    """A cluster key's value is refused; `key` names the key to fix, `reason` says why."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class KeyContext:
    """What a validator may consult: the key it checks and the registered OS records."""

    key: str
    os_records: OsRecords = field(default_factory=dict)


Validator = Callable[[str, KeyContext], str]


@dataclass(frozen=True)
class ClusterKey:
    """One cluster key: its validator's name, what it means, its default (None: no default)."""

    key: str
    validator: str
    meaning: str
    default: str | None = None

    @property
    def flag(self) -> str:
        """Return the `cluster create` option that sets the key (`DHCP_IP` -> `--dhcp-ip`)."""
        return "--" + self.key.lower().replace("_", "-")


BASE_KEYS = (
    ClusterKey("DESCRIPTION", "text", "what the cluster is for (one line of text)"),
    ClusterKey("DNS_DOMAIN", "domain", "cluster DNS domain", "cluster.local"),
    ClusterKey("DHCP_IFACE", "iface", "the IPS interface dnsmasq listens on"),
    ClusterKey("DHCP_IP", "address", "the IPS address on the provisioning network"),
    ClusterKey("NETWORK_CIDR", "cidr", "the provisioning network, e.g. 10.99.0.0/24"),
    ClusterKey("DHCP_RANGE_START", "address",
               "first address of dnsmasq's dynamic range (default: upper half of the network)"),
    ClusterKey("DHCP_RANGE_END", "address",
               "last address of dnsmasq's dynamic range (default: upper half of the network)"),
    ClusterKey("HPS_PORT", "port", "port hps-api is reached on from hosts", "80"),
    ClusterKey("MENU_TIMEOUT", "menu_timeout",
               "seconds a menu waits before polling init again (5-3600)", "60"),
    ClusterKey("LOCAL_BOOT", "local_boot", "how installed hosts boot from disk", "exit"),
    ClusterKey("INSTALL_MAX_ATTEMPTS", "attempts",
               "boots in INSTALLING before INSTALL_FAILED (1-20)", "3"),
    ClusterKey("SYSLOG_PORT", "port", "rsyslog port on the IPS", "514"),
)

#: the stuck-host thresholds (docs/stuck.md, hps_api.model.stuck): set with `cluster_config set`
#: or the settings page; not in `key_table`, so neither `cluster create` nor the wizard asks them
STUCK_KEYS = tuple(ClusterKey(key, key.lower(), f"{limit.meaning} ({limit.low}-{limit.high})",
                              str(limit.default)) for key, limit in LIMITS.items())

_STORAGE_FIELDS = {"VLAN": ("vlan", "VLAN id, 0 for untagged", "0"),
                   "CIDR": ("cidr", "network", None),
                   "GATEWAY": ("address", "gateway (default: first host address)", None),
                   "MTU": ("mtu", "MTU (576-9216)", "1500")}


def key_table() -> tuple[ClusterKey, ...]:
    """Return the keys `cluster create` has a flag for: BASE_KEYS, then `OS_<TYPE>` per type."""
    os_keys = tuple(ClusterKey(f"OS_{name}", "os_id",
                               f"OS id for {name} hosts, {kind.description.lower()}")
                    for name, kind in load_catalog().items())
    return BASE_KEYS + os_keys


def spec_for(key: str) -> ClusterKey | None:
    """Return the spec of a cluster key, patterns included; None for a free key."""
    name = key.upper()
    found = next((spec for spec in key_table() if spec.key == name), None)
    if found is not None:
        return found
    stuck = next((spec for spec in STUCK_KEYS if spec.key == name), None)
    if stuck is not None:
        return stuck
    if name == "STORAGE_NETWORKS":
        return ClusterKey(name, "count", f"number of storage networks (0-{MAX_STORAGE_NETWORKS})",
                          "0")
    storage = _STORAGE_KEY.fullmatch(name)
    if storage and int(storage.group(1)) < MAX_STORAGE_NETWORKS:
        validator, meaning, default = _STORAGE_FIELDS[storage.group(2)]
        return ClusterKey(name, validator, f"storage network {storage.group(1)}: {meaning}",
                          default)
    os_key = _OS_KEY.fullmatch(name)
    if os_key and os_key.group(2) and os_key.group(1) in load_catalog():
        return ClusterKey(name, "os_id", f"OS id for {os_key.group(1)} hosts of one architecture")
    return None


def validate(key: str, text: str, os_records: OsRecords | None = None) -> str:
    """Return the canonical value of a cluster key; InvalidKey naming the key when refused.

    A key without a spec (a free key) only has to be a value the store can hold.
    """
    spec = spec_for(key)
    try:
        if spec is None:
            return validate_value(text)
        return VALIDATORS[spec.validator](validate_value(text), KeyContext(spec.key,
                                                                           os_records or {}))
    except InvalidKey:
        raise
    except InvalidInput as err:
        raise InvalidKey(key.upper(), str(err)) from None


def check_values(values: Mapping[str, str], os_records: OsRecords | None = None,
                 ) -> dict[str, str]:
    """Return the values validated one by one and together (CHECKS); InvalidKey otherwise."""
    checked = {normalize_key(k): validate(k, v, os_records) for k, v in values.items()}
    check_all(checked)
    return checked


def check_all(values: Mapping[str, str]) -> None:
    """Run every cross-field check over a whole record; InvalidKey blames the key to fix."""
    check_network(values, "")
    check_dhcp_range(values, "")
    for index in range(_storage_count(values)):
        check_storage_network(values, str(index))
    if values.get("NETWORK_CIDR") and values.get("DHCP_IP"):
        try:  # the boot flow's own reading of the network must agree with ours
            ClusterNetwork.of(values)
        except (InvalidInput, Conflict) as err:
            raise InvalidKey("NETWORK_CIDR", str(err)) from None


# -- cross-field checks: (values, instance) -> None ------------------------------------------

def check_network(values: Mapping[str, str], instance: str) -> None:
    """Raise InvalidKey unless DHCP_IP is a host address of NETWORK_CIDR."""
    network = _provisioning_network(values)
    ips = _parsed(values, "DHCP_IP", IPv4)
    if network is not None and ips is not None and not _is_host(network, ips):
        raise InvalidKey("DHCP_IP", f"{ips} is not a host address of NETWORK_CIDR {network}")


def check_dhcp_range(values: Mapping[str, str], instance: str) -> None:
    """Raise InvalidKey unless the dynamic range lies in the network, in order, without the IPS."""
    network = _provisioning_network(values)
    if network is None:
        return
    start, end = _dhcp_range(values, network)
    for key, address in zip(RANGE_KEYS, (start, end), strict=True):
        if not _is_host(network, address):
            raise InvalidKey(key, f"{address} is not a host address of NETWORK_CIDR {network}")
    if start > end:
        raise InvalidKey("DHCP_RANGE_START", f"the range start {start} is after its end {end}")
    ips = _parsed(values, "DHCP_IP", IPv4)
    if ips is not None and start <= ips <= end:
        explicit = any(values.get(key) for key in RANGE_KEYS)
        raise InvalidKey("DHCP_RANGE_START" if explicit else "DHCP_IP",
                         f"the DHCP range {start}-{end} contains the IPS address "
                         f"DHCP_IP={ips}; the IPS address must lie outside the range")


def check_storage_network(values: Mapping[str, str], instance: str) -> None:
    """Raise InvalidKey unless storage network `instance` has a CIDR apart from the provisioning
    network and its gateway (when set) is a host address of it."""
    prefix = f"STORAGE{instance}_"
    network = _parsed(values, prefix + "CIDR", IPv4Net)
    gateway = _parsed(values, prefix + "GATEWAY", IPv4)
    if network is None:
        raise InvalidKey(prefix + "CIDR", f"storage network {instance} needs a network (CIDR)")
    provisioning = _provisioning_network(values)
    if provisioning is not None and network.overlaps(provisioning):
        raise InvalidKey(prefix + "CIDR", f"{network} overlaps the provisioning network "
                         f"NETWORK_CIDR {provisioning}")
    if gateway is not None and not _is_host(network, gateway):
        raise InvalidKey(prefix + "GATEWAY", f"{gateway} is not a host address of {network}")


CHECKS: dict[str, Callable[[Mapping[str, str], str], None]] = {
    "network": check_network, "dhcp_range": check_dhcp_range,
    "storage_network": check_storage_network}


# -- suggested defaults: computed from another answer ----------------------------------------

def first_host(cidr: str | None) -> str | None:
    """Return the first host address of a network (`10.99.0.0/24` -> `10.99.0.1`), else None."""
    network = _network_or_none(cidr)
    return None if network is None else str(next(network.hosts(), network.network_address))


def range_start(cidr: str | None) -> str | None:
    """Return the first address of the default dynamic range of a network, else None."""
    network = _network_or_none(cidr)
    return None if network is None else str(default_range(network)[0])


def range_end(cidr: str | None) -> str | None:
    """Return the last address of the default dynamic range of a network, else None."""
    network = _network_or_none(cidr)
    return None if network is None else str(default_range(network)[1])


def first_interface(_: str | None = None, sys_net: Path = SYS_NET) -> str:
    """Return the first physical network interface of this machine (by name), else `eth0`."""
    try:
        names = sorted(p.name for p in sys_net.iterdir() if (p / "device").exists())
    except OSError:
        names = []
    return next((name for name in names if _IFACE.fullmatch(name)), "eth0")


SUGGESTIONS: dict[str, Callable[[str | None], str | None]] = {
    "first_host": first_host, "range_start": range_start, "range_end": range_end,
    "interface": first_interface}


# -- validators: (text, context) -> canonical text -------------------------------------------

def _text(text: str, ctx: KeyContext) -> str:
    value = text.strip()
    if len(value) > MAX_DESCRIPTION:
        raise InvalidInput(f"longer than {MAX_DESCRIPTION} characters")
    return value


def _domain(text: str, ctx: KeyContext) -> str:
    name = text.strip().lower()
    if len(name) > MAX_DOMAIN or not DOMAIN_PATTERN.fullmatch(name):
        raise InvalidInput(f"{text.strip()!r} is not a DNS domain (labels of a-z, 0-9 and '-', "
                           "not starting or ending with '-', separated by single dots)")
    return name


def _iface(text: str, ctx: KeyContext) -> str:
    if not _IFACE.fullmatch(text.strip()):
        raise InvalidInput(f"{text.strip()!r} is not an interface name (1-15 of A-Z a-z 0-9 "
                           "_ . : -)")
    return text.strip()


def _address(text: str, ctx: KeyContext) -> str:
    try:
        return str(IPv4(text.strip()))
    except ValueError as err:
        raise InvalidInput(f"{text.strip()!r} is not an IPv4 address ({err})") from None


def _cidr(text: str, ctx: KeyContext) -> str:
    try:
        network = IPv4Net(text.strip())
    except ValueError as err:
        raise InvalidInput(f"{text.strip()!r} is not an IPv4 network ADDRESS/PREFIX ({err})",
                           ) from None
    if network.prefixlen > 30:
        raise InvalidInput(f"{network} has no room for hosts: use a prefix of /30 or shorter")
    return str(network)


def _choice(*allowed: str) -> Validator:
    def check(text: str, ctx: KeyContext) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise InvalidInput(f"must be {' or '.join(allowed)}, not {text.strip()!r}")
        return value

    return check


def _integer(low: int, high: int) -> Validator:
    def check(text: str, ctx: KeyContext) -> str:
        value = text.strip()
        if not _DIGITS.fullmatch(value) or not low <= int(value) <= high:
            raise InvalidInput(f"must be a whole number from {low} to {high}, not {value!r}")
        return str(int(value))

    return check


def _os_id(text: str, ctx: KeyContext) -> str:
    os_id = normalize_os_id(text)
    record = ctx.os_records.get(os_id)
    if record is None:
        known = ", ".join(sorted(ctx.os_records)) or "none yet: hps-api os add"
        raise InvalidInput(f"{os_id} is not a registered OS (registered: {known})")
    match = _OS_KEY.fullmatch(ctx.key)
    arch = normalize_arch(match.group(2) or "") if match else ""
    try:
        check_named(ctx.key, os_id, record, arch)
    except Conflict as err:
        raise InvalidInput(str(err)) from None
    return os_id


VALIDATORS: dict[str, Validator] = {
    "text": _text, "domain": _domain, "iface": _iface, "address": _address, "cidr": _cidr,
    "port": _integer(1, 65535), "menu_timeout": _integer(5, 3600),
    "local_boot": _choice("exit", "sanboot"), "attempts": _integer(1, 20),
    "count": _integer(0, MAX_STORAGE_NETWORKS), "vlan": _integer(0, 4094),
    "mtu": _integer(576, 9216), "os_id": _os_id,
    **{key.lower(): _integer(limit.low, limit.high) for key, limit in LIMITS.items()}}


# -- internals -------------------------------------------------------------------------------

def _provisioning_network(values: Mapping[str, str]) -> IPv4Net | None:
    """Return NETWORK_CIDR; None when unset, InvalidKey when an address needs it."""
    network = _parsed(values, "NETWORK_CIDR", IPv4Net)
    if network is not None:
        return network
    needing = next((k for k in ("DHCP_IP", *RANGE_KEYS) if values.get(k)), None)
    if needing is not None:
        raise InvalidKey(needing, "needs NETWORK_CIDR too: the address must lie inside it")
    return None


def _dhcp_range(values: Mapping[str, str], network: IPv4Net) -> tuple[IPv4, IPv4]:
    default_start, default_end = default_range(network)
    start, end = (_parsed(values, key, IPv4) for key in RANGE_KEYS)
    return (default_start if start is None else start), (default_end if end is None else end)


def _parsed(values: Mapping[str, str], key: str, kind: Callable[[str], _Parsed]) -> _Parsed | None:
    """Return the key's value parsed by `kind`; None when unset, InvalidKey when malformed."""
    text = values.get(key)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError as err:
        raise InvalidKey(key, f"{text!r}: {err}") from None


def _is_host(network: IPv4Net, address: IPv4) -> bool:
    return address in network and address not in (network.network_address,
                                                  network.broadcast_address)


def _network_or_none(cidr: str | None) -> IPv4Net | None:
    try:
        return IPv4Net(cidr or "")
    except ValueError:
        return None


def _storage_count(values: Mapping[str, str]) -> int:
    count = values.get("STORAGE_NETWORKS", "0") or "0"
    return int(count) if _DIGITS.fullmatch(count) else 0
