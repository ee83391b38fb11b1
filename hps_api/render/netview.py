"""The network view as SVG, rendered on the server (docs/ui.md, "Network view").

A bus diagram of one cluster: the IPS at the top of the provisioning network (a bus down the
left), one band per host type with a square per host coloured by its state, and a bus down the
right for each storage network (VLAN, network, MTU), with a stub from every band that has hosts
on it. Thin nodes' iSCSI roots (ISCSI_ROOT_<i>=<address>:<iqn>) are drawn as lines to the
storage host holding that address.

Up to DETAIL_LIMIT hosts, every square is a link to its host's page with a hover title; beyond
that (10,000 hosts) each band draws one path per state, linked to the filtered host list, so
the picture stays a few hundred kilobytes. Colours are presentation attributes, not CSS: the
pages' Content-Security-Policy forbids inline styles, and the file must look the same saved on
its own (`/network.svg`) or printed to PDF. Pure: plain mappings in, text out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from hps_api.errors import HpsError
from hps_api.model.catalog import load_catalog
from hps_api.model.network import default_range, storage_network
from hps_api.model.states import STATES

Records = Mapping[str, Mapping[str, str]]

WIDTH = 1200
DETAIL_LIMIT = 2000
MAX_ISCSI_LINES = 300
NO_TYPE = "(none)"
#: state -> fill colour (the pages' badge colours, darkened to read on white)
COLOURS = {"UNCONFIGURED": "#d4a72c", "CONFIGURED": "#54aeff", "INSTALLING": "#0969da",
           "REINSTALL": "#8250df", "INSTALLED": "#1a7f37", "INSTALL_FAILED": "#cf222e",
           "FAILED": "#82071e", "NETWORK_BOOT": "#1b7c83", "UNMANAGED": "#6e7781",
           "RESCUE": "#bf3989"}
OTHER = "#afb8c1"
INK, MUTED, LINE = "#1d2329", "#5c6670", "#8c959f"
BUS_X = 34
STORAGE_GAP = 34
TOP = 150
LEGEND_X, LEGEND_COLUMNS, LEGEND_STEP = 340, 5, 160
FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Host:
    """One host as the picture needs it."""

    mac: str
    name: str
    kind: str
    state: str
    ip: str
    storage: frozenset[int]

    @property
    def colour(self) -> str:
        """Return the fill colour of its state."""
        return COLOURS.get(self.state, OTHER)


@dataclass(frozen=True)
class Bus:
    """A storage network: its index, x position and description."""

    index: int
    x: int
    label: str


def render(cluster_name: str, cluster: Mapping[str, str], records: Records, *,
           detail_limit: int = DETAIL_LIMIT) -> str:
    """Return the SVG document of the cluster's network and hosts."""
    buses = storage_buses(cluster)
    indexes = [bus.index for bus in buses]
    hosts = [host_of(mac, record, indexes) for mac, record in sorted(records.items())]
    detailed = len(hosts) <= detail_limit
    pitch = 12 if detailed else 7
    right = WIDTH - 20 - STORAGE_GAP * len(buses)
    parts: list[str] = []
    positions: dict[str, tuple[int, int]] = {}
    y = TOP
    for kind, members in bands(hosts):
        y = _band(parts, positions, kind, members, buses, y, right, pitch, detailed)
    height = y + 30
    head = _head(cluster_name, cluster, hosts, buses, height)
    lines = _iscsi(records, positions) if detailed else []
    return "".join([*head, *parts, *lines, "</svg>\n"])


def host_of(mac: str, record: Mapping[str, str], storage: Sequence[int] = ()) -> Host:
    """Return what the picture shows of a host (RESCUE=yes shows as RESCUE), and which of
    the `storage` networks it has an address on (STORAGE<i>_IP)."""
    state = (record.get("STATE") or "UNCONFIGURED").strip().upper()
    if "RESCUE" in record and record["RESCUE"].strip().lower() == "yes":
        state = "RESCUE"
    on = frozenset(i for i in storage if record.get(f"STORAGE{i}_IP", "").strip())
    name = record.get("HOSTNAME") or ":".join(mac[i:i + 2] for i in range(0, 12, 2))
    kind = (record.get("TYPE") or "").strip().upper() or NO_TYPE
    return Host(mac, name, kind, state, record.get("IP", ""), on)


