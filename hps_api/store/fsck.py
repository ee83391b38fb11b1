"""Checking the whole tree: corrupt or unreadable records, stray temp files, strange names,
host stamps that do not verify or have no record.

Only what needs a person (corrupt, unreadable, misnamed files) makes `hps-api fsck` exit 1. Temp
files older than a minute are removed and reported; a younger one may be a write in progress
and a torn stamp is replaced at the host's next boot, so both are listed as information.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hps_api.errors import CorruptRecord, HpsError, InvalidInput, StoreUnreadable
from hps_api.ids import validate_cluster
from hps_api.store.base import Store
from hps_api.store.files import TEMP_SUFFIX
from hps_api.store.filestore import FileStore
from hps_api.store.kvfile import parse
from hps_api.store.layout import HOST_FILE, Layout
from hps_api.store.records import Kind
from hps_api.store.stamps import STAMP_SUFFIX, read_stamp

STALE_TEMP_SECONDS = 60.0
#: the findings fsck's exit status is about
PERSON_KINDS = frozenset({"corrupt", "unreadable", "stray"})


@dataclass(frozen=True)
class Problem:
    """One finding: the file, its kind (corrupt, unreadable, temp, stray) and the detail."""

    path: Path
    kind: str
    detail: str

    @property
    def needs_person(self) -> bool:
        """True for what only an operator can repair (a corrupt, unreadable or misnamed file);
        a temp file or a torn stamp heals by itself (next write, next boot, the sweep)."""
        return self.kind in PERSON_KINDS

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


def check_tree(layout: Layout) -> list[Problem]:
    """Return every problem under the config dir (empty when the tree is healthy)."""
    problems: list[Problem] = []
    for path in _record_files(layout):
        problem = _check_record(path)
        if problem:
            problems.append(problem)
    for directory in _record_dirs(layout):
        problems.extend(_strays(directory))
    return problems


def check_store(store: Store) -> list[Problem]:
    """Return every problem of a store: its files (check_tree) for the file backend; for any
    other, every record read through the store, a corrupt or unreadable one named by its
    label (`host/525400aabb01`)."""
    if isinstance(store, FileStore):
        return check_tree(store.layout)
    problems: list[Problem] = []
    clusters = store.list_records(Kind.CLUSTER)
    rids = [*store.list_records(Kind.GLOBAL), *store.list_records(Kind.OS), *clusters]
    for cluster in clusters:
        rids.extend(store.list_records(Kind.HOST, cluster.cluster))
    for rid in rids:
        try:
            store.items(rid)
        except CorruptRecord as err:
            where = f"line {err.line}: " if err.line else ""
            problems.append(Problem(Path(rid.label), "corrupt", where + err.reason))
        except StoreUnreadable as err:
            problems.append(Problem(Path(rid.label), "unreadable", str(err)))
    return problems


def sweep_stale_temps(layout: Layout, min_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete every temp file under the store older than `min_age` seconds; return them.

    What a killed writer leaves is swept by the next writer of the same record; this sweep (the
    server runs it at start, fsck every time) reaches the records nobody has written since.
    """
    temps = [p for d in _record_dirs(layout) for p in _strays(d) if p.kind == "temp"]
    return remove_stale_temps(temps, min_age)


def remove_stale_temps(problems: list[Problem], min_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete the temp files among the problems older than `min_age` seconds; return them.

    A younger temp file may belong to a write in progress, so it is left alone.
    """
    removed = []
    now = time.time()
    for problem in problems:
        if problem.kind == "temp" and now - _mtime(problem.path) >= min_age:
            problem.path.unlink(missing_ok=True)
            removed.append(problem.path)
    return removed


def _record_files(layout: Layout) -> Iterator[Path]:
    if layout.hps_conf.exists():
        yield layout.hps_conf
    yield from sorted(layout.os_dir.glob("*.conf"))
    for cluster_dir in _cluster_dirs(layout):
        conf = cluster_dir / "cluster.conf"
        if conf.exists():
            yield conf
        yield from sorted(p for p in (cluster_dir / "hosts").glob("*.conf")
                          if HOST_FILE.fullmatch(p.name))


def _record_dirs(layout: Layout) -> Iterator[Path]:
    yield layout.root
    yield layout.os_dir
    yield layout.clusters_dir
    for cluster_dir in _cluster_dirs(layout):
        yield cluster_dir
        yield cluster_dir / "hosts"


def _cluster_dirs(layout: Layout) -> list[Path]:
    if not layout.clusters_dir.is_dir():
        return []
    return sorted(p for p in layout.clusters_dir.iterdir() if p.is_dir() and _valid_name(p.name))


def _check_record(path: Path) -> Problem | None:
    try:
        parse(path.read_bytes(), str(path))
    except CorruptRecord as err:
        where = f"line {err.line}: " if err.line else ""
        return Problem(path, "corrupt", where + err.reason)
    except OSError as err:
        return Problem(path, "unreadable", err.strerror or str(err))
    return None


def _strays(directory: Path) -> Iterator[Problem]:
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    for name in names:
        path = directory / name
        if name.startswith(".") and name.endswith(TEMP_SUFFIX):
            yield Problem(path, "temp", "left by an interrupted write")
        elif directory.name == "hosts" and name.endswith(".conf") and not HOST_FILE.fullmatch(name):
            yield Problem(path, "stray", "not named <mac12>.conf, so never read as a host")
        elif directory.name == "hosts" and name.endswith(STAMP_SUFFIX):
            yield from _check_stamp(path)
        elif directory.name == "clusters" and path.is_dir() and not _valid_name(name):
            yield Problem(path, "stray", "not a valid cluster name, so never read as a cluster")


def _check_stamp(path: Path) -> Iterator[Problem]:
    """A host's stamp (boot-session keys beside its record) must have its record and verify;
    a torn one is harmless (reads fall back to the record's values until the next boot)."""
    if not path.with_suffix(".conf").is_file():
        yield Problem(path, "stray", "a stamp without its host record, never read")
        return
    try:
        ok = path.stat().st_size and read_stamp(path) is not None
    except (OSError, HpsError) as err:
        yield Problem(path, "unreadable", str(err))
        return
    if not ok:
        yield Problem(path, "torn", "does not verify (a crash while it was written); the "
                      "host's record values apply until its next boot")


def _valid_name(name: str) -> bool:
    try:
        validate_cluster(name)
    except InvalidInput:
        return False
    return True


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()
