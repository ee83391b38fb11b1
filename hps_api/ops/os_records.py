"""The OS registry as the pages manage it: add, edit, remove an OS record, and check its boot
files (docs/ui.md, "OS registry").

Adding and removing are `hps_api.model.osreg`'s own operations (the CLI's `hps-api os add|
remove`); editing validates the whole new record the same way (`osreg.os_record`) and replaces
the old one in one update, on the condition that it did not change since it was read. What
uses a record (cluster keys naming it, hosts installed with it) is shown, not enforced, as
`hps-api os remove` does not enforce it either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hps_api.errors import InvalidInput
from hps_api.model import osreg
from hps_api.store import RecordId, Store

#: the fields an OS form edits, in order (the id gives NAME, VERSION and ARCH)
FORM_KEYS = ("STATUS", "HPS_TYPES", "REPO_PATH", "KERNEL", "INITRD")


@dataclass(frozen=True)
class Assets:
    """Whether an OS record's boot files are in the resources tree."""

    kernel: bool
    initrd: bool

    @property
    def ok(self) -> bool:
        """Return True when both boot files are there."""
        return self.kernel and self.initrd


def add(store: Store, os_id: str, values: Mapping[str, str], actor: str) -> dict[str, str]:
    """Create an OS record (osreg.add_os): InvalidInput, Conflict when it exists."""
    return osreg.add_os(store, os_id, values, actor)


def edit(store: Store, os_id: str, values: Mapping[str, str], actor: str) -> dict[str, str]:
    """Replace the FORM_KEYS of an existing OS record with `values`, validated as a whole
    record; its other keys stay. Raises InvalidInput, NotFound, Conflict (changed meanwhile)."""
    current = osreg.get_os(store, os_id)
    wanted = {**current, **{key: values.get(key, "") for key in FORM_KEYS}}
    record = osreg.os_record(os_id, wanted)
    changes = {key: value for key, value in record.items() if current.get(key) != value}
    if not changes:
        return current
    return store.update(RecordId.of_os(os_id), changes, actor,
                        expect={key: current.get(key) for key in changes})


def remove(store: Store, os_id: str, actor: str, *, confirmed: bool) -> None:
    """Delete an OS record once the operator confirmed it; InvalidInput without the
    confirmation, NotFound when there is no such OS."""
    if not confirmed:
        raise InvalidInput(f"tick the confirmation to remove OS {os_id}")
    osreg.remove_os(store, os_id, actor)


def assets(record: Mapping[str, str], resources_dir: Path) -> Assets:
    """Return whether KERNEL and INITRD exist under `distros/<REPO_PATH>/` of the resources
    tree (what `/distros/...` serves to installing hosts)."""
    base = resources_dir / "distros" / record.get("REPO_PATH", "")
    return Assets(_is_file(base, record.get("KERNEL", "")),
                  _is_file(base, record.get("INITRD", "")))


def users(os_id: str, cluster: Mapping[str, str],
          hosts: Iterable[Mapping[str, str]]) -> tuple[list[str], int]:
    """Return the cluster keys that name an OS and how many hosts have it as OS_ID."""
    keys = [key for key, value in cluster.items()
            if key.startswith("OS_") and value.strip().lower() == os_id]
    return keys, sum(1 for host in hosts if host.get("OS_ID", "").strip().lower() == os_id)


def _is_file(base: Path, relative: str) -> bool:
    return bool(relative) and (base / relative).is_file()
