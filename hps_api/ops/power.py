"""Power operations (docs/power.md): a host's BMC settings, one power action on one host with
retries and verification, the same action over many hosts, and the last known state.

Every door calls these: the JSON API through the background runner (`hps_api.ops.power_jobs`),
the CLI directly. An action is: open the driver, read the state, send the command, then read
the state back until it is the one asked for (verify-after-set) or `verify_timeout` passes. A
failure that trying again can cure (no answer, HTTP 5xx) is retried with a doubling backoff,
`attempts` times in all; a refused password, an unknown system or a BMC that accepted the
command but never changed state is not. Every action that changes something is a journal line
(`POWER_ACTION` on the host, with the actor) and every action an event-log line.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from hps_api.errors import Conflict, HpsError, InvalidInput, NotFound
from hps_api.ids import normalize_mac
from hps_api.model.states import parse_state
from hps_api.observe import eventlog
from hps_api.power import drivers
from hps_api.power.base import (
    ACTIONS,
    CHANGING,
    CYCLE,
    OFF,
    ON,
    POWER_OFF,
    POWER_ON,
    PXE_ONCE,
    STATUS,
    UNKNOWN,
    Driver,
    PowerError,
)
from hps_api.power.bmc import Bmc, BmcStore, checked
from hps_api.power.records import StateBook, run_dir
from hps_api.store import Kind, RecordId, Store
from hps_api.store.files import acquire
from hps_api.store.journal import Change, utc_now

#: how many hosts a bulk action or a poll talks to at once
CONCURRENCY = 16
#: how long an action waits for another action on the same host to finish
HOST_LOCK_SECONDS = 300.0
MAX_MESSAGE = 300


class NoBmc(Conflict):
    """The host has no BMC settings: nothing to talk to."""


@dataclass(frozen=True)
class Policy:
    """How hard an action tries: attempts in all, the first backoff (doubled each time), the
    timeout of each BMC exchange, how long and how often the state is read back."""

    attempts: int = 3
    backoff: float = 1.0
    timeout: float = 10.0
    verify_timeout: float = 60.0
    verify_interval: float = 1.0
    #: read the state back after a change (off: report what the BMC accepted, and go)
    verify: bool = True


DEFAULT_POLICY = Policy()
#: the poller's reads: one try, short timeouts (the next poll is the retry)
POLL_POLICY = Policy(attempts=1, timeout=5.0)


@dataclass(frozen=True)
class Outcome:
    """What came of an action on one host; `skipped` when the host has no BMC."""

    mac: str
    action: str
    ok: bool
    message: str
    state: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    skipped: bool = False


# --- BMC settings ----------------------------------------------------------------------------

def set_bmc(store: Store, cluster: str, mac: str, bmc: Bmc, actor: str) -> dict[str, Any]:
    """Store a registered host's BMC settings and return them as shown. A password left out is
    kept from the settings it replaces when the driver is the same. NotFound for an unknown
    host; InvalidInput for bad settings (nothing written)."""
    rid = _host(store, cluster, mac)
    bmcs = BmcStore(store.layout.root)
    old = bmcs.get(cluster, rid.name or "")
    if not bmc.password and old is not None and old.driver == bmc.driver:
        bmc = replace(bmc, password=old.password)
    bmc = checked(bmc)
    bmcs.put(cluster, rid.name or "", bmc)
    _journal(store, rid, "BMC", old.describe() if old else None, bmc.describe(), actor)
    eventlog.event(logging.INFO, f"BMC set to {bmc.describe()} by {actor}", host=rid.name)
    return show_bmc(store, cluster, mac)


def show_bmc(store: Store, cluster: str, mac: str) -> dict[str, Any]:
    """Return `{mac, cluster, bmc}` with the settings as shown (no password); NotFound when the
    host has none."""
    mac12 = normalize_mac(mac)
    bmc = BmcStore(store.layout.root).get(cluster, mac12)
    if bmc is None:
        raise NotFound(f"host {mac12} has no BMC settings")
    return {"mac": mac12, "cluster": cluster, "bmc": bmc.shown()}


def unset_bmc(store: Store, cluster: str, mac: str, actor: str) -> dict[str, Any]:
    """Forget a host's BMC settings and its last known power state; NotFound when none."""
    mac12 = normalize_mac(mac)
    old = BmcStore(store.layout.root).remove(cluster, mac12)
    if old is None:
        raise NotFound(f"host {mac12} has no BMC settings")
    StateBook(store.layout.root).forget(cluster, mac12)
    _journal(store, RecordId.of_host(cluster, mac12), "BMC", old.describe(), None, actor)
    eventlog.event(logging.INFO, f"BMC settings removed by {actor}", host=mac12)
    return {"mac": mac12, "cluster": cluster, "removed": True}


