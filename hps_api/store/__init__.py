"""Persistent state: the Store interface, its file backend and the record grammar."""

from hps_api.store.base import Store
from hps_api.store.filestore import FileStore
from hps_api.store.records import Kind, RecordId

__all__ = ["FileStore", "Kind", "RecordId", "Store"]
