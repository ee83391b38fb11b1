"""Copying a whole store to another backend: `hps-api store migrate --from URL --to URL`.

Records are copied as they are (their text, comments included: no journal line, no new UPDATED
stamp), each verified at once by reading it back from the target and comparing; a host's
attachments go with it; then each journal (the global one, one per cluster) is copied line by
line in order, and its line count compared. Everything is checked before anything is written:
URLs, an empty source, a target that already holds something (refused unless `force`, which
empties it first). The source is only read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hps_api.errors import HpsError, InvalidInput, NotFound
from hps_api.settings import Settings
from hps_api.store import files, journal
from hps_api.store.base import Store
from hps_api.store.etcdstore import MAX_TXN_OPS, EtcdStore
from hps_api.store.filestore import ATTACHMENT_SUFFIXES, FileStore
from hps_api.store.journal import Change
from hps_api.store.kvfile import Record, format_record, from_mapping
from hps_api.store.records import Kind, RecordId


@dataclass(frozen=True)
class Copied:
    """What a migration copied: records, attachments and journal lines."""

    records: int
    attachments: int
    lines: int


def open_url(url: str, settings: Settings) -> Store:
    """Return the store a URL names: `file:///DIR` or `etcd://HOST:PORT[,...]/PREFIX`;
    InvalidInput naming the URL otherwise."""
    if url.startswith("file://"):
        path = url[len("file://"):]
        if not path.startswith("/"):
            raise InvalidInput(f"{url!r}: a file store is file:///ABSOLUTE/DIR")
        return FileStore(Path(path), settings.lock_timeout, settings.sensitive_keys,
                         settings.journal_max_mib * 1024 * 1024, settings.journal_rotations)
    if url.startswith("etcd://"):
        from hps_api.store.factory import open_etcd

        try:
            return open_etcd(url, settings)
        except InvalidInput as err:
            raise InvalidInput(str(err).replace("HPS_STORE=", "")) from None
    raise InvalidInput(f"{url!r}: expected file:///DIR or etcd://HOST:PORT[,HOST:PORT...]/PREFIX")


def every_record(store: Store) -> list[RecordId]:
    """Return the id of every record: hps.conf, the OS records, the clusters and their hosts."""
    clusters = store.list_records(Kind.CLUSTER)
    found = [*store.list_records(Kind.GLOBAL), *store.list_records(Kind.OS), *clusters]
    for cluster in clusters:
        found.extend(store.list_records(Kind.HOST, cluster.cluster))
    return found


def is_empty(store: Store) -> bool:
    """Return True when the store holds no record and no journal line."""
    if isinstance(store, EtcdStore):
        return store.is_empty()
    return not every_record(store) and not store.journal_lines(None, limit=1).lines


def check(source: Store, target: Store, *, force: bool) -> list[RecordId]:
    """Return the records to copy; InvalidInput when the source is empty or the target holds
    something and `force` is not given."""
    records = every_record(source)
    if not records:
        raise InvalidInput("the source holds no record: nothing to migrate")
    if not force and not is_empty(target):
        raise InvalidInput("the target is not empty: pass --force to replace what it holds")
    return records


def migrate(source: Store, target: Store, records: list[RecordId],
            progress: Callable[[str], None]) -> Copied:
    """Copy every record (verified one by one), its attachments, then every journal; call
    `progress` with each record's label. Raises HpsError naming a record that does not read
    back as written, and the stores' errors."""
    clear(target)
    attachments = 0
    for rid in records:
        attachments += _copy_record(source, target, rid)
        progress(rid.label)
    scopes = [None, *(rid.cluster for rid in records if rid.kind is Kind.CLUSTER)]
    lines = sum(_copy_journal(source, target, scope) for scope in scopes)
    return Copied(len(records), attachments, lines)


def clear(store: Store) -> None:
    """Remove every record, attachment and journal of a store (the local tree stays)."""
    if isinstance(store, EtcdStore):
        store.clear()
        return
    layout = store.layout
    doomed = [layout.hps_conf, *_journal_files(layout.global_journal)]
    doomed += layout.os_dir.glob("*.conf") if layout.os_dir.is_dir() else []
    clusters = layout.clusters_dir
    for cluster in clusters.iterdir() if clusters.is_dir() else []:
        doomed += [cluster / "cluster.conf", *_journal_files(cluster / "journal.log")]
        doomed += (cluster / "hosts").glob("*") if (cluster / "hosts").is_dir() else []
    for path in doomed:
        if path.is_file() and not path.name.endswith(".lock"):
            with files.writing(path):
                path.unlink()


def _journal_files(path: Path) -> Iterator[Path]:
    yield path
    yield from path.parent.glob(f"{path.name}.*")


def _copy_record(source: Store, target: Store, rid: RecordId) -> int:
    record = _record(source, rid)
    _put(target, rid, record)
    if _record(target, rid).as_dict() != record.as_dict():
        raise HpsError(f"{rid.label}: does not read back as written in the target")
    copied = 0
    for suffix in sorted(ATTACHMENT_SUFFIXES) if rid.kind is Kind.HOST else []:
        try:
            text = source.read_attachment(rid, suffix)
        except NotFound:
            continue
        _put_attachment(target, rid, suffix, text.encode("utf-8"))
        if target.read_attachment(rid, suffix) != text:
            raise HpsError(f"{rid.label}.{suffix}: does not read back as written in the target")
        copied += 1
    return copied


def _record(store: Store, rid: RecordId) -> Record:
    if isinstance(store, FileStore | EtcdStore):
        return store.record(rid)
    return from_mapping(store.items(rid))


def _put(store: Store, rid: RecordId, record: Record) -> None:
    if isinstance(store, EtcdStore):
        store.put_raw(rid, record)
        return
    path = store.layout.path(rid)
    with files.writing(path.parent):
        os.makedirs(path.parent, exist_ok=True)
    files.write_durably(path, format_record(record), mode=files.NEW_FILE_MODE)


def _put_attachment(store: Store, rid: RecordId, suffix: str, data: bytes) -> None:
    if isinstance(store, EtcdStore):
        store.put_attachment_raw(rid, suffix, data)
        return
    files.write_durably(store.layout.path(rid).with_suffix(f".{suffix}"), data,
                        mode=files.NEW_FILE_MODE)


def _copy_journal(source: Store, target: Store, scope: str | None) -> int:
    """Copy one journal in order, MAX_TXN_OPS lines at a time; return its line count."""
    changes = [c for c in map(journal.parse_line, source.journal_lines(scope).lines) if c]
    anchor = RecordId.of_cluster(scope) if scope else RecordId.global_()
    batch = MAX_TXN_OPS - 2
    for start in range(0, len(changes), batch):
        target.append_journal(anchor, changes[start:start + batch])
    copied = _count(target, scope)
    if copied != len(changes):
        where = f"cluster {scope}" if scope else "the global journal"
        raise HpsError(f"journal of {where}: {copied} lines in the target, {len(changes)} in "
                       "the source")
    return copied


def _count(store: Store, scope: str | None) -> int:
    lines: list[Change | None] = [journal.parse_line(line)
                                  for line in store.journal_lines(scope).lines]
    return sum(line is not None for line in lines)
