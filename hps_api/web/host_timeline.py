"""The host page's "Timeline" section (docs/timeline.md): the host's provisioning timeline
(hps_api.observe.timeline_logs) as the template shows it, times as people read them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hps_api.observe.timeline import PHASES, Timeline, human, iso
from hps_api.observe.timeline_logs import LogFiles, host_timeline
from hps_api.settings import Settings
from hps_api.store import RecordId, Store
from hps_api.store.journal import Change
from hps_api.web.when import When, when

_DESCRIPTIONS = dict(PHASES)
_SOURCES = {"events": "hps-api.log", "access": "access.log", "nginx": "nginx-access.log",
            "nodes": "nodes.log", "dnsmasq": "dnsmasq.log", "leases": "DHCP leases",
            "journal": "journal", "record": "host record"}


@dataclass(frozen=True)
class TimelineRow:
    """One phase as the table shows it; `at` None when it was not seen."""

    name: str
    description: str
    at: When | None
    took: str
    source: str
    detail: str
    current: bool


@dataclass(frozen=True)
class TimelineView:
    """The section: the rows, and the phase the host waits in (None: nothing awaited)."""

    rows: tuple[TimelineRow, ...]
    session: str | None
    waiting: str | None
    waited: str
    since: When | None
    seen: bool


def timeline_section(store: Store, settings: Settings, rid: RecordId,
                     record: Mapping[str, str], changes: Sequence[Change],
                     now: float) -> TimelineView:
    """Return the host's timeline section, from the record and journal the page has read."""
    found = host_timeline(store, rid, LogFiles.under(settings.log_dir, settings.dhcp_leases),
                          now, record=record, changes=changes)
    return timeline_view(found)


def timeline_view(timeline: Timeline) -> TimelineView:
    """Return what the template shows of a timeline."""
    rows = []
    for phase in timeline.phases:
        current = phase == timeline.waiting
        took = human(phase.took) if phase.took is not None else ""
        if current and phase.at is not None:
            took = f"{human(timeline.now - phase.at)} so far"
        rows.append(TimelineRow(
            phase.name, _DESCRIPTIONS[phase.name],
            when(iso(phase.at), timeline.now) if phase.at is not None else None, took,
            _SOURCES.get(phase.source, phase.source), phase.detail, current))
    waiting = timeline.waiting
    since = waiting.at if waiting is not None else None
    return TimelineView(
        tuple(rows), timeline.session, waiting.name if waiting is not None else None,
        human(timeline.now - since) if since is not None else "",
        when(iso(since), timeline.now) if since is not None else None,
        any(row.at is not None for row in rows))
