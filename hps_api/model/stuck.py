"""Stuck hosts: the rules that say a host waits for a step that does not come (docs/stuck.md).

Each rule is a pure function of one host's record, its recent history (what the cluster's
journal says about it: its boots, its last STATE change, the last kickstart it was served), `now`
(epoch seconds) and the cluster's thresholds (`Limits.of(cluster record)`), and returns a
Finding (the rule, since when, one sentence) or None. No I/O: hps_api.ops.stuck reads the
records and the journal and runs them.

The history says from when it knows (`HostHistory.known_from`, the journal's first line): a
rule that needs to know that something did *not* happen (no state change, no kickstart) only
speaks about that span. Without any history (`NO_HISTORY`) only the rules a record alone can
answer speak: a silent install, a failing self-test.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from hps_api.model.states import BOOT_STATES, INSTALL_STATES, MENU_STATES

#: the states a host runs its installed or diskless system in: a self-test report is its own
RUNNING_STATES = BOOT_STATES | {"NETWORK_BOOT"}
#: a menu polls `init` every MENU_TIMEOUT: a host seen within POLLS_MISSED of them (and at
#: least MIN_POLL_WINDOW s) is still polling
POLLS_MISSED = 3
MIN_POLL_WINDOW = 900
DEFAULT_MENU_TIMEOUT = 60


@dataclass(frozen=True)
class Limit:
    """One threshold: its cluster key's default, bounds and meaning."""

    default: int
    low: int
    high: int
    meaning: str


#: cluster key -> threshold (hps_api.model.cluster_keys validates them with these bounds)
LIMITS: dict[str, Limit] = {
    "INSTALL_TIMEOUT": Limit(45, 5, 1440, "minutes a host may stay INSTALLING before it "
                                          "counts as stuck"),
    "KERNEL_FETCH_MINUTES": Limit(10, 1, 240, "minutes from the installer's decision to its "
                                              "kickstart fetch before the host counts as stuck"),
    "BOOT_LOOP_COUNT": Limit(5, 2, 100, "boots without a state change that make a boot loop "
                                        "(more than this many in BOOT_LOOP_MINUTES)"),
    "BOOT_LOOP_MINUTES": Limit(30, 1, 1440, "the window, in minutes, BOOT_LOOP_COUNT counts "
                                            "boots in"),
    "MENU_WAIT_HOURS": Limit(24, 1, 720, "hours a host may poll its menu before it counts as "
                                         "stuck"),
    "INSTALL_SILENT_MINUTES": Limit(60, 5, 1440, "minutes without a sign of life from a host "
                                                 "sent to the installer before it counts as "
                                                 "stuck"),
}


@dataclass(frozen=True)
class Limits:
    """The thresholds of one cluster (LIMITS' keys, lower-cased) and its MENU_TIMEOUT."""

    install_timeout: int = LIMITS["INSTALL_TIMEOUT"].default
    kernel_fetch_minutes: int = LIMITS["KERNEL_FETCH_MINUTES"].default
    boot_loop_count: int = LIMITS["BOOT_LOOP_COUNT"].default
    boot_loop_minutes: int = LIMITS["BOOT_LOOP_MINUTES"].default
    menu_wait_hours: int = LIMITS["MENU_WAIT_HOURS"].default
    install_silent_minutes: int = LIMITS["INSTALL_SILENT_MINUTES"].default
    menu_timeout: int = DEFAULT_MENU_TIMEOUT

    @classmethod
    def of(cls, cluster: Mapping[str, str]) -> Limits:
        """Return the thresholds a cluster record sets; a key unset, or holding a value its
        validator would refuse (a hand edit), counts as its default."""
        values = {key.lower(): _number(cluster.get(key), limit.low, limit.high, limit.default)
                  for key, limit in LIMITS.items()}
        return cls(**values, menu_timeout=_number(cluster.get("MENU_TIMEOUT"), 5, 3600,
                                                  DEFAULT_MENU_TIMEOUT))

    def keys(self) -> dict[str, int]:
        """Return the thresholds by cluster key (for messages and `hps-api stuck --json`)."""
        return {f.name.upper(): getattr(self, f.name) for f in fields(self)}


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class HostHistory:
    """What the journal says about one host since `known_from` (None: nothing is known)."""

    #: the times of its boots (new BOOT_SESSIONs), oldest first; only the most recent are kept
    boots: tuple[float, ...] = ()
    #: when STATE last changed, and to what
    state_at: float | None = None
    state: str | None = None
    #: when a kickstart was last served (a new `hosts/<mac12>.ks`)
    kickstart_at: float | None = None
    known_from: float | None = None