def power_view(store: Store, cluster: str, mac: str) -> dict[str, Any]:
    """Return what is known of a host's power without asking its BMC: the settings as shown
    (None without a BMC) and the last reading (state, when, error). NotFound for an unknown
    host."""
    rid = _host(store, cluster, mac)
    mac12 = rid.name or ""
    bmc = BmcStore(store.layout.root).get(cluster, mac12)
    known = StateBook(store.layout.root).get(cluster, mac12) if bmc else None
    known = known or {}
    return {"mac": mac12, "cluster": cluster, "bmc": bmc.shown() if bmc else None,
            "state": known.get("state"), "checked": known.get("checked"),
            "error": known.get("error"), "source": known.get("source")}


def power_counts(store: Store, cluster: str) -> dict[str, int]:
    """Return how many hosts with a BMC were last read on, off, failing to answer (`error`) or
    not read yet (`unknown`): the poller's readings, no BMC is asked. One small file read per
    host with a BMC."""
    states = StateBook(store.layout.root)
    counts = {"on": 0, "off": 0, "error": 0, "unknown": 0}
    for mac in BmcStore(store.layout.root).macs(cluster):
        known = states.get(cluster, mac) or {}
        state = "error" if known.get("error") else str(known.get("state") or "unknown")
        counts[state if state in counts else "unknown"] += 1
    return counts


# --- one host ----------------------------------------------------------------------------------

def parse_steps(text: str | Iterable[str]) -> list[str]:
    """Return the actions to run in order; InvalidInput naming the known ones."""
    steps = [text] if isinstance(text, str) else list(text)
    for step in steps:
        if step not in ACTIONS:
            raise InvalidInput(f"unknown power action {str(step)[:20]!r}: one of "
                               f"{', '.join(ACTIONS)}")
    if not steps:
        raise InvalidInput(f"no power action: one of {', '.join(ACTIONS)}")
    return steps


def prepare(store: Store, cluster: str, mac: str, steps: list[str]) -> Bmc:
    """Return the BMC an action will use, after every check that needs no BMC: NotFound for an
    unknown host, Conflict for a host without BMC settings or a driver that cannot do it."""
    rid = _host(store, cluster, mac)
    bmc = BmcStore(store.layout.root).get(cluster, rid.name or "")
    if bmc is None:
        raise NoBmc(f"host {rid.name} has no BMC: set one first (hps-api bmc set "
                       f"{rid.name} --driver redfish|ipmi|wol ..., or PUT "
                       f"/api/v1/hosts/{rid.name}/bmc)")
    refused = [step for step in steps if not drivers.supports(bmc, step)]
    if refused:
        raise Conflict(f"host {rid.name}: {bmc.driver} cannot {refused[0]} (Wake-on-LAN can "
                       "only power a host on; off, cycle and pxe-once need Redfish or IPMI)")
    return bmc


