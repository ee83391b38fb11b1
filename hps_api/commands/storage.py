"""`storage_work` and `storage_report`: a storage host (TYPE SCH) fetching its queued work and
reporting each job's outcome (docs/storage-hosts.md, "The job contract").

Both act on the caller's own record only: the caller is the host its verified address names
(hps_api.net.identity), it must be a storage host, and a job is found on its own record or not
at all. An admin may act for a storage host with `mac=`.
"""

from __future__ import annotations

from hps_api.commands.base import CommandContext, Reply
from hps_api.ops import storage as storage_ops


def storage_work(ctx: CommandContext) -> Reply:
    """Answer the caller's unreported jobs, one line each: `<job-id> <action> <volume> <size>
    <iqn> <initiator-iqn>` (`-` for an unused field); nothing when there is no work."""
    ctx.host_items()
    jobs = storage_ops.work(ctx.store, ctx.host, ctx.actor)
    text = "".join(f"{job.line}\n" for job in jobs)
    return Reply(text, {"mac": ctx.mac, "jobs": [job.line for job in jobs]}, raw=True,
                 title="storage work")


def storage_report(ctx: CommandContext) -> Reply:
    """Apply the caller's report on one job (`job=`, `status=ok|failed`, with `lun=` and
    `size=` or `detail=`); answer `ok`."""
    job = ctx.param("job")
    status = ctx.param("status")
    ctx.host_items()
    done = storage_ops.apply_report(ctx.store, ctx.host, job, status, ctx.params, ctx.actor)
    return Reply("ok", done)