NO_HISTORY = HostHistory()


@dataclass(frozen=True)
class Finding:
    """A rule met: its name, since when the host waits (epoch s; None: not known), and why."""

    rule: str
    since: float | None
    detail: str


Rule = Callable[[Mapping[str, str], HostHistory, float, Limits], "Finding | None"]


def findings(record: Mapping[str, str], history: HostHistory, now: float,
             limits: Limits = DEFAULT_LIMITS) -> tuple[Finding, ...]:
    """Return every rule the host meets, the most telling first (RULES' order). Only the
    rules that can speak of the host's state are asked (STATES_OF): a scan asks 10,000."""
    rules = _RULES_OF.get(_state(record), _ANY_STATE)
    return tuple(found for rule in rules
                 if (found := rule(record, history, now, limits)) is not None)


# -- the rules, most telling first -------------------------------------------------------------


def kernel_fetch(record: Mapping[str, str], history: HostHistory, now: float,
                 limits: Limits) -> Finding | None:
    """INSTALLING, and no kickstart fetched within KERNEL_FETCH_MINUTES of the installer's
    decision: the kernel or initrd never loaded, or the installer cannot reach hps-api.

    The decision is the first one not followed by a kickstart: the change to INSTALLING, or a
    boot in INSTALLING (each is served the installer again; BOOT_TIME is the current one).
    A host that fails to load the installer asks again every 30 s (ipxe/installer.ipxe): its
    later boots do not restart the wait. Every time counted must be within the history, which
    must then hold no kickstart since.
    """
    if _state(record) != "INSTALLING" or history.known_from is None:
        return None
    floor = history.known_from
    if history.state == "INSTALLING" and history.state_at is not None:
        floor = max(floor, history.state_at)  # boots before the change were of another state
    if history.kickstart_at is not None:
        floor = max(floor, history.kickstart_at + 1e-6)  # that decision's kickstart came
    changed = history.state_at if history.state == "INSTALLING" else None
    decided = min((t for t in (changed, *history.boots, _epoch(record.get("BOOT_TIME")))
                   if t is not None and t >= floor), default=None)
    if decided is None:
        return None
    waited = now - decided
    if waited < limits.kernel_fetch_minutes * 60:
        return None
    return Finding("kernel_fetch", decided, f"installer sent {span(waited)} ago, no kickstart "
                   f"fetched since (KERNEL_FETCH_MINUTES={limits.kernel_fetch_minutes}): did the "
                   "kernel and initrd load, can the installer reach hps-api?")


def boot_loop(record: Mapping[str, str], history: HostHistory, now: float,
              limits: Limits) -> Finding | None:
    """More than BOOT_LOOP_COUNT boots in the last BOOT_LOOP_MINUTES, none of them after a
    STATE change: the host restarts and gets nowhere."""
    count = limits.boot_loop_count
    start = now - limits.boot_loop_minutes * 60
    if len(history.boots) <= count or history.boots[-count - 1] < start:
        return None  # the boots are in time order: the last count+1 are not all in the window
    if history.state_at is not None and history.state_at > start:
        start = history.state_at
    boots = history.boots[bisect.bisect_left(history.boots, start):]
    if len(boots) <= count:
        return None
    return Finding("boot_loop", boots[0], f"{len(boots)} boots in {span(now - boots[0])} "
                   f"without a state change (more than BOOT_LOOP_COUNT={limits.boot_loop_count}"
                   f" in BOOT_LOOP_MINUTES={limits.boot_loop_minutes})")


