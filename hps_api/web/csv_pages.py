"""CSV export and import of hosts (docs/ui.md): `/hosts.csv`, `/hosts/import`.

Export takes the host list's search and filters (every matching host, all pages). Import is two
steps, both admin POSTs: the file (uploaded or pasted) is checked as a whole and previewed
(`POST /hosts/import`: what each line registers, sets and configures, or every problem with
its line; nothing is written), then `POST /hosts/import/apply` carries the same text back,
checks it again and imports it (hps_api.ops.csv_hosts).
"""

from __future__ import annotations

import time

from flask import Response, request

from hps_api.errors import InvalidInput
from hps_api.ops import csv_hosts
from hps_api.ops.host_query import parse_query, select, sensitive_test
from hps_api.ops.stuck import stuck_test
from hps_api.web.pages import actor, form, hosts_of, page, viewer_is_admin
from hps_api.web.runtime import runtime

MAX_UPLOAD = 900 * 1024


def export() -> Response:
    """The hosts the list's filters select, as CSV (an attachment named after the cluster)."""
    rt = runtime()
    cluster, admin = rt.active_cluster(), viewer_is_admin()
    query = parse_query(request.args.to_dict(flat=False))
    records, now = hosts_of(cluster).records, time.time()
    found = select(records, query, now=now,
                   hidden=sensitive_test(rt.settings.sensitive_keys, admin=admin),
                   stuck=stuck_test(rt.store, cluster, records, now))
    text = csv_hosts.export(dict(found.rows), rt.settings.sensitive_keys, admin=admin)
    return Response(text, 200, content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="hosts-{cluster}.csv"'})


def import_page() -> Response:
    """The import form: a file to upload, or CSV to paste."""
    return page("import.html", title="Import hosts", cluster=runtime().active_cluster(),
                upload=form("/hosts/import") if viewer_is_admin() else None,
                columns=csv_hosts.COLUMNS)


def preview() -> Response:
    """Check the file as a whole and show what importing it would do; nothing is written."""
    rt = runtime()
    cluster, text = rt.active_cluster(), _text()
    plan = csv_hosts.check(rt.store, cluster, text, hosts_of(cluster).records)
    response = page("import_preview.html", title="Import hosts: preview", cluster=cluster,
                    plan=plan, text=text, apply=form("/hosts/import/apply") if plan.ok else None)
    response.status_code = 200 if plan.ok else 400
    return response


def apply() -> Response:
    """Check the previewed text again and import it; one result per line that changes."""
    rt = runtime()
    cluster, text = rt.active_cluster(), _text()
    plan, results = csv_hosts.apply(rt.store, rt.settings, cluster, text,
                                    hosts_of(cluster).records, actor())
    failed = sum(1 for result in results if not result.ok)
    response = page("import_done.html", title="Import hosts: done" if plan.ok else
                    "Import hosts: refused", cluster=cluster, plan=plan, results=results,
                    failed=failed)
    response.status_code = 200 if plan.ok else 400
    return response


def _text() -> str:
    """Return the CSV of the request: the uploaded file, else the pasted text."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data: bytes = upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise InvalidInput(f"the file is larger than {MAX_UPLOAD // 1024} KiB")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("the file is not UTF-8 text") from None
    text: str = request.form.get("csv", "")
    if not text.strip():
        raise InvalidInput("choose a CSV file or paste its lines")
    return text
