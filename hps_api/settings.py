"""Every `HPS_*` setting: its default, its validation. The only module that reads the environment.

`load_settings()` reads a `.env` file in the working directory first (python-dotenv; variables
already in the environment win), then the environment. A bad value fails here, at start-up, with
a message naming the variable, never at the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from hps_api.errors import InvalidInput
from hps_api.ids import DEFAULT_SENSITIVE_PATTERNS

DEFAULT_CONFIG_DIR = "/srv/hps-config"


@dataclass(frozen=True)
class Settings:
    """The process-wide configuration, read once."""

    config_dir: Path = Path(DEFAULT_CONFIG_DIR)
    lock_timeout: float = 5.0
    sensitive_keys: tuple[str, ...] = DEFAULT_SENSITIVE_PATTERNS
    log_dir: Path = Path("/var/log/hps")
    resources_dir: Path = Path("/srv/hps-resources")
    arp_table: Path = Path("/proc/net/arp")
    dhcp_leases: Path = Path("/var/lib/misc/dnsmasq.leases")
    dnsmasq_pidfile: Path = Path("/run/dnsmasq.pid")
    admin_token: str = ""
    trusted_proxies: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    bind: str = "127.0.0.1:8080"
    workers: int = 0
    front_bind: str = "0.0.0.0:80"
    tls_cert: str = ""
    tls_key: str = ""
    #: the operator's own data files (host types, installer and iPXE templates), each winning
    #: over the shipped file of the same relative name (see hps_api.model.resources); None: none
    site_dir: Path | None = None
    #: `/metrics` and the counting behind it (docs/api.md §9); off: neither
    metrics: bool = True
    #: where stuck hosts are announced (docs/stuck.md): a URL the server POSTs JSON to; "": none
    webhook_url: str = ""
    #: the key of the announcements' HMAC-SHA256 signature (X-HPS-Signature); "": unsigned
    webhook_secret: str = ""
    #: seconds between two scans for stuck hosts in the server (docs/stuck.md)
    stuck_scan_seconds: float = 60.0
    #: a journal is rotated when it passes this many MiB (0: never), keeping this many
    #: rotations (docs/storage.md, "Journal")
    journal_max_mib: int = 64
    journal_rotations: int = 3
    #: where the records live: "" the files under config_dir; `etcd://HOST:PORT[,...]/PREFIX`
    #: an etcd cluster shared by several servers (docs/scale-out.md)
    store: str = ""

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with some fields replaced (tests point config_dir at tmp_path)."""
        return replace(self, **changes)


_ENV_NAMES = {f.name: "HPS_" + f.name.upper() for f in fields(Settings)}
#: settings naming a directory that must exist when the process starts (nothing creates it)
_DIRECTORIES = ("site_dir",)
#: the words an on/off setting takes (any case)
_ON = ("1", "yes", "true", "on")
_OFF = ("0", "no", "false", "off")


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Return Settings from `.env` and the environment; raise InvalidInput naming the variable."""
    if environ is None:
        if dotenv:
            _load_dotenv()
        environ = os.environ
    values: dict[str, Any] = {}
    for field in fields(Settings):
        if environ.get(_ENV_NAMES[field.name]):
            values[field.name] = setting(field.name, environ)
    return Settings(**values)


def setting(name: str, environ: Mapping[str, str]) -> Any:
    """Return one setting from `environ` (its default when unset or empty), checked alone: a
    bad value of another variable is not this one's concern. InvalidInput names the variable."""
    raw = environ.get(_ENV_NAMES[name])
    if raw is None or raw == "":
        return getattr(Settings, name)
    try:
        return _convert(name, raw)
    except ValueError as err:
        raise InvalidInput(f"{_ENV_NAMES[name]}={raw!r}: {err}") from None


def env_name(field_name: str) -> str:
    """Return the variable behind a settings field (`config_dir` -> `HPS_CONFIG_DIR`)."""
    return _ENV_NAMES[field_name]


def _convert(name: str, raw: str) -> Any:
    if name == "store":
        etcd_members(raw)
        return raw
    if name in _DIRECTORIES:
        return _existing_directory(raw)
    default = getattr(Settings, name)
    if isinstance(default, Path):
        return Path(raw)
    if isinstance(default, bool):
        return _switch(raw)
    if isinstance(default, float):
        number = float(raw)
        if not 0 < number <= 3600:
            raise ValueError("must be a number of seconds between 0 and 3600")
        return number
    if isinstance(default, int):
        count = int(raw)
        if not 0 <= count <= 256:
            raise ValueError("must be a whole number from 0 to 256")
        return count
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def etcd_members(url: str) -> tuple[list[tuple[str, int]], str]:
    """Return the (host, port) of every member and the key prefix of an HPS_STORE URL
    (`etcd://HOST:PORT[,HOST:PORT...]/PREFIX`); ValueError saying what is wrong."""
    from urllib.parse import urlsplit

    if not url.startswith("etcd://"):
        raise ValueError("expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX "
                         "(unset: the files under HPS_CONFIG_DIR)")
    hosts, _, prefix = url[len("etcd://"):].partition("/")
    prefix = prefix.strip("/")
    if not prefix or any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError("needs a key prefix after the members: etcd://HOST:PORT/PREFIX")
    if not all(c.isascii() and (c.isalnum() or c in "-_./") for c in prefix):
        raise ValueError(f"prefix {prefix!r}: letters, digits and - _ . / only")
    endpoints = []
    for member in hosts.split(","):
        parts = urlsplit(f"//{member.strip()}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or parts.username or parts.path or port == 0:
            raise ValueError(f"member {member!r}: expected HOST:PORT")
        endpoints.append((parts.hostname, port))
    return endpoints, prefix


def _switch(raw: str) -> bool:
    word = raw.strip().lower()
    if word not in _ON + _OFF:
        raise ValueError("must be on or off")
    return word in _ON


def _existing_directory(raw: str) -> Path:
    path = Path(raw)
    if not path.exists():
        raise ValueError("no such directory")
    if not path.is_dir():
        raise ValueError("not a directory")
    return path.absolute()


def environment() -> dict[str, str]:
    """Return the variables the settings are read from: `.env` in the working directory, under
    the process's own environment (which wins), without changing the process's environment."""
    merged: dict[str, str] = {}
    env_file = Path.cwd() / ".env"
    if env_file.is_file():
        from dotenv import dotenv_values

        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ)
    return merged


def _load_dotenv() -> None:
    env_file = Path.cwd() / ".env"
    if env_file.is_file():
        from dotenv import load_dotenv

        load_dotenv(env_file, override=False)