def install_timeout(record: Mapping[str, str], history: HostHistory, now: float,
                    limits: Limits) -> Finding | None:
    """INSTALLING for longer than INSTALL_TIMEOUT minutes."""
    if _state(record) != "INSTALLING":
        return None
    since, at_least = _in_state_since(history, "INSTALLING")
    if since is None or now - since < limits.install_timeout * 60:
        return None
    return Finding("install_timeout", since, f"INSTALLING for {at_least}{span(now - since)} "
                   f"(INSTALL_TIMEOUT={limits.install_timeout} min)")


def install_silent(record: Mapping[str, str], history: HostHistory, now: float,
                   limits: Limits) -> Finding | None:
    """Sent to the installer (CONFIGURED, REINSTALL, INSTALLING) and nothing heard from it
    (LAST_SEEN, else UPDATED) for INSTALL_SILENT_MINUTES."""
    state = _state(record)
    if state not in INSTALL_STATES:
        return None
    seen = _epoch(record.get("LAST_SEEN") or record.get("UPDATED"))
    if seen is None or now - seen < limits.install_silent_minutes * 60:
        return None
    return Finding("install_silent", seen, f"{state}, nothing heard from it for {span(now - seen)}"
                   f" (INSTALL_SILENT_MINUTES={limits.install_silent_minutes})")


def install_failed(record: Mapping[str, str], history: HostHistory, now: float,
                   limits: Limits) -> Finding | None:
    """INSTALL_FAILED: `init` gave up after INSTALL_MAX_ATTEMPTS boots in INSTALLING (a kernel
    that never loads makes iPXE ask again every 30 s: each time is a boot). Nothing moves
    until an operator reinstalls or reconfigures the host, so it is stuck from the change."""
    if _state(record) != "INSTALL_FAILED":
        return None
    since, at_least = _in_state_since(history, "INSTALL_FAILED")
    if since is None:  # changed past the journal: the record's own time is the best known
        since, at_least = _epoch(record.get("UPDATED")), "at least "
    ago = "" if since is None else f" for {at_least}{span(now - since)}"
    attempts = record.get("INSTALL_ATTEMPTS", "").strip()
    boots = f"{attempts} boots" if attempts.isdigit() else "its boots"
    return Finding("install_failed", since, f"INSTALL_FAILED{ago}: no installer got through in "
                   f"{boots} (INSTALL_MAX_ATTEMPTS); its timeline shows the step that failed")


def menu_wait(record: Mapping[str, str], history: HostHistory, now: float,
              limits: Limits) -> Finding | None:
    """In a menu state for more than MENU_WAIT_HOURS and still polling its menu (seen within
    POLLS_MISSED menu timeouts): a host nobody has chosen a type or an action for."""
    state = _state(record)
    if state not in MENU_STATES:
        return None
    seen = _epoch(record.get("LAST_SEEN"))
    if seen is None or now - seen > max(POLLS_MISSED * limits.menu_timeout, MIN_POLL_WINDOW):
        return None
    since, at_least = _in_state_since(history, state)
    if since is None or now - since < limits.menu_wait_hours * 3600:
        return None
    return Finding("menu_wait", since, f"{state} at its menu for {at_least}{span(now - since)}, "
                   f"still polling (MENU_WAIT_HOURS={limits.menu_wait_hours})")


