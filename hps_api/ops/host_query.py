"""Finding hosts: search, filters, sort and paging over a cluster's host records (docs/ui.md).

One query for every door that lists hosts (`/hosts`, `GET /api/v1/hosts`, the CSV export, the
bulk actions on a filter), written as query parameters so a view can be bookmarked:

- `q`: words that must all match. `KEY=value` matches a key's value exactly (any case; `KEY=`
  matches hosts without the key); any other word is a piece of the MAC in any spelling
  (`aa:bb:01`, `aabb01`, `5254.00aa`), of the hostname, the IP or the serial number.
- `state`, `type`, `profile`: one value or several, comma-separated (`state=FAILED,
  INSTALL_FAILED`); a host without STATE counts as UNCONFIGURED (as the boot flow treats it),
  `type=(none)` finds hosts without a TYPE.
- `stuck=1`: stuck by the rules of hps_api.model.stuck (docs/stuck.md). A door with the store
  hands `select` the scan of hps_api.ops.stuck; without it, the rules a record alone can answer.
- `selftest=fail|pass|none`: by the last self-test report (SELFTEST_RESULT).
- `sort`: a column (SORTS), `-column` for descending; ties in MAC order; hosts without the
  value last. Default `-last_seen`: newest activity first (LAST_SEEN, then UPDATED).
- `page` (from 1) and `per_page` (at most MAX_PER_PAGE; absent for the API: every host).

Pure functions over plain mappings: no store, no Flask. A key a viewer may not read (sensitive,
for non-admins) cannot be searched or sorted on by them: the answer would tell its value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from hps_api.errors import InvalidInput
from hps_api.ids import is_sensitive, normalize_key
from hps_api.model.states import STATES, parse_state
from hps_api.model.stuck import NO_HISTORY, findings

Records = Mapping[str, Mapping[str, str]]
Args = Mapping[str, Sequence[str]]
#: what a row sorts by (None: the host has no such value)
SortValue = Callable[[str, Mapping[str, str]], Any]
#: the MACs of the stuck hosts, found when a query asks (hps_api.ops.stuck.stuck_test)
StuckMacs = Callable[[], Collection[str]]

NONE = "(none)"
MAX_PER_PAGE = 1000
MAX_QUERY = 400
FILTERS = ("state", "type", "profile")
SELFTEST_FILTERS = ("fail", "pass", "none")
#: sort name -> the host key it orders by (`mac`: the record's name)
SORTS = {"mac": "", "hostname": "HOSTNAME", "type": "TYPE", "profile": "PROFILE",
         "state": "STATE", "ip": "IP", "last_seen": "LAST_SEEN", "boot_session": "BOOT_SESSION",
         "selftest": "SELFTEST_RESULT", "updated": "UPDATED"}
DEFAULT_SORT = "-last_seen"
#: the keys a search word that is no `KEY=value` looks into, besides the MAC
SEARCHED = ("HOSTNAME", "IP", "SERIAL")
#: filter -> the key it reads (a viewer who may not read the key may not filter on it)
FILTER_KEYS = {"state": "STATE", "type": "TYPE", "profile": "PROFILE",
               "selftest": "SELFTEST_RESULT", "stuck": "LAST_SEEN"}
_MAC_PIECE = re.compile(r"[0-9a-f:.\-]+")
_SEPARATORS = re.compile(r"[:.\-]")


@dataclass(frozen=True)
class HostQuery:
    """What to list: search words, filters, sort and page (see the module docstring)."""

    q: str = ""
    state: frozenset[str] = frozenset()
    type: frozenset[str] = frozenset()
    profile: frozenset[str] = frozenset()
    stuck: bool = False
    selftest: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int | None = None
    #: the page size of the door that parsed the query: left out of its links
    default_per_page: int | None = None

    @property
    def filtered(self) -> bool:
        """Return True when anything narrows the list (search words or a filter)."""
        return bool(self.q or self.state or self.type or self.profile or self.stuck
                    or self.selftest)

    def params(self, **changes: object) -> list[tuple[str, str]]:
        """Return the query as URL parameters (defaults left out), with `changes` applied."""
        query = replace(self, **changes)  # type: ignore[arg-type]
        pairs = [("q", query.q)] + [(name, ",".join(sorted(getattr(query, name))))
                                    for name in FILTERS]
        pairs += [("stuck", "1" if query.stuck else ""), ("selftest", query.selftest),
                  ("sort", "" if query.sort == DEFAULT_SORT else query.sort),
                  ("page", "" if query.page == 1 else str(query.page)),
                  ("per_page", "" if query.per_page in (None, query.default_per_page)
                   else str(query.per_page))]
        return [(name, value) for name, value in pairs if value]

    def filter_params(self) -> list[tuple[str, str]]:
        """Return only what selects hosts (search and filters), not how they are shown."""
        return [(k, v) for k, v in self.params() if k not in ("sort", "page", "per_page")]


@dataclass(frozen=True)
class HostPage:
    """One page of matching hosts: (mac12, record) pairs, and where the page stands."""

    rows: list[tuple[str, Mapping[str, str]]]
    total: int
    page: int
    per_page: int | None

    @property
    def pages(self) -> int:
        """Return the number of pages (1 for an empty or unpaged list)."""
        if not self.per_page or not self.total:
            return 1
        return -(-self.total // self.per_page)


@dataclass(frozen=True)
class Term:
    """One search word: `key` and `value` for `KEY=value`, else the lower-case text."""

    text: str
    key: str | None = None


def parse_query(args: Args, *, per_page: int | None = None) -> HostQuery:
    """Return the query of request parameters (each name: its values); `per_page` is the
    default page size. InvalidInput naming the parameter when one cannot be understood."""
    def one(name: str) -> str:
        values = args.get(name) or [""]
        return values[-1].strip()

    query = HostQuery(
        q=_bounded("q", " ".join(one("q").split())),
        state=frozenset(parse_state(s) for s in _listed(one("state"))),
        type=frozenset(_name(t) for t in _listed(one("type"))),
        profile=frozenset(_name(p) for p in _listed(one("profile"))),
        stuck=_flag("stuck", one("stuck")), selftest=_choice("selftest", one("selftest")),
        sort=_sort(one("sort") or DEFAULT_SORT),
        page=_number("page", one("page"), 1, None) or 1,
        per_page=_number("per_page", one("per_page"), 1, MAX_PER_PAGE) or per_page,
        default_per_page=per_page)
    terms(query.q)  # a malformed KEY=value is refused here, before any record is read
    return query


def select(records: Records, query: HostQuery, *, now: float,
           hidden: Callable[[str], bool] = lambda key: False,
           stuck: StuckMacs | None = None) -> HostPage:
    """Return the page of hosts matching `query`, in its order.

    `hidden(key)` is True for keys the viewer may not read: searching or sorting on one is
    InvalidInput. `now` (epoch seconds) is what `stuck` measures time against; `stuck` gives
    the stuck hosts' MACs (asked only for `stuck=1`), else `is_stuck` judges each record.
    """
    words = terms(query.q)
    for key in [w.key for w in words if w.key] + [SORTS[query.sort.lstrip("-")]] + [
            key for name, key in FILTER_KEYS.items() if getattr(query, name)]:
        if key and hidden(key):
            raise InvalidInput(f"{key} is a sensitive key: only admins search or sort on it")
    match = matcher(query, words, now, searched=[k for k in SEARCHED if not hidden(k)],
                    stuck=stuck)
    found = [(mac, record) for mac, record in records.items() if match(mac, record)]
    ordered = sort_rows(found, query.sort)
    if query.per_page is None:
        return HostPage(ordered, len(ordered), 1, None)
    start = (query.page - 1) * query.per_page
    return HostPage(ordered[start:start + query.per_page], len(ordered), query.page,
                    query.per_page)


def terms(q: str) -> list[Term]:
    """Return the search words of `q`; InvalidInput for a `KEY=value` whose key is no key."""
    found = []
    for word in q.split():
        key, equals, value = word.partition("=")
        found.append(Term(value.lower(), normalize_key(key)) if equals
                     else Term(word.lower()))
    return found


def matcher(query: HostQuery, words: Iterable[Term], now: float,
            searched: Sequence[str] = (), stuck: StuckMacs | None = None,
            ) -> Callable[[str, Mapping[str, str]], bool]:
    """Return a test of one host (mac12, record) against the query's words and filters; a
    word that is no `KEY=value` looks into the MAC and the `searched` keys (of SEARCHED);
    `stuck` as for `select`."""
    checks = [_word(w, searched) for w in words]
    if query.state:
        checks.append(lambda mac, r: effective_state(r) in query.state)
    for name, key in (("type", "TYPE"), ("profile", "PROFILE")):
        wanted: frozenset[str] = getattr(query, name)
        if wanted:
            checks.append(_one_of(key, wanted))
    if query.stuck and stuck is None:
        checks.append(lambda mac, r: is_stuck(r, now))
    elif query.stuck and stuck is not None:
        macs = stuck()
        checks.append(lambda mac, r: mac in macs)
    if query.selftest:
        checks.append(lambda mac, r: selftest_outcome(r) == query.selftest)
    return lambda mac, record: all(check(mac, record) for check in checks)


def sort_rows(rows: list[tuple[str, Mapping[str, str]]],
              sort: str) -> list[tuple[str, Mapping[str, str]]]:
    """Return the rows ordered by `sort` (`-` first: descending); ties in MAC order, hosts
    without the value last whichever the direction."""
    name, descending = sort.lstrip("-"), sort.startswith("-")
    value = SORT_VALUES.get(name) or _text_value(SORTS[name])
    rows = sorted(rows, key=lambda row: row[0])
    keyed = [(value(mac, record), (mac, record)) for mac, record in rows]
    present = [pair for pair in keyed if pair[0] is not None]
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [row for _, row in present] + [row for value_, row in keyed if value_ is None]


def effective_state(record: Mapping[str, str]) -> str:
    """Return the host's STATE upper-cased; a host without one counts as UNCONFIGURED."""
    return (record.get("STATE") or "UNCONFIGURED").strip().upper()


