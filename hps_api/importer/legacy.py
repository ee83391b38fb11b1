"""Import a bash-era configuration tree into the store, once, without executing anything.

What is read, relative to the legacy directory:

    hps.conf                         -> hps (the global record)
    clusters/<cluster>/cluster.conf  -> cluster/<cluster>
    clusters/<cluster>/hosts/<mac>.conf, and hosts/<mac>.conf (the active cluster's)
                                     -> host/<mac12>
    clusters/active-cluster          a symlink (or a file) naming the active cluster
    os.conf, os/os.conf              INI, one [arch:name:version] section per OS -> os/<id>

The `.conf` files are parsed by `legacy_syntax`; nothing is sourced, evaluated or executed.
Symbolic links are never followed (the active-cluster link is only read with readlink), special
files are never read, and names become paths only through the validating RecordId constructors.

The old system stamped every host file it wrote with `UPDATED="2026-11-21 18:29:05 UTC"`. The
store stamps its own UPDATED on every change, so the old time goes to the record's journal
instead: one line dated that time, by the actor `legacy:<file>`, holding the old text. Keys are
stored upper-case; a host key an old node wrote in lower case (`virtualization_status`) is
remembered in KEY_SPELLINGS, so `host_get_config` still gives the node its own spelling back.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hps_api.errors import InvalidInput, NotFound
from hps_api.ids import (
    KEY_SPELLINGS,
    check_host_value,
    is_shell_special,
    normalize_mac,
    respelled,
    validate_cluster,
)
from hps_api.importer.legacy_syntax import Assignment, NotData, Rejected, read_ini, read_shell
from hps_api.store.base import Store
from hps_api.store.bootstrap import active_cluster
from hps_api.store.journal import Change
from hps_api.store.records import Kind, RecordId

MAX_LEGACY_FILE_BYTES = 1024 * 1024
ACTIVE_KEY = "ACTIVE_CLUSTER"
UPDATED_KEY = "UPDATED"
LEGACY_ACTOR = "legacy:"
MARKER = "clusters/active-cluster"
_RECOGNISED = ("hps.conf", "clusters", "hosts", "os.conf", "os/os.conf")
_KIND_ORDER = {Kind.GLOBAL: 0, Kind.OS: 1, Kind.CLUSTER: 2, Kind.HOST: 2}
_SHOWN_TEXT = 60


@dataclass(frozen=True)
class ConvertedRecord:
    """One record written (or, in a dry run, to be written): its legacy file(s) and key count.

    `updated` is the old UPDATED time (ISO-8601 UTC) carried into the record's journal, if any.
    """

    source: str
    target: str
    keys: int
    updated: str | None = None


@dataclass(frozen=True)
class SkippedLine:
    """One legacy line not imported; `line` is 0 when a whole file or directory was skipped.

    `conflict` marks an assignment lost to another spelling of its key (`status`, `STATUS`).
    """

    source: str
    line: int
    text: str
    reason: str
    conflict: bool = False


@dataclass(frozen=True)
class ImportReport:
    """What an import converted and skipped; `active_cluster` is the one the legacy tree names."""

    converted: list[ConvertedRecord]
    skipped: list[SkippedLine]
    active_cluster: str | None


@dataclass(frozen=True)
class _Found:
    """An accepted assignment and the legacy file it came from; `written` spells the key as
    the file did."""

    source: str
    line: int
    text: str
    key: str
    value: str
    written: str


@dataclass(frozen=True)
class _Planned:
    """One record's final keys, its report entry, and the old UPDATED for its journal."""

    rid: RecordId
    values: dict[str, str]
    converted: ConvertedRecord
    updated: Change | None


@dataclass
class _Plan:
    """The assignments one record will receive, from one or more legacy files."""

    sources: list[str] = field(default_factory=list)
    found: list[_Found] = field(default_factory=list)


def import_legacy(
    source: Path, store: Store, actor: str, *, dry_run: bool = False
) -> ImportReport:
    """Convert the legacy tree at `source` into `store` and return what was done.

    One `update(..., create=True)` per record with all its keys: the global record first, then
    OS records, then each cluster followed by its hosts. Existing records are merged (legacy
    values win); ACTIVE_CLUSTER is only set when the store has none. A host or cluster file's
    UPDATED becomes a journal line of that time (see the module docstring). With `dry_run`
    nothing is written and the report is the same. Raises InvalidInput when `source` is not a
    legacy tree; store errors (StoreBusy, CorruptRecord) stop the import, and running it again
    is safe.
    """
    importer = _Importer(_legacy_root(Path(source), store), store)
    importer.walk()
    active = importer.resolve_active()
    importer.resolve_hosts(active)
    planned = importer.finish()
    if not dry_run:
        for plan in planned:
            _write(store, plan, actor)
    skipped = sorted(importer.skipped, key=lambda s: (s.source, s.line))
    return ImportReport([plan.converted for plan in planned], skipped, active)


