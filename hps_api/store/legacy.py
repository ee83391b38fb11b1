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
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from hps_api.errors import InvalidInput
from hps_api.ids import normalize_mac, validate_cluster
from hps_api.store.bootstrap import active_cluster
from hps_api.store.filestore import FileStore
from hps_api.store.legacy_syntax import Assignment, NotData, Rejected, read_ini, read_shell
from hps_api.store.records import Kind, RecordId

MAX_LEGACY_FILE_BYTES = 1024 * 1024
ACTIVE_KEY = "ACTIVE_CLUSTER"
MARKER = "clusters/active-cluster"
_RECOGNISED = ("hps.conf", "clusters", "hosts", "os.conf", "os/os.conf")
_KIND_ORDER = {Kind.GLOBAL: 0, Kind.OS: 1, Kind.CLUSTER: 2, Kind.HOST: 2}
_SHOWN_TEXT = 60


@dataclass(frozen=True)
class ConvertedRecord:
    """One record written (or, in a dry run, to be written): its legacy file(s) and key count."""

    source: str
    target: str
    keys: int


@dataclass(frozen=True)
class SkippedLine:
    """One legacy line not imported; `line` is 0 when a whole file or directory was skipped."""

    source: str
    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    """What an import converted and skipped; `active_cluster` is the one the legacy tree names."""

    converted: list[ConvertedRecord]
    skipped: list[SkippedLine]
    active_cluster: str | None


@dataclass(frozen=True)
class _Found:
    """An accepted assignment and the legacy file it came from."""

    source: str
    line: int
    text: str
    key: str
    value: str


@dataclass
class _Plan:
    """The assignments one record will receive, from one or more legacy files."""

    sources: list[str] = field(default_factory=list)
    found: list[_Found] = field(default_factory=list)


def import_legacy(
    source: Path, store: FileStore, actor: str, *, dry_run: bool = False
) -> ImportReport:
    """Convert the legacy tree at `source` into `store` and return what was done.

    One `update(..., create=True)` per record with all its keys: the global record first, then
    OS records, then each cluster followed by its hosts. Existing records are merged (legacy
    values win); ACTIVE_CLUSTER is only set when the store has none. With `dry_run` nothing is
    written and the report is the same. Raises InvalidInput when `source` is not a legacy tree;
    store errors (StoreBusy, CorruptRecord) stop the import, and running it again is safe.
    """
    importer = _Importer(_legacy_root(Path(source), store), store)
    importer.walk()
    active = importer.resolve_active()
    importer.resolve_hosts(active)
    planned = importer.finish()
    if not dry_run:
        for rid, values, _ in planned:
            store.update(rid, values, actor, create=True)
    skipped = sorted(importer.skipped, key=lambda s: (s.source, s.line))
    return ImportReport([converted for _, _, converted in planned], skipped, active)


def format_report(report: ImportReport) -> list[str]:
    """Return the report as lines for people: converted records, skipped lines, a summary."""
    lines = [f"converted {_shown_path(c.source)} -> {c.target} ({_count(c.keys, 'key')})"
             for c in report.converted]
    lines += [_skipped_line(s) for s in report.skipped]
    active = report.active_cluster or "none"
    lines.append(f"{_count(len(report.converted), 'record')} converted, "
                 f"{len(report.skipped)} skipped; legacy active cluster: {active}")
    return lines


class _Importer:
    """Walks one legacy tree and plans the store updates; it never writes."""

    def __init__(self, root: Path, store: FileStore) -> None:
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
                return _Found(MARKER, 0, target, ACTIVE_KEY, os.path.basename(target.rstrip("/")))
            if not os.path.lexists(path):
                return None
            content = _read_text(path).strip()
        except (OSError, NotData) as err:
            self.skip(MARKER, _reason(err))
            return None
        return _Found(MARKER, 1, content, ACTIVE_KEY, content)

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
            self.skip_found(found, f"the store already has {ACTIVE_KEY}={current!r}; not changed")
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

    def finish(self) -> list[tuple[RecordId, dict[str, str], ConvertedRecord]]:
        """Return each record's final keys in write order (the last assignment of a key wins)."""
        planned: list[tuple[RecordId, dict[str, str], ConvertedRecord]] = []
        for rid in sorted(self.plans, key=_write_order):
            plan = self.plans[rid]
            values = self.last_wins(plan.found, stamped=rid.stamped)
            converted = ConvertedRecord(" + ".join(plan.sources), rid.label, len(values))
            planned.append((rid, values, converted))
        return planned

    def last_wins(self, found: list[_Found], *, stamped: bool) -> dict[str, str]:
        """Return the keys and values, the last assignment of each key winning; report the rest."""
        winners: dict[str, _Found] = {}
        for item in found:
            if stamped and item.key == "UPDATED":
                self.skip_found(item, "UPDATED is stamped by the store on every change")
                continue
            earlier = winners.pop(item.key, None)
            if earlier is not None:
                where = f"line {item.line}" if item.source == earlier.source else (
                    f"{item.source}:{item.line}")
                self.skip_found(earlier, f"{item.key} is set again on {where} (the last one wins)")
            winners[item.key] = item
        return {key: item.value for key, item in winners.items()}

    # -- bookkeeping ---------------------------------------------------------------------------

    def add(self, rid: RecordId, source: str, found: list[_Found]) -> None:
        """Add a legacy file's assignments to the plan of a record."""
        plan = self.plans.setdefault(rid, _Plan())
        if source not in plan.sources:
            plan.sources.append(source)
        plan.found.extend(found)

    def skip(self, source: str, reason: str, line: int = 0, text: str = "") -> None:
        """Report something not imported."""
        self.skipped.append(SkippedLine(source, line, text, reason))

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


def _legacy_root(source: Path, store: FileStore) -> Path:
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
    return [_Found(source, a.line, a.text, a.key, a.value) for a in assignments]


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
