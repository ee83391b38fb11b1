"""The per-process objects a request needs, built once in create_app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from hps_api.errors import NotFound
from hps_api.net.identity import Neighbours
from hps_api.settings import Settings
from hps_api.store import Store
from hps_api.store.bootstrap import active_cluster as stored_active_cluster


@dataclass(frozen=True)
class Runtime:
    """Settings, the store and the neighbour table of this worker."""

    settings: Settings
    store: Store
    neighbours: Neighbours

    def active_cluster(self) -> str:
        """Return ACTIVE_CLUSTER from hps.conf (read per request: an operator may switch it)."""
        active = stored_active_cluster(self.store)
        if not active:
            raise NotFound("no active cluster: run 'hps-api init'")
        return active


def runtime() -> Runtime:
    """Return the Runtime of the current app."""
    state: Runtime = current_app.extensions["hps"]
    return state