def format_report(report: ImportReport) -> list[str]:
    """Return the report as lines for people: converted records, skipped lines, a summary."""
    lines = [_converted_line(c) for c in report.converted]
    lines += [_skipped_line(s) for s in report.skipped]
    active = report.active_cluster or "none"
    conflicts = sum(s.conflict for s in report.skipped)
    of_which = f" ({_count(conflicts, 'key conflict')})" if conflicts else ""
    lines.append(f"{_count(len(report.converted), 'record')} converted, "
                 f"{len(report.skipped)} skipped{of_which}; legacy active cluster: {active}")
    return lines


def _write(store: Store, plan: _Planned, actor: str) -> None:
    """Write one record, and its old UPDATED to its journal unless a previous run did.

    The old time goes before the import's own lines when the journal can already be written
    (a host's cluster is written before it), so the history reads oldest first.
    """
    change = plan.updated
    if change is not None and change in store.history(plan.rid):
        change = None
    path = store.journal_path(plan.rid.cluster)
    early = change is not None and (path is None or path.parent.is_dir())
    if change is not None and early:
        store.append_journal(plan.rid, [change])
    store.update(plan.rid, plan.values, actor, create=True)
    if change is not None and not early:
        store.append_journal(plan.rid, [change])


class _Importer:
    """Walks one legacy tree and plans the store updates; it never writes."""

    def __init__(self, root: Path, store: Store) -> None:
        self.root = root
        self.store = store
        self.plans: dict[RecordId, _Plan] = {}
        self.loose_hosts: list[tuple[str, str, list[_Found]]] = []
        self.marker: _Found | None = None
        self.skipped: list[SkippedLine] = []

    # -- walking -------------------------------------------------------------------------------

    def walk(self) -> None:
        """Read every recognised file of the tree into plans and skipped lines."""
        found = self.read_shell_file(self.root / "hps.conf")
        if found is not None:
            self.add(RecordId.global_(), "hps.conf", found)
        self.marker = self.read_marker()
        self.read_os(self.root / "os.conf")
        if self.is_directory(self.root / "os"):
            self.read_os(self.root / "os" / "os.conf")
        self.read_clusters()
        self.read_hosts(self.root / "hosts", None)

    def read_marker(self) -> _Found | None:
        """Return the active-cluster marker as an ACTIVE_CLUSTER assignment, None without one."""
        path = self.root / MARKER
        try:
            if path.is_symlink():
                target = os.readlink(path)
                name = os.path.basename(target.rstrip("/"))
                return _Found(MARKER, 0, target, ACTIVE_KEY, name, ACTIVE_KEY)
            if not os.path.lexists(path):
                return None
            content = _read_text(path).strip()
        except (OSError, NotData) as err:
            self.skip(MARKER, _reason(err))
            return None
        return _Found(MARKER, 1, content, ACTIVE_KEY, content, ACTIVE_KEY)

    def read_os(self, path: Path) -> None:
        """Plan one OS record per section of an INI `os.conf`."""
        text = self.read_text(path)
        if text is None:
            return
        sections, rejected = read_ini(text)
        source = self.relative(path)
        self.reject(source, rejected)
        for os_id, assignments in sections.items():
            self.add(RecordId.of_os(os_id), source, _sourced(source, assignments))

    def read_clusters(self) -> None:
        """Plan every valid cluster directory under `clusters/` (the marker excepted)."""
        directory = self.root / "clusters"
        if not self.is_directory(directory):
            return
        for entry in _entries(directory):
            path = directory / entry.name
            if entry.name == "active-cluster" or not self.is_directory(path):
                continue
            try:
                cluster = validate_cluster(entry.name)
            except InvalidInput as err:
                self.skip(self.relative(path), f"{err}; cluster skipped")
                continue
            self.read_cluster(cluster, path)

    def read_cluster(self, cluster: str, directory: Path) -> None:
        """Plan a cluster's record and its hosts."""
        found = self.read_shell_file(directory / "cluster.conf")
        if found is not None:
            self.add(RecordId.of_cluster(cluster), self.relative(directory / "cluster.conf"), found)
        self.read_hosts(directory / "hosts", cluster)

    def read_hosts(self, directory: Path, cluster: str | None) -> None:
        """Plan a host record per `<mac>.conf`; cluster None: top-level, the active cluster's."""
        if not self.is_directory(directory):
            return
        for entry in _entries(directory):
            path = directory / entry.name
            try:
                mac = _host_mac(entry.name)
            except NotData as err:
                self.skip(self.relative(path), err.reason)
                continue
            found = self.read_shell_file(path)
            if found is None:
                continue
            if cluster is None:
                self.loose_hosts.append((self.relative(path), mac, found))
            else:
                self.add(RecordId.of_host(cluster, mac), self.relative(path), found)

    def read_shell_file(self, path: Path) -> list[_Found] | None:
        """Return a bash `.conf` file's assignments (its rejected lines are reported)."""
        text = self.read_text(path)
        if text is None:
            return None
        found, rejected = read_shell(text)
        source = self.relative(path)
        self.reject(source, rejected)
        return _sourced(source, found)

    def read_text(self, path: Path) -> str | None:
        """Return a file's text; None when it is missing or unreadable (then it is reported)."""
        if not os.path.lexists(path):
            return None
        try:
            return _read_text(path)
        except NotData as err:
            self.skip(self.relative(path), err.reason)
            return None

    def is_directory(self, path: Path) -> bool:
        """Return True for a real directory; report a symlink or a file in its place."""
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return False
        except OSError as err:
            self.skip(self.relative(path), _reason(err))
            return False
        if not stat.S_ISDIR(mode):
            self.skip(self.relative(path), _not_directory(mode))
        return stat.S_ISDIR(mode)

    # -- settling ------------------------------------------------------------------------------

    def resolve_active(self) -> str | None:
        """Return the legacy active cluster; keep ACTIVE_CLUSTER only when the store has none."""
        plan = self.plans.get(RecordId.global_())
        candidates = [f for f in (plan.found if plan else []) if f.key == ACTIVE_KEY]
        candidates += [self.marker] if self.marker else []
        usable = [f for f in candidates if self.usable_cluster(f)]
        current = active_cluster(self.store)
        for found in usable if current is not None else []:
            if found.value != current:
                self.skip_found(found, f"the store already has {ACTIVE_KEY}={current!r}; "
                                       "not changed")
        kept = usable if current is None else []
        if plan is not None:
            plan.found = [f for f in plan.found if f.key != ACTIVE_KEY or f in kept]
        if self.marker is not None and self.marker in kept:
            self.add(RecordId.global_(), MARKER, [self.marker])
        return usable[-1].value if usable else None

    def usable_cluster(self, found: _Found) -> bool:
        """Return True when an ACTIVE_CLUSTER value names a known cluster; report it otherwise."""
        try:
            validate_cluster(found.value)
        except InvalidInput as err:
            self.skip_found(found, f"{ACTIVE_KEY}: {err}")
            return False
        if not self.known_cluster(found.value):
            self.skip_found(found, f"active cluster {found.value!r} is neither in the legacy tree "
                                   "nor in the store")
            return False
        return True

    def resolve_hosts(self, active: str | None) -> None:
        """Give top-level hosts to the active cluster; drop hosts of clusters that do not exist."""
        for source, mac, found in self.loose_hosts:
            if active is None:
                self.skip(source, "top-level hosts belong to the active cluster, and the legacy "
                                  "tree names none (clusters/active-cluster)")
            else:
                self.add(RecordId.of_host(active, mac), source, found)
        for rid in [r for r in self.plans if r.kind is Kind.HOST]:
            if rid.cluster is not None and not self.known_cluster(rid.cluster):
                for source in self.plans.pop(rid).sources:
                    self.skip(source, f"cluster {rid.cluster!r} is neither in the legacy tree "
                                      "(no cluster.conf) nor in the store")

    def known_cluster(self, cluster: str) -> bool:
        """Return True when the cluster is planned from the legacy tree or exists in the store."""
        rid = RecordId.of_cluster(cluster)
        return rid in self.plans or self.store.exists(rid)

    def finish(self) -> list[_Planned]:
        """Return each record's final keys in write order (see `winners` for which one wins)."""
        planned: list[_Planned] = []
        for rid in sorted(self.plans, key=_write_order):
            plan = self.plans[rid]
            winners = self.storable(rid, self.winners(plan.found))
            stamp = winners.pop(UPDATED_KEY, None) if rid.stamped else None
            updated = self.carried_update(rid, stamp) if stamp is not None else None
            values = {key: item.value for key, item in winners.items()}
            converted = ConvertedRecord(" + ".join(plan.sources), rid.label, len(values),
                                        updated.time if updated else None)
            spelled = self.spellings(rid, winners.values()) if rid.kind is Kind.HOST else None
            if spelled is not None:
                values[KEY_SPELLINGS] = spelled
            planned.append(_Planned(rid, values, converted, updated))
        return planned

    def storable(self, rid: RecordId, winners: dict[str, _Found]) -> dict[str, _Found]:
        """Return the assignments the store accepts; report the others (a name shells give a
        meaning to, a HOSTNAME that is no DNS label), so one bad line never stops an import."""
        kept: dict[str, _Found] = {}
        for key, item in winners.items():
            try:
                if is_shell_special(key):
                    raise InvalidInput(f"{key} is a name shells give a meaning to: not imported")
                if rid.kind is Kind.HOST:
                    check_host_value(key, item.value)
            except InvalidInput as err:
                self.skip_found(item, str(err))
                continue
            kept[key] = item
        return kept

    def spellings(self, rid: RecordId, kept: Iterable[_Found]) -> str | None:
        """Return the host's KEY_SPELLINGS with the lower-case spellings of its legacy keys
        added, None when there are none (spellings already in the store are kept)."""
        written = [item.written for item in kept if item.written != item.key]
        if not written:
            return None
        try:
            spelled = self.store.items(rid).get(KEY_SPELLINGS)
        except NotFound:
            spelled = None
        for spelling in written:
            spelled = respelled(spelled, spelling)
        return spelled

    def winners(self, found: list[_Found]) -> dict[str, _Found]:
        """Return the assignment kept for each key, in file order; report the others.

        Of several assignments of one spelling the last wins, as when bash sourced the file.
        Spellings that differ only in case were two variables in bash and are one key here:
        the upper-case spelling (the one the old IPS wrote) wins over the others, which are
        reported as conflicts; without one, the last assignment wins.
        """
        by_key: dict[str, list[_Found]] = {}
        for item in found:
            by_key.setdefault(item.key, []).append(item)
        kept: list[_Found] = []
        for key, items in by_key.items():
            winner = ([i for i in items if i.written == key] or items)[-1]
            for item in items:
                if item is not winner:
                    self.report_lost(item, winner)
            kept.append(winner)
        position = {id(item): n for n, item in enumerate(found)}
        return {item.key: item for item in sorted(kept, key=lambda i: position[id(i)])}

    def report_lost(self, item: _Found, winner: _Found) -> None:
        """Report an assignment that another assignment of its key overrides."""
        where = f"line {winner.line}" if item.source == winner.source else (
            f"{winner.source}:{winner.line}")
        if item.written == winner.written:
            self.skip_found(item, f"{item.written} is set again on {where} (the last one wins)")
            return
        rule = "the upper-case one is kept" if winner.written == winner.key else (
            "the last one is kept")
        self.skip(item.source, f"key conflict: {item.written} and {winner.written} ({where}) "
                               f"are one key in the store; {rule}", item.line, item.text,
                  conflict=True)

    def carried_update(self, rid: RecordId, found: _Found) -> Change | None:
        """Return the journal line that carries an old UPDATED; report a value that is no time."""
        moment = _legacy_time(found.value)
        if moment is None:
            self.skip_found(found, f"{UPDATED_KEY} is not a date and time (the old system wrote "
                                   "'YYYY-MM-DD HH:MM:SS UTC'); the store stamps its own")
            return None
        return Change(moment, rid.label, UPDATED_KEY, None, found.value,
                      LEGACY_ACTOR + found.source)

    # -- bookkeeping ---------------------------------------------------------------------------

    def add(self, rid: RecordId, source: str, found: list[_Found]) -> None:
        """Add a legacy file's assignments to the plan of a record."""
        plan = self.plans.setdefault(rid, _Plan())
        if source not in plan.sources:
            plan.sources.append(source)
        plan.found.extend(found)

    def skip(self, source: str, reason: str, line: int = 0, text: str = "", *,
             conflict: bool = False) -> None:
        """Report something not imported."""
        self.skipped.append(SkippedLine(source, line, text, reason, conflict))

    def skip_found(self, found: _Found, reason: str) -> None:
        """Report an accepted assignment that is not imported after all."""
        self.skip(found.source, reason, found.line, found.text)

    def reject(self, source: str, rejected: list[Rejected]) -> None:
        """Report the lines the syntax layer rejected."""
        for item in rejected:
            self.skip(source, item.reason, item.line, item.text)

    def relative(self, path: Path) -> str:
        """Return a path as the report shows it: relative to the legacy root, with `/`."""
        return path.relative_to(self.root).as_posix()


