"""The file backend: one `KEY=value` file per record, a lock file beside each, atomic replace.

Write protocol (docs/storage.md): take `<file>.lock` with a finite timeout, parse the current file
(a corrupt one is never rewritten), open the journal, write the new bytes to a temporary file
in the same directory, fsync it, parse it back and compare, keep the old file under a hidden
name (a hard link), `os.replace` the new one over the record, fsync the directory, append the
journal lines, drop the kept file. Readers take no lock: `os.replace` is atomic, so a reader
sees the old file or the new one, never a mix. A change and its journal lines happen together
or not at all (`_commit`): a journal that cannot be opened refuses the change before anything
moves, and one that refuses the lines gets the old file renamed back.

`stamp` keeps a host's bookkeeping keys (the boot-session stamp `init` writes at every boot of
a host whose state does not change) in `hosts/<mac12>.stamp` beside the record: one small file
rewritten in place under the record's lock, headed by its length and CRC-32, not fsynced. Host
reads lay it over the record (record first, then stamp: see `_host_view`); a torn or missing
stamp leaves the record's own, older values. Every `update` or `unset` of the host folds the
stamp into the record it writes and removes it, before the directory fsync.

Records are kept parsed in memory and served again while `stat` shows the same file and that
file had settled when it was read (hps_api.store.settled): `hps.conf`, cluster and OS records,
read on nearly every request, and the last HOSTS_KEPT host records and stamps read, each host
read a `stat` of its record and one of its stamp while they do not change. Every request of a
host reads it, and a boot storm reads the same few hundred hosts again and again; the bound
keeps memory flat on a cluster of any size (about 10 MB per process when full).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from hps_api.errors import (
    Conflict,
    CorruptRecord,
    HpsError,
    InvalidInput,
    KeyNotSet,
    NotFound,
    StoreUnavailable,
    StoreUnreadable,
)
from hps_api.ids import (
    DEFAULT_SENSITIVE_PATTERNS,
    check_host_value,
    is_sensitive,
    is_shell_special,
    normalize_key,
    normalize_mac,
    os_id_to_stem,
    os_stem_to_id,
    validate_cluster,
    validate_value,
)
from hps_api.store import files, journal, stamps
from hps_api.store.journal import REDACTED, Change, JournalLines
from hps_api.store.kvfile import Record, format_record, parse, parse_items
from hps_api.store.layout import HOST_FILE, Layout
from hps_api.store.records import Kind, RecordId
from hps_api.store.settled import Settled

MAX_RECORD_BYTES = 1024 * 1024
#: files a host record may have beside it (`hosts/<mac12>.<suffix>`): the rendered kickstart
ATTACHMENT_SUFFIXES = frozenset({"ks"})
#: the files of one record that share its lock: the record, a host's stamp and attachments
_FAMILY = (".conf", stamps.STAMP_SUFFIX, *(f".{suffix}" for suffix in sorted(ATTACHMENT_SUFFIXES)))
#: record kinds whose parsed files are kept in memory between reads (see the module docstring)
CACHED_KINDS = frozenset({Kind.GLOBAL, Kind.CLUSTER, Kind.OS})
#: hps.conf, clusters and OS records kept at most; host records (and as many stamps) kept at most
RECORDS_KEPT = 1024
HOSTS_KEPT = 4096
#: record ids whose file path FileStore remembers (see `_path_of`)
PATH_MEMO = 4096


#: keys whose changes the journal leaves out: UPDATED (the write's own time) and LAST_SEEN (a
#: heartbeat every `init` and menu poll moves; the event log has each request, and the journal
#: keeps the boots, one BOOT_SESSION line each, and every other change)
UNJOURNALED = frozenset({"UPDATED", "LAST_SEEN"})
#: the size past which a journal is rotated unless told otherwise (HPS_JOURNAL_MAX_MIB)
JOURNAL_MAX_BYTES = 64 * 1024 * 1024

class FileStore:
    """The Store protocol over a directory tree (see the module docstring for the protocol)."""

    def __init__(
        self,
        root: Path | str,
        lock_timeout: float = 5.0,
        sensitive_patterns: tuple[str, ...] = DEFAULT_SENSITIVE_PATTERNS,
        journal_max_bytes: int = JOURNAL_MAX_BYTES,
        journal_rotations: int = journal.DEFAULT_ROTATIONS,
    ) -> None:
        self.layout = Layout(root)
        self.lock_timeout = lock_timeout
        self.sensitive_patterns = sensitive_patterns
        #: a journal is rotated when an append leaves it larger (0: never), keeping as many
        #: rotations as `journal_rotations` (docs/storage.md, "Journal")
        self.journal_max_bytes = journal_max_bytes
        self.journal_rotations = journal_rotations
        self._records: Settled[Record] = Settled(parse, RECORDS_KEPT)
        self._hosts: Settled[dict[str, str]] = Settled(parse_items, HOSTS_KEPT)
        self._stamps: Settled[dict[str, str]] = Settled(stamps.stamp_items, HOSTS_KEPT)
        self._paths: dict[RecordId, Path] = {}

    # -- reads -------------------------------------------------------------------------------

    def exists(self, rid: RecordId) -> bool:
        """Return True when the record's file exists."""
        return self._path_of(rid).is_file()

    def items(self, rid: RecordId) -> dict[str, str]:
        """Return the record's keys and values; NotFound, CorruptRecord or StoreUnreadable."""
        name = str(self._path_of(rid))
        if rid.kind is Kind.HOST:  # the record first, then its stamp (see _host_view)
            found = self._hosts.read(name)
            if found is None:
                raise NotFound(f"{rid.label} not found")
            items = dict(found)
            items.update(self._stamps.read(stamps.stamp_path(name)) or {})
            return items
        record = self._records.read(name)
        if record is None:
            raise NotFound(f"{rid.label} not found")
        return record.as_dict()

    def get(self, rid: RecordId, key: str) -> str:
        """Return one value; KeyNotSet when the key is not set, NotFound without the record."""
        name = normalize_key(key)
        value = self.items(rid).get(name)
        if value is None:
            raise KeyNotSet(name)
        return value

    def record(self, rid: RecordId) -> Record:
        """Return the parsed record, comments included; NotFound when it does not exist."""
        record = self._read_for(rid)
        if record is None:
            raise NotFound(f"{rid.label} not found")
        return record

    def list_records(self, kind: Kind, cluster: str | None = None) -> list[RecordId]:
        """Return the ids of every record of a kind, sorted; hosts need their cluster."""
        if kind is Kind.GLOBAL:
            return [RecordId.global_()] if self.layout.hps_conf.is_file() else []
        if kind is Kind.CLUSTER:
            names = files.names(self.layout.clusters_dir, lambda e: e.is_dir())
            return [RecordId.of_cluster(n) for n in names if _is_cluster(self.layout, n)]
        if kind is Kind.OS:
            stems = [n[:-5] for n in files.names(self.layout.os_dir) if n.endswith(".conf")]
            return [RecordId.of_os(os_stem_to_id(s)) for s in stems if _is_os_stem(s)]
        if cluster is None or not self.exists(RecordId.of_cluster(cluster)):
            raise NotFound(f"cluster {cluster!r} not found")
        names = files.names(self.layout.hosts_dir(cluster))
        macs = [m.group(1) for m in map(HOST_FILE.fullmatch, names) if m]
        return [RecordId(Kind.HOST, cluster, mac) for mac in macs if _is_host_mac(mac)]

    def history(self, rid: RecordId, *, limit: int | None = None) -> list[Change]:
        """Return the journal entries of one record kept in its journal and the journal's
        rotations, oldest first; with `limit`, only the newest ones, until `limit` boots and
        `limit` other changes are among them (the files are read from their end and no
        further). Raises StoreUnreadable."""
        found = journal.newest_first(self.layout.journal_for(rid), rid.label)
        changes = list(found) if limit is None else journal.recent(found, limit)
        changes.reverse()
        return changes

    def journal_path(self, cluster: str | None) -> Path | None:
        """Return the journal file of a cluster (None: the global one)."""
        return self.layout.journal(cluster) if cluster else self.layout.global_journal

    def journal_lines(self, cluster: str | None, *, after: int = 0,
                      limit: int | None = None) -> JournalLines:
        """Return the newest `limit` lines of a journal and its rotations, oldest first; the
        cursor is the journal file's size: with `after`, the lines appended since, unless the
        file was rotated meanwhile (then the newest lines again). Raises StoreUnreadable."""
        path = self.layout.journal(cluster) if cluster else self.layout.global_journal
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return JournalLines([], 0)
        except OSError as err:
            raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
        if 0 < after <= size:
            try:
                with path.open("rb") as handle:
                    handle.seek(after)
                    data = handle.read(size - after)
            except OSError as err:
                raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
            whole = data[:data.rfind(b"\n") + 1]
            lines = [line for line in whole.split(b"\n") if line]
            return JournalLines(lines[-limit:] if limit else lines, after + len(whole))
        found = journal.newest_first(path)
        taken = [journal.line_of(c)[:-1].encode() for c in itertools.islice(found, limit)]
        taken.reverse()
        return JournalLines(taken, size)

    def append_journal(self, rid: RecordId, changes: list[Change]) -> None:
        """Append lines to the record's journal as they are; StoreUnavailable."""
        with journal.appender(self.layout.journal_for(rid), self.journal_max_bytes,
                              self.journal_rotations) as append:
            append(changes)

    # -- writes ------------------------------------------------------------------------------

    def update(
        self,
        rid: RecordId,
        changes: Mapping[str, str | None],
        actor: str,
        *,
        create: bool = False,
        expect: Mapping[str, str | None] | None = None,
    ) -> dict[str, str]:
        """Apply every change in one replace (None unsets) and return the new record.

        `create` makes a missing record (a host's cluster must exist). `expect` is a condition
        checked under the lock: each named key must still hold that value (None: not set), else
        Conflict and nothing is written. Keys already holding the given value are not rewritten;
        with nothing to change, nothing is written at all.
        Raises InvalidInput, NotFound, Conflict, CorruptRecord, StoreBusy, StoreUnavailable
        (nothing changed).
        """
        wanted = validated_changes(rid, changes)
        path = self._path_of(rid)
        if not path.is_file():
            self._check_creatable(rid, create)
        with self._locked(path):
            old = self._read(path)
            if old is None:
                self._check_creatable(rid, create)
            base = self._host_view(rid, old) or Record()
            effective = update_changes(rid, base, wanted, expect, creating=old is None)
            if effective is None:
                return base.as_dict()
            new = base.updated(effective)
            self._commit(rid, self._changes(rid, base, effective, actor),
                         lambda undo: self._replace(path, new, rid, undo))
        return new.as_dict()

    def stamp(self, rid: RecordId, values: Mapping[str, str], actor: str) -> None:
        """Record a host's bookkeeping keys (BOOT_SESSION, LAST_SEEN...) without rewriting its
        record; every read of the host sees them at once.

        The keys go to `hosts/<mac12>.stamp` (see the module docstring), under the record's
        lock, with a journal line per changed key like any change. Not durable: a reader that
        meets the stamp mid-rewrite reads it again, and a stamp torn by a crash is ignored,
        leaving the record's own values (an earlier boot); never a mix. For keys no decision
        depends on; anything else goes through `update`. When the stamp already holds every
        key given (every boot after the first), the record is not even parsed. Raises
        InvalidInput (not a host, bad key or value, too large), NotFound, CorruptRecord,
        StoreBusy, StoreUnavailable (the stamp as it was).
        """
        if rid.kind is not Kind.HOST:
            raise InvalidInput(f"{rid.label}: only host records take stamps")
        wanted = {normalize_key(k): validate_value(v) for k, v in values.items()}
        path = self._path_of(rid)
        if not path.is_file():
            raise NotFound(f"{rid.label} not found")
        with self._locked(path, heal=False):
            stamp_path = stamps.stamp_path(path)
            current = stamps.read_stamp(stamp_path) or {}
            if wanted.keys() <= current.keys() and path.is_file():
                before: Mapping[str, str] = current
            else:
                record = self._read(path)
                if record is None:
                    raise NotFound(f"{rid.label} not found")
                before = {**record.as_dict(), **current}
            effective = update_changes(rid, before, wanted, None)
            if effective is None:
                return
            stamped = {**current, **{k: v for k, v in effective.items() if v is not None}}

            def write(undo: files.Undo) -> None:
                undo.call(lambda: stamps.put_back(stamp_path, current, path))
                stamps.write_stamp(stamp_path, stamped, path)

            self._commit(rid, self._changes(rid, before, effective, actor), write)

    def unset(self, rid: RecordId, key: str, actor: str) -> dict[str, str]:
        """Remove one key and return the new record; KeyNotSet when it was not set.

        Raises NotFound, CorruptRecord, StoreBusy, StoreUnavailable (nothing changed) too.
        """
        name = normalize_key(key)
        path = self._path_of(rid)
        if not path.is_file():
            raise NotFound(f"{rid.label} not found")
        with self._locked(path):
            old = self._host_view(rid, self._read(path))
            if old is None:
                raise NotFound(f"{rid.label} not found")
            effective = unset_changes(rid, old, name)
            new = old.updated(effective)
            self._commit(rid, self._changes(rid, old, effective, actor),
                         lambda undo: self._replace(path, new, rid, undo))
        return new.as_dict()

    def delete(self, rid: RecordId, actor: str) -> None:
        """Remove a record and a host's attachments (its lock file stays); NotFound when it
        does not exist, StoreUnavailable (nothing removed) when the store cannot be written."""
        path = self.layout.path(rid)
        if not path.is_file():
            raise NotFound(f"{rid.label} not found")
        with self._locked(path):
            old = self._read(path)
            if old is None:
                raise NotFound(f"{rid.label} not found")

            def remove(undo: files.Undo) -> None:
                with files.writing(path):
                    undo.move(path)
                    if rid.kind is Kind.HOST:
                        for suffix in (*ATTACHMENT_SUFFIXES, stamps.STAMP_SUFFIX[1:]):
                            undo.move(path.with_suffix(f".{suffix}"))
                files.fsync_dir(path.parent)

            self._commit(rid, self._changes(rid, old, dict.fromkeys(old.keys()), actor), remove)

    # -- attachments: files kept beside a host record -----------------------------------------

    def write_attachment(self, rid: RecordId, suffix: str, data: str, actor: str) -> Path:
        """Write `hosts/<mac12>.<suffix>` beside a host record, atomically; return its path.

        Same protocol as a record (its lock, temp file, fsync, read-back check, `os.replace`,
        directory fsync); the journal gets the sha256 of the old and new content, and the file
        is put back when it cannot. Identical content is not rewritten. Raises InvalidInput (not
        a host, suffix not allowed, too large, not encodable), NotFound (no such host),
        StoreBusy, StoreUnreadable, StoreUnavailable (nothing changed).
        """
        path = _attachment_path(self.layout, rid, suffix)
        try:
            encoded = data.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{path.name}: text is not valid Unicode") from None
        if len(encoded) > MAX_RECORD_BYTES:
            raise InvalidInput(f"{path.name} would exceed {MAX_RECORD_BYTES} bytes")
        record_path = self.layout.path(rid)
        with self._locked(record_path):
            if self._read(record_path) is None:
                raise NotFound(f"{rid.label} not found")
            old = files.read_bytes(path)
            if old != encoded:
                change = Change(journal.utc_now(), rid.label, f".{suffix}", digest(old),
                                digest(encoded), actor)
                self._commit(rid, [change],
                             lambda undo: files.write_durably(path, encoded, undo=undo,
                                                              locked=True))
        return path

    def read_attachment(self, rid: RecordId, suffix: str) -> str:
        """Return the text of `hosts/<mac12>.<suffix>`; NotFound when there is none.

        Raises InvalidInput (not a host, suffix not allowed) and StoreUnreadable too.
        """
        path = _attachment_path(self.layout, rid, suffix)
        data = files.read_bytes(path)
        if data is None:
            raise NotFound(f"{rid.label} has no .{suffix} file")
        return data.decode("utf-8", errors="replace")

    @contextlib.contextmanager
    def lock(self, cluster: str) -> Iterator[None]:
        """Hold the cluster-wide allocation lock; StoreBusy after the timeout."""
        if not self.exists(RecordId.of_cluster(validate_cluster(cluster))):
            raise NotFound(f"cluster {cluster!r} not found")
        with self._locked_file(self.layout.alloc_lock(cluster)):
            yield

    # -- internals ---------------------------------------------------------------------------

    def _check_creatable(self, rid: RecordId, create: bool) -> None:
        """Raise NotFound unless a missing record may be created here."""
        if not create:
            raise NotFound(f"{rid.label} not found")
        parent = self.layout.parent_record(rid)
        if parent is not None and not self.exists(parent):
            raise NotFound(f"{parent.label} not found")
        directory = self.layout.path(rid).parent
        with files.writing(directory):
            directory.mkdir(parents=True, exist_ok=True)

    def _locked(self, path: Path, *, heal: bool = True) -> contextlib.AbstractContextManager[None]:
        """Hold a record's lock; `heal=False` for a stamp, which is rewritten in place and makes
        no temp or set-aside file, so the boot path pays no sweep (the next update does it)."""
        return self._locked_file(path.with_name(path.name + ".lock"),
                                 heal=path if heal else None)

    @contextlib.contextmanager
    def _locked_file(self, lock_path: Path, heal: Path | None = None) -> Iterator[None]:
        """Hold a lock; holding a record's, first sweep what a killed writer of that record
        left (its temp and set-aside files, and those of its stamp and attachment): a crash
        heals at the record's next write instead of leaving debris for fsck."""
        fd = files.acquire(lock_path, self.lock_timeout)
        try:
            if heal is not None:
                files.heal(heal.with_suffix(suffix) for suffix in _FAMILY)
            yield
        finally:
            os.close(fd)  # closing the only descriptor releases the lock

    def _read_for(self, rid: RecordId) -> Record | None:
        """Return a record for reading: from memory for CACHED_KINDS while its file is
        unchanged, else parsed from disk."""
        path = self._path_of(rid)
        if rid.kind in CACHED_KINDS:
            return self._records.read(str(path))
        return self._host_view(rid, self._read(path))

    def _host_view(self, rid: RecordId, record: Record | None) -> Record | None:
        """Return a record read from disk with its stamp laid over it (hosts only).

        Always the record first, then its stamp: an `update` folds the stamp into the record
        before removing it, so a reader that finds no stamp any more read the record before
        that update (an older, whole view), and a stamp found after the record is never older
        than the record it is laid over.
        """
        if record is None or rid.kind is not Kind.HOST:
            return record
        stamp = stamps.read_stamp(stamps.stamp_path(self._path_of(rid)))
        return record.updated(stamp) if stamp else record

    def _path_of(self, rid: RecordId) -> Path:
        """Return `layout.path(rid)`, remembered per record id: a `Path` costs more to build
        than the read it names (and keeps its string once made), and every request reads
        hps.conf, a cluster and a host. At most PATH_MEMO ids are kept (then the memo starts
        again), so memory does not grow with the cluster."""
        found = self._paths.get(rid)
        if found is None:
            if len(self._paths) >= PATH_MEMO:
                self._paths.clear()
            found = self._paths[rid] = self.layout.path(rid)
        return found

    def _read(self, path: Path) -> Record | None:
        """Return the parsed file, None when it does not exist."""
        data = files.read_bytes(path)
        return None if data is None else parse(data, str(path))

    def _replace(self, path: Path, record: Record, rid: RecordId, undo: files.Undo) -> None:
        """Write a record atomically and durably over `path`, the old file kept in `undo`; for
        a host, move its stamp, which `record` has folded in, aside before the directory fsync,
        so both reach the disk together."""
        data = format_record(record)
        if len(data) > MAX_RECORD_BYTES:
            raise InvalidInput(f"{path.name} would exceed {MAX_RECORD_BYTES} bytes")
        files.write_durably(path, data, lambda written, name: _verify(written, record, name),
                            sync_dir=False, undo=undo, locked=True)
        if rid.kind is Kind.HOST:
            stamp = stamps.stamp_path(path)
            with files.writing(stamp):
                undo.move(stamp)
        files.fsync_dir(path.parent)

    def _commit(self, rid: RecordId, changes: list[Change],
                make: Callable[[files.Undo], None]) -> None:
        """Make a change (`make`, which sets aside in an Undo what it replaces or removes) and
        append its journal lines: both happen, or neither.

        The journal is opened first, so one that cannot be written refuses the change before
        anything moves. When the lines are refused after all (a full disk), what was set aside
        is put back by renames, which need no free space. Raises StoreUnavailable.
        """
        with journal.appender(self.layout.journal_for(rid), self.journal_max_bytes,
                              self.journal_rotations) as append:
            undo = files.Undo()
            try:
                make(undo)
                append(changes)
            except BaseException as err:
                try:
                    undo.restore(self.layout.path(rid).parent)
                except (OSError, HpsError) as again:
                    detail = again.strerror if isinstance(again, OSError) else again
                    raise StoreUnavailable(f"{err}; and {rid.label} could not be put back "
                                           f"({detail}): it may hold the change without its "
                                           "journal lines") from None
                raise
            undo.discard()

    def _changes(self, rid: RecordId, old: Record | Mapping[str, str],
                 effective: Mapping[str, str | None], actor: str) -> list[Change]:
        """Return the journal lines of a change (see `journal_changes`)."""
        return journal_changes(rid, old, effective, actor, self.sensitive_patterns)


