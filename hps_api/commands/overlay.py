"""`apkovl`: the boot overlay a diskless host's initramfs fetches (see hps_api.boot.overlay)."""

from __future__ import annotations

from hps_api.boot.overlay import build_apkovl, overlay_files
from hps_api.commands.base import CommandContext, Reply
from hps_api.errors import Conflict, NotFound
from hps_api.model.catalog import load_catalog
from hps_api.store import RecordId


def apkovl(ctx: CommandContext) -> Reply:
    """Return the host's overlay tar.gz; Conflict unless its TYPE boots from the network."""
    host = ctx.host_items()
    kind = load_catalog().get(host.get("TYPE", ""))
    if kind is None or not kind.diskless:
        raise Conflict(f"{ctx.mac} is not a diskless host (TYPE={host.get('TYPE', '')!r})")
    try:
        os = ctx.store.items(RecordId.of_os(host.get("OS_ID", "")))
    except NotFound:
        raise NotFound(f"OS {host.get('OS_ID', '')!r} of {ctx.mac} not found") from None
    repo_url = f"{ctx.base_url}/distros/{os.get('REPO_PATH', '').strip('/')}"
    cluster = ctx.store.items(RecordId.of_cluster(ctx.cluster))
    files = overlay_files(ctx.mac, host, cluster, ctx.base_url,
                          ctx.session or host.get("BOOT_SESSION", ""), repo_url)
    name = f"{host.get('HOSTNAME', ctx.mac)}.apkovl.tar.gz"
    return Reply(name, {"mac": ctx.mac, "files": sorted(files)}, raw=True,
                 binary=build_apkovl(files), content_type="application/gzip")
