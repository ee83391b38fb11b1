"""Every host record of a cluster, read once per request and cheaply (docs/ui.md, "At 10,000
hosts").

The pages and `GET /api/v1/hosts` search, count and sort over all of a cluster's hosts, so each
such request needs every record. Reading 10,000 records costs ~0.4 s (open, read and parse
each, and look for its stamp); a `stat` of each costs a tenth of that. So a HostIndex keeps,
per process, the records it has parsed with the identity of their files (record and stamp:
inode, size, mtime, ctime), and parses again only the files whose identity changed. As the
store's own cache does for cluster records (`store.settled.SETTLE_SECONDS`), a file is kept
only once it has settled: a stamp rewritten in place twice within one clock tick keeps its
size and mtime, so a file changed less than a second ago is read again at every request.

Only the file backend has files to `stat`; with any other Store every record is read through
`items`, which is always right, only slower. Records are read through the Store either way, so
what a page shows is exactly what `items` returns (stamp included). A record that cannot be
read is named in `problems` instead of hiding the others; a host deleted meanwhile is gone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from hps_api.errors import HpsError, NotFound
from hps_api.ids import normalize_mac
from hps_api.store import FileStore, Kind, RecordId, Store
from hps_api.store.files import identity
from hps_api.store.layout import HOST_FILE
from hps_api.store.settled import SETTLE_SECONDS

Identity = tuple[tuple[int, ...], tuple[int, ...] | None]
STAMP = ".stamp"


@dataclass(frozen=True)
class ClusterHosts:
    """The hosts of one cluster: mac12 -> record (MAC order), and mac12 -> why a record
    could not be read."""

    records: dict[str, Mapping[str, str]]
    problems: dict[str, str] = field(default_factory=dict)


class HostIndex:
    """Host records of every cluster read so far, each kept with its files' identity."""

    def __init__(self) -> None:
        self._known: dict[str, dict[str, tuple[Identity, Mapping[str, str]]]] = {}
        #: file name -> MAC, for the names found to be host files (checked once each)
        self._macs: dict[str, str] = {}
        self._lock = threading.Lock()

    def read(self, store: Store, cluster: str) -> ClusterHosts:
        """Return every host record of `cluster`; NotFound when the cluster does not exist.
        A record is parsed again only when its file or its stamp changed (module docstring)."""
        if not isinstance(store, FileStore):
            return read_all(store, cluster)
        if not store.exists(RecordId.of_cluster(cluster)):
            raise NotFound(f"cluster {cluster!r} not found")
        directory = str(store.layout.hosts_dir(cluster))
        names = _names(directory)
        known = self._known.get(cluster, {})
        fresh: dict[str, tuple[Identity, Mapping[str, str]]] = {}
        hosts = ClusterHosts({})
        settled = time.time_ns() - int(SETTLE_SECONDS * 1e9)
        for mac in self._host_macs(names):
            try:
                seen, newest = _identity(directory, mac, f"{mac}{STAMP}" in names)
            except FileNotFoundError:
                continue  # deleted since the directory was listed
            except OSError as err:
                hosts.problems[mac] = f"host/{mac}: {err.strerror or err}"
                continue
            cached = known.get(mac)
            if cached is not None and cached[0] == seen:
                record = cached[1]
            else:
                try:
                    record = store.items(RecordId(Kind.HOST, cluster, mac))
                except NotFound:
                    continue
                except HpsError as err:
                    hosts.problems[mac] = str(err)
                    continue
            hosts.records[mac] = record
            if newest <= settled:
                fresh[mac] = (seen, record)
        self._known[cluster] = fresh
        return hosts

    def _host_macs(self, names: set[str]) -> list[str]:
        """Return the MACs of the host files among `names`, sorted (as list_records does)."""
        known, found = self._macs, []
        for name in names:
            mac = known.get(name)
            if mac is None and name.endswith(".conf"):
                mac = self._host_mac(name)
            if mac:
                found.append(mac)
        found.sort()
        return found

    def _host_mac(self, name: str) -> str | None:
        """Return the MAC a file name stands for when it is a host record's (remembered)."""
        match = HOST_FILE.fullmatch(name)
        if match is None:
            return None
        try:
            if normalize_mac(match.group(1)) != match.group(1):
                return None
        except HpsError:
            return None
        with self._lock:
            self._macs[name] = match.group(1)
        return match.group(1)


def read_all(store: Store, cluster: str) -> ClusterHosts:
    """Return every host record of `cluster` read through `items` (any Store backend)."""
    hosts = ClusterHosts({})
    for rid in store.list_records(Kind.HOST, cluster):
        try:
            hosts.records[rid.name or ""] = store.items(rid)
        except NotFound:
            continue
        except HpsError as err:
            hosts.problems[rid.name or ""] = str(err)
    return hosts


def _names(directory: str) -> set[str]:
    try:
        with os.scandir(directory) as entries:
            return {entry.name for entry in entries}
    except FileNotFoundError:
        return set()


def _identity(directory: str, mac: str, has_stamp: bool) -> tuple[Identity, int]:
    """Return the identity of a host's record and stamp files, and the newer ctime (ns)."""
    record = os.stat(f"{directory}/{mac}.conf")
    stamp = None
    if has_stamp:
        try:
            stamp = os.stat(f"{directory}/{mac}{STAMP}")
        except FileNotFoundError:
            stamp = None
    newest = max(record.st_ctime_ns, stamp.st_ctime_ns if stamp else 0)
    return (identity(record), identity(stamp) if stamp else None), newest