def validated_changes(rid: RecordId, changes: Mapping[str, str | None]) -> dict[str, str | None]:
    """Return the changes of an `update` with keys normalised and values checked (any
    backend); InvalidInput for a bad key or value, or a name shells give a meaning to."""
    wanted = {normalize_key(k): None if v is None else validate_value(v)
              for k, v in changes.items()}
    for key, value in wanted.items():
        if value is not None and is_shell_special(key):
            raise InvalidInput(f"key {key} is a name shells give a meaning to (an old "
                               "node's eval of its config would obey it): refused")
        if value is not None and rid.kind is Kind.HOST:
            check_host_value(key, value)
    return wanted


def journal_changes(rid: RecordId, old: Record | Mapping[str, str], effective: Mapping[str,
                    str | None], actor: str, patterns: tuple[str, ...]) -> list[Change]:
    """Return the journal lines of a change (any backend; UNJOURNALED keys left out, values of
    keys matching `patterns` redacted).

    A boot (a new BOOT_SESSION) is one line: the BOOT_FACTS it sets that were not set
    before (BOOT_TIME always) ride on its BOOT_SESSION line as `facts`, so nothing is lost
    (their old values were unset, or, for BOOT_TIME, are the previous boot's line).
    """
    def shown(key: str, value: str | None) -> str | None:
        if value is None or not is_sensitive(key, patterns):
            return value
        return REDACTED

    now = journal.utc_now()
    label = rid.label
    facts = {key: shown(key, new) or "" for key, new in effective.items()
             if new is not None and key in journal.BOOT_FACTS
             and (key == "BOOT_TIME" or old.get(key) is None)} \
        if effective.get(journal.BOOT_KEY) is not None else {}
    return [
        Change(now, label, key, shown(key, old.get(key)), shown(key, new), actor,
               facts if key == journal.BOOT_KEY else {})
        for key, new in effective.items()
        if key not in UNJOURNALED and key not in facts
    ]