def _legacy_root(source: Path, store: Store) -> Path:
    """Return `source` when it is a legacy tree other than the store; InvalidInput otherwise."""
    if not source.is_dir():
        raise InvalidInput(f"{source}: not a directory")
    if not any(os.path.lexists(source / name) for name in _RECOGNISED):
        raise InvalidInput(f"{source}: no hps.conf, clusters/, hosts/ or os.conf: "
                           "not a legacy configuration tree")
    root = store.layout.root
    if root.is_dir() and os.path.samefile(source, root):
        # The store reads its files natively; legacy files there would be corrupt or misread.
        raise InvalidInput(f"{source} is the store itself: import from a copy of the old tree")
    return source


def _read_text(path: Path) -> str:
    """Return the text of a regular file without following a symlink; NotData otherwise.

    Bytes that are not UTF-8 become surrogates, so only the lines holding them are refused.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not hang; it is then refused as not a regular file.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotData("not a regular file")
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_LEGACY_FILE_BYTES + 1)
    except OSError as err:
        raise NotData(_reason(err)) from None
    if len(data) > MAX_LEGACY_FILE_BYTES:
        raise NotData(f"larger than {MAX_LEGACY_FILE_BYTES} bytes")
    return data.decode("utf-8", errors="surrogateescape")


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    """Return a directory's entries sorted by name."""
    with os.scandir(directory) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _host_mac(name: str) -> str:
    """Return the MAC of a host file name (`52:54:00:aa:bb:01.conf`); NotData otherwise."""
    if not name.endswith(".conf"):
        raise NotData("not a <mac>.conf file")
    try:
        return normalize_mac(name.removesuffix(".conf"))
    except InvalidInput as err:
        raise NotData(f"file name is not a MAC address: {err}") from None


