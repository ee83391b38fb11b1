"""What every console script shares: the exit-code table, error lines, opening the store."""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Callable
from pathlib import Path

from hps_api.errors import (
    Conflict,
    CorruptRecord,
    Forbidden,
    HpsError,
    InvalidInput,
    NotFound,
    StoreBusy,
    StoreUnavailable,
    StoreUnreadable,
)
from hps_api.settings import Settings, load_settings
from hps_api.store import RecordId, Store, factory
from hps_api.store.bootstrap import active_cluster as stored_active_cluster

EXIT_OK = 0
EXIT_NOT_SET = 1
EXIT_USAGE = 2
EXIT_STORE = 3

EXIT_CODES: dict[type[HpsError], int] = {
    NotFound: EXIT_NOT_SET,
    InvalidInput: EXIT_USAGE,
    Forbidden: EXIT_USAGE,
    Conflict: EXIT_USAGE,
    StoreBusy: EXIT_STORE,
    StoreUnavailable: EXIT_STORE,
    CorruptRecord: EXIT_STORE,
    StoreUnreadable: EXIT_STORE,
}


class UsageError(InvalidInput):
    """The command line itself is wrong (exit 2, like any invalid input)."""


def exit_code(error: HpsError) -> int:
    """Return the exit code for a domain error (README.md: 1 not set, 2 usage, 3 store)."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_STORE


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a command body, turning errors into one stderr line and the exit-code table."""
    try:
        return body()
    except HpsError as err:
        fail(prog, str(err))
        return exit_code(err)
    except OSError as err:
        fail(prog, f"{err.filename or ''}: {err.strerror or err}".lstrip(": "))
        return EXIT_STORE
    except KeyboardInterrupt:
        return 130


def fail(prog: str, message: str) -> None:
    """Print one error line, prefixed with the program name, on stderr."""
    print(f"{prog}: {message}", file=sys.stderr)


def out(text: str) -> None:
    """Write text and a newline to stdout as UTF-8, whatever the locale says."""
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape") + b"\n")


def settings_for(config_dir: str | None) -> Settings:
    """Return the settings, with `--config-dir` winning over HPS_CONFIG_DIR and `.env`."""
    settings = load_settings()
    if config_dir:
        settings = settings.with_overrides(config_dir=Path(config_dir))
    return settings


def open_store(settings: Settings) -> Store:
    """Return the store the settings point at (creating nothing), from the one factory."""
    return factory.open_store(settings)


def active_cluster(store: Store, requested: str | None) -> str:
    """Return the requested cluster, else `ACTIVE_CLUSTER` from hps.conf; NotFound if neither."""
    if requested:
        return RecordId.of_cluster(requested).cluster or requested
    active = stored_active_cluster(store)
    if not active:
        raise NotFound(
            f"no active cluster in {store.layout.hps_conf}: run 'hps-api init' or pass --cluster"
        )
    return active


def cli_actor() -> str:
    """Return the journal actor for a shell user (`cli:<user>`)."""
    try:
        return "cli:" + pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"cli:uid{os.getuid()}"