def selftest(record: Mapping[str, str], history: HostHistory, now: float,
             limits: Limits) -> Finding | None:
    """A host running its system whose last self-test report is not a pass."""
    result = record.get("SELFTEST_RESULT", "").strip().lower()
    if not result or result == "pass" or _state(record) not in RUNNING_STATES:
        return None
    failed = [key[9:].lower() for key, value in record.items()
              if key.startswith("SELFTEST_") and key not in ("SELFTEST_RESULT", "SELFTEST_AT")
              and value.strip().lower() != "pass"]
    named = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
    return Finding("selftest", _epoch(record.get("SELFTEST_AT")),
                   f"{named} failed in the last report" if failed
                   else f"last report: {record.get('SELFTEST_RESULT', '').strip()[:60]}")


RULES: dict[str, Rule] = {
    "kernel_fetch": kernel_fetch, "install_failed": install_failed, "boot_loop": boot_loop,
    "install_timeout": install_timeout, "install_silent": install_silent,
    "menu_wait": menu_wait, "selftest": selftest}
#: rule -> the states it can speak of (None: any)
STATES_OF: dict[str, frozenset[str] | None] = {
    "kernel_fetch": frozenset({"INSTALLING"}), "install_failed": frozenset({"INSTALL_FAILED"}),
    "boot_loop": None, "install_timeout": frozenset({"INSTALLING"}),
    "install_silent": INSTALL_STATES, "menu_wait": MENU_STATES, "selftest": RUNNING_STATES}
_ANY_STATE = tuple(RULES[name] for name, states in STATES_OF.items() if states is None)
_RULES_OF = {state: tuple(RULES[name] for name, states in STATES_OF.items()
                          if states is None or state in states)
             for state in INSTALL_STATES | MENU_STATES | RUNNING_STATES}
#: each rule as people read it
TITLES = {"kernel_fetch": "kernel never fetched", "install_failed": "install gave up",
          "boot_loop": "boot loop",
          "install_timeout": "install too long", "install_silent": "install gone silent",
          "menu_wait": "waiting at its menu", "selftest": "self-test failing"}


# -- parts -------------------------------------------------------------------------------------


def span(seconds: float) -> str:
    """Return a duration as people say it: `40 s`, `25 min`, `3 h 10 min`, `2 days 4 h`."""
    total = max(int(seconds), 0)
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def iso_epoch(text: str) -> float | None:
    """Return the epoch seconds of the store's time form `2025-01-02T10:00:00Z`, else None.
    The minute is looked up once (a scan reads thousands of times from the same minutes)."""
    if len(text) != 20 or text[10] != "T" or text[19] != "Z":
        return None
    minute = _MINUTES.get(text[:16])
    if minute is None:
        try:
            minute = calendar.timegm((int(text[:4]), int(text[5:7]), int(text[8:10]),
                                      int(text[11:13]), int(text[14:16]), 0, 0, 0, 0))
        except ValueError:
            return None
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        _MINUTES[text[:16]] = minute
    seconds = text[17:19]
    return float(minute + int(seconds)) if seconds.isdigit() else None


_MINUTES: dict[str, int] = {}


def _epoch(value: str | None) -> float | None:
    """Return a stored time (ISO form, or epoch seconds as BOOT_TIME) as epoch seconds."""
    text = (value or "").strip()
    if text.isdigit():
        return float(text)
    return iso_epoch(text)


def _state(record: Mapping[str, str]) -> str:
    return (record.get("STATE") or "UNCONFIGURED").strip().upper()


def _in_state_since(history: HostHistory, state: str) -> tuple[float | None, str]:
    """Return since when the host is in `state` and "" (the change is in the history), or
    (the history's start, "at least ") when the history holds no STATE change at all; None
    when its last change went elsewhere (the record was changed past the journal)."""
    if history.state_at is not None:
        return (history.state_at, "") if history.state == state else (None, "")
    return history.known_from, "at least "


def _number(text: str | None, low: int, high: int, default: int) -> int:
    value = (text or "").strip()
    if value.isascii() and value.isdigit() and low <= int(value) <= high:
        return int(value)
    return default