def bands(hosts: list[Host]) -> list[tuple[str, list[Host]]]:
    """Return the hosts by TYPE: catalog types first in catalog order, others by name, hosts
    without a type last; in a band, by state (STATES order) then name."""
    return [(kind, sorted(members, key=_in_band)) for kind, members in _grouped(hosts)]


def storage_buses(cluster: Mapping[str, str]) -> list[Bus]:
    """Return the cluster's storage networks (either spelling of their keys) as buses."""
    found = []
    for index in range(16):
        try:
            net = storage_network(cluster, index)
        except HpsError:
            break
        label = f"storage {index} · VLAN {net.vlan} · {net.network} · MTU {net.mtu}"
        found.append(Bus(index, WIDTH - 20 - STORAGE_GAP * index, label))
    return found


# -- parts -------------------------------------------------------------------------------------


def _grouped(hosts: list[Host]) -> list[tuple[str, list[Host]]]:
    catalog = list(load_catalog())
    groups: dict[str, list[Host]] = {}
    for host in hosts:
        groups.setdefault(host.kind, []).append(host)
    order = {name: n for n, name in enumerate(catalog)}
    return sorted(groups.items(), key=lambda item: (item[0] == NO_TYPE,
                                                   order.get(item[0], len(order)), item[0]))


def _in_band(host: Host) -> tuple[int, str]:
    rank = STATES.index(host.state) if host.state in STATES else len(STATES)
    return rank, host.name


def _head(name: str, cluster: Mapping[str, str], hosts: list[Host], buses: list[Bus],
          height: int) -> list[str]:
    network, ips = cluster.get("NETWORK_CIDR", "?"), cluster.get("DHCP_IP", "?")
    found = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" class="netview" {FONT} '
             f'font-size="12">',
             f"<title>Cluster {escape(name)}: network and hosts</title>",
             f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>',
             '<rect x="12" y="12" width="300" height="62" rx="6" fill="#22313f"/>',
             f'<text x="24" y="36" fill="#fff" font-weight="700" font-size="14">IPS '
             f"{escape(ips)}</text>",
             f'<text x="24" y="58" fill="#fff">cluster {escape(name)} · '
             f"{escape(cluster.get('DNS_DOMAIN', 'cluster.local'))}</text>",
             f'<line x1="{BUS_X}" y1="74" x2="{BUS_X}" y2="{height - 16}" stroke="{INK}" '
             f'stroke-width="4"/>',
             f'<text x="{BUS_X + 10}" y="96" fill="{INK}" font-weight="600">provisioning '
             f"{escape(network)} · DHCP range {escape(_dhcp_range(cluster))}</text>"]
    for bus in buses:
        found.append(f'<line x1="{bus.x}" y1="{TOP - 14 - 16 * bus.index}" x2="{bus.x}" '
                     f'y2="{height - 16}" stroke="#0550ae" stroke-width="3"/>')
        found.append(f'<text x="{bus.x + 4}" y="{TOP - 18 - 16 * bus.index}" fill="#0550ae" '
                     f'text-anchor="end">{escape(bus.label)}</text>')
    found += _legend(hosts, buses)
    return found


def _legend(hosts: list[Host], buses: list[Bus]) -> list[str]:
    """The state colours with their counts, in columns right of the IPS."""
    counts: dict[str, int] = {}
    for host in hosts:
        counts[host.state] = counts.get(host.state, 0) + 1
    shown = [state for state in [*STATES, "RESCUE", *sorted(set(counts) - set(STATES))]
             if state in counts]
    found = []
    for n, state in enumerate(dict.fromkeys(shown)):
        x, y = LEGEND_X + (n % LEGEND_COLUMNS) * LEGEND_STEP, 26 + (n // LEGEND_COLUMNS) * 18
        found.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" '
                     f'fill="{COLOURS.get(state, OTHER)}"/>')
        found.append(f'<text x="{x + 14}" y="{y}" fill="{INK}">{escape(state)} '
                     f"{counts[state]}</text>")
    return found


