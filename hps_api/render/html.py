"""HTML pages from `hps_api/templates/` (Jinja2 with autoescaping on, strict undefined)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Return the page template environment (compiled once per process)."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,  # shipped with the package: no stat of the file per render
    )


def render(template: str, context: dict[str, Any]) -> str:
    """Return a rendered page."""
    return environment().get_template(template).render(**context)
