"""One action on many hosts (docs/ui.md, "Bulk actions"): configure as TYPE/PROFILE, reinstall,
rescue on/off, unconfigure, delete, and the power actions (queued per host through its BMC).

Each host goes through the same operation a single host does (hps_api.ops.hosts, and for
configure `boot.configure.configure_host`, the checked step `ops.hosts.configure` is made of),
on its own: a host that fails (not waiting for a type, no OS for its type, gone meanwhile)
gets its reason in its Outcome and the others carry on, so a partial failure never hides the
rest. What the whole batch shares is checked once, before any host is touched (the action,
the TYPE/PROFILE, the number of hosts): a bad request changes nothing.

Configure refreshes dnsmasq's files once after the batch instead of after each host (the
refresh reads every host of the cluster: per host it would make a batch quadratic); delete
refreshes them as `ops.hosts.delete` does, for each host that held a reservation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hps_api.boot.configure import configure_host
from hps_api.errors import Conflict, HpsError, InvalidInput
from hps_api.model.catalog import host_type, profile_of
from hps_api.model.states import MENU_STATES, in_order
from hps_api.ops import hosts as host_ops
from hps_api.ops.services import refresh_services
from hps_api.settings import Settings
from hps_api.store import RecordId, Store

#: action -> what its confirmation asks ("Reinstall 3 hosts?")
ACTIONS = {"configure": "Configure", "reinstall": "Reinstall", "rescue_on": "Rescue on for",
           "rescue_off": "Rescue off for", "unconfigure": "Unconfigure", "delete": "Delete",
           "power_on": "Power on", "power_off": "Power off", "power_cycle": "Power cycle",
           "power_pxe_once": "Network boot once for"}
#: bulk action -> the power action it queues for each host (hps_api.ops.power)
POWER_STEPS = {"power_on": "on", "power_off": "off", "power_cycle": "cycle",
               "power_pxe_once": "pxe-once"}
#: queues a power action for one host off the request path: (cluster, mac, steps, actor) ->
#: the action's record (the web door's power runner); raises what ops.power.prepare raises
Submit = Callable[[str, str, list[str], str], Mapping[str, Any]]
#: what each action did to one host
DONE = {"reinstall": "marked for reinstall", "rescue_on": "rescue on: boots the rescue image",
        "rescue_off": "rescue off", "unconfigure": "unconfigured", "delete": "deleted"}
MAX_HOSTS = 2000


@dataclass(frozen=True)
class Outcome:
    """What an action did to one host: `ok`, and what happened or why not."""

    mac: str
    ok: bool
    message: str


@dataclass(frozen=True)
class Batch:
    """An action checked as a whole: the hosts, and the TYPE/PROFILE for configure."""

    action: str
    macs: tuple[str, ...]
    type_name: str = ""
    profile: str = ""

    @property
    def label(self) -> str:
        """Return what the batch does, as a confirmation names it ("Configure as SCH/DEFAULT")."""
        if self.action == "configure":
            return f"Configure as {self.type_name}/{self.profile}"
        return ACTIONS[self.action]


def plan(action: str, macs: Iterable[str], choice: str = "") -> Batch:
    """Return the batch for `action` on `macs` (duplicates dropped, order kept), checked as a
    whole; InvalidInput for an unknown action, no host, too many, or a bad TYPE/PROFILE."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action[:40]!r} (one of: {', '.join(ACTIONS)})")
    unique = tuple(dict.fromkeys(macs))
    if not unique:
        raise InvalidInput("no host selected: tick hosts in the list, or act on the filter")
    if len(unique) > MAX_HOSTS:
        raise InvalidInput(f"{len(unique)} hosts: at most {MAX_HOSTS} in one action, "
                           "narrow the filter")
    if action != "configure":
        return Batch(action, unique)
    type_name, _, profile = choice.strip().partition("/")
    if not type_name:
        raise InvalidInput("choose a host type and profile to configure the hosts as")
    kind = host_type(type_name)
    return Batch(action, unique, kind.name, profile_of(kind, profile or None))


def run(store: Store, settings: Settings, cluster: str, batch: Batch, actor: str,
        submit: Submit | None = None) -> list[Outcome]:
    """Apply the batch to each host in turn and return one Outcome per host, in order. A power
    action is queued for each host through `submit` (never carried out here: a BMC may take a
    minute to answer); a host without a BMC gets its reason like any other failure."""
    if batch.action in POWER_STEPS:
        if submit is None:
            raise InvalidInput("power actions are queued by the server: use the hosts page or "
                               "'hps-api power'")
        return [_power(cluster, batch, mac, actor, submit) for mac in batch.macs]
    outcomes = [_one(store, settings, cluster, batch, mac, actor) for mac in batch.macs]
    if batch.action == "configure" and any(o.ok for o in outcomes):
        refresh_services(store, settings, cluster)
    return outcomes


def configure_waiting(store: Store, cluster: str, mac12: str, type_name: str,
                      profile: str | None, actor: str) -> dict[str, str]:
    """Configure a host that waits for a type (UNCONFIGURED, FAILED, INSTALL_FAILED) and
    return its record; Conflict for a host in another state (unconfigure it first), and
    what `configure_host` raises. The service files are the caller's step."""
    check_waiting(mac12, store.items(RecordId.of_host(cluster, mac12)))
    return configure_host(store, cluster, mac12, type_name, profile, actor, admin=True)


def check_waiting(mac12: str, record: Mapping[str, str]) -> None:
    """Raise Conflict unless the host waits for a type (its state is one of MENU_STATES)."""
    state = record.get("STATE", "UNCONFIGURED")
    if state not in MENU_STATES:
        raise Conflict(f"host {mac12} is {state}: only hosts in "
                       f"{', '.join(in_order(MENU_STATES))} are configured here; unconfigure "
                       "first")


def _power(cluster: str, batch: Batch, mac: str, actor: str, submit: Submit) -> Outcome:
    try:
        record = submit(cluster, mac, [POWER_STEPS[batch.action]], actor)
    except (HpsError, OSError) as err:
        return Outcome(mac, False, str(err) or type(err).__name__)
    return Outcome(mac, True, f"{POWER_STEPS[batch.action]} queued (action {record['id']}): "
                              "its outcome is on the host's page")


def _one(store: Store, settings: Settings, cluster: str, batch: Batch, mac: str,
         actor: str) -> Outcome:
    try:
        rid = RecordId.of_host(cluster, mac)
        action = batch.action
        if action == "configure":
            record = configure_waiting(store, cluster, rid.name or "", batch.type_name,
                                       batch.profile, actor)
            return Outcome(mac, True, f"configured as {batch.type_name}/{batch.profile}: "
                                      f"{record.get('HOSTNAME', '')} {record.get('IP', '')}")
        if action == "reinstall":
            host_ops.reinstall(store, rid, actor, resources_dir=settings.resources_dir)
        elif action in ("rescue_on", "rescue_off"):
            host_ops.rescue(store, rid, action == "rescue_on", actor)
        elif action == "unconfigure":
            host_ops.unconfigure(store, rid, actor)
        else:
            host_ops.delete(store, settings, rid, actor)
        return Outcome(mac, True, DONE[action])
    except (HpsError, OSError) as err:
        return Outcome(mac, False, str(err) or type(err).__name__)