def check_expected(record: Record | Mapping[str, str], expect: Mapping[str, str | None]) -> None:
    """Raise Conflict unless every expected key still holds its expected value."""
    for key, wanted in expect.items():
        found = record.get(normalize_key(key))
        if found != wanted:
            raise Conflict(f"{key} changed meanwhile (now {found!r}, expected {wanted!r})")


def update_changes(rid: RecordId, base: Record | Mapping[str, str],
                   wanted: Mapping[str, str | None], expect: Mapping[str, str | None] | None,
                   *, creating: bool = False) -> dict[str, str | None] | None:
    """Return what an update of `base` changes, the rules every backend writes by: `expect`
    must hold (Conflict), a key already holding its value is left out, and a stamped record
    gets UPDATED; None when nothing changes (a record being created always changes)."""
    check_expected(base, expect or {})
    effective = {k: v for k, v in wanted.items() if base.get(k) != v}
    if not effective and not creating:
        return None
    if rid.stamped:
        effective["UPDATED"] = journal.utc_now()
    return effective


def unset_changes(rid: RecordId, old: Record, name: str) -> dict[str, str | None]:
    """Return what unsetting `name` changes (KeyNotSet when it is not set)."""
    if old.get(name) is None:
        raise KeyNotSet(name)
    return update_changes(rid, old, {name: None}, None) or {}


