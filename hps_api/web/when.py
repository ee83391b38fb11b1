"""Times as people read them: "3 min ago", with the exact UTC time kept for a hover title.

The store keeps times as ISO-8601 UTC (`2025-01-02T10:00:00Z`: LAST_SEEN, UPDATED, SELFTEST_AT...)
and BOOT_TIME as epoch seconds; both are shown the same way. Pure functions: `now` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hps_api.ops.host_query import epoch_of

#: host and cluster keys whose values are times
TIME_KEYS = frozenset({"LAST_SEEN", "UPDATED", "CREATED", "FIRST_SEEN", "BOOT_TIME",
                       "SELFTEST_AT", "HW_CHANGED_AT"})
_UNITS = ((60, 1, "s"), (3600, 60, "min"), (48 * 3600, 3600, "h"), (60 * 86400, 86400, "days"))


@dataclass(frozen=True)
class When:
    """A moment: `iso` for machines and the hover title, `ago` for people."""

    iso: str
    ago: str


def when(value: str | None, now: float) -> When | None:
    """Return the moment a stored time names, None when the value is not a time."""
    seconds = epoch_of(value)
    if seconds is None:
        return None
    iso = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return When(iso, ago(now - seconds, iso))


def ago(seconds: float, iso: str = "") -> str:
    """Return how long ago `seconds` were (`3 min ago`, `in 2 h` for the future); beyond 60
    days the date itself (from `iso`)."""
    span = abs(seconds)
    if span < 10:
        return "just now"
    for limit, unit, name in _UNITS:
        if span < limit:
            count = int(span // unit)
            return f"{count} {name} ago" if seconds >= 0 else f"in {count} {name}"
    return iso[:10] if iso else f"{int(span // 86400)} days ago"
