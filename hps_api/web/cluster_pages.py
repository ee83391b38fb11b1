"""The cluster's settings (`/cluster`) and the OS registry (`/os`) (docs/ui.md).

`/cluster` lists every cluster key with its meaning and default (hps_api.model.cluster_keys),
the storage network keys the cluster's STORAGE_NETWORKS asks for, and every other key the
record holds. Admins edit a key through `ops.clusters.set_key` / `unset_key`, the checks the
CLI and the API use: a refused value comes back on the same page, next to its key, with the
reason and the value as typed, and nothing is written.

`/os` lists the OS records with a check of their boot files and what uses each; admins add,
edit and remove records (hps_api.ops.os_records). Sensitive values are hidden from non-admins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import Response, request

from hps_api.errors import InvalidInput
from hps_api.ids import normalize_key, normalize_os_id
from hps_api.model import osreg
from hps_api.model.cluster_keys import (
    MAX_STORAGE_NETWORKS,
    STUCK_KEYS,
    InvalidKey,
    key_table,
    spec_for,
)
from hps_api.ops import clusters as cluster_ops
from hps_api.ops import os_records
from hps_api.ops.inventory import RESERVED_CLUSTER_KEYS
from hps_api.store import RecordId
from hps_api.web.pages import actor, form, hosts_of, page, redirect, viewer_is_admin
from hps_api.web.runtime import runtime
from hps_api.web.views import Shown, shown

STORAGE_FIELDS = ("CIDR", "VLAN", "GATEWAY", "MTU")


@dataclass(frozen=True)
class Setting:
    """One cluster key as the settings page shows it."""

    key: str
    value: Shown
    meaning: str
    default: str | None
    editable: bool


@dataclass(frozen=True)
class OsRow:
    """One OS record as the registry page shows it."""

    os_id: str
    record: Mapping[str, str]
    assets: os_records.Assets
    keys: list[str]
    hosts: int


def settings_rows(record: Mapping[str, str], patterns: tuple[str, ...], *,
                  admin: bool) -> list[Setting]:
    """Return every key of the key table, the stuck-host thresholds (with their defaults,
    set or not), the storage keys STORAGE_NETWORKS calls for, then the record's other keys
    by name (NAME, CREATED, UPDATED: shown, not editable)."""
    keys = [spec.key for spec in (*key_table(), *STUCK_KEYS)] + ["STORAGE_NETWORKS"]
    count = _count(record.get("STORAGE_NETWORKS", ""))
    keys += [f"STORAGE{i}_{f}" for i in range(count) for f in STORAGE_FIELDS]
    keys += sorted(key for key in record if key not in keys)
    rows = []
    for key in keys:
        spec = spec_for(key)
        meaning = spec.meaning if spec else (
            "set by the server" if key in RESERVED_CLUSTER_KEYS else "a free key (no check)")
        rows.append(Setting(key, shown(key, record.get(key), patterns, admin=admin), meaning,
                            spec.default if spec else None, key not in RESERVED_CLUSTER_KEYS))
    return rows


def settings_page(error: tuple[str, str, str] | None = None, status: int = 200) -> Response:
    """The active cluster's keys; `error` is (key, value as typed, reason) of a refused edit."""
    rt = runtime()
    cluster, admin = rt.active_cluster(), viewer_is_admin()
    record = rt.store.items(RecordId.of_cluster(cluster))
    saved = request.args.get("saved", "")
    response = page("cluster.html", title=f"Cluster {cluster}: settings", cluster=cluster,
                    rows=settings_rows(record, rt.settings.sensitive_keys, admin=admin),
                    error=error, saved=saved if saved in record or _is_key(saved) else "",
                    set_form=form("/cluster/set") if admin else None,
                    unset_form=form("/cluster/unset") if admin else None,
                    max_storage=MAX_STORAGE_NETWORKS)
    response.status_code = status
    return response


def set_key() -> Response:
    """Set one key of the active cluster (checked alone and with the record); 303 back, or the
    page again with the reason (400) when the value is refused."""
    rt = runtime()
    key, value = request.form.get("key", "").strip(), request.form.get("value", "")
    try:
        name = normalize_key(key)
        cluster_ops.set_key(rt.store, rt.settings, rt.active_cluster(), name, value, actor())
    except InvalidInput as err:
        return settings_page((key.upper(), value, _reason(err)), 400)
    return redirect(f"/cluster?saved={name}#key-{name}")


def unset_key() -> Response:
    """Remove one key of the active cluster when the rest stays consistent; 303 back."""
    rt = runtime()
    key = request.form.get("key", "").strip()
    try:
        name = normalize_key(key)
        cluster_ops.unset_key(rt.store, rt.settings, rt.active_cluster(), name, actor())
    except InvalidInput as err:
        return settings_page((key.upper(), "", _reason(err)), 400)
    return redirect(f"/cluster?saved={name}#key-{name}")


def os_page(error: str = "", status: int = 200) -> Response:
    """Every OS record: its keys, whether its boot files are there, what uses it."""
    rt = runtime()
    cluster = rt.active_cluster()
    cluster_items = rt.store.items(RecordId.of_cluster(cluster))
    hosts = list(hosts_of(cluster).records.values())
    rows = []
    for os_id, record in osreg.list_os(rt.store):
        keys, count = os_records.users(os_id, cluster_items, hosts)
        rows.append(OsRow(os_id, record, os_records.assets(record, rt.settings.resources_dir),
                          keys, count))
    admin = viewer_is_admin()
    response = page("os.html", title="OS registry", rows=rows, error=error,
                    fields=os_records.FORM_KEYS, statuses=osreg.STATUSES,
                    saved=request.args.get("saved", "") in {r.os_id for r in rows},
                    save_form=form("/os/save") if admin else None,
                    remove_form=form("/os/remove") if admin else None)
    response.status_code = status
    return response


def os_save() -> Response:
    """Add (`mode=add`) or edit an OS record from the form; 303 to the registry, or the page
    again with the reason (400)."""
    rt = runtime()
    os_id = request.form.get("os_id", "").strip()
    values = {key: request.form.get(key.lower(), "").strip() for key in os_records.FORM_KEYS}
    try:
        canonical = normalize_os_id(os_id)
        if request.form.get("mode") == "add":
            os_records.add(rt.store, canonical, values, actor())
        else:
            os_records.edit(rt.store, canonical, values, actor())
    except InvalidInput as err:
        return os_page(f"{os_id}: {err}", 400)
    return redirect(f"/os?saved={canonical}")


def os_remove() -> Response:
    """Remove an OS record once the confirmation box is ticked; 303 to the registry."""
    rt = runtime()
    os_id = normalize_os_id(request.form.get("os_id", "").strip())
    os_records.remove(rt.store, os_id, actor(), confirmed=request.form.get("confirm") == "yes")
    return redirect("/os")


def _reason(err: InvalidInput) -> str:
    """Return why a value was refused; for a cluster key, naming the key to fix when that is
    another one (DHCP_IP refused because of the range: fix DHCP_RANGE_START)."""
    if isinstance(err, InvalidKey):
        return err.reason if err.key == request.form.get("key", "").strip().upper() \
            else f"{err.key}: {err.reason}"
    return str(err)


def _count(text: str) -> int:
    text = text.strip()
    return min(int(text), MAX_STORAGE_NETWORKS) if text.isdigit() else 0


def _is_key(text: str) -> bool:
    try:
        normalize_key(text)
    except InvalidInput:
        return False
    return True
