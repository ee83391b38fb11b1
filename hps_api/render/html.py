"""HTML pages from `hps_api/templates/` (Jinja2 with autoescaping on, strict undefined); a page
template in the site directory's `templates/` wins over the shipped one
(hps_api.model.resources)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from hps_api.model import resources

#: the shipped page templates (a site's own `templates/` is searched before them)
TEMPLATE_DIR = resources.shipped("templates")


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Return the page template environment (compiled once per process)."""
    return Environment(
        loader=FileSystemLoader([str(path) for path in resources.search_path("templates")]),
        undefined=StrictUndefined,
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,  # read once per process: no stat of the file per render
    )


def render(template: str, context: dict[str, Any]) -> str:
    """Return a rendered page."""
    return environment().get_template(template).render(**context)
