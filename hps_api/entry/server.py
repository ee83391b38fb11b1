"""`hps-api serve`: the app under gunicorn, through gunicorn's custom-application API.

The defaults are chosen for a small IPS box (a few cores; tens to a few hundred nodes that boot
in waves and then mostly stay quiet):

- Workers: `--workers`, else `HPS_WORKERS`, else (0) auto = cores + 1, capped at 8. Python runs
  one request at a time per process (the GIL), so one process per core keeps the cores busy and
  the extra one covers a process paused in the kernel; more processes only cost memory (about
  33 MB RSS each). The boot-storm benchmark measured 2, 3 and 5 workers on 2 cores, with 4, 8
  and 16 threads: requests per second and CPU per request did not differ beyond the machine's
  noise (docs/performance.md, Boot storm), so the smaller count wins on memory. (Until the
  boot-storm work the default was 2 x cores + 1 with 4 threads.)
- Worker class `gthread` with 16 threads per worker rather than `sync`: threads release the GIL
  while they wait on a lock or an fsync, gthread keeps HTTP keep-alive connections, and a long
  response (a kernel or ISO under /distros, docs/api.md §7) does not pin a whole process, nor get it
  killed by the timeout below, as it would with a sync worker. A download holds its thread for
  as long as the client takes (seconds to minutes for an initrd over a shared 1 GbE link while
  a rack boots), but costs no CPU meanwhile (sendfile), so threads are plentiful: 3 x 16 = 48
  downloads at once on 2 cores before requests queue behind them, where 5 x 4 allowed 20. The
  store is thread-safe: each write opens its own lock file descriptor.
- timeout 30 s: a worker whose main loop is silent that long is killed and replaced.
  graceful_timeout 10 s: on SIGTERM in-flight requests get 10 s to finish; nodes retry anyway.
- Preloaded: the app is built once, in the master, after the settings are read, so a bad
  setting fails at start with one line (`hps-api: HPS_...`, exit 2) rather than in every worker,
  and workers fork with the app ready.
- Access log: `HPS_LOG_DIR/access.log`, with every query value replaced by `*` except those of
  the selector parameters in `LOGGED_PARAMS` (docs/api.md §8: no sensitive value in a log line; a
  `host_variable` value may be a password). gunicorn's own messages go to stderr (journald
  under systemd, the terminal under scripts/serve); events go to hps-api.log (eventlog).
- Power (docs/power.md): each worker starts a power-state poller thread when it starts
  (`post_worker_init`); only the worker holding the flock on `run/power/poller.lock` polls, so
  the BMCs are read once per interval whatever the worker count, and another worker takes over
  when that one dies. Not in the master: it forks, and threads there would be forked too.
- Stuck hosts (docs/stuck.md): each worker starts a watch thread too; only the worker holding
  the flock on `run/stuck/watch.lock` scans (every HPS_STUCK_SCAN_SECONDS) and announces, so a
  host becomes stuck once in the event log and at HPS_WEBHOOK_URL whatever the worker count.
- Metrics (HPS_METRICS, on by default): the workers count into files under
  `HPS_CONFIG_DIR/run/metrics`, emptied at every start, and any worker answering `/metrics`
  adds up all of them (prometheus-client's multiprocess mode, docs/api.md §9); when a worker
  exits, the master forgets its live-only values (`child_exit`).
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from hps_api.errors import InvalidInput
from hps_api.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    WSGIApp = Callable[..., Any]

MAX_AUTO_WORKERS = 8
MAX_WORKERS = 256  # as for HPS_WORKERS
THREADS = 16
TIMEOUT = 30
GRACEFUL_TIMEOUT = 10
ACCESS_LOG = "access.log"
ACCESS_FORMAT = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
LOGGED_PARAMS = frozenset({
    "cmd", "mac", "name", "action", "status", "os_id", "hosttype", "profile", "menu_item",
    "index", "distro", "format", "via", "client",
})


def auto_workers(cores: int | None = None) -> int:
    """Return the default worker count: cores + 1, capped at MAX_AUTO_WORKERS."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    return min(cores + 1, MAX_AUTO_WORKERS)


