"""The IPS health every page's header shows: the last IPS self-test of this worker, kept for
HEALTH_SECONDS.

The self-test (hps_api.ops.selftest) parses every record and runs `dnsmasq --test` and
`rsyslogd -N1`: 0.6-0.8 s at 10,000 hosts, far too much for every page. So each worker runs it
once, on its first page, and afterwards at most once per HEALTH_SECONDS, in a background
thread started by the first page that finds the result stale; that page and the ones after it
show the previous result until the new one is in. `/health` runs it live and hands its
result here, so the header never contradicts the page below it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hps_api.ops.selftest import Check

HEALTH_SECONDS = 60.0


@dataclass(frozen=True)
class Health:
    """One self-test's outcome as the header shows it: the names of the failed checks, and
    when (epoch seconds) it ran."""

    failed: tuple[str, ...]
    checked_at: float

    @property
    def ok(self) -> bool:
        """Return True when every check passed."""
        return not self.failed


class HealthCache:
    """The last self-test result of this worker, refreshed in the background when stale."""

    def __init__(self, run: Callable[[], Sequence[Check]],
                 seconds: float = HEALTH_SECONDS) -> None:
        self._run = run
        self.seconds = seconds
        self._result: Health | None = None
        self._lock = threading.Lock()
        self._refreshing = False

    def current(self) -> Health:
        """Return the last result; the first call runs the self-test, a stale result starts
        a refresh in the background and is returned meanwhile."""
        result = self._result
        if result is None:
            with self._lock:
                if self._result is None:
                    self._result = self._measure()
                return self._result
        if time.time() - result.checked_at >= self.seconds:
            self._refresh_in_background()
        return result

    def record(self, checks: Sequence[Check]) -> Health:
        """Keep a self-test result run elsewhere (the /health page) and return it."""
        self._result = summarise(checks)
        return self._result

    def _measure(self) -> Health:
        return summarise(self._run())

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True

        def refresh() -> None:
            try:
                self._result = self._measure()
            finally:
                self._refreshing = False

        threading.Thread(target=refresh, name="hps-ips-health", daemon=True).start()


def summarise(checks: Sequence[Check]) -> Health:
    """Return the header's view of a self-test run now."""
    return Health(tuple(check.name for check in checks if not check.ok), time.time())