def run_action(store: Store, cluster: str, mac: str, steps: list[str], actor: str,
               policy: Policy = DEFAULT_POLICY, connect: drivers.Connect = drivers.connect, *,
               quiet: bool = False) -> Outcome:
    """Carry out `steps` on one host (the next step only after the last one succeeded) and
    return the outcome; the host's other actions wait for it. Raises what `prepare` raises;
    a BMC's failure is an Outcome with ok False, never an exception. `quiet`: no event-log
    line for a status read (the poller logs one line per poll)."""
    bmc = prepare(store, cluster, mac, steps)
    mac12 = normalize_mac(mac)
    lock = run_dir(store.layout.root) / "locks" / f"{cluster}-{mac12}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = acquire(lock, HOST_LOCK_SECONDS)
    try:
        outcome = perform(bmc, mac12, steps, policy, connect)
    finally:
        os.close(fd)
    _remember(store, cluster, outcome, actor, quiet=quiet)
    return outcome


def perform(bmc: Bmc, mac12: str, steps: list[str], policy: Policy,
            connect: drivers.Connect = drivers.connect) -> Outcome:
    """Return the outcome of `steps` against a BMC: each step tried `policy.attempts` times
    while its failure is one trying again can cure."""
    started, attempts = time.monotonic(), 0
    state: str | None = None
    messages: list[str] = []
    for step in steps:
        for attempt in range(1, policy.attempts + 1):
            attempts += 1
            try:
                state, message = _attempt(bmc, mac12, step, policy, connect)
                messages.append(message)
                break
            except PowerError as err:
                if not err.retry or attempt == policy.attempts:
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    return Outcome(mac12, " + ".join(steps), False, _cut(f"{step}: {err}{tries}"),
                                   None, attempts, time.monotonic() - started)
                time.sleep(policy.backoff * 2 ** (attempt - 1))
    return Outcome(mac12, " + ".join(steps), True, _cut("; ".join(messages)), state, attempts,
                   time.monotonic() - started)


def _attempt(bmc: Bmc, mac12: str, step: str, policy: Policy,
             connect: drivers.Connect) -> tuple[str | None, str]:
    driver = connect(bmc, mac12, policy.timeout)
    try:
        return _carry_out(driver, step, policy)
    finally:
        driver.close()


def _carry_out(driver: Driver, step: str, policy: Policy) -> tuple[str | None, str]:
    """Return the state read back and a message; PowerError when the BMC failed."""
    if step == PXE_ONCE:
        return None, _pxe_once(driver)
    before = driver.power_state()
    if step == STATUS:
        return before, f"power is {before}"
    wanted = POWER_OFF if step == OFF else POWER_ON
    if step in (ON, OFF) and before == wanted:
        return before, f"already {wanted}"
    if step == OFF:
        driver.power_off()
    elif step == CYCLE and before == POWER_ON:
        driver.power_cycle()
    else:
        driver.power_on()
    if not policy.verify:
        return None, f"{step} accepted by the BMC (not read back)"
    state = _read_back(driver, wanted, step, policy)
    if state == UNKNOWN:
        return state, f"{step} sent; this BMC cannot read the power state back"
    return state, f"{step}: power is {state} (read back)"


def _pxe_once(driver: Driver) -> str:
    driver.pxe_once()
    override = driver.boot_override()
    if not override.reported:
        return "network boot set for the next boot (this BMC does not report boot flags " \
               "back: not verified)"
    if override.device != "pxe":
        raise PowerError(f"the BMC accepted the network boot but reports boot device "
                         f"{override.device}", retry=True)
    if not override.once:
        return "network boot set (read back; the BMC reports it for every boot, not only the " \
               "next)"
    return "network boot set for the next boot (read back)"


def _read_back(driver: Driver, wanted: str, step: str, policy: Policy) -> str:
    """Return the state once it is `wanted` (or UNKNOWN); PowerError (no retry: the command
    was taken) when it is not by `verify_timeout`. A read that fails meanwhile is tried again:
    a BMC is often busy right after a power change."""
    deadline = time.monotonic() + policy.verify_timeout
    state, problem = UNKNOWN, ""
    while True:
        try:
            state, problem = driver.power_state(), ""
        except PowerError as err:
            if not err.retry:
                raise
            problem = f" (last read: {err})"
        if not problem and state in (wanted, UNKNOWN):
            return state
        if time.monotonic() >= deadline:
            seen = f"still reports power {state}" if not problem else "could not be read"
            raise PowerError(f"the BMC accepted {step} but the host {seen} after "
                             f"{policy.verify_timeout:g} s{problem}", retry=False)
        time.sleep(policy.verify_interval)


