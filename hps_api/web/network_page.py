"""The network view (`/network`, and the bare picture at `/network.svg`; docs/ui.md).

The SVG is drawn on the server (hps_api.render.netview) from the cluster record and the host
records the worker's index holds, and put in the page as it is: no script, no request of its
own. The page's print stylesheet drops the header and the navigation, so the browser's "Save
as PDF" gives the picture and its legend on clean pages. Non-admins see what the host list
shows them: a sensitive HOSTNAME, IP or STATE is not drawn.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response
from markupsafe import Markup

from hps_api.ids import is_sensitive
from hps_api.render import netview
from hps_api.store import RecordId
from hps_api.web.pages import hosts_of, page, viewer_is_admin
from hps_api.web.runtime import runtime


def network() -> Response:
    """The page: the picture, its legend, a link to the bare SVG."""
    cluster, svg = _picture()
    return page("network.html", title=f"Network of cluster {cluster}", cluster=cluster,
                svg=Markup(svg))  # noqa: S704 - netview escapes every value it writes


def network_svg() -> Response:
    """The picture alone, as an SVG file."""
    cluster, svg = _picture()
    return Response(svg, 200, content_type="image/svg+xml; charset=utf-8", headers={
        "Content-Disposition": f'inline; filename="network-{cluster}.svg"'})


def _picture() -> tuple[str, str]:
    rt = runtime()
    cluster = rt.active_cluster()
    records = hosts_of(cluster).records
    cluster_items: Mapping[str, str] = rt.store.items(RecordId.of_cluster(cluster))
    if not viewer_is_admin():
        patterns = rt.settings.sensitive_keys
        records = {mac: _readable(record, patterns) for mac, record in records.items()}
        cluster_items = _readable(cluster_items, patterns)
    return cluster, netview.render(cluster, cluster_items, records)


def _readable(record: Mapping[str, str], patterns: tuple[str, ...]) -> dict[str, str]:
    return {key: value for key, value in record.items() if not is_sensitive(key, patterns)}
