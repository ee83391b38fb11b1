"""The host list (`/hosts`) and the bulk actions started from it (docs/ui.md).

`GET /hosts` searches, filters, sorts and pages the active cluster's hosts on the server, every
choice a query parameter (hps_api.ops.host_query), so a view can be bookmarked and shared; the
records are read once per request (pages.hosts_of). Admins get a checkbox per host and an
action form: `POST /hosts/bulk` resolves the hosts (the ticked ones, or every host matching the
filter) and shows what will happen to whom, naming the count, without changing anything;
`POST /hosts/bulk/run` carries exactly those hosts, applies the action to each
(hps_api.ops.bulk) and shows one result per host, failures first in the summary but never
instead of the others.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import urlencode

from flask import Response, request

from hps_api.ids import normalize_mac
from hps_api.model.catalog import load_catalog
from hps_api.model.states import STATES
from hps_api.ops import bulk
from hps_api.ops.host_query import (
    NONE,
    SELFTEST_FILTERS,
    HostQuery,
    parse_query,
    select,
    sensitive_test,
)
from hps_api.ops.stuck import stuck_test
from hps_api.web.pages import actor, form, hosts_of, page, viewer_is_admin
from hps_api.web.power import runner as power_runner
from hps_api.web.rows import ListRow, headings, link, list_rows
from hps_api.web.runtime import runtime
from hps_api.web.views import catalog_choices

PER_PAGE = 50
PAGE_SIZES = (25, 50, 100, 200, 500)
#: pages linked on each side of the current one
PAGER_SPAN = 3


def hosts() -> Response:
    """The hosts of the active cluster: search, filters, sort on every column, pages."""
    rt = runtime()
    cluster, admin, now = rt.active_cluster(), viewer_is_admin(), time.time()
    query = parse_query(request.args.to_dict(flat=False), per_page=PER_PAGE)
    found_hosts = hosts_of(cluster)
    found = select(found_hosts.records, query, now=now,
                   hidden=sensitive_test(rt.settings.sensitive_keys, admin=admin),
                   stuck=stuck_test(rt.store, cluster, found_hosts.records, now))
    catalog = load_catalog()
    return page("hosts.html", title="Hosts", cluster=cluster, query=query, found=found,
                rows=list_rows(found.rows, rt.settings.sensitive_keys, admin=admin, now=now),
                headings=headings(query), pager=pager(query, found.page, found.pages),
                problems=list(found_hosts.problems.values()), states=STATES,
                types=[*catalog, NONE],
                profiles=sorted({p for kind in catalog.values() for p in kind.profiles}),
                selftests=SELFTEST_FILTERS, sizes=PAGE_SIZES, export=export_link(query),
                bulk=form("/hosts/bulk") if admin else None, actions=bulk.ACTIONS,
                choices=catalog_choices(catalog), filter_fields=query.filter_params(),
                first=(found.page - 1) * (found.per_page or 0) + 1)


def bulk_review() -> Response:
    """Show what an action would do to which hosts (nothing is changed): the confirmation."""
    rt = runtime()
    cluster = rt.active_cluster()
    records = hosts_of(cluster).records
    query = parse_query(request.form.to_dict(flat=False))  # the list's filter, carried along
    if request.form.get("scope") == "filter":
        now = time.time()
        macs = [mac for mac, _ in select(records, query, now=now, stuck=stuck_test(
            rt.store, cluster, records, now)).rows]
    else:
        macs = [normalize_mac(mac) for mac in request.form.getlist("mac")]
    back = link(query)
    batch = bulk.plan(request.form.get("action", ""), macs, request.form.get("choice", ""))
    return page("bulk_confirm.html", title=f"{batch.label}: {len(batch.macs)} hosts?",
                batch=batch, back=back, run=form("/hosts/bulk/run"),
                rows=_rows(batch.macs, records), missing=[m for m in batch.macs
                                                          if m not in records])


def bulk_run() -> Response:
    """Apply the confirmed action to the confirmed hosts; one result per host."""
    rt = runtime()
    cluster = rt.active_cluster()
    macs = [normalize_mac(mac) for mac in request.form.getlist("mac")]
    batch = bulk.plan(request.form.get("action", ""), macs, request.form.get("choice", ""))
    outcomes = bulk.run(rt.store, rt.settings, cluster, batch, actor(),
                        submit=power_runner().submit)
    records = hosts_of(cluster).records
    rows = {row.mac: row for row in _rows(batch.macs, records)}
    failed = [o for o in outcomes if not o.ok]
    return page("bulk_done.html", title=f"{batch.label}: {len(outcomes)} hosts", batch=batch,
                results=[(o, rows.get(o.mac)) for o in outcomes], failed=len(failed),
                done=len(outcomes) - len(failed))


def pager(query: HostQuery, current: int, pages: int) -> list[tuple[str, str | None]]:
    """Return the pager's items as (label, link; None for the current page or a gap): first,
    previous, the pages around the current one, next, last."""
    if pages <= 1:
        return []
    items: list[tuple[str, str | None]] = []
    if current > 1:
        items += [("« first", link(query, page=1)), ("← previous", link(query, page=current - 1))]
    low, high = max(1, current - PAGER_SPAN), min(pages, current + PAGER_SPAN)
    if low > 1:
        items.append(("…", None))
    items += [(str(n), None if n == current else link(query, page=n)) for n in
              range(low, high + 1)]
    if high < pages:
        items.append(("…", None))
    if current < pages:
        items += [("next →", link(query, page=current + 1)), ("last »", link(query, page=pages))]
    return items


def export_link(query: HostQuery) -> str:
    """Return the CSV export of the hosts this view selects (all pages)."""
    params = query.filter_params()
    return "/hosts.csv?" + urlencode(params) if params else "/hosts.csv"


def _rows(macs: tuple[str, ...], records: Mapping[str, Mapping[str, str]]) -> list[ListRow]:
    known = [(mac, records[mac]) for mac in macs if mac in records]
    return list_rows(known, runtime().settings.sensitive_keys, admin=viewer_is_admin(),
                     now=time.time())
