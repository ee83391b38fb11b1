"""Periodic work that one process of the server does at a time (the power poller, the stuck-host
watch): every worker runs the loop, and the one that holds the job's lock file does the work.
When that worker dies its lock goes with it, and another worker takes the job at its next turn.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path

from hps_api.observe import eventlog


class LeaderLoop:
    """Run `work()` every `interval` seconds while holding the lock file `lock_path`."""

    #: the thread's name and what a failed round is called in the event log
    name = "hps-periodic"

    def __init__(self, lock_path: Path, interval: float) -> None:
        self.lock_path = lock_path
        self.interval = interval
        self._lock_fd: int | None = None
        self._stop = threading.Event()

    def work(self) -> object:
        """One round of the job (overridden)."""
        raise NotImplementedError

    def leads(self) -> bool:
        """Return True when this process holds the job's lock (taking it when free)."""
        if self._lock_fd is not None:
            return True
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def start(self) -> threading.Thread:
        """Start the loop's thread (a daemon: it ends with the process) and return it."""
        thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Make the thread end after its current round and let the lock go."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.leads():
                    self.work()
            except Exception as err:  # a failed round must never end the thread
                eventlog.event(logging.ERROR, f"{self.name} failed", host="ips", error=err)
            self._stop.wait(self.interval)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
