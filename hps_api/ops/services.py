"""The service files: render them and reload dnsmasq, in one place for every door
(`render-services`, the wizard, install, and every operation whose change reaches dnsmasq's
reservations and names: a host's HOSTNAME or IP, a cluster's network keys; docs/deploy.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from hps_api.errors import HpsError
from hps_api.observe import eventlog
from hps_api.services import Rendered, render_services, why_not_reloaded
from hps_api.settings import Settings
from hps_api.store import Store

#: host keys dnsmasq's files are made of: a change to one re-renders them
SERVICE_KEYS = frozenset({"HOSTNAME", "IP"})


@dataclass(frozen=True)
class Refreshed:
    """What `render_and_reload` did: the files written (with the hosts left out of them, named
    with the reason), and why dnsmasq was not reloaded (None: it was, or it was not asked)."""

    rendered: Rendered
    not_reloaded: str | None


def render_and_reload(store: Store, settings: Settings, cluster: str, *,
                      reload: bool = True) -> Refreshed:
    """Write the cluster's service files, then (`reload`) send dnsmasq SIGHUP. Raises
    InvalidInput (the cluster network itself is wrong: nothing written) and OSError."""
    rendered = render_services(store, settings, cluster)
    return Refreshed(rendered, why_not_reloaded(settings) if reload else None)


def refresh_services(store: Store, settings: Settings, cluster: str) -> None:
    """Regenerate the cluster's service files and reload dnsmasq, after a change.

    The change that asked for it is already made: a failure here (no network configured yet, no
    dnsmasq running) is logged as a warning, never turned into a failed change.
    """
    try:
        render_and_reload(store, settings, cluster)
    except (HpsError, OSError) as err:
        eventlog.event(logging.WARNING, f"service files not regenerated: {err}")


def touches_services(before: Mapping[str, str] | None, after: Mapping[str, str] | None) -> bool:
    """Return True when a host's change affects dnsmasq's files (HOSTNAME or IP differ)."""
    before, after = before or {}, after or {}
    return any(before.get(key) != after.get(key) for key in SERVICE_KEYS)
