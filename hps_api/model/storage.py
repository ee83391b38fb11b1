"""The facts of thin hosts' iSCSI disks (docs/storage-hosts.md): names, sizes, targets, jobs.

Pure: no store, no I/O. The operations (hps_api.ops.storage) read records and write what these
functions build; the boot decision (hps_api.boot.decide) reads an `IscsiRoot` from a host record.

- IQNs follow node_lib's `n_iqn`: `iqn.<yyyy-mm>.<cluster>:<host>.<volume>`, yyyy-mm the month
  the cluster was created (its CREATED key), so a name never changes; a host's initiator is
  the volume `initiator`.
- A storage host's record keeps its queued work as `STORAGE_JOB_<ID>` keys and its volumes as
  `STORAGE_VOLUME_<NAME>` keys, both in `word=value` form; its capacity is what it reports
  itself (STORAGE_FREE bytes, STORAGE_POOL `<kind>:<name>`).
- A thin host's disk is `ISCSI_ROOT_<i>=<ip>:<port>:<iqn>` (port 3260 when left out).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from hps_api.errors import InvalidInput

#: what an initiator's IQN names in place of a volume
INITIATOR = "initiator"
ISCSI_PORT = 3260
#: tgt's LUN 0 is its controller; the disk a target exports is LUN 1
BOOT_LUN = 1
ROOT_KEY = "ISCSI_ROOT_{}"
JOB_PREFIX = "STORAGE_JOB_"
VOLUME_PREFIX = "STORAGE_VOLUME_"
FREE_KEY = "STORAGE_FREE"
POOL_KEY = "STORAGE_POOL"
#: a cluster key: how many copies of a root disk, each on a different storage host (1 or 2)
MIRRORS_KEY = "ISCSI_MIRRORS"
#: a host or cluster key: `iscsi` makes a thin host with ISCSI_ROOT_0 boot from it (sanboot)
ROOT_MODE_KEY = "TCH_ROOT"
ACTIONS = ("provision", "expand", "delete")
#: job states: queued (never handed out), handed (handed out, no report yet), failed
JOB_STATES = ("queued", "handed", "failed")
MAX_VOLUME = 32  # node_lib's `_n_is_volume`
_VOLUME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_SIZE = re.compile(r"^([1-9][0-9]{0,8})([KMGT])$")
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_MONTH = re.compile(r"^[0-9]{4}-[0-9]{2}")
_IQN = re.compile(r"^iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9.-]+:[a-z0-9.-]+$")
_JOB_ID = re.compile(r"^[0-9a-f]{12}$")
_DETAIL_MAX = 200


# --- names ------------------------------------------------------------------------------------

def iqn(cluster: Mapping[str, str], cluster_name: str, hostname: str, volume: str,
        today: str) -> str:
    """Return `iqn.<yyyy-mm>.<cluster>:<host>.<volume>` (node_lib's `n_iqn`): yyyy-mm from the
    cluster's CREATED when it starts with a date, else from `today` (an ISO date or time).
    InvalidInput for a host without a name or a bad volume name."""
    if not hostname.strip():
        raise InvalidInput("the host has no HOSTNAME: configure it first (an IQN names it)")
    created = cluster.get("CREATED", "").strip()
    month = created[:7] if _MONTH.match(created) else today[:7]
    return f"iqn.{month}.{cluster_name.lower()}:{hostname.strip().lower()}.{volume.lower()}"


def initiator_iqn(cluster: Mapping[str, str], cluster_name: str, hostname: str,
                  today: str) -> str:
    """Return the host's own initiator name: its IQN with the volume `initiator`."""
    return iqn(cluster, cluster_name, hostname, INITIATOR, today)


def month_of(iqn: str) -> str | None:
    """Return the `yyyy-mm` an IQN was made in, None when it has none: without CREATED on the
    cluster, a host's initiator takes its disk's month, so the name bound on the target and the
    one its boot sets stay the same in later months."""
    month = iqn[4:11]
    return month if iqn.startswith("iqn.") and _MONTH.match(month) else None


def check_iqn(text: str) -> str:
    """Return an IQN as given when it has the form this IPS makes; InvalidInput otherwise."""
    if not _IQN.match(text) or len(text) > 223:
        raise InvalidInput(f"{text[:60]!r} is not an IQN (iqn.<yyyy-mm>.<cluster>:<host>."
                           "<volume>)")
    return text


def check_volume(name: str) -> str:
    """Return a volume name lower-cased; InvalidInput unless it is 1-32 letters, digits and
    `-` not starting with `-` (what node_lib accepts)."""
    volume = name.strip().lower()
    if not _VOLUME.match(volume):
        raise InvalidInput(f"volume name {name[:40]!r}: 1-{MAX_VOLUME} letters, digits and -, "
                           "not starting with -")
    return volume


def volume_key(volume: str) -> str:
    """Return the storage host's key of a volume (`tch-001-root0`: STORAGE_VOLUME_TCH_001_ROOT0)."""
    return VOLUME_PREFIX + volume.upper().replace("-", "_")


def check_job_id(text: str) -> str:
    """Return a job id (12 lower-case hex digits); InvalidInput otherwise."""
    if not _JOB_ID.match(text):
        raise InvalidInput(f"job {text[:20]!r} is not a job id (12 hex digits)")
    return text


# --- sizes ------------------------------------------------------------------------------------

def parse_size(text: str) -> int:
    """Return the bytes of a size like `40G`, `512M` (K, M, G, T: powers of 1024);
    InvalidInput otherwise."""
    found = _SIZE.match(text.strip().upper())
    if not found:
        raise InvalidInput(f"size {text[:20]!r}: a whole number and K, M, G or T (40G, 512M)")
    return int(found.group(1)) * _UNITS[found.group(2)]


def volume_size(text: str) -> int:
    """Return the bytes of a volume's size: `parse_size`, and a whole number of MiB (a zvol,
    a logical volume's extents and the node library's sparse files all count in MiB)."""
    size = parse_size(text)
    if size % (1 << 20):
        raise InvalidInput(f"size {text[:20]!r}: a volume is a whole number of MiB (512M, 40G)")
    return size


def size_text(size: int) -> str:
    """Return bytes as the largest exact unit (`42949672960` -> `40G`); bytes are K-aligned."""
    for unit in "TGMK":
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return f"{max(1, size >> 10)}K"


def shown_size(size: int) -> str:
    """Return bytes for people: `96.0 GiB`."""
    for unit, name in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB")):
        if size >= unit:
            return f"{size / unit:.1f} {name}"
    return f"{size} bytes"


def free_bytes(record: Mapping[str, str]) -> int | None:
    """Return a storage host's reported STORAGE_FREE, None when absent or not a number."""
    text = record.get(FREE_KEY, "").strip()
    return int(text) if text.isdigit() else None


def mirrors(cluster: Mapping[str, str]) -> int:
    """Return how many copies of a root disk the cluster asks for (ISCSI_MIRRORS, 1 or 2)."""
    text = cluster.get(MIRRORS_KEY, "1").strip() or "1"
    if text not in ("1", "2"):
        raise InvalidInput(f"cluster key {MIRRORS_KEY}={text[:10]!r}: 1 or 2")
    return int(text)


# --- targets ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class IscsiRoot:
    """Where a thin host's disk is: the portal (address, port) and the target's IQN."""

    ip: str
    port: int
    iqn: str

    @property
    def value(self) -> str:
        """Return the form ISCSI_ROOT_<i> and a report's `lun=` hold: `<ip>:<port>:<iqn>`."""
        return f"{self.ip}:{self.port}:{self.iqn}"

    @property
    def portal(self) -> str:
        """Return `<ip>:<port>`."""
        return f"{self.ip}:{self.port}"


def parse_root(text: str) -> IscsiRoot:
    """Return the target of `<ip>:<port>:<iqn>` or `<ip>:<iqn>` (port 3260); InvalidInput
    otherwise."""
    ip, _, rest = text.strip().partition(":")
    port = str(ISCSI_PORT)
    if not rest.startswith("iqn."):
        port, _, rest = rest.partition(":")
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError:
        raise InvalidInput(f"{text[:60]!r}: not <ip>:<port>:<iqn> (the address)") from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidInput(f"{text[:60]!r}: not <ip>:<port>:<iqn> (the port)")
    return IscsiRoot(str(address), int(port), check_iqn(rest))


def root_of(host: Mapping[str, str], slot: int = 0) -> IscsiRoot | None:
    """Return the target of a host's ISCSI_ROOT_<slot>, None when unset or unreadable."""
    text = host.get(ROOT_KEY.format(slot), "").strip()
    if not text:
        return None
    try:
        return parse_root(text)
    except InvalidInput:
        return None


def boots_from_iscsi(host: Mapping[str, str], cluster: Mapping[str, str]) -> bool:
    """Return True when TCH_ROOT (the host's, else the cluster's) is `iscsi`."""
    mode = host.get(ROOT_MODE_KEY) or cluster.get(ROOT_MODE_KEY) or ""
    return mode.strip().lower() == "iscsi"


# --- jobs and volumes, as a storage host's record keeps them ----------------------------------

@dataclass(frozen=True)
class Job:
    """A piece of work queued for a storage host (`STORAGE_JOB_<ID>`)."""

    id: str
    action: str
    volume: str
    size: int | None
    iqn: str
    initiator: str | None
    host: str  # the thin host's MAC
    slot: int
    state: str = "queued"
    handed: int = 0
    detail: str = ""

    @property
    def key(self) -> str:
        """Return the storage host's key of this job."""
        return JOB_PREFIX + self.id.upper()

    @property
    def value(self) -> str:
        """Return the job as its key's value (`word=value` pairs; the detail last)."""
        words = [f"action={self.action}", f"volume={self.volume}",
                 f"size={size_text(self.size) if self.size else '-'}", f"iqn={self.iqn}",
                 f"initiator={self.initiator or '-'}", f"host={self.host}",
                 f"slot={self.slot}", f"state={self.state}", f"handed={self.handed}"]
        if self.detail:
            words.append(f"detail={self.detail}")
        return " ".join(words)

    @property
    def line(self) -> str:
        """Return the work line a storage host gets: `<id> <action> <volume> <size> <iqn>
        <initiator-iqn>` (`-` for a field the action does not use)."""
        size = size_text(self.size) if self.size and self.action != "delete" else "-"
        initiator = self.initiator if self.action == "provision" and self.initiator else "-"
        return f"{self.id} {self.action} {self.volume} {size} {self.iqn} {initiator}"

    def failed(self, detail: str) -> Job:
        """Return the job marked failed with the storage host's reason (printable, short)."""
        clean = "".join(ch if " " <= ch <= "~" else " " for ch in detail)[:_DETAIL_MAX]
        return replace(self, state="failed", detail=clean.strip() or "no reason given")


def parse_job(key: str, value: str) -> Job:
    """Return the job a `STORAGE_JOB_<ID>` key holds; InvalidInput when it is not one."""
    head, _, detail = value.partition(" detail=")
    words = dict(word.partition("=")[::2] for word in head.split())
    try:
        size = words["size"]
        return Job(id=key.removeprefix(JOB_PREFIX).lower(), action=words["action"],
                   volume=words["volume"], size=None if size == "-" else parse_size(size),
                   iqn=words["iqn"],
                   initiator=None if words["initiator"] == "-" else words["initiator"],
                   host=words["host"], slot=int(words["slot"]), state=words["state"],
                   handed=int(words["handed"]), detail=detail)
    except (KeyError, ValueError):
        raise InvalidInput(f"{key} is not a storage job: {value[:60]!r}") from None


def jobs_of(record: Mapping[str, str]) -> list[Job]:
    """Return a storage host's jobs in key order (unreadable ones left out)."""
    found = []
    for key, value in record.items():
        if key.startswith(JOB_PREFIX):
            try:
                found.append(parse_job(key, value))
            except InvalidInput:
                continue
    return found


@dataclass(frozen=True)
class Volume:
    """A volume a storage host has reported made (`STORAGE_VOLUME_<NAME>`)."""

    volume: str
    size: int
    iqn: str
    host: str  # the thin host's MAC
    slot: int
    portal: str  # <ip>:<port>
    job: str  # the job that made it: a second report of it changes nothing

    @property
    def key(self) -> str:
        """Return the storage host's key of this volume."""
        return volume_key(self.volume)

    @property
    def value(self) -> str:
        """Return the volume as its key's value."""
        return (f"volume={self.volume} size={size_text(self.size)} iqn={self.iqn} "
                f"host={self.host} slot={self.slot} portal={self.portal} job={self.job}")

    @property
    def root(self) -> IscsiRoot:
        """Return the target a thin host's ISCSI_ROOT_<i> names."""
        ip, _, port = self.portal.partition(":")
        return IscsiRoot(ip, int(port), self.iqn)


def volumes_of(record: Mapping[str, str]) -> list[Volume]:
    """Return a storage host's volumes in key order (unreadable ones left out)."""
    found = []
    for key, value in record.items():
        if not key.startswith(VOLUME_PREFIX):
            continue
        words = dict(word.partition("=")[::2] for word in value.split())
        try:
            found.append(Volume(words["volume"], parse_size(words["size"]), words["iqn"],
                                words["host"], int(words["slot"]), words["portal"],
                                words["job"]))
        except (KeyError, ValueError, InvalidInput):
            continue
    return found
