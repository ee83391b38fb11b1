"""The store interface: what the rest of hps-api may ask of persistent state.

The storage package owns the record files. Code outside `store/` names `Store`, never a
backend, and gets its store from `hps_api.store.factory.open_store(settings)`, the one place a
backend is chosen; tests hand the app and the CLIs a fake that fails on every call
(tests/fakes.py). The etcd backend (`hps_api.store.etcdstore`, docs/scale-out.md) implements
this same protocol without the API noticing.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from hps_api.store.journal import Change, JournalLines
from hps_api.store.layout import Layout
from hps_api.store.records import Kind, RecordId


class Store(Protocol):
    """Records of `KEY=value` pairs with atomic multi-key updates and a change journal.

    Besides the records, every backend keeps a local tree under `HPS_CONFIG_DIR`, its `layout`:
    the rendered service files (`layout.services_dir(cluster)`, which dnsmasq, rsyslog and nginx
    read from disk whatever holds the records), the root the self-test checks for space, and
    `layout.hps_conf` named in messages. The layout's record paths (`path`, `journal_for`) are
    the file backend's own: readers of the journal ask `journal_path` (a file they may follow
    themselves, or None) and `journal_lines`, writers of extra lines `append_journal`.
    """

    @property
    def layout(self) -> Layout:
        """Return the local tree under `HPS_CONFIG_DIR` (see the class docstring)."""
        ...

    def exists(self, rid: RecordId) -> bool:
        """Return True when the record exists."""
        ...

    def items(self, rid: RecordId) -> dict[str, str]:
        """Return the record's keys and values in order; NotFound when it does not exist."""
        ...

    def get(self, rid: RecordId, key: str) -> str:
        """Return one value; KeyNotSet when the key is not set, NotFound without the record."""
        ...

    def update(
        self,
        rid: RecordId,
        changes: Mapping[str, str | None],
        actor: str,
        *,
        create: bool = False,
        expect: Mapping[str, str | None] | None = None,
    ) -> dict[str, str]:
        """Apply all changes at once (None unsets) and return the new record; with `expect`,
        only if those keys still hold those values (Conflict otherwise). Atomic and durable."""
        ...

    def stamp(self, rid: RecordId, values: Mapping[str, str], actor: str) -> None:
        """Record a host's bookkeeping keys (the boot-session stamp) cheaply: seen by every
        read, journaled, but a crash may bring back the previous values."""
        ...

    def unset(self, rid: RecordId, key: str, actor: str) -> dict[str, str]:
        """Remove one key and return the new record; KeyNotSet when it was not set."""
        ...

    def delete(self, rid: RecordId, actor: str) -> None:
        """Remove a whole record; NotFound when it does not exist."""
        ...

    def list_records(self, kind: Kind, cluster: str | None = None) -> list[RecordId]:
        """Return the ids of every record of a kind (hosts: of one cluster), sorted."""
        ...

    def history(self, rid: RecordId, *, limit: int | None = None) -> list[Change]:
        """Return the journal entries of one record that are kept, oldest first (a boot is one
        entry: `Change.boot`); with `limit`, only the newest, until `limit` boots and `limit`
        other changes are among them."""
        ...

    def journal_path(self, cluster: str | None) -> Path | None:
        """Return the file holding a cluster's journal (None: the global one) when the backend
        keeps it in a file a reader may follow itself; None when it does not."""
        ...

    def journal_lines(self, cluster: str | None, *, after: int = 0,
                      limit: int | None = None) -> JournalLines:
        """Return the newest `limit` lines of a cluster's journal (None: the global one) as
        the journal file holds them, oldest first, only those after the cursor `after` (a
        cursor an earlier answer gave; 0: every line kept), and the cursor to ask from next."""
        ...

    def append_journal(self, rid: RecordId, changes: list[Change]) -> None:
        """Add lines to a record's journal as they are (a power action's outcome, an imported
        record's old time); StoreUnavailable when they cannot be written."""
        ...

    def write_attachment(self, rid: RecordId, suffix: str, data: str, actor: str) -> Path:
        """Store a text file beside a host record (`ks`: its rendered kickstart), atomically,
        under the record's lock; return where it lives. NotFound without the host."""
        ...

    def read_attachment(self, rid: RecordId, suffix: str) -> str:
        """Return the text of a host record's attachment; NotFound when there is none."""
        ...

    def lock(self, cluster: str) -> AbstractContextManager[None]:
        """Return the cluster-wide allocation lock (StoreBusy after the timeout)."""
        ...
