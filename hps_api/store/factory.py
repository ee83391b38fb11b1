"""`open_store(settings)`: the one place hps-api chooses its store backend.

Every door (the app, the server's start-up checks, the console scripts) opens its store here, so
a second backend (etcd, a later issue) is a branch in this function, and tests replace this one
function to hand every door a fake store (tests/fakes.py).
"""

from __future__ import annotations

from hps_api.settings import Settings
from hps_api.store.base import Store
from hps_api.store.filestore import FileStore


def open_store(settings: Settings) -> Store:
    """Return the store the settings point at (creating nothing): today the file backend at
    `HPS_CONFIG_DIR` with `HPS_LOCK_TIMEOUT`, `HPS_SENSITIVE_KEYS` and the journal's
    `HPS_JOURNAL_MAX_MIB` and `HPS_JOURNAL_ROTATIONS`."""
    return FileStore(settings.config_dir, settings.lock_timeout, settings.sensitive_keys,
                     settings.journal_max_mib * 1024 * 1024, settings.journal_rotations)
