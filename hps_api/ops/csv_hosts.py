"""Hosts to and from CSV (docs/ui.md, "CSV import and export").

A file has a header line naming its columns: MAC (required), HOSTNAME, TYPE, PROFILE, IP, and
any other host key. An empty cell changes nothing. Each line is a host: registered when new
(UNCONFIGURED), its keys set through `ops.hosts.set_key` (so each value meets the rule it
meets from every other door), then configured as TYPE/PROFILE when those differ from the
host's (it installs at its next network boot; a host keeps the HOSTNAME and IP the file gives).

The whole file is checked before anything is written (`check`): every MAC, key and value
(`ops.hosts.check_value`, no write), MACs, hostnames and addresses unique within the file,
TYPE/PROFILE from the catalog, an OS for each type, and a type change only for a host that
waits for one. One bad line and nothing is written; each problem names its line. `apply`
checks again (the preview may be stale) and then writes line by line; a write that fails
after all (a host changed meanwhile) is reported for its line and the others go on.

Export writes the same columns, then the other keys an operator sets (not the store's
bookkeeping, hardware facts or self-test results). A cell a spreadsheet would run as a formula
(`=`, `+`, `-`, `@`...) is written with a leading `'`, which import takes off again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hps_api.errors import HpsError, InvalidInput
from hps_api.ids import (
    check_host_value,
    colon_mac,
    is_sensitive,
    is_shell_special,
    normalize_key,
    normalize_mac,
    validate_value,
)
from hps_api.model import osreg
from hps_api.model.catalog import host_type, profile_of
from hps_api.model.host_keys import Owner, owner_of
from hps_api.ops import bulk
from hps_api.ops import hosts as host_ops
from hps_api.settings import Settings
from hps_api.store import RecordId, Store

COLUMNS = ("MAC", "HOSTNAME", "TYPE", "PROFILE", "IP")
MAX_LINES = 5000
#: owners whose keys a file may not set: the state table, the store, the audit, the self-test
NOT_IMPORTED = frozenset({Owner.STATE, Owner.STORE, Owner.AUDIT, Owner.SELFTEST})
#: keys `configure` writes itself (a file sets them with TYPE and PROFILE)
CONFIGURED_KEYS = frozenset({"TYPE", "PROFILE", "OS_ID", "NETMASK", "INSTALL_ATTEMPTS",
                             "FORCE_INSTALL"})
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
Records = Mapping[str, Mapping[str, str]]


@dataclass
class Line:
    """One line of a file as checked: what it changes, and why it cannot be imported."""

    number: int
    mac: str
    new: bool = False
    changes: list[tuple[str, str | None, str]] = field(default_factory=list)
    configure: tuple[str, str] | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def colon(self) -> str:
        """Return the MAC in colon form ("" when it is not one)."""
        return colon_mac(self.mac) if len(self.mac) == 12 else self.mac

    @property
    def unchanged(self) -> bool:
        """Return True when importing the line would change nothing."""
        return not (self.new or self.changes or self.configure or self.errors)


@dataclass
class Plan:
    """A checked file: its lines, and problems with the file itself (header, size)."""

    lines: list[Line] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when nothing in the file is refused."""
        return not self.errors and not any(line.errors for line in self.lines)

    @property
    def problems(self) -> list[str]:
        """Return every problem, each naming its line."""
        return self.errors + [f"line {line.number} ({line.colon or 'no MAC'}): {error}"
                              for line in self.lines for error in line.errors]


@dataclass(frozen=True)
class Applied:
    """What importing one line did: `ok`, and what it changed or why it stopped."""

    number: int
    mac: str
    ok: bool
    message: str


def check(store: Store, cluster: str, text: str, records: Records) -> Plan:
    """Return the plan of a file against the cluster's current `records` (no write)."""
    plan = Plan()
    rows = _rows(text, plan)
    if rows is None:
        return plan
    header, body = rows
    seen: dict[str, dict[str, int]] = {"MAC": {}, "HOSTNAME": {}, "IP": {}}
    for number, cells in body:
        line = _line(store, cluster, number, dict(zip(header, cells, strict=False)), records)
        _unique(line, dict(zip(header, cells, strict=False)), seen)
        plan.lines.append(line)
    return plan


def apply(store: Store, settings: Settings, cluster: str, text: str, records: Records,
          actor: str) -> tuple[Plan, list[Applied]]:
    """Check the file again and, when every line passes, import it line by line; return the
    plan and one result per line that changes something (none when the plan is refused)."""
    plan = check(store, cluster, text, records)
    if not plan.ok:
        return plan, []
    return plan, [_import(store, settings, cluster, line, actor) for line in plan.lines
                  if not line.unchanged]


def export(records: Records, patterns: Iterable[str], *, admin: bool) -> str:
    """Return the hosts as CSV: COLUMNS, then every other key an operator sets that any of
    them has (sensitive keys only for admins), by name."""
    patterns = tuple(patterns)
    extra = sorted({key for record in records.values() for key in record
                    if key not in COLUMNS and _importable(key) is None
                    and key not in CONFIGURED_KEYS and (admin or not is_sensitive(key, patterns))})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, *extra])
    for mac, record in records.items():
        writer.writerow([colon_mac(mac), *(_cell(record.get(key, "")) for key in COLUMNS[1:]),
                         *(_cell(record.get(key, "")) for key in extra)])
    return out.getvalue()


