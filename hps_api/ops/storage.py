"""Thin hosts' iSCSI disks (docs/storage-hosts.md): provision, expand, delete, list and show
volumes; hand storage hosts their work and apply their reports.

The IPS never touches a disk. It queues work on a storage host's record (`STORAGE_JOB_<ID>`),
the storage host fetches it (`cmd=storage_work`) until it reports the outcome
(`cmd=storage_report`), and the report is applied here: the volume is recorded on the storage
host (`STORAGE_VOLUME_<NAME>`) and the thin host is given `ISCSI_ROOT_<i>`.

- A job id is derived from what the job does (action, IQN, size), so asking twice queues one
  job, and a second report of a job already applied changes nothing: one volume, never two.
- A storage host that stays silent loses nothing: every unreported job is handed out again at
  each fetch (the storage host's side makes each action idempotent).
- The choice of storage host, and the jobs it queues, are made under the cluster's allocation
  lock; when no storage host has room, Conflict says why and nothing is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from hps_api.errors import Conflict, Forbidden, HpsError, InvalidInput, NotFound
from hps_api.model import storage as m
from hps_api.model.catalog import load_catalog
from hps_api.observe import eventlog
from hps_api.store import Kind, RecordId, Store
from hps_api.store.journal import utc_now

#: the host type that serves iSCSI volumes
STORAGE_TYPE = "SCH"
#: the volume name of a thin host's root disk in slot i (its mirror is slot 1)
ROOT_VOLUME = "root{}"
HANDOUT_RETRIES = 3

Records = list[tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Candidate:
    """A storage host as the choice sees it: room left after its queued work, volume count."""

    mac: str
    hostname: str
    free: int | None
    volumes: int

    @property
    def name(self) -> str:
        """Return `hostname (mac)`, or the MAC alone."""
        return f"{self.hostname} ({self.mac})" if self.hostname else self.mac


def choose(candidates: Iterable[Candidate], size: int, copies: int) -> tuple[list[Candidate],
                                                                          list[str]]:
    """Return the storage hosts chosen for `copies` volumes of `size` bytes, each on a
    different host (the most room first, then the fewest volumes, then the MAC), or none when
    fewer than `copies` have room; and the choice in words, one line per storage host. Pure."""
    roomy, why = [], []
    for c in sorted(candidates, key=lambda c: (-(c.free or 0), c.volumes, c.mac)):
        if c.free is None:
            why.append(f"{c.name}: no STORAGE_FREE reported yet")
        elif c.free < size:
            why.append(f"{c.name}: {m.shown_size(c.free)} free, too little for "
                       f"{m.shown_size(size)}")
        else:
            roomy.append(c)
    chosen = roomy[:copies] if len(roomy) >= copies else []
    verdicts = ["chosen"] * len(chosen) + ["not needed" if chosen else "has room"] * (
        len(roomy) - len(chosen))
    lines = [f"{c.name}: {m.shown_size(c.free or 0)} free, {c.volumes} volume(s) - {verdict}"
             for c, verdict in zip(roomy, verdicts, strict=True)]
    return chosen, lines + why


# --- the operator's operations ------------------------------------------------------------

def provision(store: Store, cluster: str, mac: str, size: str, actor: str) -> dict[str, Any]:
    """Queue the root disk of a thin host (and its mirror when the cluster's ISCSI_MIRRORS is
    2) on the storage hosts with the most room; return the plan: the jobs and the choice in
    words. Asking again while the jobs are queued returns the same jobs.

    InvalidInput (bad size, not a thin host, no HOSTNAME), NotFound (no such host), Conflict
    (it has a root disk already; no storage host has room: the message says why, nothing is
    written), StoreBusy.
    """
    rid = RecordId.of_host(cluster, mac)
    wanted = m.volume_size(size)
    with store.lock(cluster):
        host = _thin_host(store, rid)
        cluster_record = store.items(RecordId.of_cluster(cluster))
        copies = m.mirrors(cluster_record)
        hosts = _storage_hosts(store, cluster)
        pending = [(sch, job) for sch, record in hosts for job in m.jobs_of(record)
                   if job.host == rid.name and job.action == "provision"
                   and job.state != "failed"]
        if pending:
            return _plan(rid, [job for _, job in pending], [sch for sch, _ in pending],
                         ["already queued: the storage host(s) have not reported yet"])
        taken = [slot for slot in range(copies) if m.root_of(host, slot)]
        if taken:
            raise Conflict(f"host {rid.name} has a root disk already (ISCSI_ROOT_{taken[0]}="
                           f"{host[m.ROOT_KEY.format(taken[0])]}): expand it, or delete it first")
        chosen, why = choose(_candidates(hosts), wanted, copies)
        if not chosen:
            raise Conflict(f"no room for the root disk of {host.get('HOSTNAME') or rid.name} "
                           f"({m.shown_size(wanted)} on {copies} different storage host(s)): "
                           + "; ".join(why or ["no storage host (TYPE SCH) in this cluster"]))
        today = utc_now()
        jobs = [_provision_job(cluster_record, cluster, rid, host, slot, wanted, today)
                for slot in range(copies)]
        placed = [(sch.mac, job) for sch, job in zip(chosen, jobs, strict=True)]
        _queue(store, cluster, placed, actor)
        _forget_failed(store, cluster, hosts, rid, placed, actor)
    for sch, job in zip(chosen, jobs, strict=True):
        eventlog.event(logging.INFO, f"storage: {job.volume} ({m.size_text(wanted)}) queued on "
                       f"{sch.name} by {actor}", host=rid.name)
    return _plan(rid, jobs, [sch.mac for sch in chosen], why)


def expand(store: Store, cluster: str, iqn: str, size: str, actor: str) -> dict[str, Any]:
    """Queue the growth of a volume to `size` on its storage host; return the job.
    InvalidInput (bad IQN or size, not larger), NotFound (no such volume), Conflict (no room
    on its storage host), StoreBusy."""
    wanted = m.volume_size(size)
    m.check_iqn(iqn)
    with store.lock(cluster):
        sch, record, volume = _find_volume(store, cluster, iqn)
        if wanted <= volume.size:
            raise InvalidInput(f"{iqn} is {m.size_text(volume.size)} already: a volume only "
                               "grows")
        free = _room(record)
        if free is not None and free < wanted - volume.size:
            raise Conflict(f"no room on {record.get('HOSTNAME') or sch} to grow {iqn} by "
                           f"{m.shown_size(wanted - volume.size)}: {m.shown_size(free)} free")
        job = _job("expand", volume, wanted)
        _queue(store, cluster, [(sch, job)], actor)
    eventlog.event(logging.INFO, f"storage: {volume.volume} to grow to {m.size_text(wanted)} "
                   f"by {actor}", host=volume.host)
    return {"job": _job_view(sch, job)}


def delete(store: Store, cluster: str, iqn: str, actor: str) -> dict[str, Any]:
    """Queue the deletion of a volume on its storage host; return the job. Refused (Conflict)
    while any host's ISCSI_ROOT_<i> names it: a volume is never deleted under a running host.
    InvalidInput, NotFound, StoreBusy."""
    m.check_iqn(iqn)
    with store.lock(cluster):
        sch, _, volume = _find_volume(store, cluster, iqn)
        users = _users(store, cluster, iqn)
        if users:
            raise Conflict(f"{iqn} is in use ({', '.join(users)}): unset that key first, "
                           "a volume is never deleted under a running host")
        job = _job("delete", volume, None)
        _queue(store, cluster, [(sch, job)], actor)
    eventlog.event(logging.INFO, f"storage: {volume.volume} to be deleted by {actor}",
                   host=volume.host)
    return {"job": _job_view(sch, job)}


def listing(store: Store, cluster: str,
            records: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    """Return the cluster's storage hosts (free space, pool, counts), volumes and jobs.
    `records` (mac12 -> host record) are the cluster's hosts when the caller holds them
    already (the pages' index); else every host is read, once."""
    every = _host_records(store, cluster) if records is None else list(records.items())
    hosts = [(mac, dict(r)) for mac, r in every if _is_storage_host(r)]
    users = _users_of(every)
    return {
        "cluster": cluster,
        "storage_hosts": [{"mac": mac, "hostname": r.get("HOSTNAME"),
                           "free": m.free_bytes(r), "pool": r.get(m.POOL_KEY),
                           "volumes": len(m.volumes_of(r)), "jobs": len(m.jobs_of(r))}
                          for mac, r in hosts],
        "volumes": [_volume_view(mac, v, users.get(v.iqn, [])) for mac, r in hosts
                    for v in m.volumes_of(r)],
        "jobs": [_job_view(mac, job) for mac, r in hosts for job in m.jobs_of(r)],
    }


def show(store: Store, cluster: str, iqn: str) -> dict[str, Any]:
    """Return one volume, who uses it and its queued jobs. InvalidInput, NotFound."""
    m.check_iqn(iqn)
    sch, record, volume = _find_volume(store, cluster, iqn)
    jobs = [_job_view(sch, job) for job in m.jobs_of(record) if job.iqn == iqn]
    return {**_volume_view(sch, volume, _users(store, cluster, iqn)), "jobs": jobs}


# --- the storage host's side --------------------------------------------------------------

def work(store: Store, rid: RecordId, actor: str) -> list[m.Job]:
    """Return a storage host's unreported jobs (failed ones are not handed out) and count the
    handing out on each. Forbidden/NotFound as `_storage_host` says."""
    for _ in range(HANDOUT_RETRIES):
        record = _storage_host(store, rid)
        jobs = [job for job in m.jobs_of(record) if job.state != "failed"]
        if not jobs:
            return []
        handed = [replace(job, state="handed", handed=job.handed + 1) for job in jobs]
        try:
            store.update(rid, {job.key: job.value for job in handed}, actor,
                         expect={job.key: record[job.key] for job in jobs})
        except Conflict:
            continue  # a report or a new job came in between: read again
        return handed
    return jobs


def apply_report(store: Store, rid: RecordId, job_id: str, status: str,
                 params: Mapping[str, str], actor: str) -> dict[str, Any]:
    """Apply a storage host's report on one of its jobs and return what it did.

    `status=ok` with `lun=<ip>:<port>:<iqn>` and `size=<bytes>` records the volume and gives
    the thin host ISCSI_ROOT_<slot> (provision), records the new size (expand) or forgets the
    volume (delete); `status=failed` with `detail=` keeps the job as failed (not handed out
    again until asked for again). A second report of an applied job changes nothing.
    InvalidInput (bad report), NotFound (no such job on this storage host), Forbidden.
    """
    m.check_job_id(job_id)
    if status not in ("ok", "failed"):
        raise InvalidInput("status must be ok or failed")
    for _ in range(HANDOUT_RETRIES - 1):
        try:
            return _apply(store, rid, job_id, status, params, actor)
        except Conflict:
            continue  # the job was handed out again meanwhile: read it again
    return _apply(store, rid, job_id, status, params, actor)


def _apply(store: Store, rid: RecordId, job_id: str, status: str,
           params: Mapping[str, str], actor: str) -> dict[str, Any]:
    record = _storage_host(store, rid)
    key = m.JOB_PREFIX + job_id.upper()
    if key not in record:
        return _reported_again(store, rid, record, job_id)
    job = m.parse_job(key, record[key])
    if status == "failed":
        failed = job.failed(params.get("detail", ""))
        store.update(rid, {key: failed.value}, actor, expect={key: record[key]})
        eventlog.event(logging.WARNING, f"storage: {job.action} {job.volume} failed on "
                       f"{rid.name}: {failed.detail}", host=job.host)
        return {"job": job_id, "applied": "failed", "detail": failed.detail}
    changes, volume = _outcome(record, job, params)
    store.update(rid, {key: None, **changes}, actor, expect={key: record[key]})
    if volume is not None:
        _give_root(store, rid, volume, actor)
    eventlog.event(logging.INFO, f"storage: {job.action} {job.volume} done on {rid.name}",
                   host=job.host)
    return {"job": job_id, "applied": job.action}


# --- reading ------------------------------------------------------------------------------

def _host_records(store: Store, cluster: str) -> Records:
    """Return every host record of the cluster (one deleted meanwhile left out)."""
    found = []
    for rid in store.list_records(Kind.HOST, cluster):
        try:
            found.append((rid.name or "", store.items(rid)))
        except NotFound:
            continue
    return found


def _is_storage_host(record: Mapping[str, str]) -> bool:
    return record.get("TYPE", "").upper() == STORAGE_TYPE


def _storage_hosts(store: Store, cluster: str) -> Records:
    return [(mac, record) for mac, record in _host_records(store, cluster)
            if _is_storage_host(record)]


def _storage_host(store: Store, rid: RecordId) -> dict[str, str]:
    record = store.items(rid)
    if record.get("TYPE", "").upper() != STORAGE_TYPE:
        raise Forbidden(f"host {rid.name} is no storage host (TYPE {record.get('TYPE') or '-'})"
                        ": storage work is for TYPE SCH")
    return record


def _thin_host(store: Store, rid: RecordId) -> dict[str, str]:
    try:
        host = store.items(rid)
    except NotFound:
        raise NotFound(f"Host {rid.name} not found") from None
    kind = load_catalog().get(host.get("TYPE", "").upper())
    if kind is None or not kind.diskless:
        raise InvalidInput(f"host {rid.name} is no thin host (TYPE {host.get('TYPE') or '-'}): "
                           "only diskless types (TCH) are given iSCSI disks")
    return host


def _room(record: Mapping[str, str]) -> int | None:
    """Return a storage host's free bytes less what its queued provisions and growths take."""
    free = m.free_bytes(record)
    if free is None:
        return None
    sizes = {v.iqn: v.size for v in m.volumes_of(record)}
    for job in m.jobs_of(record):
        if job.state != "failed" and job.size and job.action in ("provision", "expand"):
            free -= job.size - sizes.get(job.iqn, 0)
    return max(0, free)


def _candidates(hosts: Records) -> list[Candidate]:
    return [Candidate(mac, r.get("HOSTNAME", ""), _room(r), len(m.volumes_of(r)) + sum(
        job.action == "provision" for job in m.jobs_of(r))) for mac, r in hosts]


def _find_volume(store: Store, cluster: str, iqn: str) -> tuple[str, dict[str, str], m.Volume]:
    for mac, record in _storage_hosts(store, cluster):
        for volume in m.volumes_of(record):
            if volume.iqn == iqn:
                return mac, record, volume
    raise NotFound(f"no volume {iqn} on any storage host of cluster {cluster}")


def _all_users(store: Store, cluster: str) -> dict[str, list[str]]:
    """Return IQN -> the `<host> ISCSI_ROOT_<i>` keys naming it, over every host."""
    return _users_of(_host_records(store, cluster))


def _users_of(records: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for mac, record in records:
        for key, value in record.items():
            if key.startswith("ISCSI_ROOT_") and value.strip():
                start = value.find("iqn.")  # as stored, even if not a well-formed root
                target = value[start:].strip() if start >= 0 else value.strip()
                users.setdefault(target, []).append(
                    f"{record.get('HOSTNAME') or mac} {key}")
    return users


def _users(store: Store, cluster: str, iqn: str) -> list[str]:
    return _all_users(store, cluster).get(iqn, [])


# --- writing ------------------------------------------------------------------------------

def _job_id(action: str, iqn: str, size: int | None) -> str:
    return hashlib.sha256(f"{action} {iqn} {size or '-'}".encode()).hexdigest()[:12]


def _provision_job(cluster_record: Mapping[str, str], cluster: str, rid: RecordId,
                   host: Mapping[str, str], slot: int, size: int, today: str) -> m.Job:
    hostname = host.get("HOSTNAME", "")
    name = ROOT_VOLUME.format(slot)
    iqn = m.iqn(cluster_record, cluster, hostname, name, today)
    volume = m.check_volume(f"{hostname}-{name}")
    return m.Job(id=_job_id("provision", iqn, size), action="provision", volume=volume,
                 size=size, iqn=iqn, host=rid.name or "", slot=slot,
                 initiator=m.initiator_iqn(cluster_record, cluster, hostname, today))


def _job(action: str, volume: m.Volume, size: int | None) -> m.Job:
    return m.Job(id=_job_id(action, volume.iqn, size), action=action, volume=volume.volume,
                 size=size, iqn=volume.iqn, initiator=None, host=volume.host, slot=volume.slot)


def _queue(store: Store, cluster: str, placed: list[tuple[str, m.Job]], actor: str) -> None:
    """Write each job on its storage host (a job already there is left as it is); when one
    write fails, the ones made before it are taken back, so nothing is half queued."""
    done: list[tuple[RecordId, m.Job]] = []
    try:
        for mac, job in placed:
            rid = RecordId.of_host(cluster, mac)
            current = store.items(rid).get(job.key)
            if current is None or m.parse_job(job.key, current).state == "failed":
                store.update(rid, {job.key: job.value}, actor, expect={job.key: current})
                done.append((rid, job))
    except HpsError:
        for rid, job in done:
            with contextlib.suppress(HpsError):
                store.update(rid, {job.key: None}, actor)
        raise


def _forget_failed(store: Store, cluster: str, hosts: Records, rid: RecordId,
                   placed: list[tuple[str, m.Job]], actor: str) -> None:
    """Remove the host's failed provisions on storage hosts not chosen again: asked again, the
    request lives where it was queued now."""
    kept = {(mac, job.key) for mac, job in placed}
    for mac, record in hosts:
        for job in m.jobs_of(record):
            if (job.host == rid.name and job.action == "provision" and job.state == "failed"
                    and (mac, job.key) not in kept):
                store.update(RecordId.of_host(cluster, mac), {job.key: None}, actor,
                             expect={job.key: record[job.key]})


def _outcome(record: Mapping[str, str], job: m.Job,
             params: Mapping[str, str]) -> tuple[dict[str, str | None], m.Volume | None]:
    """Return the storage host's changes for a successful job, and the volume a thin host is
    to be given (provision only)."""
    existing = {v.iqn: v for v in m.volumes_of(record)}
    free = m.free_bytes(record)
    if job.action == "delete":
        gone = existing.get(job.iqn)
        return ({gone.key: None} if gone else {}), None
    size = _reported_size(params, job)
    if job.action == "expand":
        volume = existing.get(job.iqn)
        if volume is None:
            raise NotFound(f"no volume {job.iqn} to grow")
        grown = replace(volume, size=size)
        return {grown.key: grown.value, **_less_free(free, size - volume.size)}, None
    root = m.parse_root(_required(params, "lun"))
    if root.iqn != job.iqn:
        raise InvalidInput(f"lun names {root.iqn}, the job is for {job.iqn}")
    volume = m.Volume(job.volume, size, job.iqn, job.host, job.slot, root.portal, job.id)
    return {volume.key: volume.value, **_less_free(free, size)}, volume


def _reported_size(params: Mapping[str, str], job: m.Job) -> int:
    text = params.get("size", "").strip()
    if not text:
        return job.size or 0
    if not text.isdigit() or int(text) == 0:
        raise InvalidInput(f"size must be the volume's bytes, not {text[:20]!r}")
    return int(text)


def _less_free(free: int | None, used: int) -> dict[str, str | None]:
    """STORAGE_FREE lowered by what a job took, until the storage host reports it again."""
    return {} if free is None else {m.FREE_KEY: str(max(0, free - max(0, used)))}


def _give_root(store: Store, sch: RecordId, volume: m.Volume, actor: str) -> None:
    """Set the thin host's ISCSI_ROOT_<slot>; a thin host deleted meanwhile leaves the volume
    unused (it can be deleted)."""
    thin = RecordId.of_host(sch.cluster or "", volume.host)
    try:
        store.update(thin, {m.ROOT_KEY.format(volume.slot): volume.root.value}, actor)
    except NotFound:
        eventlog.event(logging.WARNING, f"storage: {volume.iqn} made for host {volume.host}, "
                       "which is gone: the volume is unused", host=sch.name)


def _reported_again(store: Store, rid: RecordId, record: Mapping[str, str],
                    job_id: str) -> dict[str, Any]:
    """A report of a job that is no longer queued: when it made a volume, make sure the thin
    host has its key (a crash may have come between the two writes), else NotFound."""
    for volume in m.volumes_of(record):
        if volume.job == job_id:
            thin = RecordId.of_host(rid.cluster or "", volume.host)
            key = m.ROOT_KEY.format(volume.slot)
            current = store.items(thin).get(key) if store.exists(thin) else None
            if store.exists(thin) and current != volume.root.value:
                _give_root(store, rid, volume, "storage_report")
            return {"job": job_id, "applied": "already"}
    raise NotFound(f"no job {job_id} on storage host {rid.name}")


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise InvalidInput(f"Param '{name}' is required")
    return value


# --- views --------------------------------------------------------------------------------

def _plan(rid: RecordId, jobs: list[m.Job], schs: list[str], why: list[str]) -> dict[str, Any]:
    return {"mac": rid.name, "cluster": rid.cluster,
            "jobs": [_job_view(sch, job) for sch, job in zip(schs, jobs, strict=True)],
            "choice": why}


def _job_view(sch: str, job: m.Job) -> dict[str, Any]:
    return {"id": job.id, "storage_host": sch, "action": job.action, "volume": job.volume,
            "size": m.size_text(job.size) if job.size else None, "iqn": job.iqn,
            "initiator": job.initiator, "host": job.host, "slot": job.slot,
            "state": job.state, "handed": job.handed, "detail": job.detail or None}


def _volume_view(sch: str, volume: m.Volume, users: list[str]) -> dict[str, Any]:
    return {"iqn": volume.iqn, "volume": volume.volume, "size": m.size_text(volume.size),
            "bytes": volume.size, "storage_host": sch, "portal": volume.portal,
            "host": volume.host, "slot": volume.slot, "used_by": users}
