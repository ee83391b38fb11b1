"""Persistent state: the Store interface, its file backend, the factory and the record grammar.

Code outside this package names `Store` and opens one with `factory.open_store(settings)`,
looked up in its module at every call so that tests can replace it in one place.
"""

from typing import TYPE_CHECKING

from hps_api.store.base import Store
from hps_api.store.filestore import FileStore
from hps_api.store.records import Kind, RecordId

__all__ = ["FileStore", "Kind", "RecordId", "Store"]

if TYPE_CHECKING:
    from hps_api.store.etcdstore import EtcdStore

    def _file_store_is_a_store(store: FileStore) -> Store:
        """Make mypy check FileStore against the Store protocol, method by method."""
        return store

    def _etcd_store_is_a_store(store: EtcdStore) -> Store:
        """Make mypy check EtcdStore against the Store protocol, method by method."""
        return store