def _verify(written: bytes, intended: Record, name: str) -> None:
    """Raise unless the written bytes are the intended record's, and parse back to its keys and
    values (the bytes carry its comments and order)."""
    try:
        if written == format_record(intended) and \
                parse_items(written, name) == intended.as_dict():
            return
    except CorruptRecord:
        pass
    raise HpsError(f"{name}: written bytes do not read back as the intended record")


def _attachment_path(layout: Layout, rid: RecordId, suffix: str) -> Path:
    """Return the path of a host record's attachment; InvalidInput for anything else."""
    check_attachment(rid, suffix)
    return layout.path(rid).with_suffix(f".{suffix}")


def check_attachment(rid: RecordId, suffix: str) -> None:
    """Raise InvalidInput unless `rid` is a host and `suffix` an attachment it may have."""
    if rid.kind is not Kind.HOST:
        raise InvalidInput(f"{rid.label}: only host records have attachments")
    if suffix not in ATTACHMENT_SUFFIXES:
        raise InvalidInput(f"attachment suffix {suffix!r} not allowed "
                           f"(one of: {', '.join(sorted(ATTACHMENT_SUFFIXES))})")


def digest(data: bytes | None) -> str | None:
    """Return how the journal names an attachment's content: its sha256 (None: none)."""
    import hashlib  # here, like tempfile: `host_config get` should not pay for it

    return None if data is None else "sha256:" + hashlib.sha256(data).hexdigest()


def _is_cluster(layout: Layout, name: str) -> bool:
    try:
        return (layout.cluster_dir(name) / "cluster.conf").is_file()
    except InvalidInput:
        return False


def _is_os_stem(stem: str) -> bool:
    """Return True when the stem is exactly the canonical file stem of a valid OS id."""
    try:
        return os_id_to_stem(os_stem_to_id(stem)) == stem
    except InvalidInput:
        return False


def _is_host_mac(mac: str) -> bool:
    """Return True when a host file's name is a MAC a host can have (not multicast/zero)."""
    try:
        return normalize_mac(mac) == mac
    except InvalidInput:
        return False
