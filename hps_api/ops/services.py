"""The service files an operation keeps current: dnsmasq's reservations and names follow every
change of a host's HOSTNAME or IP (docs/deploy.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from hps_api.errors import HpsError
from hps_api.observe import eventlog
from hps_api.services import reload_dnsmasq, render_services
from hps_api.settings import Settings
from hps_api.store import FileStore

#: host keys dnsmasq's files are made of: a change to one re-renders them
SERVICE_KEYS = frozenset({"HOSTNAME", "IP"})


def refresh_services(store: FileStore, settings: Settings, cluster: str) -> None:
    """Regenerate the cluster's service files and reload dnsmasq.

    The change that asked for it is already made: a failure here (no network configured yet, no
    dnsmasq running) is logged as a warning, never turned into a failed change.
    """
    try:
        render_services(store, settings, cluster)
        reload_dnsmasq(settings)
    except (HpsError, OSError) as err:
        eventlog.event(logging.WARNING, f"service files not regenerated: {err}")


def touches_services(before: Mapping[str, str] | None, after: Mapping[str, str] | None) -> bool:
    """Return True when a host's change affects dnsmasq's files (HOSTNAME or IP differ)."""
    before, after = before or {}, after or {}
    return any(before.get(key) != after.get(key) for key in SERVICE_KEYS)
