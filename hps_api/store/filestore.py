"""The file backend: one `KEY=value` file per record, a lock file beside each, atomic replace.

Write protocol (storage.md): take `<file>.lock` with a finite timeout, parse the current file
(a corrupt one is never rewritten), write the new bytes to a temporary file in the same
directory, fsync it, parse it back and compare, `os.replace` it over the record, fsync the
directory, then append the journal. Readers take no lock: `os.replace` is atomic, so a reader
sees the old file or the new one, never a mix.

`stamp` keeps a host's bookkeeping keys (the boot-session stamp `init` writes at every boot of
a host whose state does not change) in `hosts/<mac12>.stamp` beside the record: one small file
rewritten in place under the record's lock, headed by its length and CRC-32, not fsynced. Host
reads lay it over the record (record first, then stamp: see `_host_view`); a torn or missing
stamp leaves the record's own, older values. Every `update` or `unset` of the host folds the
stamp into the record it writes and removes it, before the directory fsync.

`hps.conf`, cluster and OS records, read on nearly every request, are kept parsed in memory
and served again while `stat` shows the same file (inode, size, mtime, ctime) and that file had
settled (its ctime at least SETTLE_SECONDS old when it was read): a later replace or in-place
edit always gets a newer ctime, so it can never look like the cached version. Host records
are always read from disk: there can be many thousands, and a cache would grow with them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from hps_api.errors import (
    Conflict,
    CorruptRecord,
    HpsError,
    InvalidInput,
    KeyNotSet,
    NotFound,
    StoreBusy,
    StoreUnreadable,
)
from hps_api.ids import (
    DEFAULT_SENSITIVE_PATTERNS,
    is_sensitive,
    normalize_key,
    normalize_mac,
    os_id_to_stem,
    os_stem_to_id,
    validate_cluster,
    validate_value,
)
from hps_api.store import journal
from hps_api.store.journal import REDACTED, Change
from hps_api.store.kvfile import Record, format_record, from_mapping, parse, parse_items
from hps_api.store.layout import HOST_FILE, Layout
from hps_api.store.records import Kind, RecordId

MAX_RECORD_BYTES = 1024 * 1024
NEW_FILE_MODE = 0o640
TEMP_SUFFIX = ".tmp"
#: files a host record may have beside it (`hosts/<mac12>.<suffix>`): the rendered kickstart
ATTACHMENT_SUFFIXES = frozenset({"ks"})
#: record kinds whose parsed files are kept in memory between reads (see the module docstring)
CACHED_KINDS = frozenset({Kind.GLOBAL, Kind.CLUSTER, Kind.OS})
SETTLE_SECONDS = 1.0
STAMP_SUFFIX = ".stamp"
MAX_STAMP_BYTES = 4096
_STAMP_HEAD = re.compile(rb"# hps-stamp ([0-9a-f]{8}) ([0-9]{1,4})\n")
LOCK_FILE_MODE = 0o644
_POLL_SECONDS = 0.002
_READ_CHUNK = 1 << 16


class FileStore:
    """The Store protocol over a directory tree (see the module docstring for the protocol)."""

    def __init__(
        self,
        root: Path | str,
        lock_timeout: float = 5.0,
        sensitive_patterns: tuple[str, ...] = DEFAULT_SENSITIVE_PATTERNS,
    ) -> None:
        self.layout = Layout(root)
        self.lock_timeout = lock_timeout
        self.sensitive_patterns = sensitive_patterns
        self._parsed: dict[str, tuple[tuple[int, ...], Record]] = {}

    # -- reads -------------------------------------------------------------------------------

    def exists(self, rid: RecordId) -> bool:
        """Return True when the record's file exists."""
        return self.layout.path(rid).is_file()

    def items(self, rid: RecordId) -> dict[str, str]:
        """Return the record's keys and values; NotFound, CorruptRecord or StoreUnreadable."""
        path = self.layout.path(rid)
        if rid.kind not in CACHED_KINDS:
            data = _read_bytes(path)
            if data is None:
                raise NotFound(f"{rid.label} not found")
            items = parse_items(data, str(path))
            if rid.kind is Kind.HOST:
                items.update(read_stamp(_stamp_path(path)) or {})
            return items
        record = self._read_settled(path)
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
            names = _names(self.layout.clusters_dir, lambda e: e.is_dir())
            return [RecordId.of_cluster(n) for n in names if _is_cluster(self.layout, n)]
        if kind is Kind.OS:
            stems = [n[:-5] for n in _names(self.layout.os_dir) if n.endswith(".conf")]
            return [RecordId.of_os(os_stem_to_id(s)) for s in stems if _is_os_stem(s)]
        if cluster is None or not self.exists(RecordId.of_cluster(cluster)):
            raise NotFound(f"cluster {cluster!r} not found")
        names = _names(self.layout.hosts_dir(cluster))
        macs = [m.group(1) for m in map(HOST_FILE.fullmatch, names) if m]
        return [RecordId(Kind.HOST, cluster, mac) for mac in macs if _is_host_mac(mac)]

    def history(self, rid: RecordId) -> list[Change]:
        """Return the journal entries of one record, oldest first."""
        return list(journal.read(self.layout.journal_for(rid), rid.label))

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
        Raises InvalidInput, NotFound, Conflict, CorruptRecord, StoreBusy.
        """
        wanted = {normalize_key(k): None if v is None else validate_value(v)
                  for k, v in changes.items()}
        path = self.layout.path(rid)
        if not path.is_file():
            self._check_creatable(rid, create)
        with self._locked(path):
            old = self._read(path)
            if old is None:
                self._check_creatable(rid, create)
            base = self._host_view(rid, old) or Record()
            _check_expected(base, expect or {})
            effective = {k: v for k, v in wanted.items() if base.get(k) != v}
            if old is not None and not effective:
                return base.as_dict()
            if rid.stamped:
                effective["UPDATED"] = journal.utc_now()
            new = base.updated(effective)
            self._replace(path, new, rid=rid)
            self._journal(rid, base, effective, actor)
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
        StoreBusy.
        """
        if rid.kind is not Kind.HOST:
            raise InvalidInput(f"{rid.label}: only host records take stamps")
        wanted = {normalize_key(k): validate_value(v) for k, v in values.items()}
        path = self.layout.path(rid)
        if not path.is_file():
            raise NotFound(f"{rid.label} not found")
        with self._locked(path):
            stamp_path = _stamp_path(path)
            current = read_stamp(stamp_path) or {}
            if wanted.keys() <= current.keys() and path.is_file():
                before: Mapping[str, str] = current
            else:
                record = self._read(path)
                if record is None:
                    raise NotFound(f"{rid.label} not found")
                before = {**record.as_dict(), **current}
            effective = {k: v for k, v in wanted.items() if before.get(k) != v}
            if not effective:
                return
            effective["UPDATED"] = journal.utc_now()
            _write_stamp(stamp_path, {**current, **effective}, path)
            self._journal(rid, before, effective, actor)

    def unset(self, rid: RecordId, key: str, actor: str) -> dict[str, str]:
        """Remove one key and return the new record; KeyNotSet when it was not set."""
        name = normalize_key(key)
        path = self.layout.path(rid)
        if not path.is_file():
            raise NotFound(f"{rid.label} not found")
        with self._locked(path):
            old = self._host_view(rid, self._read(path))
            if old is None:
                raise NotFound(f"{rid.label} not found")
            if old.get(name) is None:
                raise KeyNotSet(name)
            effective: dict[str, str | None] = {name: None}
            if rid.stamped:
                effective["UPDATED"] = journal.utc_now()
            new = old.updated(effective)
            self._replace(path, new, rid=rid)
            self._journal(rid, old, effective, actor)
        return new.as_dict()

    def delete(self, rid: RecordId, actor: str) -> None:
        """Remove a record and a host's attachments (its lock file stays); NotFound when it
        does not exist."""
        path = self.layout.path(rid)
        if not path.is_file():
            raise NotFound(f"{rid.label} not found")
        with self._locked(path):
            old = self._read(path)
            if old is None:
                raise NotFound(f"{rid.label} not found")
            path.unlink()
            if rid.kind is Kind.HOST:
                for suffix in (*ATTACHMENT_SUFFIXES, STAMP_SUFFIX[1:]):
                    path.with_suffix(f".{suffix}").unlink(missing_ok=True)
            _fsync_dir(path.parent)
            self._journal(rid, old, dict.fromkeys(old.keys()), actor)

    # -- attachments: files kept beside a host record -----------------------------------------

    def write_attachment(self, rid: RecordId, suffix: str, data: str, actor: str) -> Path:
        """Write `hosts/<mac12>.<suffix>` beside a host record, atomically; return its path.

        Same protocol as a record (its lock, temp file, fsync, read-back check, `os.replace`,
        directory fsync); the journal gets the sha256 of the old and new content. Identical
        content is not rewritten. Raises InvalidInput (not a host, suffix not allowed, too large,
        not encodable), NotFound (no such host), StoreBusy, StoreUnreadable.
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
            old = _read_bytes(path)
            if old != encoded:
                _write_durably(path, encoded, _expect_bytes(encoded))
                change = Change(journal.utc_now(), rid.label, f".{suffix}", _digest(old),
                                _digest(encoded), actor)
                journal.append(self.layout.journal_for(rid), [change])
        return path

    def read_attachment(self, rid: RecordId, suffix: str) -> str:
        """Return the text of `hosts/<mac12>.<suffix>`; NotFound when there is none.

        Raises InvalidInput (not a host, suffix not allowed) and StoreUnreadable too.
        """
        path = _attachment_path(self.layout, rid, suffix)
        data = _read_bytes(path)
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
        self.layout.path(rid).parent.mkdir(parents=True, exist_ok=True)

    def _locked(self, path: Path) -> contextlib.AbstractContextManager[None]:
        return self._locked_file(path.with_name(path.name + ".lock"))

    @contextlib.contextmanager
    def _locked_file(self, lock_path: Path) -> Iterator[None]:
        fd = _acquire(lock_path, self.lock_timeout)
        try:
            yield
        finally:
            os.close(fd)  # closing the only descriptor releases the lock

    def _read_for(self, rid: RecordId) -> Record | None:
        """Return a record for reading: from memory for CACHED_KINDS while its file is
        unchanged, else parsed from disk."""
        path = self.layout.path(rid)
        if rid.kind in CACHED_KINDS:
            return self._read_settled(path)
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
        stamp = read_stamp(_stamp_path(self.layout.path(rid)))
        return record.updated(stamp) if stamp else record

    def _read_settled(self, path: Path) -> Record | None:
        """Return the parsed file, from memory while `stat` shows the version parsed before."""
        name = str(path)
        try:
            seen = _identity(os.stat(name))
        except FileNotFoundError:
            self._parsed.pop(name, None)
            return None
        except OSError as err:
            raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
        cached = self._parsed.get(name)
        if cached is not None and cached[0] == seen:
            return cached[1]
        try:
            with open(name, "rb") as handle:
                st = os.fstat(handle.fileno())
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
        record = parse(data, name)
        if time.time_ns() - st.st_ctime_ns >= SETTLE_SECONDS * 1e9:
            self._parsed[name] = (_identity(st), record)
        return record

    def _read(self, path: Path) -> Record | None:
        """Return the parsed file, None when it does not exist."""
        data = _read_bytes(path)
        return None if data is None else parse(data, str(path))

    def _replace(self, path: Path, record: Record, *, rid: RecordId | None = None) -> None:
        """Write a record atomically and durably over `path`; for a host (`rid`), remove its
        stamp, which `record` has folded in, before the directory fsync, so both reach the disk
        together."""
        data = format_record(record)
        if len(data) > MAX_RECORD_BYTES:
            raise InvalidInput(f"{path.name} would exceed {MAX_RECORD_BYTES} bytes")
        _write_durably(path, data, lambda written, name: _verify(written, record, name),
                       sync_dir=False)
        if rid is not None and rid.kind is Kind.HOST:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_stamp_path(path))
        _fsync_dir(path.parent)

    def _journal(self, rid: RecordId, old: Record | Mapping[str, str],
                 effective: Mapping[str, str | None], actor: str) -> None:
        now = journal.utc_now()
        label = rid.label
        changes = [
            Change(now, label, key, self._shown(key, old.get(key)), self._shown(key, new), actor)
            for key, new in effective.items()
            if key != "UPDATED"
        ]
        journal.append(self.layout.journal_for(rid), changes)

    def _shown(self, key: str, value: str | None) -> str | None:
        if value is None or not is_sensitive(key, self.sensitive_patterns):
            return value
        return REDACTED


def _check_expected(record: Record, expect: Mapping[str, str | None]) -> None:
    """Raise Conflict unless every expected key still holds its expected value."""
    for key, wanted in expect.items():
        found = record.get(normalize_key(key))
        if found != wanted:
            raise Conflict(f"{key} changed meanwhile (now {found!r}, expected {wanted!r})")


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


def _write_durably(path: Path, data: bytes, check: Callable[[bytes, str], None], *,
                   sync_dir: bool = True) -> None:
    """Put `data` at `path`: temp file in the same directory, fsync, `check` the bytes read back,
    `os.replace`, directory fsync (left to the caller when not `sync_dir`). The mode (and, as
    root, the owner) of the old file is kept."""
    import tempfile

    mode, owner = _mode_and_owner(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX,
                                    dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
            os.fchmod(tmp.fileno(), mode)
            if owner is not None:
                os.fchown(tmp.fileno(), *owner)
            tmp.seek(0)
            check(tmp.read(), tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if sync_dir:
        _fsync_dir(path.parent)


def _stamp_path(record_path: Path) -> str:
    """Return `hosts/<mac12>.stamp` for `hosts/<mac12>.conf` (as a string: read per request)."""
    return str(record_path)[:-len(".conf")] + STAMP_SUFFIX


def read_stamp(path: Path | str) -> dict[str, str] | None:
    """Return the keys of a stamp file; None when there is none or it does not verify.

    A stamp that fails its length or CRC-32 is being rewritten right now (read again once) or
    was torn by a crash (the record's values apply until the next stamp or update).
    """
    for _attempt in range(2):
        data = _read_bytes(path)
        if data is None:
            return None
        head = _STAMP_HEAD.match(data)
        if head:
            body = data[head.end():head.end() + int(head[2])]
            if len(body) == int(head[2]) and zlib.crc32(body) == int(head[1], 16):
                try:
                    return parse_items(body, str(path))
                except CorruptRecord:
                    return None
    return None


def _write_stamp(path: str, values: Mapping[str, str], record_path: Path) -> None:
    """Rewrite a stamp file in place with one `pwrite` (created with the record's mode and, as
    root, its owner); InvalidInput when it would exceed MAX_STAMP_BYTES."""
    body = format_record(from_mapping(values))
    data = b"# hps-stamp %08x %d\n" % (zlib.crc32(body), len(body)) + body
    if len(body) > MAX_STAMP_BYTES:
        raise InvalidInput(f"{os.path.basename(path)} would exceed {MAX_STAMP_BYTES} bytes")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, NEW_FILE_MODE)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            mode, owner = _mode_and_owner(record_path)
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
        os.pwrite(fd, data, 0)
        if size > len(data):
            os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _acquire(lock_path: Path, timeout: float) -> int:
    """Return a descriptor of `lock_path` holding an exclusive flock(2); StoreBusy after
    `timeout` seconds.

    flock, as filelock's UnixFileLock takes it, so processes using either exclude each other; a
    lock belongs to one open file description, so two threads exclude each other too. Opened
    read-only: flock needs no write access, and a lock file created by root stays usable.
    """
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, LOCK_FILE_MODE)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreBusy(f"{lock_path.name}: still locked after {timeout:g} s; "
                                        "try again") from None
                    time.sleep(_POLL_SECONDS)
            if os.fstat(fd).st_nlink:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file was unlinked while we waited: lock the one now at that path


def _identity(st: os.stat_result) -> tuple[int, ...]:
    """Return what tells two versions of a file apart (see the module docstring)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _attachment_path(layout: Layout, rid: RecordId, suffix: str) -> Path:
    """Return the path of a host record's attachment; InvalidInput for anything else."""
    if rid.kind is not Kind.HOST:
        raise InvalidInput(f"{rid.label}: only host records have attachments")
    if suffix not in ATTACHMENT_SUFFIXES:
        raise InvalidInput(f"attachment suffix {suffix!r} not allowed "
                           f"(one of: {', '.join(sorted(ATTACHMENT_SUFFIXES))})")
    return layout.path(rid).with_suffix(f".{suffix}")


def _read_bytes(path: Path | str) -> bytes | None:
    """Return a file's bytes, None when it does not exist; StoreUnreadable on I/O errors.

    Plain descriptor calls: a third of the cost of `Path.read_bytes` (no buffered file
    object), and every request reads a host this way.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
    try:
        chunks = []
        while chunk := os.read(fd, _READ_CHUNK):
            chunks.append(chunk)
            if len(chunk) < _READ_CHUNK:
                break
        return b"".join(chunks)
    except OSError as err:
        raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
    finally:
        os.close(fd)


def _expect_bytes(intended: bytes) -> Callable[[bytes, str], None]:
    def check(written: bytes, name: str) -> None:
        if written != intended:
            raise HpsError(f"{name}: written bytes do not read back as intended")

    return check


def _digest(data: bytes | None) -> str | None:
    import hashlib  # here, like tempfile: `host_config get` should not pay for it

    return None if data is None else "sha256:" + hashlib.sha256(data).hexdigest()


def _mode_and_owner(path: Path) -> tuple[int, tuple[int, int] | None]:
    """Return the mode to keep and, when running as root, the owner to keep."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return NEW_FILE_MODE, None
    owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 else None
    return st.st_mode & 0o7777, owner


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _names(directory: Path, keep: object = None) -> list[str]:
    """Return the sorted entry names of a directory (none when it does not exist)."""
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if keep is None or keep(e))  # type: ignore[operator]
    except FileNotFoundError:
        return []


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
