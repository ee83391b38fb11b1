"""The network view (hps_api.render.netview, `/network`, `/network.svg`): an SVG drawn on the
server with the IPS, the provisioning network, each storage network, a square per host coloured
by its state, iSCSI roots as lines; compact at 10,000 hosts; printable."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import test_ui
from test_ui import HOSTILE, OUTSIDER, add_host

from hps_api.render import netview
from hps_api.store import RecordId

#: the page fixtures of test_ui: the real app, a LAN browser, a logged-in admin
app, web = test_ui.app, test_ui.web

SVG = "{http://www.w3.org/2000/svg}"
CLUSTER = {"NETWORK_CIDR": "10.99.0.0/24", "DHCP_IP": "10.99.0.1", "STORAGE_NETWORKS": "2",
           "STORAGE0_CIDR": "10.31.0.0/24", "STORAGE0_VLAN": "31",
           "STORAGE1_CIDR": "10.32.0.0/24", "STORAGE1_VLAN": "32", "STORAGE1_MTU": "9000"}
HOSTS = {
    "525400aabb01": {"TYPE": "SCH", "STATE": "INSTALLED", "HOSTNAME": "sch-001",
                     "IP": "10.99.0.11", "STORAGE0_IP": "10.31.0.11"},
    "525400aabb02": {"TYPE": "TCH", "STATE": "NETWORK_BOOT", "HOSTNAME": "tch-002",
                     "ISCSI_ROOT_0": "10.31.0.11:iqn.2025-01.lab:tch-002"},
    "525400aabb03": {"STATE": "INSTALL_FAILED"},
    "525400aabb04": {"TYPE": "TCH", "STATE": "INSTALLED", "RESCUE": "yes", "HOSTNAME": "tch-004"},
}


def squares(svg: str) -> dict[str, tuple[str, str]]:
    """Return mac12 -> (fill, hover title) of every host square."""
    root = ET.fromstring(svg)
    found = {}
    for link in root.iter(f"{SVG}a"):
        rect = link.find(f"{SVG}rect")
        if rect is not None:
            title = rect.find(f"{SVG}title")
            found[link.attrib["href"].rsplit("/", 1)[1]] = (
                rect.attrib["fill"], title.text if title is not None else "")
    return found


def test_every_host_is_a_square_coloured_by_its_state_with_a_link_and_a_title() -> None:
    found = squares(netview.render("lab", CLUSTER, HOSTS))
    assert found == {
        "525400aabb01": (netview.COLOURS["INSTALLED"], "sch-001 · INSTALLED · 10.99.0.11"),
        "525400aabb02": (netview.COLOURS["NETWORK_BOOT"], "tch-002 · NETWORK_BOOT"),
        "525400aabb03": (netview.COLOURS["INSTALL_FAILED"], "52:54:00:aa:bb:03 · INSTALL_FAILED"),
        "525400aabb04": (netview.COLOURS["RESCUE"], "tch-004 · RESCUE"),
    }


def test_the_picture_names_the_ips_the_networks_and_the_bands() -> None:
    svg = netview.render("lab", CLUSTER, HOSTS)
    text = " ".join(t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text"))
    for expected in ("IPS 10.99.0.1", "provisioning 10.99.0.0/24", "DHCP range "
                     "10.99.0.128-10.99.0.254 (default)", "storage 0 · VLAN 31 · 10.31.0.0/24",
                     "storage 1 · VLAN 32 · 10.32.0.0/24 · MTU 9000", "SCH · 1 host",
                     "TCH · 2 hosts", "(none) · 1 host", "storage 0: 1"):
        assert expected in text, expected
    bands = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text") if t.text and " · " in t.text
             and t.text.split(" · ")[0] in ("SCH", "TCH", "(none)")]
    assert bands == ["SCH · 1 host", "TCH · 2 hosts", "(none) · 1 host"]  # catalog order


def test_an_iscsi_root_is_a_line_from_the_thin_node_to_its_storage_host() -> None:
    root = ET.fromstring(netview.render("lab", CLUSTER, HOSTS))
    lines = [line for line in root.iter(f"{SVG}line") if line.find(f"{SVG}title") is not None]
    assert [line.find(f"{SVG}title").text for line in lines] == [  # type: ignore[union-attr]
        "ISCSI_ROOT_0=10.31.0.11:iqn.2025-01.lab:tch-002"]


def test_at_10000_hosts_each_band_draws_a_path_per_state_linked_to_the_host_list() -> None:
    hosts = {f"5254{n:08x}": {"TYPE": "TCH", "STATE": "INSTALLED" if n % 10 else "FAILED"}
             for n in range(10_000)}
    svg = netview.render("lab", CLUSTER, hosts)
    root = ET.fromstring(svg)
    paths = {a.attrib["href"]: a.find(f"{SVG}path") for a in root.iter(f"{SVG}a")}
    assert set(paths) == {"/hosts?type=TCH&state=INSTALLED", "/hosts?type=TCH&state=FAILED"}
    assert paths["/hosts?type=TCH&state=FAILED"].find(f"{SVG}title").text == \
        "TCH · FAILED · 1000 hosts"  # type: ignore[union-attr]
    assert len(svg) < 400_000


def test_hostile_values_are_escaped() -> None:
    svg = netview.render(HOSTILE, {**CLUSTER, "DNS_DOMAIN": HOSTILE},
                         {"525400aabb01": {"HOSTNAME": HOSTILE, "TYPE": HOSTILE}})
    ET.fromstring(svg)
    assert "<script" not in svg


def test_the_page_carries_the_picture_and_the_bare_svg_is_served(web, store) -> None:
    store.update(RecordId.of_cluster("default"), CLUSTER, "t")
    add_host(store, "52:54:00:aa:bb:01", **HOSTS["525400aabb01"])
    page = web.get("/network")
    assert '<figure class="netview"><svg xmlns="http://www.w3.org/2000/svg"' in page.text
    bare = web.get("/network.svg")
    assert bare.content_type == "image/svg+xml"
    assert squares(bare.text)["525400aabb01"][0] == netview.COLOURS["INSTALLED"]
    css = web.get("/ui/ui.css").text
    assert "@media print" in css and "header.top" in css.split("@media print")[1]


def test_non_admins_are_not_drawn_sensitive_values(tmp_path, config_dir, store) -> None:
    import webtest
    from test_ui import make_app

    add_host(store, "52:54:00:aa:bb:01", HOSTNAME="secret-name", STATE="INSTALLED")
    client = webtest.TestApp(make_app(tmp_path, config_dir, sensitive_keys=("HOSTNAME",)),
                             extra_environ={"REMOTE_ADDR": OUTSIDER})
    assert "secret-name" not in client.get("/network.svg").text


@pytest.mark.parametrize(("cluster", "expected"), [
    ({"NETWORK_CIDR": "10.0.0.0/24", "DHCP_RANGE_START": "10.0.0.50",
      "DHCP_RANGE_END": "10.0.0.60"}, "10.0.0.50-10.0.0.60"),
    ({}, "?"),
])
def test_the_dhcp_range_is_the_clusters_or_the_default(cluster, expected) -> None:
    assert f"DHCP range {expected}" in netview.render("lab", cluster, {})
