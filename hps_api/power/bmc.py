"""Per-host BMC settings, kept apart from the host record (docs/power.md).

`<config dir>/bmc/<cluster>/<mac12>.conf`, one `KEY=value` file per host (the store's grammar),
mode 0600 in directories of mode 0700, replaced atomically under the cluster's `.lock`. The host
record never holds them: the record is served to the host itself (`host_get_config`), shown on
pages and copied into the journal, and a BMC password belongs in none of those. The password is
read only to talk to the BMC: `Bmc.shown()` (what the API, CLI and pages show) says only whether
one is set, and `repr()` leaves it out.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hps_api.errors import CorruptRecord, InvalidInput
from hps_api.ids import normalize_mac, validate_cluster
from hps_api.store.files import acquire, names, write_durably
from hps_api.store.kvfile import format_record, from_mapping, parse_items

REDFISH, IPMI, WOL = "redfish", "ipmi", "wol"
DRIVERS = (REDFISH, IPMI, WOL)
IPMI_PORT, WOL_PORT = 623, 9
LOCK_TIMEOUT = 5.0
MAX_NAME, MAX_PASSWORD = 64, 256
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?")
_SYSTEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_KEYS = {"driver": "DRIVER", "address": "ADDRESS", "system_id": "SYSTEM_ID",
         "username": "USERNAME", "password": "PASSWORD", "insecure": "INSECURE"}


@dataclass(frozen=True)
class Bmc:
    """One host's BMC: driver, address, Redfish system id, credentials, TLS checking."""

    driver: str
    address: str
    system_id: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    insecure: bool = False

    def shown(self) -> dict[str, Any]:
        """Return the settings as people may see them: the password only as `password_set`."""
        return {"driver": self.driver, "address": self.address, "system_id": self.system_id or None,
                "username": self.username or None, "password_set": bool(self.password),
                "insecure": self.insecure}

    def describe(self) -> str:
        """Return `driver address` (journal lines and messages; no credentials)."""
        system = f" system {self.system_id}" if self.system_id else ""
        return f"{self.driver} {self.address}{system}"


def checked(bmc: Bmc) -> Bmc:
    """Return the settings with the address in its canonical form; InvalidInput saying what is
    wrong (unknown driver, malformed address, missing or bad credentials)."""
    if bmc.driver not in DRIVERS:
        raise InvalidInput(f"unknown BMC driver {str(bmc.driver)[:20]!r}: one of "
                           f"{', '.join(DRIVERS)}")
    address = _ADDRESS_CHECKS[bmc.driver](bmc.address)
    if bmc.system_id and (bmc.driver != REDFISH or not _SYSTEM_ID.fullmatch(bmc.system_id)):
        raise InvalidInput("a system id is for Redfish only: letters, digits, '.', '_', ':', "
                           "'-' (at most 128)")
    if bmc.driver == WOL:
        if bmc.username or bmc.password or bmc.insecure:
            raise InvalidInput("Wake-on-LAN takes no username, password or --insecure")
        return replace(bmc, address=address)
    if bmc.insecure and bmc.driver != REDFISH:
        raise InvalidInput("--insecure (no TLS certificate check) is for Redfish only")
    _check_text("username", bmc.username, MAX_NAME)
    _check_text("password", bmc.password, MAX_PASSWORD)
    return replace(bmc, address=address)


def _check_text(name: str, value: str, longest: int) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"a {name} is required for this driver")
    if len(value) > longest or not value.isprintable():
        raise InvalidInput(f"the {name} has at most {longest} characters and no control "
                           "characters")


def _redfish_address(text: str) -> str:
    """`https://host[:port]` (http too, for emulators); nothing else in the URL."""
    shape = "a Redfish address is https://HOST[:PORT]"
    if not isinstance(text, str) or not text.isprintable() or len(text) > 300:
        raise InvalidInput(shape)
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError:
        raise InvalidInput(f"{shape}: {text[:80]!r} is not one") from None
    if (url.scheme not in ("https", "http") or not url.hostname or url.username or url.password
            or url.path not in ("", "/") or url.query or url.fragment):
        raise InvalidInput(f"{shape}: {text[:80]!r} is not one")
    host = _host(url.hostname, shape)
    host = f"[{host}]" if ":" in host else host
    return f"{url.scheme}://{host}" + (f":{port}" if port else "")


