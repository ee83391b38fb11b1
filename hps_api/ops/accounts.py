"""Admin accounts for operators at their own workstations: passwords, login sessions, lockouts.

Everything lives in `<config dir>/admin/` (mode 0700), apart from the host and cluster records:

- `accounts`: one `name:hash` line per account, mode 0600, replaced atomically under
  `accounts.lock`. Hashes are Argon2id by argon2-cffi with its default parameters (RFC 9106's
  low-memory profile); a hash made with older parameters is upgraded at the next login.
- `sessions/<sha256 of the token>`: `name expiry` of one login. The browser's cookie holds the
  random token, the IPS only its hash, so reading the directory gives nobody a session. Logout,
  removing an account and changing its password delete its sessions: a session ends for real,
  in every gunicorn worker at once.
- `failures/<sha256 of "account:NAME" or "address:IP">`: times of recent failed logins. After
  MAX_FAILURES within FAILURE_WINDOW seconds, for that account or from that address, logins are
  refused (HTTP 429) until the oldest failure leaves the window, with the right password too.

An unknown account name costs the same hash verification as a known one, so timing does not
tell which names exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hps_api.errors import Conflict, InvalidInput, NotFound
from hps_api.store.files import acquire, write_durably

NAME = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
SESSION_SECONDS = 8 * 3600
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60
LOCK_TIMEOUT = 5.0
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class LoginRefused(Exception):
    """Too many failed logins: retry after `retry_after` seconds."""

    retry_after: int

    def __str__(self) -> str:
        return f"too many failed logins: try again in {self.retry_after} s"


class Accounts:
    """The admin accounts, sessions and failed-login records under `<config dir>/admin`."""

    def __init__(self, config_dir: Path) -> None:
        self.dir = config_dir / "admin"
        self.file = self.dir / "accounts"

    # -- accounts ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Return the account names, sorted."""
        return sorted(self._read())

    def add(self, name: str, password: str) -> None:
        """Create an account; Conflict when it exists, InvalidInput for a bad name/password."""
        name, password = check_name(name), check_password(password)
        with self._locked():
            hashes = self._read()
            if name in hashes:
                raise Conflict(f"account {name} exists: use 'hps-api admin passwd {name}'")
            hashes[name] = _HASHER.hash(password)
            self._write(hashes)

    def set_password(self, name: str, password: str) -> None:
        """Change a password and end the account's sessions; NotFound when it does not exist."""
        name, password = check_name(name), check_password(password)
        with self._locked():
            hashes = self._read()
            if name not in hashes:
                raise NotFound(f"no account {name}")
            hashes[name] = _HASHER.hash(password)
            self._write(hashes)
        self.end_sessions(name)

    def remove(self, name: str) -> None:
        """Remove an account and end its sessions; NotFound when it does not exist."""
        name = check_name(name)
        with self._locked():
            hashes = self._read()
            if hashes.pop(name, None) is None:
                raise NotFound(f"no account {name}")
            self._write(hashes)
        self.end_sessions(name)

    def verify(self, name: str, password: str) -> bool:
        """Return True when the password is the account's (constant work for unknown names)."""
        stored = self._read().get(name) if NAME.fullmatch(name or "") else None
        try:
            _HASHER.verify(stored or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if stored is None:
            return False
        if _HASHER.check_needs_rehash(stored):
            with contextlib.suppress(OSError, InvalidInput, NotFound, Conflict):
                self._rehash(name, password)
        return True

    # -- sessions ---------------------------------------------------------------------------

    def open_session(self, name: str, now: float | None = None) -> str:
        """Return the token of a new session of `name` (valid SESSION_SECONDS)."""
        token = secrets.token_urlsafe(32)
        expiry = int((time.time() if now is None else now) + SESSION_SECONDS)
        sessions = self._ensure("sessions")
        write_durably(sessions / _digest(token), f"{name} {expiry}\n".encode(), mode=0o600)
        return token

    def session_account(self, token: str, now: float | None = None) -> str | None:
        """Return the account of a live session token, or None (unknown, expired, removed)."""
        if not token or len(token) > 128:
            return None
        path = self.dir / "sessions" / _digest(token)
        try:
            name, expiry = path.read_text(encoding="ascii").split()
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if int(expiry) < (time.time() if now is None else now) or name not in self._read():
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return name

    def end_session(self, token: str) -> None:
        """End one session (logout); nothing happens for an unknown token."""
        if token and len(token) <= 128:
            with contextlib.suppress(OSError):
                (self.dir / "sessions" / _digest(token)).unlink()

    def end_sessions(self, name: str) -> None:
        """End every session of an account."""
        sessions = self.dir / "sessions"
        for entry in _entries(sessions):
            with contextlib.suppress(OSError, ValueError):
                if entry.read_text(encoding="ascii").split()[0] == name:
                    entry.unlink()

    # -- failed logins ----------------------------------------------------------------------

    def check_allowed(self, keys: list[str], now: float | None = None) -> None:
        """Raise LoginRefused when any key (`account:NAME`, `address:IP`) has too many recent
        failures."""
        now = time.time() if now is None else now
        waits = [self._wait(key, now) for key in keys]
        if max(waits, default=0) > 0:
            raise LoginRefused(max(waits))

    def record_failure(self, keys: list[str], now: float | None = None) -> None:
        """Remember one failed login under each key."""
        now = time.time() if now is None else now
        failures = self._ensure("failures")
        for key in keys:
            path = failures / _digest(key)
            recent = [t for t in _times(path) if now - t < FAILURE_WINDOW][-MAX_FAILURES:]
            write_durably(path, "".join(f"{t:.3f}\n" for t in [*recent, now]).encode(),
                          mode=0o600, sync_dir=False)

    def clear_failures(self, keys: list[str]) -> None:
        """Forget the failures under each key (after a successful login)."""
        for key in keys:
            with contextlib.suppress(OSError):
                (self.dir / "failures" / _digest(key)).unlink()

    # -- files ------------------------------------------------------------------------------

    def _wait(self, key: str, now: float) -> int:
        recent = [t for t in _times(self.dir / "failures" / _digest(key))
                  if now - t < FAILURE_WINDOW]
        if len(recent) < MAX_FAILURES:
            return 0
        return max(1, int(recent[-MAX_FAILURES] + FAILURE_WINDOW - now) + 1)

    def _read(self) -> dict[str, str]:
        try:
            text = self.file.read_text(encoding="ascii")
        except FileNotFoundError:
            return {}
        hashes: dict[str, str] = {}
        for line in text.splitlines():
            name, sep, stored = line.partition(":")
            if sep and NAME.fullmatch(name) and stored.startswith("$argon2"):
                hashes[name] = stored
        return hashes

    def _write(self, hashes: dict[str, str]) -> None:
        body = "".join(f"{name}:{hashes[name]}\n" for name in sorted(hashes))
        write_durably(self.file, body.encode("ascii"), mode=0o600)

    def _rehash(self, name: str, password: str) -> None:
        with self._locked():
            hashes = self._read()
            if name in hashes:
                hashes[name] = _HASHER.hash(password)
                self._write(hashes)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure()
        fd = acquire(self.dir / "accounts.lock", LOCK_TIMEOUT)
        try:
            yield
        finally:
            os.close(fd)

    def _ensure(self, sub: str = "") -> Path:
        path = self.dir / sub if sub else self.dir
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path


def check_name(name: str) -> str:
    """Return the account name; InvalidInput unless it is 1-32 of a-z 0-9 . _ - (letter first)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput("account names are 1-32 characters: a-z, 0-9, '.', '_', '-', "
                           "starting with a letter")
    return name


def check_password(password: str) -> str:
    """Return the password; InvalidInput when too short, too long or holding control chars."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(f"passwords have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD or any(ord(ch) < 32 or ord(ch) == 127 for ch in password):
        raise InvalidInput(f"passwords have at most {MAX_PASSWORD} characters and no control "
                           "characters")
    return password


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _times(path: Path) -> list[float]:
    try:
        lines = path.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return []
    found = []
    for line in lines:
        with contextlib.suppress(ValueError):
            found.append(float(line))
    return sorted(found)


def _entries(directory: Path) -> list[Path]:
    try:
        return [entry for entry in directory.iterdir() if entry.is_file()]
    except OSError:
        return []