def gunicorn_options(settings: Settings, bind: str | None = None,
                     workers: int | None = None) -> dict[str, Any]:
    """Return gunicorn's settings for these HPS settings; `bind`/`workers` override them.

    Raises InvalidInput for a worker count outside 0-256. Creates HPS_LOG_DIR.
    """
    count = settings.workers if workers is None else workers
    if not 0 <= count <= MAX_WORKERS:
        raise InvalidInput(f"--workers {count}: must be a whole number from 0 (auto) to "
                           f"{MAX_WORKERS}")
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    return {
        "bind": [bind or settings.bind],
        "workers": count or auto_workers(),
        "worker_class": "gthread",
        "threads": THREADS,
        "timeout": TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "preload_app": True,
        "accesslog": str(settings.log_dir / ACCESS_LOG),
        "access_log_format": ACCESS_FORMAT,
        "errorlog": "-",
        "logger_class": AccessLogger,
        "proc_name": "hps-api",
        "post_worker_init": worker_started,
        "child_exit": forget_worker_metrics,
        # gunicorn >= 25 opens a control socket at ~/.gunicorn/gunicorn.ctl by default: one
        # path shared by every instance of every user's service; nothing here uses it.
        "control_socket_disable": True,
    }


def serve(settings: Settings, bind: str | None = None, workers: int | None = None) -> int:
    """Build the app from `settings` and run it under gunicorn until stopped (does not return).

    Settings and start-up errors (InvalidInput, OSError) propagate before anything listens.
    """
    from hps_api import create_app

    if settings.webhook_url:
        from hps_api.observe.webhook import check_url

        check_url(settings.webhook_url)
    options = gunicorn_options(settings, bind, workers)
    if settings.metrics:  # before the app, whose metrics must be made in multiprocess mode
        from hps_api.observe import metrics

        metrics.use_multiprocess_dir(metrics.multiprocess_dir(settings.config_dir))
    app = create_app(settings)
    sweep_debris(settings)
    log_selftest(settings)
    run_app(app, options)
    return 0


def sweep_debris(settings: Settings) -> None:
    """Remove the temp files killed writers left in the store (older than a minute), and log
    how many: a crash heals itself instead of waiting for an operator."""
    import logging

    from hps_api.observe import eventlog
    from hps_api.store.fsck import sweep_stale_temps
    from hps_api.store.layout import Layout

    removed = sweep_stale_temps(Layout(settings.config_dir))
    if removed:
        eventlog.event(logging.INFO, f"removed {len(removed)} temp file(s) left by interrupted "
                       "writes", host="ips")


def log_selftest(settings: Settings) -> None:
    """Run the IPS self-test once at start and log every result (failures as warnings).

    A failing check does not stop the server: a half-configured IPS still serves the pages that
    show what is missing.
    """
    import logging

    from hps_api.observe import eventlog
    from hps_api.ops.selftest import run_selftest
    from hps_api.store import factory

    store = factory.open_store(settings)
    for check in run_selftest(store, settings):
        eventlog.event(logging.INFO if check.ok else logging.WARNING,
                       f"selftest {check.line()}", host="ips")


def run_app(app: WSGIApp, options: dict[str, Any]) -> None:
    """Run any WSGI app under gunicorn with `options` (the benchmark's ceiling app uses it too)."""
    count_sendfile_bytes()
    HpsServer(app, options).run()


def worker_started(worker: Any) -> None:
    """In each new worker: leave SIGINT to the master, start the power poller thread (only
    the worker holding the poller's lock polls: hps_api.ops.power_jobs, docs/power.md) and
    the stuck-host watch (likewise: hps_api.ops.announce, docs/stuck.md)."""
    leave_sigint_to_master(worker)
    start_power_poller(worker.wsgi)
    start_stuck_watch(worker.wsgi)


def start_power_poller(app: Any) -> None:
    """Start the power-state poller of a worker on the app's store (none for gunicorn's
    stand-in app of a worker whose app failed to load)."""
    from hps_api.ops.power_jobs import Poller

    runtime = getattr(app, "extensions", {}).get("hps")
    if runtime is not None:
        Poller(runtime.store).start()


