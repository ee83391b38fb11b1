"""The part of a log a question needs, and no more (docs/timeline.md, "The cost").

A log is written in time order, so the lines of a range of time are found by bisection: a
dozen probes of PROBE_BYTES into a 100 MB file, then the range alone is read (`read_between`).
`lines_with` then finds the lines holding any of a few needles (a MAC's spellings, an address)
with `bytes.find`, without splitting or decoding the lines that hold none, which is most of
them; the cost is a pass over what was read per needle (and one more to fold case, for logs
whose writers do not write one case).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

#: a bisection stops when the range is this small; a probe reads this much
BISECT_BYTES = 64 * 1024
PROBE_BYTES = 4096
#: lines looked at for a probe's time (a garbled line or two is passed over)
TIME_PROBE_LINES = 8

LineTime = Callable[[str], float | None]


def read_between(path: Path, since: float, until: float | None, line_time: LineTime, *,
                 limit: int, newest: bool = False) -> bytes:
    """Return the whole lines of a log written in time order from about `since` to about
    `until` (None: to the end); of a longer range, the first `limit` bytes (`newest`: the
    last). b"" when the file cannot be read. `line_time` gives a line's time, None for a line
    it cannot read.

    The range starts up to BISECT_BYTES early and ends up to BISECT_BYTES late, so lines
    written a few seconds out of order are not missed.
    """
    try:
        handle = path.open("rb")
    except OSError:
        return b""
    with handle:
        size = handle.seek(0, os.SEEK_END)
        start = _bisect(handle, size, since, line_time, late_if_unknown=True)
        end = size if until is None else min(size, BISECT_BYTES + _bisect(
            handle, size, until, line_time, late_if_unknown=False))
        start, end = (max(start, end - limit), end) if newest else (start, min(end, start + limit))
        handle.seek(start)
        data = _whole_lines(handle, start, handle.read(end - start))
    return data if end == size else data[:data.rfind(b"\n") + 1]


def read_head(path: Path, limit: int) -> bytes:
    """Return the first `limit` bytes of a file that is not a log (one line per host, in no
    order: dnsmasq's leases), cut after its last whole line; b"" when it cannot be read."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return b""
    return data if len(data) <= limit else data[:data.rfind(b"\n", 0, limit) + 1]


def head_time(path: Path, line_time: LineTime) -> float | None:
    """Return the time of a log's first readable line (None: none, or no file)."""
    try:
        with path.open("rb") as handle:
            return _first_time(handle.read(PROBE_BYTES), 0, line_time)
    except OSError:
        return None


def lines_with(data: bytes, needles: Iterable[str], *, any_case: bool = False) -> list[str]:
    """Return, in file order, the lines of `data` holding any needle; with `any_case`, in any
    case (the needles are then given in lower case)."""
    return lines_at(data, spans_with(data, needles, any_case=any_case))


def spans_with(data: bytes, needles: Iterable[str], *,
               any_case: bool = False) -> set[tuple[int, int]]:
    """Return the (start, end) offsets of the lines of `data` holding any needle; with
    `any_case`, in any case (the needles are then given in lower case)."""
    wanted = [needle.encode("utf-8") for needle in needles if needle]
    if not wanted:
        return set()
    low = data.lower() if any_case else data
    spans: set[tuple[int, int]] = set()
    for needle in wanted:
        hit = low.find(needle)
        while hit != -1:
            start = low.rfind(b"\n", 0, hit) + 1
            end = low.find(b"\n", hit)
            end = len(low) if end == -1 else end
            spans.add((start, end))
            hit = low.find(needle, end)
    return spans


def lines_at(data: bytes, spans: Iterable[tuple[int, int]]) -> list[str]:
    """Return the lines at these offsets of `data`, in file order."""
    return [data[start:end].decode("utf-8", "replace") for start, end in sorted(spans)]


def _bisect(handle: BinaryIO, size: int, moment: float, line_time: LineTime, *,
            late_if_unknown: bool) -> int:
    """Return an offset at most BISECT_BYTES before the first line written at `moment` or
    later; a probe that reads no time counts as late (or early) as asked, so that a garbled
    stretch only widens the range."""
    low, high = 0, size
    while high - low > BISECT_BYTES:
        middle = (low + high) // 2
        handle.seek(middle)
        at = _first_time(handle.read(PROBE_BYTES), middle, line_time)
        late = late_if_unknown if at is None else at >= moment
        low, high = (low, middle) if late else (middle, high)
    return low


def _first_time(data: bytes, offset: int, line_time: LineTime) -> float | None:
    """Return the time of the first readable whole line of `data` (read from `offset`: a line
    cut at its start is passed over), None when none of the first few is readable."""
    lines = data.split(b"\n", TIME_PROBE_LINES + 1)[1 if offset else 0:TIME_PROBE_LINES + 1]
    for line in lines:
        at = line_time(line.decode("utf-8", "replace"))
        if at is not None:
            return at
    return None


def _whole_lines(handle: BinaryIO, start: int, data: bytes) -> bytes:
    """Return `data`, read from `start`, without its first line when that line is cut."""
    if start == 0:
        return data
    handle.seek(start - 1)
    if handle.read(1) == b"\n":
        return data
    return data[data.find(b"\n") + 1:] if b"\n" in data else b""
