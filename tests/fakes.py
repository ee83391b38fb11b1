"""Test fakes of the store (matchbox's `testfakes/broken_store.go`): a `Store` that fails.

`BrokenStore(error, root)` implements every method of the `hps_api.store.Store` protocol by
raising `error`, so a test can hand it to a door (the app through `build_app(settings,
store=...)`, the CLIs through `hps_api.store.factory.open_store`) and see how that door answers
a busy, full or corrupt store without making the disk misbehave. Its `layout` is a real one over
`root`: the local tree every backend keeps is a path, not a store call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from hps_api.errors import HpsError
from hps_api.store import Kind, RecordId
from hps_api.store.journal import Change, JournalLines
from hps_api.store.layout import Layout


class BrokenStore:
    """A Store whose every call raises `error` (and is remembered in `calls`, by name)."""

    def __init__(self, error: HpsError, root: Path) -> None:
        self.error = error
        self.layout = Layout(root)
        self.calls: list[str] = []

    def _fail(self, name: str) -> NoReturn:
        self.calls.append(name)
        raise self.error

    def exists(self, rid: RecordId) -> bool:
        self._fail("exists")

    def items(self, rid: RecordId) -> dict[str, str]:
        self._fail("items")

    def get(self, rid: RecordId, key: str) -> str:
        self._fail("get")

    def update(self, rid: RecordId, changes: Mapping[str, str | None], actor: str, *,
               create: bool = False,
               expect: Mapping[str, str | None] | None = None) -> dict[str, str]:
        self._fail("update")

    def stamp(self, rid: RecordId, values: Mapping[str, str], actor: str) -> None:
        self._fail("stamp")

    def unset(self, rid: RecordId, key: str, actor: str) -> dict[str, str]:
        self._fail("unset")

    def delete(self, rid: RecordId, actor: str) -> None:
        self._fail("delete")

    def list_records(self, kind: Kind, cluster: str | None = None) -> list[RecordId]:
        self._fail("list_records")

    def history(self, rid: RecordId, *, limit: int | None = None) -> list[Change]:
        self._fail("history")

    def write_attachment(self, rid: RecordId, suffix: str, data: str, actor: str) -> Path:
        self._fail("write_attachment")

    def read_attachment(self, rid: RecordId, suffix: str) -> str:
        self._fail("read_attachment")

    def journal_path(self, cluster: str | None) -> Path | None:
        self._fail("journal_path")

    def journal_lines(self, cluster: str | None, *, after: int = 0,
                      limit: int | None = None) -> JournalLines:
        self._fail("journal_lines")

    def append_journal(self, rid: RecordId, changes: list[Change]) -> None:
        self._fail("append_journal")

    @contextmanager
    def lock(self, cluster: str) -> Iterator[None]:
        self._fail("lock")
        yield  # never reached: a generator needs one
