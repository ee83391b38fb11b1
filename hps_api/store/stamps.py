"""Host stamps: a host's bookkeeping keys in `hosts/<mac12>.stamp`, beside its record.

Format: a first line `# hps-stamp <crc32 hex> <body length>`, then the keys in the record
grammar, at most MAX_STAMP_BYTES. The file is rewritten in place with one `pwrite` (under the
record's lock, taken by the caller) and never fsynced; a reader that finds the length or the
CRC wrong reads again once, then ignores it. See FileStore.stamp and docs/storage.md.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import zlib
from collections.abc import Mapping
from pathlib import Path

from hps_api.errors import CorruptRecord, InvalidInput
from hps_api.store import files
from hps_api.store.kvfile import format_record, from_mapping, parse_items

STAMP_SUFFIX = ".stamp"
MAX_STAMP_BYTES = 4096
_STAMP_HEAD = re.compile(rb"# hps-stamp ([0-9a-f]{8}) ([0-9]{1,4})\n")


def stamp_path(record_path: Path | str) -> str:
    """Return `hosts/<mac12>.stamp` for `hosts/<mac12>.conf` (as a string: read per request)."""
    return str(record_path)[:-len(".conf")] + STAMP_SUFFIX


def read_stamp(path: Path | str) -> dict[str, str] | None:
    """Return the keys of a stamp file; None when there is none or it does not verify.

    A stamp that fails its length or CRC-32 is being rewritten right now (read again once) or
    was torn by a crash (the record's values apply until the next stamp or update).
    """
    for _attempt in range(2):
        data = files.read_bytes(path)
        if data is None:
            return None
        found = stamp_items(data, str(path))
        if found is not None:
            return found
    return None


def stamp_items(data: bytes, name: str) -> dict[str, str] | None:
    """Return the keys of a stamp file's bytes; None when its length or CRC-32 is wrong (caught
    mid-rewrite, or torn) or its body does not parse."""
    head = _STAMP_HEAD.match(data)
    if head:
        body = data[head.end():head.end() + int(head[2])]
        if len(body) == int(head[2]) and zlib.crc32(body) == int(head[1], 16):
            try:
                return parse_items(body, name)
            except CorruptRecord:
                return None
    return None


def write_stamp(path: str, values: Mapping[str, str], record_path: Path) -> None:
    """Rewrite a stamp file in place with one `pwrite` (created with the record's mode and, as
    root, its owner); InvalidInput when it would exceed MAX_STAMP_BYTES.

    StoreUnavailable when the disk refuses it; a stamp file created for this write is removed
    again, an existing one may be left torn (ignored by readers) for the caller to put back.
    """
    body = format_record(from_mapping(values))
    data = b"# hps-stamp %08x %d\n" % (zlib.crc32(body), len(body)) + body
    if len(body) > MAX_STAMP_BYTES:
        raise InvalidInput(f"{os.path.basename(path)} would exceed {MAX_STAMP_BYTES} bytes")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, files.NEW_FILE_MODE)
    except OSError as err:
        raise files.unwritable(err, path) from None
    size = 0
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            mode, owner = files.mode_and_owner(record_path)
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
        if os.pwrite(fd, data, 0) < len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if size > len(data):
            os.ftruncate(fd, len(data))
    except BaseException as err:
        if size == 0:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if isinstance(err, OSError):
            raise files.unwritable(err, path) from None
        raise
    finally:
        os.close(fd)


def put_back(path: str, values: Mapping[str, str], record_path: Path) -> None:
    """Make the stamp hold `values` again after a change that is being taken back (no values:
    no stamp file). Rewritten in place, into the space the stamp already had, unless it still
    holds them (the write being taken back never landed)."""
    if (read_stamp(path) or {}) == dict(values):
        return
    if values:
        write_stamp(path, values, record_path)
    else:
        with files.writing(path), contextlib.suppress(FileNotFoundError):
            os.unlink(path)
