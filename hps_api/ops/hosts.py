"""Operations on one host, the same from every door (legacy commands, /api/v1, the pages, the
CLIs): configure, reinstall, unconfigure, unmanage, rescue on/off, set the state, set or unset a
key, delete.

Each checks what it writes (managed keys by `hps_api.ops.managed`, STATE by the state table)
and refuses a bad value with the reason before anything is written. Then it takes its side
effect as an explicit step: when HOSTNAME or IP changed, the cluster's dnsmasq files are
regenerated and dnsmasq reloaded, so reservations and names never go stale, whichever door
made the change.

The state an operator sets is checked against the state table too: a move the table has
(`model.states.is_ordinary`) is an ordinary change; any other is allowed to
an admin as a forced change, recorded as such in the journal (the actor gets " (forced)") and
the event log, and refused to everyone else.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from hps_api.boot.configure import configure_host
from hps_api.boot.decide import install_blocker
from hps_api.boot.flow import inputs_for
from hps_api.errors import Conflict
from hps_api.ids import normalize_key
from hps_api.model.states import is_ordinary, parse_state
from hps_api.observe import eventlog
from hps_api.ops import managed
from hps_api.ops.services import refresh_services, touches_services
from hps_api.settings import Settings
from hps_api.store import RecordId, Store

#: what `unconfigure` changes: the host forgets its type and install history; HOSTNAME and IP
#: stay, so the next configure gives it the same identity
UNCONFIGURE_CHANGES: dict[str, str | None] = {
    "STATE": "UNCONFIGURED", "TYPE": None, "PROFILE": None, "OS_ID": None,
    "INSTALL_ATTEMPTS": None, "FORCE_INSTALL": None}

#: RESCUE=yes boots the rescue image whatever the state (boot.decide)
RESCUE_KEY = "RESCUE"


def configure(store: Store, settings: Settings, cluster: str, mac: str, type_name: str,
              profile: str | None, actor: str, *, admin: bool) -> dict[str, str]:
    """Configure a host as TYPE/PROFILE (type, OS, hostname, IP, CONFIGURED), then refresh the
    service files. Raises what `boot.configure.configure_host` raises."""
    record = configure_host(store, cluster, mac, type_name, profile, actor, admin=admin)
    refresh_services(store, settings, cluster)
    return record


def reinstall(store: Store, rid: RecordId, actor: str, *,
              resources_dir: Path | None = None) -> dict[str, str]:
    """Set STATE=REINSTALL (the host installs again at its next network boot) and return the
    record. Conflict, saying why, when the install could not start (no TYPE, no OS for it, no
    HOSTNAME, with `resources_dir` its OS's kernel or initrd missing there...:
    `boot.decide.install_blocker`); the TYPE is checked again under the record's lock, so an
    unconfigure racing this cannot leave REINSTALL without a type."""
    record = store.items(rid)
    inputs = inputs_for(store, rid.cluster or "", rid.name or "", record, base_url="",
                        session=record.get("BOOT_SESSION", ""), resources_dir=resources_dir)
    blocked = install_blocker(inputs)
    if blocked is not None:
        raise Conflict(blocked.message)
    kind = record["TYPE"]  # install_blocker found a usable one
    record = store.update(rid, {"STATE": "REINSTALL"}, actor, expect={"TYPE": kind})
    eventlog.event(logging.INFO, f"marked for reinstall by {actor}", host=rid.name)
    return record


def unconfigure(store: Store, rid: RecordId, actor: str) -> dict[str, str]:
    """Forget TYPE, PROFILE, OS_ID, the install counter and FORCE_INSTALL; STATE=UNCONFIGURED.
    HOSTNAME and IP stay. Raises NotFound."""
    record = store.update(rid, UNCONFIGURE_CHANGES, actor)
    eventlog.event(logging.INFO, f"unconfigured by {actor}", host=rid.name)
    return record


def unmanage(store: Store, rid: RecordId, actor: str) -> dict[str, str]:
    """STATE=UNMANAGED: hps-api boots the host from its disk and changes nothing else."""
    return set_state(store, rid, "UNMANAGED", actor, admin=True)


def rescue(store: Store, rid: RecordId, on: bool, actor: str) -> dict[str, str]:
    """Set (on) or clear (off) RESCUE: while set, every boot takes the rescue image whatever
    the state. Raises NotFound."""
    record = store.update(rid, {RESCUE_KEY: "yes" if on else None}, actor)
    eventlog.event(logging.INFO, f"rescue {'on' if on else 'off'} by {actor}", host=rid.name)
    return record


def set_state(store: Store, rid: RecordId, state: str, actor: str, *, admin: bool,
              create: bool = False, session: str | None = None,
              client: str | None = None) -> dict[str, str]:
    """Move a host to `state` through the state table and return the record.

    A move the table has is written on the condition that STATE did not change since it was
    read (two racing reports cannot both pass); a move it lacks is forced when `admin`
    (recorded as forced), else Conflict. InvalidInput for an unknown state. `session` and
    `client` tag the event-log line (a node's report names its boot session).
    """
    new = parse_state(state)
    current = store.items(rid).get("STATE") if store.exists(rid) else None
    forced = not is_ordinary(current, new, admin=admin)
    if forced and not admin:
        raise Conflict(f"illegal state transition {current or '(none)'} -> {new}")
    who = f"{actor} (forced)" if forced else actor
    record = store.update(rid, {"STATE": new}, who, create=create,
                          expect=None if forced else {"STATE": current})
    level = logging.WARNING if forced else logging.INFO
    eventlog.event(level, f"state {current or '(none)'} -> {new}" + (
        f" (forced by {actor})" if forced else ""), host=rid.name, session=session,
        client=client)
    return record


def set_key(store: Store, settings: Settings, rid: RecordId, key: str, value: str,
            actor: str, *, create: bool = False) -> dict[str, str]:
    """Set one key of a host as an admin and return the new record (`create`: register the host
    first, as `host_config MAC set` does).

    A managed key's value is checked first (`hps_api.ops.managed`; STATE through `set_state`):
    InvalidInput with the reason and nothing written. Refreshes the service files when
    HOSTNAME or IP changed. Raises InvalidInput, NotFound, Conflict, StoreBusy...
    """
    name = normalize_key(key)
    if name == "STATE":
        return set_state(store, rid, value, actor, admin=True, create=create)
    if managed.is_managed(name):
        managed.precheck(name, value)  # what needs no other record: before any lock is taken
    with _guard(store, rid, name):
        before = store.items(rid) if store.exists(rid) else None
        if managed.is_managed(name):
            value = managed.check(store, rid, name, value, before or {})
        after = store.update(rid, {name: value}, actor, create=create)
    _follow(store, settings, rid, before, after)
    return after


def unset_key(store: Store, settings: Settings, rid: RecordId, key: str,
              actor: str) -> dict[str, str]:
    """Remove one key of a host and return the new record; KeyNotSet when it was not set.
    Unsetting STATE (the host counts as UNCONFIGURED) is outside the state table: recorded
    as forced."""
    name = normalize_key(key)
    before = store.items(rid)
    after = store.unset(rid, name, f"{actor} (forced)" if name == "STATE" else actor)
    _follow(store, settings, rid, before, after)
    return after


def delete(store: Store, settings: Settings, rid: RecordId, actor: str) -> None:
    """Delete a host's record; refresh the service files when it held a reservation."""
    before = store.items(rid)
    store.delete(rid, actor)
    _follow(store, settings, rid, before, None)


def check_value(store: Store, rid: RecordId, key: str, value: str) -> str:
    """Return a value as `set_key` would store it, or raise InvalidInput saying why it cannot be
    (no write, no lock: for doors that validate a whole batch before writing any of it)."""
    name = normalize_key(key)
    if name == "STATE":
        return parse_state(value)
    record = store.items(rid) if store.exists(rid) else {}
    return managed.check(store, rid, name, value, record) if managed.is_managed(name) else value


@contextlib.contextmanager
def _guard(store: Store, rid: RecordId, name: str) -> Iterator[None]:
    """Hold the cluster's allocation lock while a key compared with other hosts is checked and
    written (the allocator takes the same lock)."""
    if managed.needs_cluster_lock(name) and rid.cluster:
        with store.lock(rid.cluster):
            yield
    else:
        yield


def _follow(store: Store, settings: Settings, rid: RecordId,
            before: Mapping[str, str] | None, after: Mapping[str, str] | None) -> None:
    if rid.cluster and touches_services(before, after):
        refresh_services(store, settings, rid.cluster)
