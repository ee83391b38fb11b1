"""Writing the files the IPS daemons read: atomically and durably, so no daemon sees half a file."""

from __future__ import annotations

from pathlib import Path

from hps_api.store import files

FILE_MODE = 0o644


def write_atomic(path: Path, data: bytes) -> Path:
    """Replace `path` with `data` the way the store writes a record (temp file, fsync, read-back
    check, rename, directory fsync), readable by every daemon (mode 0644)."""
    files.write_durably(path, data, mode=FILE_MODE)
    return path
