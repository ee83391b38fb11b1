"""`hps-api cgi`: the same app as a classic CGI program, one process per request (docs/api.md §1).

A site that keeps nginx + fcgiwrap (or any CGI server) points `/cgi-bin/boot_manager.sh` at
`scripts/cgi/boot_manager.sh`, which execs this. The standard library's CGIHandler reads the
request from the environment and stdin and writes `Status:`, headers, a blank line and the body
to stdout, so error statuses (404 for an unknown command to curl) reach the client.

The web server sets SCRIPT_NAME to the script's URL and PATH_INFO to what follows it (usually
nothing); our routes are full paths, so `full_path_app` moves SCRIPT_NAME into PATH_INFO.
Settings come from the environment the web server passes (`fastcgi_param`) or a `.env` in the
working directory. If they are bad the program still answers, with `Status: 500` and one line,
and says why on stderr (the web server's error log), never with a traceback on stdout.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hps_api.errors import HpsError
from hps_api.settings import load_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

PROG = "hps-api"


def full_path_app(app: WSGIApp) -> WSGIApp:
    """Return a WSGI app that serves SCRIPT_NAME + PATH_INFO as the path, with SCRIPT_NAME "".

    The strings are PEP 3333 latin-1 "bytes as str", so concatenating them is exact.
    """

    def adapted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["PATH_INFO"] = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        environ["SCRIPT_NAME"] = ""
        return app(environ, start_response)

    return adapted


def run_cgi(config_dir: str | None = None) -> int:
    """Answer one CGI request on stdin/stdout; return 0, or 2 when the app could not start."""
    from wsgiref.handlers import CGIHandler

    try:
        app = _build(config_dir)
    except HpsError as err:
        return _start_failure(str(err))
    except OSError as err:
        return _start_failure(f"{err.filename or ''}: {err.strerror or err}".lstrip(": "))
    except Exception:  # a bug: the client still gets a CGI answer, the log gets the traceback
        traceback.print_exc(file=sys.stderr)
        return _start_failure("internal error")
    CGIHandler().run(full_path_app(app))
    return 0


def _build(config_dir: str | None) -> WSGIApp:
    from hps_api import create_app

    settings = load_settings()
    if config_dir:
        settings = settings.with_overrides(config_dir=Path(config_dir))
    app: WSGIApp = create_app(settings)
    return app


def _start_failure(message: str) -> int:
    line = " ".join(f"{PROG}: cannot start: {message}".split())
    print(line, file=sys.stderr)
    stream = sys.stdout.buffer
    body = (line + "\n").encode("utf-8", "replace")
    stream.write(b"Status: 500 Internal Server Error\r\n"
                 b"Content-Type: text/plain; charset=utf-8\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
    stream.flush()
    return 2