def _sourced(source: str, assignments: list[Assignment]) -> list[_Found]:
    """Return assignments tagged with the legacy file they came from."""
    return [_Found(source, a.line, a.text, a.key, a.value, a.written or a.key)
            for a in assignments]


def _legacy_time(text: str) -> str | None:
    """Return an old UPDATED value as ISO-8601 UTC (`2026-11-21T18:29:05Z`); None if it is no
    date and time. The old system wrote `date -u '+%Y-%m-%d %H:%M:%S UTC'`; ISO-8601 is taken
    too, a time without a zone being UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().removesuffix(" UTC"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_order(rid: RecordId) -> tuple[int, str, bool, str]:
    """Return the sort key that puts the global record first and each cluster before its hosts."""
    return _KIND_ORDER[rid.kind], rid.cluster or "", rid.kind is Kind.HOST, rid.name or ""


def _reason(err: Exception) -> str:
    """Return the report's reason for an OS error or a NotData."""
    if isinstance(err, NotData):
        return err.reason
    if isinstance(err, OSError) and err.errno == errno.ELOOP:
        return "a symbolic link (not followed)"
    return getattr(err, "strerror", None) or str(err)


def _not_directory(mode: int) -> str:
    """Return why a file of this mode is not a directory the importer reads."""
    return "a symbolic link (not followed)" if stat.S_ISLNK(mode) else "not a directory"


def _converted_line(converted: ConvertedRecord) -> str:
    """Return one report line for a converted record."""
    kept = f"; UPDATED {converted.updated} kept in the journal" if converted.updated else ""
    return (f"converted {_shown_path(converted.source)} -> {converted.target} "
            f"({_count(converted.keys, 'key')}{kept})")


def _skipped_line(skipped: SkippedLine) -> str:
    """Return one report line for a skipped entry (without line and text for a whole file)."""
    where = _shown_path(skipped.source) + (f":{skipped.line}" if skipped.line else "")
    text = f": {_shown_text(skipped.text)}" if skipped.text else ""
    return f"skipped {where}: {skipped.reason}{text}"


def _shown_text(text: str) -> str:
    """Return untrusted text as repr, truncated, so a report line stays one printable line."""
    return repr(text) if len(text) <= _SHOWN_TEXT else repr(text[: _SHOWN_TEXT - 3]) + "..."


def _shown_path(source: str) -> str:
    """Return a legacy path as is when printable, else as repr (file names may hold anything)."""
    return source if source.isprintable() else repr(source)


def _count(number: int, noun: str) -> str:
    """Return `1 key`, `2 keys`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