def _band(parts: list[str], positions: dict[str, tuple[int, int]], kind: str,
          members: list[Host], buses: list[Bus], y: int, right: int, pitch: int,
          detailed: bool) -> int:
    left = BUS_X + 36
    per_row = max(1, (right - left - 16) // pitch)
    rows = -(-len(members) // per_row)
    height = 28 + rows * pitch + 8
    parts.append(f'<line x1="{BUS_X}" y1="{y + 14}" x2="{left}" y2="{y + 14}" '
                 f'stroke="{INK}" stroke-width="2"/>')
    parts.append(f'<rect x="{left}" y="{y}" width="{right - left - 8}" height="{height}" '
                 f'rx="5" fill="#f6f8fa" stroke="#d0d7de"/>')
    parts.append(f'<text x="{left + 8}" y="{y + 18}" fill="{INK}" font-weight="600">'
                 f"{escape(kind)} · {len(members)} host{'s' if len(members) != 1 else ''}"
                 "</text>")
    for bus in buses:
        attached = sum(1 for host in members if bus.index in host.storage)
        if attached:
            parts.append(f'<line x1="{right - 8}" y1="{y + 14 + 4 * bus.index}" x2="{bus.x}" '
                         f'y2="{y + 14 + 4 * bus.index}" stroke="#0550ae" stroke-width="2"/>')
            parts.append(f'<text x="{right - 12}" y="{y + 18}" fill="#0550ae" '
                         f'text-anchor="end">storage {bus.index}: {attached}</text>')
    top = y + 28
    if detailed:
        for n, host in enumerate(members):
            cx, cy = left + 8 + (n % per_row) * pitch, top + (n // per_row) * pitch
            positions[host.mac] = (cx + (pitch - 2) // 2, cy + (pitch - 2) // 2)
            tip = f"{host.name} · {host.state}" + (f" · {host.ip}" if host.ip else "")
            parts.append(f'<a href="/hosts/{host.mac}"><rect x="{cx}" y="{cy}" '
                         f'width="{pitch - 2}" height="{pitch - 2}" fill="{host.colour}">'
                         f"<title>{escape(tip)}</title></rect></a>")
    else:
        _compact(parts, kind, members, left + 8, top, per_row, pitch)
    return y + height + 12


def _compact(parts: list[str], kind: str, members: list[Host], left: int, top: int,
             per_row: int, pitch: int) -> None:
    """One path per state: a square per host, linked to the host list of that type and state."""
    paths: dict[str, list[str]] = {}
    for n, host in enumerate(members):
        cx, cy = left + (n % per_row) * pitch, top + (n // per_row) * pitch
        paths.setdefault(host.state, []).append(f"M{cx} {cy}h{pitch - 1}v{pitch - 1}h-{pitch - 1}z")
    for state, squares in paths.items():
        params = {"type": kind}
        params.update({"q": "RESCUE=yes"} if state == "RESCUE" else {"state": state})
        href = "/hosts?" + urlencode(params)
        parts.append(f'<a href="{escape(href)}"><path d="{"".join(squares)}" '
                     f'fill="{COLOURS.get(state, OTHER)}"><title>{escape(kind)} · '
                     f"{escape(state)} · {len(squares)} hosts</title></path></a>")


def _iscsi(records: Records, positions: Mapping[str, tuple[int, int]]) -> list[str]:
    """Lines from each thin node to the storage host its ISCSI_ROOT_<i> address belongs to."""
    owners = {value.strip(): mac for mac, record in records.items()
              for key, value in record.items()
              if key.startswith("STORAGE") and key.endswith("_IP") and value.strip()}
    found: list[str] = []
    for mac, record in sorted(records.items()):
        for key, value in record.items():
            if not key.startswith("ISCSI_ROOT_") or mac not in positions:
                continue
            target = owners.get(value.split(":", 1)[0].strip(), "")
            if target in positions and len(found) < MAX_ISCSI_LINES:
                (x1, y1), (x2, y2) = positions[mac], positions[target]
                found.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{LINE}" '
                             f'stroke-width="1" opacity="0.45"><title>{escape(key)}='
                             f"{escape(value)}</title></line>")
    return found


def _dhcp_range(cluster: Mapping[str, str]) -> str:
    start, end = cluster.get("DHCP_RANGE_START"), cluster.get("DHCP_RANGE_END")
    if start and end:
        return f"{start}-{end}"
    try:
        first, last = default_range(ipaddress.IPv4Network(cluster.get("NETWORK_CIDR", "")))
    except ValueError:
        return "?"
    return f"{first}-{last} (default)"
