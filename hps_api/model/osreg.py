"""The OS registry: OS records (`os/<arch>_<name>_<version>.conf`) and which one a host installs.

An OS record holds NAME, VERSION, ARCH (the three parts of its id), REPO_PATH (the repository,
served at `/distros/<REPO_PATH>/`), KERNEL and INITRD (boot files inside the repository), STATUS
(`prod`, `test`, `retired`) and HPS_TYPES (the host types it may install, `SCH,DRH`); any other
key is free.

Which OS a host of a type installs (docs/boot.md): the cluster key `OS_<TYPE>_<ARCH>`, then
`OS_<TYPE>`, then the first OS record, by id, whose HPS_TYPES lists the type and whose STATUS is
`prod`. Two decisions the spec leaves open, taken here:

- The last rule only considers records of the host's architecture: with x86_64 and aarch64
  records side by side, "the first one" must not hand an ARM image to a PC.
- A cluster key is an explicit choice, so it may name a `test` OS, but not a `retired` one nor one
  of another architecture: that is a stale key, and a clear error beats installing it or quietly
  falling back to something else.

iPXE reports its own build architecture (`${buildarch}`): `i386` for the BIOS build
(`undionly.kpxe`, also QEMU's NIC ROMs) even on 64-bit machines, `arm64` on ARM. The installers
we serve are 64-bit only, so `normalize_arch` reads those as `x86_64` and `aarch64`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hps_api.errors import Conflict, InvalidInput, NotFound
from hps_api.ids import normalize_key, normalize_os_id, validate_value
from hps_api.store import Kind, RecordId, Store

STATUSES = ("prod", "test", "retired")
CORE_KEYS = ("NAME", "VERSION", "ARCH", "REPO_PATH", "KERNEL", "INITRD", "STATUS", "HPS_TYPES")
PATH_KEYS = ("REPO_PATH", "KERNEL", "INITRD")
ARCH_ALIASES = {"i386": "x86_64", "i686": "x86_64", "x86": "x86_64", "amd64": "x86_64",
                "x64": "x86_64", "arm64": "aarch64"}

_ARCH = re.compile(r"^[a-z0-9_]{1,32}$")
_TYPE = re.compile(r"^[A-Z][A-Z0-9]{0,15}$")
# A relative path of plain segments: safe in a URL, an iPXE line and a kickstart line as it is.
_REL_PATH = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]*(/[A-Za-z0-9_+-][A-Za-z0-9._+-]*)*$")


# -- the pure part -------------------------------------------------------------------------------

def normalize_arch(text: str) -> str:
    """Return the architecture as OS ids spell it (`arm64` -> `aarch64`); `""` when unknown.

    Raises InvalidInput for anything that is not a plain architecture name.
    """
    arch = text.strip().lower()
    if not arch:
        return ""
    if not _ARCH.fullmatch(arch):
        raise InvalidInput(f"invalid architecture {text[:40]!r}")
    return ARCH_ALIASES.get(arch, arch)


def parse_types(text: str) -> tuple[str, ...]:
    """Return the host types of a comma list (`sch, drh` -> `('SCH', 'DRH')`); InvalidInput if
    one is not a type name (a letter, then letters or digits)."""
    types = tuple(part.strip().upper() for part in text.split(",") if part.strip())
    for name in types:
        if not _TYPE.fullmatch(name):
            raise InvalidInput(f"invalid host type {name[:20]!r} in {text[:60]!r}")
    return types


def cluster_keys(host_type: str, arch: str) -> list[str]:
    """Return the cluster keys that may name the OS of a type, most specific first."""
    kind = host_type.upper()
    return [f"OS_{kind}_{arch.upper()}", f"OS_{kind}"] if arch else [f"OS_{kind}"]


def named_os(cluster_items: Mapping[str, str], host_type: str, arch: str) -> tuple[str, str] | None:
    """Return (cluster key, OS id) of the first OS key the cluster sets, or None.

    An empty value counts as not set. Raises InvalidInput when the value is not an OS id.
    """
    for key in cluster_keys(host_type, arch):
        value = cluster_items.get(key, "").strip()
        if value:
            try:
                return key, normalize_os_id(value)
            except InvalidInput as err:
                raise InvalidInput(f"cluster key {key}: {err}") from None
    return None


def check_named(key: str, os_id: str, record: Mapping[str, str], arch: str) -> None:
    """Raise Conflict when a cluster key names a retired OS or one of another architecture."""
    if record.get("STATUS", "").strip().lower() == "retired":
        raise Conflict(f"cluster key {key} names {os_id}, which is retired")
    if arch and os_arch(os_id) != arch:
        raise Conflict(f"cluster key {key} names {os_id}, but the host is {arch}")


def first_prod(records: Mapping[str, Mapping[str, str]], host_type: str, arch: str) -> str | None:
    """Return the first OS id (sorted) in `prod` whose HPS_TYPES lists the type, of the host's
    architecture when it is known; None when there is none."""
    for os_id in sorted(records):
        record = records[os_id]
        if (record.get("STATUS", "").strip().lower() == "prod"
                and host_type.upper() in _types_or_none(record.get("HPS_TYPES", ""))
                and (not arch or os_arch(os_id) == arch)):
            return os_id
    return None


def os_arch(os_id: str) -> str:
    """Return the architecture part of an OS id."""
    return os_id.split(":", 1)[0]


def os_record(os_id: str, values: Mapping[str, str]) -> dict[str, str]:
    """Return the validated record of an OS: core keys in order, then the extra keys.

    NAME, VERSION and ARCH default to the parts of the id and must agree with it; REPO_PATH,
    KERNEL and INITRD are relative paths without `.` or `..` segments; STATUS is one of STATUSES;
    HPS_TYPES is a non-empty list of type names. Raises InvalidInput naming the bad value.
    """
    canonical = normalize_os_id(os_id)
    given = {normalize_key(k): validate_value(v) for k, v in values.items()}
    record = dict(zip(("ARCH", "NAME", "VERSION"), canonical.split(":"), strict=True))
    for key, part in record.items():
        if key in given and given[key].strip().lower() != part:
            raise InvalidInput(f"{key}={given[key]!r} does not match the OS id {canonical}")
    for key in PATH_KEYS:
        record[key] = _rel_path(key, given.get(key, ""))
    record["STATUS"] = _status(given.get("STATUS", ""))
    types = parse_types(given.get("HPS_TYPES", ""))
    if not types:
        raise InvalidInput("HPS_TYPES is required: the host types this OS installs (SCH,DRH)")
    record["HPS_TYPES"] = ",".join(types)
    order = {key: record[key] for key in CORE_KEYS}
    return order | {k: v for k, v in given.items() if k not in CORE_KEYS}


def _rel_path(key: str, value: str) -> str:
    segments = value.split("/")
    if not _REL_PATH.fullmatch(value) or any(s in (".", "..") for s in segments):
        raise InvalidInput(f"{key} must be a relative path of plain segments, got {value[:60]!r}")
    return value


def _status(value: str) -> str:
    status = value.strip().lower()
    if status not in STATUSES:
        raise InvalidInput(f"STATUS must be one of {', '.join(STATUSES)}, got {value[:20]!r}")
    return status


def _types_or_none(text: str) -> tuple[str, ...]:
    """Return the types of a stored list; a malformed list matches no type (never crashes)."""
    try:
        return parse_types(text)
    except InvalidInput:
        return ()


# -- over the store ------------------------------------------------------------------------------

def resolve_os(
    store: Store, cluster_items: Mapping[str, str], host_type: str, arch: str
) -> tuple[str, dict[str, str]] | None:
    """Return (OS id, OS record) for a host type and architecture, or None when no rule matches.

    Rules in order: cluster key `OS_<TYPE>_<ARCH>`, `OS_<TYPE>`, the first `prod` record listing
    the type (module docstring). Raises InvalidInput (a key's value is not an OS id, bad arch),
    NotFound (a key names an OS that has no record), Conflict (a key names a retired OS or one
    of another architecture), and the store's errors (CorruptRecord...).
    """
    arch = normalize_arch(arch)
    named = named_os(cluster_items, host_type, arch)
    if named is not None:
        key, os_id = named
        try:
            record = store.items(RecordId.of_os(os_id))
        except NotFound:
            raise NotFound(f"cluster key {key} names {os_id}, which has no OS record") from None
        check_named(key, os_id, record, arch)
        return os_id, record
    records = {rid.name or "": store.items(rid) for rid in store.list_records(Kind.OS)}
    chosen = first_prod(records, host_type, arch)
    return None if chosen is None else (chosen, records[chosen])


def add_os(store: Store, os_id: str, values: Mapping[str, str], actor: str) -> dict[str, str]:
    """Create an OS record from validated values (see `os_record`) and return it.

    Raises InvalidInput (bad id or value), Conflict (the OS exists already), StoreBusy.
    """
    record = os_record(os_id, values)
    rid = RecordId.of_os(os_id)
    if store.exists(rid):
        raise Conflict(f"OS {rid.name} exists already (remove it first to replace it)")
    # `expect` re-checks under the lock, so two concurrent adds cannot both succeed.
    return store.update(rid, record, actor, create=True, expect={"NAME": None})


def get_os(store: Store, os_id: str) -> dict[str, str]:
    """Return one OS record; InvalidInput for a bad id, NotFound when there is no such OS."""
    return store.items(RecordId.of_os(os_id))


def list_os(store: Store) -> list[tuple[str, dict[str, str]]]:
    """Return every OS record as (id, record), sorted by id; CorruptRecord names a bad file."""
    return [(rid.name or "", store.items(rid)) for rid in store.list_records(Kind.OS)]


def remove_os(store: Store, os_id: str, actor: str) -> None:
    """Delete an OS record; InvalidInput for a bad id, NotFound when there is no such OS."""
    store.delete(RecordId.of_os(os_id), actor)
