"""The etcd backend: the Store protocol over an etcd v3 cluster, so several hps-api servers
share one state (docs/scale-out.md).

Keys under the store's prefix `P`:

- `P/records/hps`, `P/records/os/<id>`, `P/records/cluster/<name>`,
  `P/records/host/<cluster>/<mac12>`: one key per record, holding the record's text in the file
  store's grammar (`kvfile.format_record`, read back with `kvfile.parse`);
- `P/attach/<cluster>/<mac12>/<suffix>`: a host's attachments (its kickstart);
- `P/journal/<cluster or _global>/<record label>/<op id>-<n>`: one key per journal line,
  holding the line as the journal file would; lines are ordered by the revision that created
  them (one transaction, one revision; `<n>` orders the lines of one change);
- `P/ops/<op id>`: the id of every write that landed, kept for OP_LEASE_SECONDS;
- `P/lock/<cluster>`: the cluster's allocation lock, held under a lease.

Every write is one transaction, a compare-and-swap on the record's `mod_revision`: it reads the
record (linearizable), decides (the same rules as the file store, from the same functions),
then commits if the record was not modified meanwhile, and else decides again from what the
failed transaction read. Each write carries an operation id: its transaction also requires
`P/ops/<id>` to be missing and creates it, so a request retried after an ambiguous error (a
timeout, a reset connection, a member lost in between) can never land twice: when the first
one landed, the retry fails and reads the id.

Records are read from the process's mirror (`hps_api.store.etcdmirror`), a copy kept current by
an etcd watch and trusted only while a revision check confirmed it less than FRESH_SECONDS ago;
otherwise a read is a serializable read of etcd (any member answers from what it has applied),
so reads go on without a quorum, while writes then fail with StoreUnavailable (HTTP 503). A
write takes its first value from the mirror too, the compare-and-swap catching a stale one, and
puts what it wrote into the mirror at once (this process reads its own writes). Under the
allocation lock the mirror is confirmed when the lock is taken.

A host's boot stamp (`stamp`) is a write of its record like any other: every etcd write costs a
round of consensus, so a separate stamp key would save nothing.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hps_api.errors import (
    HpsError,
    InvalidInput,
    KeyNotSet,
    NotFound,
    StoreBusy,
)
from hps_api.ids import (
    DEFAULT_SENSITIVE_PATTERNS,
    normalize_key,
    normalize_mac,
    os_id_to_stem,
    validate_cluster,
    validate_value,
)
from hps_api.store import etcdgateway as gw
from hps_api.store import etcdlock, journal
from hps_api.store.etcdgateway import Gateway, KeyValue
from hps_api.store.etcdmirror import Mirror
from hps_api.store.filestore import (
    MAX_RECORD_BYTES,
    check_attachment,
    digest,
    journal_changes,
    unset_changes,
    update_changes,
    validated_changes,
)
from hps_api.store.journal import Change, JournalLines
from hps_api.store.kvfile import Record, format_record, from_mapping, parse
from hps_api.store.layout import Layout
from hps_api.store.records import Kind, RecordId
from hps_api.store.stamps import MAX_STAMP_BYTES

#: how long the id of a write that landed is kept: far longer than any retry
OP_LEASE_SECONDS = 600
#: etcd refuses transactions of more operations (its --max-txn-ops default)
MAX_TXN_OPS = 128
_GLOBAL_SCOPE = "_global"


@dataclass
class _Plan:
    """What one write attempt will do: its operations, journal lines and the answer."""

    ops: list[dict[str, object]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    result: dict[str, str] = field(default_factory=dict)
    #: keys that must exist for the write to land, with the label NotFound names
    requires: list[tuple[bytes, str]] = field(default_factory=list)


class EtcdStore:
    """The Store protocol over etcd (see the module docstring)."""

    def __init__(self, gateway: Gateway, prefix: str, root: Path | str,
                 lock_timeout: float = 5.0,
                 sensitive_patterns: tuple[str, ...] = DEFAULT_SENSITIVE_PATTERNS) -> None:
        self.gateway = gateway
        self.prefix = prefix.strip("/").encode()
        self.layout = Layout(root)
        self.lock_timeout = lock_timeout
        self.sensitive_patterns = sensitive_patterns
        self._op_lease = (0, 0.0)
        self._lease_lock = threading.Lock()
        self._local = threading.local()
        self.mirror = Mirror(gateway, self._key("records") + b"/")
        #: records parsed, by key: a key's mod_revision names one value for good
        self._parsed: dict[bytes, tuple[int, Record]] = {}

    # -- keys ------------------------------------------------------------------------------

    def _key(self, *parts: str) -> bytes:
        return b"/" + b"/".join([self.prefix, *(p.encode() for p in parts)])

    def record_key(self, rid: RecordId) -> bytes:
        """Return the key of a record."""
        if rid.kind is Kind.GLOBAL:
            return self._key("records", "hps")
        if rid.kind is Kind.OS:
            return self._key("records", "os", rid.name or "")
        if rid.kind is Kind.CLUSTER:
            return self._key("records", "cluster", rid.cluster or "")
        return self._key("records", "host", rid.cluster or "", rid.name or "")

    def _attachment_key(self, rid: RecordId, suffix: str) -> bytes:
        check_attachment(rid, suffix)
        return self._key("attach", rid.cluster or "", rid.name or "", suffix)

    def _journal_dir(self, cluster: str | None) -> bytes:
        return self._key("journal", validate_cluster(cluster) if cluster else _GLOBAL_SCOPE) + b"/"

    def _history_dir(self, rid: RecordId) -> bytes:
        return self._journal_dir(rid.cluster) + rid.label.encode() + b"/"

    # -- reads -----------------------------------------------------------------------------

    def exists(self, rid: RecordId) -> bool:
        """Return True when the record exists."""
        return self._value(self.record_key(rid)) is not None

    def items(self, rid: RecordId) -> dict[str, str]:
        """Return the record's keys and values; NotFound, CorruptRecord, StoreUnavailable."""
        return self.record(rid).as_dict()

    def record(self, rid: RecordId) -> Record:
        """Return the parsed record, comments included; NotFound when it does not exist."""
        found = self._value(self.record_key(rid))
        if found is None:
            raise NotFound(f"{rid.label} not found")
        kept = self._parsed.get(found.key)
        if kept is not None and kept[0] == found.mod_revision:
            return kept[1]
        record = parse(found.value, found.key.decode())
        self._parsed[found.key] = (found.mod_revision, record)
        return record

    def get(self, rid: RecordId, key: str) -> str:
        """Return one value; KeyNotSet when the key is not set, NotFound without the record."""
        name = normalize_key(key)
        value = self.items(rid).get(name)
        if value is None:
            raise KeyNotSet(name)
        return value

    def list_records(self, kind: Kind, cluster: str | None = None) -> list[RecordId]:
        """Return the ids of every record of a kind, sorted (as the file store sorts them);
        hosts need their cluster (NotFound without it)."""
        if kind is Kind.GLOBAL:
            return [RecordId.global_()] if self.exists(RecordId.global_()) else []
        if kind is Kind.HOST:
            if cluster is None or not self.exists(RecordId.of_cluster(cluster)):
                raise NotFound(f"cluster {cluster!r} not found")
            return self._list_hosts(cluster)
        if kind is Kind.CLUSTER:
            return [RecordId.of_cluster(name) for name in self._names("records", "cluster")]
        ids = [RecordId.of_os(name) for name in self._names("records", "os")]
        return sorted(ids, key=lambda rid: os_id_to_stem(rid.name or ""))

    def _list_hosts(self, cluster: str) -> list[RecordId]:
        """Return the hosts of a cluster, sorted by MAC."""
        names = self._names("records", "host", cluster)
        return [RecordId(Kind.HOST, cluster, name) for name in names if _is_host_mac(name)]

    def _names(self, *parts: str) -> list[str]:
        """Return the last parts of the keys right under a directory of keys, sorted."""
        start = self._key(*parts) + b"/"
        if self._mirror_fresh():
            found = self.mirror.range(start, gw.prefix_end(start))
        else:
            found = self.gateway.range(start, gw.prefix_end(start), keys_only=True)
        names = (kv.key[len(start):].decode() for kv in found)
        return sorted(name for name in names if "/" not in name)

    def _value(self, key: bytes) -> KeyValue | None:
        """Return a record's key as it is now: from the mirror when it is fresh, else read
        (serializable) from etcd."""
        if self._mirror_fresh():
            return self.mirror.get(key)
        found = self.gateway.range(key)
        return found[0] if found else None

    def _mirror_fresh(self) -> bool:
        """Return True when reads may come from the mirror (never under a lock whose entry
        check failed: the allocation must see every committed write)."""
        if getattr(self._local, "direct", False):
            return False
        return self.mirror.fresh()

    def history(self, rid: RecordId, *, limit: int | None = None) -> list[Change]:
        """Return the journal entries of one record, oldest first; with `limit`, only the
        newest, until `limit` boots and `limit` other changes are among them."""
        start = self._history_dir(rid)
        found = _in_order(self.gateway.range(start, gw.prefix_end(start)))
        changes = [c for c in map(journal.parse_line, (kv.value for kv in found)) if c]
        if limit is not None:
            changes.reverse()
            changes = journal.recent(changes, limit)
            changes.reverse()
        return changes

    def journal_path(self, cluster: str | None) -> Path | None:
        """Return None: this backend keeps its journal in etcd (read it with journal_lines)."""
        return None

    def journal_lines(self, cluster: str | None, *, after: int = 0,
                      limit: int | None = None) -> JournalLines:
        """Return the newest `limit` lines (None: all) of a cluster's journal (None: the
        global one) created after revision `after`, oldest first, and the revision to ask
        from next."""
        start = self._journal_dir(cluster)
        found, revision = self.gateway.range_at(start, gw.prefix_end(start),
                                                sort_create="DESCEND", limit=limit or 0,
                                                min_create_revision=after + 1 if after else 0)
        # a member that lags may answer an older revision than the cursor it was asked from
        return JournalLines([kv.value for kv in _in_order(found)], max(revision, after))

    def read_attachment(self, rid: RecordId, suffix: str) -> str:
        """Return the text of a host's attachment; NotFound when there is none."""
        found = self.gateway.range(self._attachment_key(rid, suffix))
        if not found:
            raise NotFound(f"{rid.label} has no .{suffix} file")
        return found[0].value.decode("utf-8", errors="replace")

    # -- writes ----------------------------------------------------------------------------

    def update(self, rid: RecordId, changes: Mapping[str, str | None], actor: str, *,
               create: bool = False,
               expect: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """Apply every change in one transaction (None unsets) and return the new record.

        Same rules as FileStore.update: `create` makes a missing record (a host's cluster must
        exist), `expect` must hold on the record as it is, keys already holding their value are
        not rewritten. Raises InvalidInput, NotFound, Conflict, CorruptRecord, StoreBusy,
        StoreUnavailable (nothing changed, or the change landed: never twice).
        """
        wanted = validated_changes(rid, changes)
        key = self.record_key(rid)

        def plan(old: Record | None) -> _Plan:
            if old is None and not create:
                raise NotFound(f"{rid.label} not found")
            base = old or Record()
            effective = update_changes(rid, base, wanted, expect, creating=old is None)
            if effective is None:
                return _Plan(result=base.as_dict())
            new = base.updated(effective)
            return _Plan([_put_record(key, new)], self._changes(rid, base, effective, actor),
                         new.as_dict(), self._parent(rid) if old is None else [])

        return self._write(rid, key, plan)

    def stamp(self, rid: RecordId, values: Mapping[str, str], actor: str) -> None:
        """Record a host's bookkeeping keys: here a write of the record like any other,
        journaled like FileStore.stamp. Raises InvalidInput (not a host, bad key or value,
        too large), NotFound, StoreBusy, StoreUnavailable."""
        if rid.kind is not Kind.HOST:
            raise InvalidInput(f"{rid.label}: only host records take stamps")
        wanted = {normalize_key(k): validate_value(v) for k, v in values.items()}
        if len(format_record(from_mapping(wanted))) > MAX_STAMP_BYTES:
            raise InvalidInput(f"{rid.name}.stamp would exceed {MAX_STAMP_BYTES} bytes")
        key = self.record_key(rid)

        def plan(old: Record | None) -> _Plan:
            if old is None:
                raise NotFound(f"{rid.label} not found")
            effective = update_changes(rid, old, wanted, None)
            if effective is None:
                return _Plan(result=old.as_dict())
            new = old.updated(effective)
            return _Plan([_put_record(key, new)], self._changes(rid, old, effective, actor),
                         new.as_dict())

        self._write(rid, key, plan)

    def unset(self, rid: RecordId, key: str, actor: str) -> dict[str, str]:
        """Remove one key and return the new record; KeyNotSet when it was not set.
        Raises NotFound, CorruptRecord, StoreBusy, StoreUnavailable too."""
        name = normalize_key(key)
        record_key = self.record_key(rid)

        def plan(old: Record | None) -> _Plan:
            if old is None:
                raise NotFound(f"{rid.label} not found")
            effective = unset_changes(rid, old, name)
            new = old.updated(effective)
            return _Plan([_put_record(record_key, new)],
                         self._changes(rid, old, effective, actor), new.as_dict())

        return self._write(rid, record_key, plan)

    def delete(self, rid: RecordId, actor: str) -> None:
        """Remove a record and a host's attachments; NotFound when it does not exist."""
        key = self.record_key(rid)

        def plan(old: Record | None) -> _Plan:
            if old is None:
                raise NotFound(f"{rid.label} not found")
            ops = [gw.delete(key)]
            if rid.kind is Kind.HOST:
                attached = self._key("attach", rid.cluster or "", rid.name or "") + b"/"
                ops.append(gw.delete(attached, gw.prefix_end(attached)))
            return _Plan(ops, self._changes(rid, old, dict.fromkeys(old.keys()), actor))

        self._write(rid, key, plan)

    def write_attachment(self, rid: RecordId, suffix: str, data: str, actor: str) -> Path:
        """Store a host's attachment in one transaction (the journal gets the sha256 of the old
        and new text); return its key as a path. Identical text is not rewritten. Raises
        InvalidInput, NotFound (no such host), StoreBusy, StoreUnavailable."""
        key = self._attachment_key(rid, suffix)
        try:
            encoded = data.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{rid.name}.{suffix}: text is not valid Unicode") from None
        if len(encoded) > MAX_RECORD_BYTES:
            raise InvalidInput(f"{rid.name}.{suffix} would exceed {MAX_RECORD_BYTES} bytes")
        if not self.exists(rid):
            raise NotFound(f"{rid.label} not found")

        def plan(old: bytes | None) -> _Plan:
            if old == encoded:
                return _Plan()
            change = Change(journal.utc_now(), rid.label, f".{suffix}", digest(old),
                            digest(encoded), actor)
            return _Plan([gw.put(key, encoded)], [change],
                         requires=[(self.record_key(rid), rid.label)])

        self._transact(rid, key, plan)
        return Path(key.decode())

    def append_journal(self, rid: RecordId, changes: list[Change]) -> None:
        """Add lines to a record's journal as they are (a power action's outcome, an imported
        record's old time; each line goes with the record it names, which may be any of the
        journal `rid` writes to), MAX_TXN_OPS at a time; StoreUnavailable."""
        for start in range(0, len(changes), MAX_TXN_OPS - 2):
            batch = _Plan(changes=changes[start:start + MAX_TXN_OPS - 2])
            self._transact(rid, self._key("ops", "journal"), _constant(batch),
                           check_target=False)

    # -- the allocation lock --------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, cluster: str) -> Iterator[None]:
        """Hold the cluster-wide allocation lock (`hps_api.store.etcdlock`: a key created under
        a lease, so a dead holder frees it after LOCK_TTL_SECONDS); StoreBusy after the
        timeout. Once it is held, the mirror is confirmed current (a linearizable revision
        check), or this thread reads etcd directly until it leaves the lock: what is
        allocated under the lock is decided from every write committed before it was taken."""
        if not self.exists(RecordId.of_cluster(validate_cluster(cluster))):
            raise NotFound(f"cluster {cluster!r} not found")
        outer = getattr(self._local, "direct", False)
        try:
            with etcdlock.held(self.gateway, self._key("lock", cluster), self.lock_timeout):
                self._local.direct = outer or not self.mirror.fresh(force=True,
                                                                    serializable=False)
                yield
        finally:
            self._local.direct = outer

    # -- internals -------------------------------------------------------------------------

    def _write(self, rid: RecordId, key: bytes,
               plan: Callable[[Record | None], _Plan]) -> dict[str, str]:
        """Run a record write: `plan` decides from the record as it is now."""
        name = key.decode()
        return self._transact(
            rid, key, lambda data: plan(None if data is None else parse(data, name)))

    def _transact(self, rid: RecordId, key: bytes, plan: Callable[[bytes | None], _Plan], *,
                  check_target: bool = True) -> dict[str, str]:
        """Commit what `plan` decides from the current value of `key`, compare-and-swap on
        its mod_revision, deciding again after a conflict; an operation id makes the write land
        at most once (module docstring). StoreBusy when other writers win for lock_timeout."""
        op = uuid.uuid4().hex
        op_key = self._key("ops", op)
        guessed = check_target and self.mirror.start <= key < self.mirror.end and \
            self.mirror.known()
        seen = self.mirror.get(key) if guessed else self._read_now(key, check_target)
        plans: list[_Plan] = []
        give_up = time.monotonic() + self.lock_timeout
        while True:
            try:
                decided = plan(None if seen is None else seen.value)
            except HpsError:
                if not guessed:
                    raise
                decided = _Plan(ops=[])  # decided from a copy that may be old: read, decide again
            if not decided.ops and not decided.changes:
                if guessed:  # "nothing to do" and refusals are never decided from the mirror
                    guessed, seen = False, self._read_now(key, check_target)
                    continue
                return decided.result
            plans.append(decided)
            compare = [gw.missing(op_key), *(gw.present(k) for k, _ in decided.requires)]
            if check_target:
                compare.append(gw.unchanged(key, seen.mod_revision if seen else 0))
            success = [*decided.ops, *self._journal_puts(rid, op, decided.changes),
                       gw.put(op_key, str(len(plans) - 1), self._lease())]
            failure = [gw.get(op_key), gw.get(key), *(gw.get(k) for k, _ in decided.requires)]
            won, answers, revision = self._txn(compare, success, failure)
            if won:
                self.mirror.written(decided.ops, revision)
                for listener in journal.WRITE_LISTENERS:
                    listener(len(decided.changes))
                return decided.result
            ranges = [gw.kvs_of(a.get("response_range", {})) for a in answers]
            if ranges[0]:  # an earlier attempt of this write landed
                return plans[int(ranges[0][0].value)].result
            for (_, label), found in zip(decided.requires, ranges[2:], strict=True):
                if not found:
                    raise NotFound(f"{label} not found")
            seen = ranges[1][0] if ranges[1] else None
            guessed = False
            if time.monotonic() >= give_up:
                raise StoreBusy(f"{key.decode()}: changed by others again and again for "
                                f"{self.lock_timeout:g} s; try again")

    def _read_now(self, key: bytes, check_target: bool) -> KeyValue | None:
        """Return a key as the cluster has it now (a linearizable read)."""
        current = self.gateway.range(key, serializable=False) if check_target else []
        return current[0] if current else None

    def _txn(self, compare: list[dict[str, object]], success: list[dict[str, object]],
             failure: list[dict[str, object]]) -> tuple[bool, list[dict[str, Any]], int]:
        """Run a transaction; a lease for operation ids that expired meanwhile is granted
        again (the write did not land: etcd refused it as a whole)."""
        try:
            return self.gateway.txn_at(compare, success, failure)
        except gw.Refused as err:
            if err.code != 5:  # NOT_FOUND: the requested lease
                raise
        self._op_lease = (0, 0.0)
        success[-1] = {"request_put": {**success[-1]["request_put"],  # type: ignore[dict-item]
                                       "lease": self._lease()}}
        return self.gateway.txn_at(compare, success, failure)

    def _lease(self) -> int:
        """Return the lease operation ids are written under, granted again every half TTL."""
        with self._lease_lock:
            lease, granted = self._op_lease
            if not lease or time.monotonic() - granted > OP_LEASE_SECONDS / 2:
                self._op_lease = (self.gateway.grant(OP_LEASE_SECONDS), time.monotonic())
            return self._op_lease[0]

    def _journal_puts(self, rid: RecordId, op: str,
                      changes: list[Change]) -> list[dict[str, object]]:
        scope = self._journal_dir(rid.cluster)
        return [gw.put(scope + f"{change.record}/{op}-{n:04d}".encode(),
                       journal.line_of(change)[:-1]) for n, change in enumerate(changes)]

    def _changes(self, rid: RecordId, old: Record | Mapping[str, str],
                 effective: Mapping[str, str | None], actor: str) -> list[Change]:
        return journal_changes(rid, old, effective, actor, self.sensitive_patterns)

    def _parent(self, rid: RecordId) -> list[tuple[bytes, str]]:
        parent = self.layout.parent_record(rid)
        return [] if parent is None else [(self.record_key(parent), parent.label)]

    # -- raw access, for `hps-api store migrate` ------------------------------------------

    def put_raw(self, rid: RecordId, record: Record) -> None:
        """Write a record's text as it is: no journal line, no UPDATED stamp."""
        ops = [_put_record(self.record_key(rid), record)]
        self.mirror.written(ops, self.gateway.txn_at([], ops, [])[2])

    def put_attachment_raw(self, rid: RecordId, suffix: str, data: bytes) -> None:
        """Write an attachment as it is: no journal line."""
        self.gateway.txn([], [gw.put(self._attachment_key(rid, suffix), data)], [])

    def is_empty(self) -> bool:
        """Return True when nothing is stored under the prefix."""
        start = self._key("")
        return not self.gateway.range(start, gw.prefix_end(start), keys_only=True, limit=1)

    def clear(self) -> None:
        """Remove everything stored under the prefix."""
        start = self._key("")
        self.gateway.txn([], [gw.delete(start, gw.prefix_end(start))], [])
        self.mirror.expire()


def _put_record(key: bytes, record: Record) -> dict[str, object]:
    data = format_record(record)
    if len(data) > MAX_RECORD_BYTES:
        raise InvalidInput(f"{key.decode()} would exceed {MAX_RECORD_BYTES} bytes")
    return gw.put(key, data)


def _constant(plan: _Plan) -> Callable[[bytes | None], _Plan]:
    return lambda _current: plan


def _in_order(found: list[KeyValue]) -> list[KeyValue]:
    """Return journal keys in the order they were written: by the revision that created
    them (one per transaction), the lines of one transaction by their number."""
    return sorted(found, key=lambda kv: (kv.create_revision, kv.key.rsplit(b"-", 1)[-1]))


def _is_host_mac(mac: str) -> bool:
    try:
        return normalize_mac(mac) == mac
    except InvalidInput:
        return False
