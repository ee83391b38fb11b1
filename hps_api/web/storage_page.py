"""The storage page (`/storage`; docs/storage-hosts.md, "Where it shows"): the cluster's storage
hosts with their room, the volumes they made and who boots from each, the jobs still queued,
and for admins a form that asks a thin host's root disk (the same operation as `hps-api storage
provision` and `POST /api/v1/storage/provision`).

A refused request (a bad size, not a thin host, no storage host with room) comes back as the
page with the reason, 400 or 409, and nothing queued.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from hps_api.errors import Conflict, InvalidInput, NotFound, http_status
from hps_api.model.storage import shown_size
from hps_api.ops import storage as storage_ops
from hps_api.web.pages import actor, form, hosts_of, page, redirect, viewer_is_admin
from hps_api.web.runtime import runtime


def storage_page(refused: tuple[str, str, str] | None = None, status: int = 200,
                 planned: dict[str, Any] | None = None) -> Response:
    """The page; `refused` is (MAC, size as typed, why) of a refused request."""
    rt = runtime()
    cluster = rt.active_cluster()
    listed = storage_ops.listing(rt.store, cluster, hosts_of(cluster).records)
    for host in listed["storage_hosts"]:
        host["free_shown"] = "not reported" if host["free"] is None else shown_size(host["free"])
    response = page("storage.html", title=f"Storage of cluster {cluster}", cluster=cluster,
                    listed=listed, refused=refused, planned=planned,
                    provision_form=form("/storage/provision") if viewer_is_admin() else None)
    response.status_code = status
    return response


def provision() -> Response:
    """Queue a thin host's root disk; the page again with the plan (the jobs and the choice in
    words), or with the reason it was refused."""
    rt = runtime()
    mac, size = request.form.get("mac", "").strip(), request.form.get("size", "").strip()
    try:
        plan = storage_ops.provision(rt.store, rt.active_cluster(), mac, size, actor())
    except (InvalidInput, NotFound, Conflict) as err:
        return storage_page((mac, size, str(err)), http_status(err))
    if not plan["jobs"]:
        return redirect("/storage")
    return storage_page(planned=plan)