def _ipmi_address(text: str) -> str:
    """`HOST[:PORT]` (an IPv6 address in brackets), port 623 by default."""
    host, port = _host_port(text, IPMI_PORT, "an IPMI address is HOST[:PORT]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _wol_address(text: str) -> str:
    """The IPv4 broadcast address of the host's network `[:PORT]`, port 9 by default."""
    shape = "a Wake-on-LAN address is the IPv4 broadcast address of the host's network[:PORT]"
    host, port = _host_port(text, WOL_PORT, shape)
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise InvalidInput(f"{shape}: {text[:80]!r} is not one") from None
    return f"{host}:{port}"


def _host_port(text: str, default: int, shape: str) -> tuple[str, int]:
    if not isinstance(text, str) or not text or len(text) > 300 or not text.isprintable():
        raise InvalidInput(shape)
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise InvalidInput(f"{shape}: {text[:80]!r} is not one")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise InvalidInput(f"{shape}: port {port_text[:10]!r} is not 1-65535")
    return _host(host, shape), int(port_text) if port_text else default


def _host(host: str, shape: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOST.fullmatch(host) or len(host) > 253 or host.replace(".", "").isdigit():
        raise InvalidInput(f"{shape}: {host[:80]!r} is not a host name or address")
    return host.lower()


_ADDRESS_CHECKS = {REDFISH: _redfish_address, IPMI: _ipmi_address, WOL: _wol_address}


def split_host_port(address: str) -> tuple[str, int]:
    """Return the host and port of a checked IPMI or Wake-on-LAN address."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class BmcStore:
    """The BMC settings of every host, under `<config dir>/bmc/<cluster>/`."""

    def __init__(self, config_dir: Path) -> None:
        self.root = Path(config_dir) / "bmc"

    def get(self, cluster: str, mac: str) -> Bmc | None:
        """Return a host's BMC settings, or None. CorruptRecord for a file that does not parse."""
        path = self._path(cluster, mac)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return _from_items(parse_items(data, str(path)), str(path))

    def put(self, cluster: str, mac: str, bmc: Bmc) -> Bmc | None:
        """Store a host's checked settings; return the ones they replace (or None)."""
        with self._locked(cluster):
            old = self.get(cluster, mac)
            values = {_KEYS[name]: str(value) for name, value in vars(bmc).items()
                      if value not in ("", False)}
            record = from_mapping(values, header="BMC of one host: never served, mode 0600")
            write_durably(self._path(cluster, mac), format_record(record), mode=0o600,
                          locked=True)
        return old

    def remove(self, cluster: str, mac: str) -> Bmc | None:
        """Forget a host's settings; return them (None when there were none)."""
        with self._locked(cluster):
            old = self.get(cluster, mac)
            with contextlib.suppress(FileNotFoundError):
                self._path(cluster, mac).unlink()
        return old

    def macs(self, cluster: str) -> list[str]:
        """Return the MACs of the cluster's hosts that have BMC settings, sorted."""
        directory = self.root / validate_cluster(cluster)
        return [n[:-5] for n in names(directory) if re.fullmatch(r"[0-9a-f]{12}\.conf", n)]

    def _path(self, cluster: str, mac: str) -> Path:
        return self.root / validate_cluster(cluster) / f"{normalize_mac(mac)}.conf"

    @contextlib.contextmanager
    def _locked(self, cluster: str) -> Iterator[None]:
        directory = self.root / validate_cluster(cluster)
        for path in (self.root, directory):
            path.mkdir(mode=0o700, exist_ok=True)
        fd = acquire(directory / ".lock", LOCK_TIMEOUT)
        try:
            yield
        finally:
            os.close(fd)


def _from_items(items: dict[str, str], path: str) -> Bmc:
    values: dict[str, Any] = {name: items.get(key, "") for name, key in _KEYS.items()}
    values["insecure"] = values["insecure"] == "True"
    if values["driver"] not in DRIVERS or not values["address"]:
        raise CorruptRecord(path, None, "no known DRIVER or no ADDRESS")
    return Bmc(**values)
