"""Host types and profiles, read from `cluster-config/host-types.toml` (data, not code; a site's
own file wins, see hps_api.model.resources)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hps_api.errors import InvalidInput
from hps_api.model import resources

CATALOG_FILE = "cluster-config/host-types.toml"
STORAGE_TYPE = "SCH"


@dataclass(frozen=True)
class HostType:
    """One host type: its name, how it installs, its profiles."""

    name: str
    description: str
    install: str
    needs_storage: bool
    profiles: tuple[str, ...]

    @property
    def diskless(self) -> bool:
        """Return True for types that boot from the network every time."""
        return self.install == "network"


@lru_cache(maxsize=4)
def load_catalog(path: Path | None = None) -> dict[str, HostType]:
    """Return the host types by name (read once per process): `path`, else CATALOG_FILE as
    hps_api.model.resources finds it."""
    with (path or resources.find(CATALOG_FILE)).open("rb") as handle:
        raw = tomllib.load(handle)
    return {name: HostType(name, str(spec["description"]), str(spec["install"]),
                           bool(spec.get("needs_storage", False)),
                           tuple(str(p) for p in spec.get("profiles", ["DEFAULT"])))
            for name, spec in raw.items()}


def host_type(name: str, catalog: dict[str, HostType] | None = None) -> HostType:
    """Return the host type named (any case); InvalidInput when there is none."""
    types = catalog or load_catalog()
    found = types.get(name.strip().upper())
    if found is None:
        raise InvalidInput(f"unknown host type {name!r} (one of: {', '.join(types)})")
    return found


def profile_of(kind: HostType, profile: str | None) -> str:
    """Return the profile upper-cased (DEFAULT when empty); InvalidInput when not offered."""
    chosen = (profile or "DEFAULT").strip().upper()
    if chosen not in kind.profiles:
        raise InvalidInput(f"{kind.name} has no profile {profile!r} "
                           f"(one of: {', '.join(kind.profiles)})")
    return chosen