def selftest_outcome(record: Mapping[str, str]) -> str:
    """Return `pass`, `fail` (any other reported result) or `none` (never reported)."""
    result = record.get("SELFTEST_RESULT", "").strip().lower()
    return "none" if not result else "pass" if result == "pass" else "fail"


def is_stuck(record: Mapping[str, str], now: float) -> bool:
    """Return True when the record alone shows the host stuck (hps_api.model.stuck's rules
    with the default thresholds and no history: an install gone silent, a failing self-test)."""
    return bool(findings(record, NO_HISTORY, now))


def epoch_of(value: str | None) -> float | None:
    """Return the epoch seconds of a stored time (`2025-01-02T10:00:00Z` or an epoch, as
    BOOT_TIME is), None when it is neither."""
    text = (value or "").strip()
    if text.isdigit():
        return float(text)
    try:
        when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return when.replace(tzinfo=UTC).timestamp()


# -- parts -------------------------------------------------------------------------------------


def _word(term: Term, searched: Sequence[str]) -> Callable[[str, Mapping[str, str]], bool]:
    if term.key is not None:
        key, value = term.key, term.text
        return lambda mac, r: r.get(key, "").strip().lower() == value
    text = term.text
    piece = _SEPARATORS.sub("", text) if _MAC_PIECE.fullmatch(text) else ""

    def word(mac: str, record: Mapping[str, str]) -> bool:
        return bool((piece and piece in mac)
                    or any(text in record.get(key, "").lower() for key in searched))

    return word