def start_stuck_watch(app: Any) -> None:
    """Start the stuck-host watch of a worker on the app's store, settings and host index (none
    for gunicorn's stand-in app of a worker whose app failed to load)."""
    from hps_api.ops.announce import Watch
    from hps_api.web.pages import host_index

    runtime = getattr(app, "extensions", {}).get("hps")
    if runtime is not None:
        with app.app_context():
            index = host_index()  # the pages' own: one copy of the records per worker
        Watch.of(runtime.store, runtime.settings, index).start()


def leave_sigint_to_master(worker: Any) -> None:
    """Make a worker ignore SIGINT: the master answers Ctrl-C by sending it SIGQUIT.

    Ctrl-C signals the whole process group; a gthread worker that got SIGINT and then the
    master's SIGQUIT hung in about one run in ten (gunicorn 27) until the master's SIGKILL
    after graceful_timeout.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def forget_worker_metrics(server: Any, worker: Any) -> None:
    """Drop the live-only metric values of a worker that exited (in the master)."""
    from hps_api.observe import metrics

    metrics.process_gone(worker.pid)


class HpsServer(BaseApplication):  # type: ignore[misc]
    """gunicorn's custom application: a ready WSGI app and a dict of gunicorn settings."""

    def __init__(self, app: WSGIApp, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply the options gunicorn knows (older releases lack the control-socket one)."""
        for name, value in self.options.items():
            if name in self.cfg.settings:
                self.cfg.set(name, value)

    def load(self) -> WSGIApp:
        """Return the app built before gunicorn started."""
        return self.application


class AccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with the query string's values redacted in the access log."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any],
              request_time: Any) -> dict[str, Any]:
        """Return gunicorn's log atoms with `r` (request line) and `q` redacted."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        path, _, query = str(environ.get("RAW_URI", "")).partition("?")
        query = redact_query(query)
        atoms["q"] = query
        atoms["r"] = (f"{environ.get('REQUEST_METHOD')} {path}{'?' if query else ''}{query} "
                      f"{environ.get('SERVER_PROTOCOL')}")
        return atoms


def count_sendfile_bytes() -> None:
    """Make gunicorn count the bytes it sends with sendfile(2) in the response's `sent`.

    gunicorn (27) adds to `sent` only what goes through write(), so the access log said `200 0`
    for every whole file under /distros (a 14 MB kernel included), the one number an operator
    reads there while a rack downloads. On success gunicorn sent the response length (or the
    rest of the file) and put the file position back; on an error socket.sendfile leaves the
    position after the last byte sent, so a client that hung up mid-file is counted exactly.
    Idempotent.
    """
    from gunicorn.http import wsgi  # type: ignore[import-untyped]

    original = wsgi.Response.sendfile
    if getattr(original, "counts_bytes", False):
        return

    def sendfile(self: Any, respiter: Any) -> Any:
        filelike: Any = getattr(respiter, "filelike", None)
        start: int | None = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            start = filelike.tell()
        try:
            used = original(self, respiter)
        except BaseException:
            if start is not None:  # socket.sendfile left the position after the last byte sent
                with contextlib.suppress(OSError, ValueError):
                    self.sent += max(filelike.tell() - start, 0)
            raise
        if used and start is not None and not getattr(self, "_omits_body", False):
            # gunicorn sent response_length bytes, or the rest of the file without one, and
            # then put the position back.
            with contextlib.suppress(OSError, ValueError):
                rest = os.fstat(filelike.fileno()).st_size - start
                self.sent += self.response_length if self.response_length is not None else rest
        return used

    sendfile.counts_bytes = True  # type: ignore[attr-defined]
    wsgi.Response.sendfile = sendfile


def redact_query(query: str) -> str:
    """Return the raw query with each value outside LOGGED_PARAMS replaced by `*`."""
    pairs = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        pairs.append(pair if not eq or name in LOGGED_PARAMS or not value else f"{name}=*")
    return "&".join(pairs)
