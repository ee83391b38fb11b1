"""Persistent state: the Store interface, its file backend and the record grammar."""

from typing import TYPE_CHECKING

from hps_api.store.base import Store
from hps_api.store.filestore import FileStore
from hps_api.store.records import Kind, RecordId

__all__ = ["FileStore", "Kind", "RecordId", "Store"]

if TYPE_CHECKING:
    def _file_store_is_a_store(store: FileStore) -> Store:
        """Make mypy check FileStore against the Store protocol, method by method."""
        return store
