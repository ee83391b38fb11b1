"""What the server remembers about power, as small JSON files every process can read.

- `<config dir>/run/power/actions/<id>.json`: one power action: who asked for what on which
  host, its status (queued, running, done, failed), the message and the state read back. Any
  gunicorn worker (and the CLI) can answer for an action another worker runs. Kept a day.
- `<config dir>/run/power/state/<cluster>/<mac12>.json`: the last power state known of a
  host (from the poller or the last action) and when it was read, so a page or `GET .../power`
  answers without asking the BMC.

These are caches of what a BMC said, not records of the store: written whole with a rename
(readers never see half a file), not fsynced (a crash loses at most the latest reading, which
the next poll brings back). Neither holds a credential.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from hps_api.errors import InvalidInput, NotFound
from hps_api.ids import normalize_mac, validate_cluster
from hps_api.store.journal import utc_now

KEEP_SECONDS = 24 * 3600
ACTION_ID = re.compile(r"[0-9a-f]{16}")
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
FINISHED = frozenset({DONE, FAILED})


def run_dir(config_dir: Path) -> Path:
    """Return `<config dir>/run/power`."""
    return Path(config_dir) / "run" / "power"


class ActionLog:
    """The power actions of the last day, one file each."""

    def __init__(self, config_dir: Path) -> None:
        self.dir = run_dir(config_dir) / "actions"

    def create(self, cluster: str, mac: str, steps: list[str], actor: str) -> dict[str, Any]:
        """Record a new queued action and return it (its `id` names it from now on)."""
        self.prune()
        record = {"id": secrets.token_hex(8), "cluster": validate_cluster(cluster),
                  "mac": normalize_mac(mac), "action": " + ".join(steps), "steps": steps,
                  "actor": actor, "status": QUEUED, "message": "waiting for a free worker",
                  "state": None, "attempts": 0, "created": utc_now(), "started": None,
                  "finished": None, "pid": os.getpid()}
        write_json(self.dir / f"{record['id']}.json", record)
        return record

    def update(self, record: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Write the action with `changes` and return the new version."""
        record = {**record, **changes}
        write_json(self.dir / f"{record['id']}.json", record)
        return record

    def get(self, action_id: str) -> dict[str, Any]:
        """Return an action; NotFound when unknown or older than a day, InvalidInput for an id
        that cannot be one. An action whose process died before finishing is shown failed."""
        if not isinstance(action_id, str) or not ACTION_ID.fullmatch(action_id):
            raise InvalidInput("an action id is 16 hex digits")
        record = read_json(self.dir / f"{action_id}.json")
        if record is None:
            raise NotFound(f"no power action {action_id} (actions are kept a day)")
        if record.get("status") not in FINISHED and not _alive(record.get("pid")):
            record = {**record, "status": FAILED, "message": "interrupted: the server process "
                      "running it stopped before it finished; ask again"}
        return record

    def prune(self, now: float | None = None) -> None:
        """Remove the files of actions older than KEEP_SECONDS."""
        limit = (time.time() if now is None else now) - KEEP_SECONDS
        with contextlib.suppress(OSError), os.scandir(self.dir) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < limit:
                        os.unlink(entry.path)


class StateBook:
    """The last known power state of each host."""

    def __init__(self, config_dir: Path) -> None:
        self.dir = run_dir(config_dir) / "state"

    def record(self, cluster: str, mac: str, state: str | None, error: str | None,
               source: str) -> None:
        """Remember what was read (`state`) or why nothing could be (`error`), and by whom."""
        write_json(self._path(cluster, mac), {"state": state, "error": error,
                                              "checked": utc_now(), "source": source})

    def get(self, cluster: str, mac: str) -> dict[str, Any] | None:
        """Return `{state, error, checked, source}`, or None when never read."""
        return read_json(self._path(cluster, mac))

    def forget(self, cluster: str, mac: str) -> None:
        """Drop a host's reading (its BMC settings were removed)."""
        with contextlib.suppress(FileNotFoundError):
            self._path(cluster, mac).unlink()

    def _path(self, cluster: str, mac: str) -> Path:
        return self.dir / validate_cluster(cluster) / f"{normalize_mac(mac)}.json"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` as JSON through a temp file and a rename (no fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """Return the JSON object in `path`, or None when the file is missing or not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
