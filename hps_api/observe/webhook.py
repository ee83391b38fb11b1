"""Announcements POSTed to an operator's URL (HPS_WEBHOOK_URL; docs/stuck.md, "The webhook").

`Webhook.send` only queues: it never waits for the network, so no request and no scan is held
up by a receiver that is slow or down. One thread per process (started with the first
announcement, so gunicorn's master never has one) POSTs each body in turn as JSON, signed
with `X-HPS-Signature: sha256=<hex HMAC-SHA256 of the body with HPS_WEBHOOK_SECRET>`, and
tries again after 1, 2, 4, 8, 16 s (DELAYS) when the receiver cannot be reached, times out or
answers 408, 429 or 5xx. Any other answer but 2xx is final (a redirect is not followed: the
body would be lost on the way). A body given up on is named in the event log; at most
QUEUE_SIZE wait, and more are dropped with a line there. The URL is never logged whole (it may
hold a password): only its host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from hps_api import __version__
from hps_api.errors import InvalidInput
from hps_api.observe import eventlog

HEADER = "X-HPS-Signature"
#: seconds to wait before each new attempt: six attempts over about half a minute
DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
TIMEOUT = 5.0
QUEUE_SIZE = 256
#: statuses worth another attempt: the receiver is busy or broken for now
RETRIED = frozenset({408, 429})
#: POST one body; returns the HTTP status, raises OSError when nothing answered
Post = Callable[[str, bytes, dict[str, str], float], int]


def signature(secret: str, body: bytes) -> str:
    """Return the X-HPS-Signature value of a body: `sha256=` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def check_url(url: str) -> str:
    """Return the URL when it is an http or https URL with a host; InvalidInput otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises ValueError here)
    except ValueError as err:
        raise InvalidInput(f"HPS_WEBHOOK_URL: not a URL ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("HPS_WEBHOOK_URL: must be an http:// or https:// URL with a host")
    return url


class Webhook:
    """A queue of bodies and the thread that delivers them to one URL."""

    def __init__(self, url: str, secret: str = "", *, delays: Sequence[float] = DELAYS,
                 timeout: float = TIMEOUT, queue_size: int = QUEUE_SIZE,
                 post: Post | None = None) -> None:
        self.url = check_url(url)
        self.secret = secret
        self.delays = tuple(delays)
        self.timeout = timeout
        self.post = post or http_post
        self.where = urlsplit(url).hostname or "?"
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, payload: dict[str, Any]) -> bool:
        """Queue a JSON body for delivery and return at once: True when queued, False when the
        queue was full (the body is dropped, and the event log says so)."""
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            eventlog.event(logging.ERROR, f"webhook to {self.where}: {self._queue.maxsize} "
                           f"announcements already waiting; dropped {_what(payload)}", host="ips")
            return False
        self._start()
        return True

    def wait(self, timeout: float) -> bool:
        """Return True once every queued body was delivered or given up on (within `timeout`
        seconds): for a process that is about to stop, and for tests."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def deliver(self, body: bytes) -> bool:
        """POST one body, again after each of `delays` while the failure is worth it; return
        True when the receiver took it (2xx). Logs the outcome."""
        headers = {"Content-Type": "application/json", "User-Agent": f"hps-api/{__version__}"}
        if self.secret:
            headers[HEADER] = signature(self.secret, body)
        what = _what(json.loads(body))
        for attempt in range(len(self.delays) + 1):
            if attempt:
                time.sleep(self.delays[attempt - 1])
            try:
                status = self.post(self.url, body, headers, self.timeout)
            except OSError as err:
                reason, again = f"no answer ({_reason(err)})", True
            else:
                if 200 <= status < 300:
                    eventlog.event(logging.INFO, f"webhook to {self.where}: {what} delivered"
                                   f" (attempt {attempt + 1})", host="ips")
                    return True
                reason, again = f"HTTP {status}", status in RETRIED or status >= 500
            if not again:
                break
        eventlog.event(logging.ERROR, f"webhook to {self.where}: {what} not delivered after "
                       f"{attempt + 1} attempt(s): {reason}", host="ips")
        return False

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="hps-webhook",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            body = self._queue.get()
            try:
                self.deliver(body)
            except Exception as err:  # a bug must not end the thread with bodies waiting
                eventlog.event(logging.ERROR, "webhook delivery failed", host="ips", error=err)
            finally:
                self._queue.task_done()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answer a redirect as the status it is: following it would turn the POST into a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` to `url` and return the status; OSError when nothing answered."""
    # check_url admitted only http and https URLs (Webhook's constructor)
    request = urllib.request.Request(url, data=body, headers=headers,  # noqa: S310
                                     method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(64 * 1024)
            return int(answer.status)
    except urllib.error.HTTPError as err:
        err.close()
        return int(err.code)


def _what(payload: Any) -> str:
    if isinstance(payload, dict):
        return f"{payload.get('event', 'event')} {payload.get('mac', '')}".strip()
    return "event"


def _reason(err: OSError) -> str:
    if isinstance(err, urllib.error.URLError) and isinstance(err.reason, BaseException):
        err = err.reason  # type: ignore[assignment]
    return str(getattr(err, "strerror", None) or err)[:200]
