"""Boot files (docs/api.md §7): `/distros/<path>` and `/packages/<path>` from HPS_RESOURCES_DIR.

Files are streamed, never read whole: werkzeug's `send_file` with a path hands the open file to
the server's `wsgi.file_wrapper` (gunicorn uses sendfile(2)), and with `conditional=True` it
answers `Range` requests with 206 and a `Content-Range` through a wrapper that reads only the
asked bytes, ETag/If-Modified-Since with 304, and HEAD without a body. The answer is the bytes
whatever the client is (no negotiation); errors still go through the app's error handlers,
with their real status for every client: iPXE included. iPXE gets a retry script (HTTP 200)
for a failed boot *command*, which it runs; a kernel or initrd it cannot have must be a 404, so
that `kernel ... || goto failed` sees it (a 200 script would be loaded as the kernel and run).
nginx, serving these trees in production, answers the same 404.

Only regular files below the tree's root are served. A directory, a missing file, `..`, an
absolute path, a NUL byte and a symlink whose target lies outside the root (or inside the config
dir) are all the same 404, so a client cannot tell them apart, and no directory is ever listed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace

from flask import Blueprint, Response, g, request, send_file
from werkzeug.security import safe_join

from hps_api.errors import NotFound
from hps_api.observe import eventlog
from hps_api.render.negotiate import negotiate
from hps_api.web.runtime import runtime

bp = Blueprint("static_files", __name__)
TREES = ("distros", "packages")


@bp.before_request
def _errors_with_their_status() -> None:
    """Errors of a boot file keep their status for every client (module docstring)."""
    found = negotiate({}, request.headers.get("Accept", ""), request.headers.get("User-Agent", ""))
    if found.error_format == "ipxe":
        g.negotiated = replace(found, error_format="text")


def serve(tree: str, subpath: str) -> Response:
    """Return the file `subpath` of `HPS_RESOURCES_DIR/<tree>`; NotFound for anything else."""
    settings = runtime().settings
    root = os.path.realpath(settings.resources_dir / tree)
    path = _inside(root, subpath, os.path.realpath(settings.config_dir))
    missing = NotFound(f"no such file: /{tree}/{eventlog.clean(subpath)[:200]}")
    if path is None:
        raise missing
    try:
        g.static_size = os.stat(path).st_size
        return send_file(path, conditional=True, etag=True)
    except FileNotFoundError:  # removed since it was checked
        raise missing from None


@bp.after_request
def _range_not_satisfiable(response: Response) -> Response:
    """Give a 416 its `Content-Range: bytes */<size>` (RFC 9110 14.4), which the app's error
    handler, building a fresh response, would otherwise drop."""
    size = g.get("static_size")
    if response.status_code == 416 and size is not None:
        response.headers["Content-Range"] = f"bytes */{size}"
    return response


def _inside(root: str, subpath: str, config_dir: str) -> str | None:
    """Return the real path of a regular file under `root`, or None (see the module doc)."""
    if "\x00" in subpath:
        return None
    joined = safe_join(root, subpath)
    if joined is None:
        return None
    real = os.path.realpath(joined)
    if not _under(real, root) or _under(real, config_dir):
        return None
    try:
        return real if stat.S_ISREG(os.stat(real).st_mode) else None
    except OSError:
        return None


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


for _tree in TREES:
    # merge_slashes=False: `/distros//etc/passwd` must reach the check (and 404), not redirect.
    bp.add_url_rule(f"/{_tree}/<path:subpath>", endpoint=_tree, defaults={"tree": _tree},
                    view_func=serve, methods=["GET"], merge_slashes=False)
