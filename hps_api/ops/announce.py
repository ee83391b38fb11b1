"""Telling people about stuck hosts (docs/stuck.md, "Where they show"): one WARNING line in the
event log (and so in syslog) when a host becomes stuck, the same news POSTed to HPS_WEBHOOK_URL,
and the watch that scans every cluster each HPS_STUCK_SCAN_SECONDS in the server.

What was announced is remembered in `<config dir>/run/stuck/<cluster>.json` (mac12 -> the rule,
since when, when it was announced), so a host is announced once however many scans find it,
across restarts too; when a scan no longer finds it, an INFO line says so and it is forgotten,
so it is announced again if it gets stuck again. A record that cannot be read keeps what was
announced of it.

`Watch` runs in every gunicorn worker, and scans only in the one holding the flock on
`run/stuck/watch.lock` (as the power poller does, hps_api.ops.power_jobs): one scan and one
announcement per interval whatever the worker count; when that worker dies, another takes over.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hps_api.errors import HpsError
from hps_api.ids import validate_cluster
from hps_api.model.stuck import TITLES
from hps_api.observe import eventlog
from hps_api.observe.webhook import Webhook
from hps_api.ops.host_index import HostIndex
from hps_api.ops.leader import LeaderLoop
from hps_api.ops.stuck import Scan, StuckHost, find_stuck, iso
from hps_api.power.records import read_json, write_json
from hps_api.settings import Settings
from hps_api.store import Kind, Store

SCAN_SECONDS = 60.0
EVENT = "host_stuck"


def run_dir(config_dir: Path) -> Path:
    """Return `<config dir>/run/stuck`."""
    return Path(config_dir) / "run" / "stuck"


def payload(cluster: str, host: StuckHost) -> dict[str, Any]:
    """Return the webhook's JSON object for a host that became stuck (docs/stuck.md)."""
    first = host.first
    return {"event": EVENT, "cluster": cluster, "mac": host.mac,
            "hostname": host.record.get("HOSTNAME", ""), "rule": first.rule,
            "since": iso(first.since), "detail": first.detail}


class Announcer:
    """Announces each host once when it becomes stuck (see the module docstring)."""

    def __init__(self, config_dir: Path, webhook: Webhook | None = None) -> None:
        self.dir = run_dir(config_dir)
        self.webhook = webhook

    def announce(self, scan: Scan) -> list[StuckHost]:
        """Log and send the hosts of `scan` not announced yet, or announced under another rule
        (a host whose kernel never loaded, then given up on, is news twice); forget those no
        longer stuck; return the hosts announced now."""
        path = self.dir / f"{validate_cluster(scan.cluster)}.json"
        known: dict[str, Any] = (read_json(path) or {}).get("hosts") or {}
        new = [host for mac, host in scan.hosts.items()
               if (known.get(mac) or {}).get("rule") != host.first.rule]
        gone = [mac for mac in known if mac not in scan.hosts and mac not in scan.problems]
        for host in new:
            first = host.first
            eventlog.event(logging.WARNING, f"stuck: {TITLES[first.rule]} ({first.rule}): "
                           f"{first.detail}", host=host.mac)
            known[host.mac] = {"rule": first.rule, "since": iso(first.since),
                               "announced": iso(scan.now)}
            if self.webhook is not None:
                self.webhook.send(payload(scan.cluster, host))
        for mac in gone:
            eventlog.event(logging.INFO, f"no longer stuck ({known.pop(mac).get('rule')})",
                           host=mac)
        if new or gone:
            write_json(path, {"cluster": scan.cluster, "hosts": known})
        return new

    def announced(self, cluster: str) -> dict[str, Any]:
        """Return what was announced of the cluster's hosts: mac12 -> {rule, since, announced}."""
        found = (read_json(self.dir / f"{validate_cluster(cluster)}.json") or {}).get("hosts")
        return found if isinstance(found, dict) else {}


class Watch(LeaderLoop):
    """Scans every cluster for stuck hosts now and then, in the one process holding the lock."""

    name = "hps-stuck-watch"

    def __init__(self, store: Store, announcer: Announcer, interval: float = SCAN_SECONDS,
                 index: HostIndex | None = None) -> None:
        super().__init__(announcer.dir / "watch.lock", interval)
        self.store = store
        self.announcer = announcer
        self.index = index or HostIndex()

    def work(self) -> object:
        return self.scan_once()

    @classmethod
    def of(cls, store: Store, settings: Settings, index: HostIndex | None = None) -> Watch:
        """Return the watch the settings ask for: their interval and webhook (if any); `index`
        reads the records (the worker's pages share theirs)."""
        webhook = (Webhook(settings.webhook_url, settings.webhook_secret)
                   if settings.webhook_url else None)
        return cls(store, Announcer(store.layout.root, webhook), settings.stuck_scan_seconds,
                   index)

    def scan_once(self) -> list[Scan]:
        """Scan every cluster, announce what is new, and return the scans."""
        scans = []
        for rid in self.store.list_records(Kind.CLUSTER):
            try:
                scan = find_stuck(self.store, rid.cluster or "", index=self.index)
            except HpsError as err:  # removed or unreadable meanwhile: the others go on
                eventlog.event(logging.WARNING, f"stuck scan of {rid.cluster}: {err}",
                               host="ips")
                continue
            self.announcer.announce(scan)
            scans.append(scan)
        return scans