# -- reading a file ------------------------------------------------------------------------------


def _rows(text: str, plan: Plan) -> tuple[list[str], list[tuple[int, list[str]]]] | None:
    """Return the header (keys) and the numbered non-empty lines, or None (plan.errors says)."""
    try:
        table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error as err:
        plan.errors.append(f"not a CSV file: {err}")
        return None
    numbered = [(n, [cell.strip() for cell in row]) for n, row in enumerate(table, start=1)
                if any(cell.strip() for cell in row)]
    if not numbered:
        plan.errors.append("the file is empty: its first line names the columns (MAC,...)")
        return None
    if len(numbered) > MAX_LINES + 1:
        plan.errors.append(f"{len(numbered) - 1} hosts: at most {MAX_LINES} in one file")
        return None
    header = []
    for name in numbered[0][1]:
        try:
            key = normalize_key(name)
        except InvalidInput as err:
            plan.errors.append(f"line 1: column {name[:40]!r}: {err}")
            continue
        refusal = _importable(key) if key not in COLUMNS else None
        if refusal:
            plan.errors.append(f"line 1: column {key}: {refusal}")
        if key in header:
            plan.errors.append(f"line 1: column {key} appears twice")
        header.append(key)
    if "MAC" not in header:
        plan.errors.append("line 1: no MAC column (the first line names the columns)")
    return None if plan.errors else (header, numbered[1:])


def _line(store: Store, cluster: str, number: int, cells: Mapping[str, str],
          records: Records) -> Line:
    try:
        mac = normalize_mac(cells.get("MAC", ""))
    except InvalidInput as err:
        return Line(number, cells.get("MAC", "")[:17], errors=[str(err)])
    current = records.get(mac)
    line = Line(number, mac, new=current is None)
    rid = RecordId.of_host(cluster, mac)
    for key, raw in cells.items():
        value = _uncell(raw)
        if key in ("MAC", "TYPE", "PROFILE") or not value:
            continue
        try:
            check_host_value(key, validate_value(value))
            checked = host_ops.check_value(store, rid, key, value)
        except HpsError as err:
            line.errors.append(str(err))
            continue
        old = (current or {}).get(key)
        if old != checked:
            line.changes.append((key, old, checked))
    line.configure = _configure(store, cluster, line, cells, current or {})
    return line


def _configure(store: Store, cluster: str, line: Line, cells: Mapping[str, str],
               current: Mapping[str, str]) -> tuple[str, str] | None:
    """Return the (TYPE, PROFILE) to configure the host as, None when they do not change."""
    type_text, profile_text = cells.get("TYPE", ""), cells.get("PROFILE", "")
    if not type_text and not profile_text:
        return None
    try:
        kind = host_type(type_text or current.get("TYPE", "") or "?")
        profile = profile_of(kind, profile_text or (
            current.get("PROFILE") if current.get("TYPE") == kind.name else None))
        if (kind.name, profile) == (current.get("TYPE"), current.get("PROFILE")):
            return None
        bulk.check_waiting(line.mac, current)
        cluster_items = store.items(RecordId.of_cluster(cluster))
        if osreg.resolve_os(store, cluster_items, kind.name, current.get("ARCH", "")) is None:
            raise InvalidInput(f"no OS for {kind.name}: add one (hps-api os add) or set "
                               f"OS_{kind.name}")
    except HpsError as err:
        line.errors.append(str(err) if type_text else f"PROFILE needs a TYPE: {err}")
        return None
    return kind.name, profile


def _unique(line: Line, cells: Mapping[str, str], seen: dict[str, dict[str, int]]) -> None:
    """Refuse a MAC, hostname or address an earlier line of the file already has."""
    for key in seen:
        value = line.mac if key == "MAC" else _uncell(cells.get(key, "")).lower()
        if not value:
            continue
        first = seen[key].setdefault(value, line.number)
        if first != line.number:
            line.errors.append(f"{key} {value} is on line {first} too")


def _importable(key: str) -> str | None:
    """Return why a file may not set `key`, None when it may."""
    owner = owner_of(key)
    if owner in NOT_IMPORTED:
        return f"is written by {owner.value}, not imported"
    if is_shell_special(key):
        return "is a name shells give a meaning to: refused"
    return None


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


def _uncell(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


# -- writing ---------------------------------------------------------------------------------------


def _import(store: Store, settings: Settings, cluster: str, line: Line, actor: str) -> Applied:
    rid = RecordId.of_host(cluster, line.mac)
    done: list[str] = []
    try:
        if line.new:
            host_ops.set_state(store, rid, "UNCONFIGURED", actor, admin=True, create=True)
            done.append("registered")
        for key, _old, value in line.changes:
            host_ops.set_key(store, settings, rid, key, value, actor)
            done.append(f"{key}={value}")
        if line.configure:
            record = host_ops.configure(store, settings, cluster, line.mac, *line.configure,
                                        actor, admin=True)
            done.append(f"configured as {'/'.join(line.configure)}: "
                        f"{record.get('HOSTNAME', '')} {record.get('IP', '')}")
    except HpsError as err:
        so_far = f" (done before: {', '.join(done)})" if done else ""
        return Applied(line.number, line.mac, False, f"{err}{so_far}")
    return Applied(line.number, line.mac, True, ", ".join(done))