def _one_of(key: str, wanted: frozenset[str]) -> Callable[[str, Mapping[str, str]], bool]:
    return lambda mac, record: (record.get(key, "").strip().upper() or NONE) in wanted


def _text_value(key: str) -> SortValue:
    def value(mac: str, record: Mapping[str, str]) -> Any:
        text = record.get(key, "").strip()
        return text.lower() if text else None
    return value


def _ip_value(mac: str, record: Mapping[str, str]) -> Any:
    try:
        return int(ipaddress.IPv4Address(record.get("IP", "").strip()))
    except ValueError:
        return None


def _state_value(mac: str, record: Mapping[str, str]) -> Any:
    state = effective_state(record)
    return (STATES.index(state) if state in STATES else len(STATES), state)


SORT_VALUES: dict[str, SortValue] = {
    "mac": lambda mac, record: mac,
    "ip": _ip_value,
    "state": _state_value,
    "last_seen": lambda mac, r: (r.get("LAST_SEEN", ""), r.get("UPDATED", "")),
}


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _name(text: str) -> str:
    if text == NONE:
        return text
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", text):
        raise InvalidInput(f"invalid type or profile {text[:40]!r}")
    return text.upper()


def _sort(text: str) -> str:
    if text.lstrip("-") not in SORTS or text.startswith("--"):
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)} (or -name for descending), "
                           f"not {text[:40]!r}")
    return text


def _number(name: str, text: str, low: int, high: int | None) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < low or (
            high is not None and int(text) > high):
        limit = f"from {low} to {high}" if high else f"of at least {low}"
        raise InvalidInput(f"{name} must be a whole number {limit}, not {text[:20]!r}")
    return int(text)


def _flag(name: str, text: str) -> bool:
    if text not in ("", "0", "1"):
        raise InvalidInput(f"{name} must be 1 (or absent), not {text[:20]!r}")
    return text == "1"


def _choice(name: str, text: str) -> str:
    if text and text.lower() not in SELFTEST_FILTERS:
        raise InvalidInput(f"{name} must be one of {', '.join(SELFTEST_FILTERS)}, "
                           f"not {text[:20]!r}")
    return text.lower()


def _bounded(name: str, text: str) -> str:
    if len(text) > MAX_QUERY:
        raise InvalidInput(f"{name} longer than {MAX_QUERY} characters")
    return text


def sensitive_test(patterns: Iterable[str], *, admin: bool) -> Callable[[str], bool]:
    """Return `hidden(key)` for `select`: sensitive keys are hidden from non-admins."""
    patterns = tuple(patterns)
    return (lambda key: False) if admin else (lambda key: is_sensitive(key, patterns))
