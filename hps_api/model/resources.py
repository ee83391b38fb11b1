"""Where the data files are: the site directory first, then the files shipped with hps-api.

Data files are named relative to the repository's layout (`ipxe/menu-main.ipxe`,
`cluster-config/host-types.toml`, `cluster-config/installers/sch.ks.j2`,
`node_lib/sh/hps-functions.sh`, `templates/base.html`). A name is looked up in, in order:

1. `HPS_SITE_DIR` (the operator's own files, e.g. `$HPS_SITE_DIR/ipxe/menu-main.ipxe`): a file
   present there wins over the shipped one of the same name, without editing the package;
2. the package's data, `hps_api/_data/` (the wheel maps the repository's `ipxe/`,
   `cluster-config/` and `node_lib/` there; see pyproject.toml), and the package itself
   (`templates/`, `static/`);
3. the checkout holding `hps_api/`, when hps-api runs from one (an editable install puts the
   checkout itself on sys.path, so the data stays in the repository's top-level folders).

The site directory is the one the process started with (HPS_SITE_DIR from the environment or
`.env`); readers compile or read a file once per process, so a changed site file takes effect
at the next start.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from hps_api.settings import environment, setting

#: where the wheel puts the repository's data folders, inside the package
PACKAGE_DATA = "_data"


@lru_cache(maxsize=1)
def site_dir() -> Path | None:
    """Return HPS_SITE_DIR as the process started with it (None: not set), from the environment
    or `.env`, like every setting.

    Raises InvalidInput (from the settings) when it names no directory; other settings are
    not read, so a bad one is reported where it is used (the CGI answers it as a 500).
    """
    found: Path | None = setting("site_dir", environment())
    return found


def forget() -> None:
    """Forget the site directory and every lookup (tests that change HPS_SITE_DIR; readers
    keep what they compiled until their own caches are cleared)."""
    site_dir.cache_clear()
    search_path.cache_clear()
    find.cache_clear()


@lru_cache(maxsize=1)
def _shipped_roots() -> tuple[Path, ...]:
    package = _package()
    roots = [package / PACKAGE_DATA, package]
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file():
        roots.append(checkout)
    return tuple(root for root in roots if root.is_dir())


@lru_cache(maxsize=32)
def search_path(folder: str) -> tuple[Path, ...]:
    """Return the existing directories named `folder`, site directory first (for template
    loaders: a template present in an earlier one wins)."""
    return tuple(root / folder for root in _roots() if (root / folder).is_dir())


def shipped(folder: str) -> Path:
    """Return the shipped directory `folder` (ignoring the site directory): the package's data,
    else the checkout's; the package's data path when neither exists."""
    for root in _shipped_roots():
        if (root / folder).is_dir():
            return root / folder
    return _package() / PACKAGE_DATA / folder


@lru_cache(maxsize=64)
def find(name: str) -> Path:
    """Return the file `name` (relative, e.g. `cluster-config/host-types.toml`), site first.

    Raises FileNotFoundError naming every place looked in.
    """
    candidates = [root / name for root in _roots()]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{name} not found (looked in: "
                            f"{', '.join(str(path) for path in candidates)})")


def _roots() -> tuple[Path, ...]:
    site = site_dir()
    return ((site,) if site is not None else ()) + _shipped_roots()


def _package() -> Path:
    # a regular package installed in a directory (never a zip): its files are plain paths
    return Path(str(files("hps_api")))