# --- many hosts --------------------------------------------------------------------------------

def select_hosts(store: Store, cluster: str, *, type_: str | None = None,
                 state: str | None = None) -> list[str]:
    """Return the MACs of the cluster's hosts of a type and/or in a state (all without either),
    sorted. InvalidInput for an unknown state; a record that cannot be read is left out."""
    wanted = parse_state(state) if state else None
    kind = type_.upper() if type_ else None
    macs = []
    for rid in store.list_records(Kind.HOST, cluster):
        try:
            items = store.items(rid)
        except HpsError:
            continue
        if (wanted is None or items.get("STATE", "").upper() == wanted) and \
                (kind is None or items.get("TYPE", "").upper() == kind):
            macs.append(rid.name or "")
    return sorted(macs)


def run_many(store: Store, cluster: str, macs: list[str], steps: list[str], actor: str,
             policy: Policy = DEFAULT_POLICY, connect: drivers.Connect = drivers.connect, *,
             concurrency: int = CONCURRENCY, quiet: bool = False,
             done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Carry out `steps` on every host, `concurrency` at a time, and return the outcomes in the
    order of `macs`. A host's failure (no BMC, BMC refused, store error) is its own outcome:
    the others go on. `done` is told of each outcome as it comes (from worker threads)."""
    parse_steps(steps)

    def one(mac: str) -> Outcome:
        try:
            outcome = run_action(store, cluster, mac, steps, actor, policy, connect, quiet=quiet)
        except HpsError as err:
            outcome = Outcome(mac, " + ".join(steps), False, _cut(str(err)),
                              skipped=isinstance(err, NoBmc))
        if done is not None:
            done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, concurrency),
                            thread_name_prefix="hps-power") as pool:
        return list(pool.map(one, macs))


def summary(outcomes: list[Outcome]) -> str:
    """Return the one-line count: `N hosts: A ok, B failed, C without a BMC (S s)`."""
    ok = sum(o.ok for o in outcomes)
    skipped = sum(o.skipped for o in outcomes)
    failed = len(outcomes) - ok - skipped
    slowest = max((o.seconds for o in outcomes), default=0.0)
    return (f"{len(outcomes)} hosts: {ok} ok, {failed} failed, {skipped} without a BMC "
            f"(slowest {slowest:.1f} s)")


# --- records -----------------------------------------------------------------------------------

def _host(store: Store, cluster: str, mac: str) -> RecordId:
    rid = RecordId.of_host(cluster, mac)
    if not store.exists(rid):
        raise NotFound(f"Host {rid.name} not found")
    return rid


def _remember(store: Store, cluster: str, outcome: Outcome, actor: str, *,
              quiet: bool) -> None:
    """Keep the state read, journal a changing action, log it."""
    steps = outcome.action.split(" + ")
    book = StateBook(store.layout.root)
    if outcome.state is not None:
        book.record(cluster, outcome.mac, outcome.state, None, actor)
    elif steps == [STATUS]:
        book.record(cluster, outcome.mac, None, outcome.message, actor)
    verdict = "ok" if outcome.ok else "failed"
    if CHANGING.intersection(steps):
        _journal(store, RecordId.of_host(cluster, outcome.mac), "POWER_ACTION", None,
                 _cut(f"{outcome.action}: {verdict}: {outcome.message}"), actor)
    if not quiet:
        eventlog.event(logging.INFO if outcome.ok else logging.WARNING,
                       f"power {outcome.action} by {actor}: {verdict} in "
                       f"{outcome.seconds:.1f} s: {outcome.message}", host=outcome.mac)


def _journal(store: Store, rid: RecordId, key: str, old: str | None, new: str | None,
             actor: str) -> None:
    store.append_journal(rid, [Change(utc_now(), rid.label, key, old, new, actor)])


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."
