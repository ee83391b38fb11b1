"""`open_store(settings)`: the one place hps-api chooses its store backend.

Every door (the app, the server's start-up checks, the console scripts) opens its store here:
the files under `HPS_CONFIG_DIR`, or, when `HPS_STORE` names an etcd cluster, the etcd backend
(docs/scale-out.md), which keeps its local tree (rendered service files, run/) under
`HPS_CONFIG_DIR` all the same. Tests replace this one function to hand every door a fake store
(tests/fakes.py).
"""

from __future__ import annotations

from hps_api.settings import Settings, etcd_members
from hps_api.store.base import Store
from hps_api.store.filestore import FileStore

#: seconds one etcd request may take before the next member is asked
ETCD_REQUEST_SECONDS = 2.0
#: seconds a request keeps trying members (at least HPS_LOCK_TIMEOUT) before StoreUnavailable
ETCD_DEADLINE_SECONDS = 5.0


def open_store(settings: Settings) -> Store:
    """Return the store the settings point at (creating nothing): the file backend at
    `HPS_CONFIG_DIR` with `HPS_LOCK_TIMEOUT`, `HPS_SENSITIVE_KEYS` and the journal's
    `HPS_JOURNAL_MAX_MIB` and `HPS_JOURNAL_ROTATIONS`; or the etcd cluster `HPS_STORE` names
    (InvalidInput naming HPS_STORE when its URL is wrong)."""
    if settings.store:
        return open_etcd(settings.store, settings)
    return FileStore(settings.config_dir, settings.lock_timeout, settings.sensitive_keys,
                     settings.journal_max_mib * 1024 * 1024, settings.journal_rotations)


def open_etcd(url: str, settings: Settings) -> Store:
    """Return the etcd store an `etcd://` URL names, its local tree under HPS_CONFIG_DIR."""
    from hps_api.errors import InvalidInput
    from hps_api.store.etcdgateway import Gateway
    from hps_api.store.etcdstore import EtcdStore

    try:
        members, prefix = etcd_members(url)
    except ValueError as err:
        raise InvalidInput(f"HPS_STORE={url!r}: {err}") from None
    gateway = Gateway(members, ETCD_REQUEST_SECONDS,
                      max(ETCD_DEADLINE_SECONDS, settings.lock_timeout))
    return EtcdStore(gateway, prefix, settings.config_dir, settings.lock_timeout,
                     settings.sensitive_keys)
