"""The operator's pages in a real browser (Debian's headless Chromium, driven by selenium, as in
tests/test_browser.py) over a cluster of 125 hosts: search, filter, sort and paging; a bulk
configure of 50 hosts; a CSV import with one bad row; the settings page refusing a bad value; the
network view, on screen and in print; every page within 1280 px.

With HPS_UI_SCREENSHOTS=1 the tests also write the screenshots of docs/ui.md to docs/ (full
pages at 1280 px); without it they go to the test's tmp_path.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import test_browser
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from test_browser import ADMIN, PASSWORD, WAIT, Site, as_lan_client, log_in, open_page, serve

from hps_api import create_app
from hps_api.ops.accounts import Accounts
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise

pytestmark = pytest.mark.slow

#: the browser of test_browser: one headless Chromium for the module
driver = test_browser.driver

DOCS = Path(__file__).resolve().parents[1] / "docs"
WIDTH = 1280
WAITING = [f"5254001000{n:02x}" for n in range(50)]
NOW = time.time()


def ago(minutes: float) -> str:
    """Return the stored form of a time `minutes` before the test started."""
    return datetime.fromtimestamp(NOW - minutes * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(store: FileStore, resources: Path) -> None:
    """A cluster as an operator has it: a /23, a storage network, two OS records, 125 hosts."""
    store.update(RecordId.of_cluster("default"), {
        "DESCRIPTION": "lab rack 7", "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/23",
        "DNS_DOMAIN": "lab.example.org", "STORAGE_NETWORKS": "1", "STORAGE0_CIDR": "10.31.0.0/24",
        "STORAGE0_VLAN": "31", "STORAGE0_MTU": "9000"}, "test:setup")
    for os_id, types, repo in (("x86_64:rocky:10", "SCH,CCH", "rocky/10"),
                               ("x86_64:alpine:3.20", "TCH", "alpine/3.20")):
        name, version = os_id.split(":")[1:]
        store.update(RecordId.of_os(os_id), {
            "NAME": name, "VERSION": version, "ARCH": "x86_64", "STATUS": "prod",
            "HPS_TYPES": types, "REPO_PATH": repo, "KERNEL": "images/pxeboot/vmlinuz",
            "INITRD": "images/pxeboot/initrd.img"}, "test:setup", create=True)
    boot = resources / "distros/rocky/10/images/pxeboot"
    boot.mkdir(parents=True)
    (boot / "vmlinuz").write_text("kernel")
    (boot / "initrd.img").write_text("initrd")
    for mac, values in hosts().items():
        store.update(RecordId.of_host("default", mac), values, "test:setup", create=True)


def hosts() -> dict[str, dict[str, str]]:
    """The 125 hosts: 75 at work in every state and 50 new ones waiting for a type."""
    found: dict[str, dict[str, str]] = {}
    for n in range(1, 76):
        kind = "SCH" if n <= 12 else "TCH" if n <= 60 else "CCH"
        values = {"HOSTNAME": f"{kind.lower()}-{n:03d}", "TYPE": kind, "PROFILE": "DEFAULT",
                  "IP": f"10.99.0.{n + 10}", "STATE": "NETWORK_BOOT" if kind == "TCH"
                  else "INSTALLED", "LAST_SEEN": ago(n * 7), "SELFTEST_RESULT": "pass",
                  "SERIAL": f"CZ{n:06d}", "OS_ID": "x86_64:rocky:10"}
        if kind == "SCH":
            values["STORAGE0_IP"] = f"10.31.0.{n + 10}"
        if kind == "TCH":
            values["ISCSI_ROOT_0"] = f"10.31.0.{n % 12 + 11}:iqn.2025-01.org.example:{n:03d}"
        found[f"52540000{n:04x}"] = values
    special = {1: {"STATE": "INSTALL_FAILED"}, 14: {"STATE": "INSTALL_FAILED"},
               62: {"STATE": "INSTALL_FAILED"}, 20: {"STATE": "FAILED"},
               63: {"STATE": "INSTALLING", "LAST_SEEN": ago(130)},
               64: {"STATE": "INSTALLING", "LAST_SEEN": ago(3)},
               65: {"STATE": "CONFIGURED"}, 66: {"STATE": "REINSTALL"},
               67: {"STATE": "UNMANAGED"}, 30: {"RESCUE": "yes"},
               5: {"SELFTEST_RESULT": "fail:disk sdb smart"},
               40: {"SELFTEST_RESULT": "fail:ntp unreachable"}}
    for n, values in special.items():
        found[f"52540000{n:04x}"].update(values)
    for n, mac in enumerate(WAITING):
        found[mac] = {"STATE": "UNCONFIGURED", "LAST_SEEN": ago(n % 30 + 1), "ARCH": "x86_64",
                      "SERIAL": f"NEW{n:05d}"}
    return found


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The real app over the seeded cluster, served twice (admin and LAN view)."""
    config_dir = tmp_path / "hps-config"
    initialise(FileStore(config_dir), "default", "test:setup")
    store = FileStore(config_dir, lock_timeout=5)
    seed(store, tmp_path / "resources")
    Accounts(config_dir).add(ADMIN, PASSWORD)
    app = create_app(Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                              arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                              resources_dir=tmp_path / "resources",
                              dnsmasq_pidfile=tmp_path / "dnsmasq.pid", lock_timeout=5))
    servers = [serve(app), serve(as_lan_client(app))]
    try:
        admin, lan = (f"http://127.0.0.1:{server.server_port}" for server, _ in servers)
        yield Site(admin, lan, store, config_dir)
    finally:
        for server, thread in servers:
            server.shutdown()
            thread.join(WAIT)
            server.server_close()


def shoot(driver: WebDriver, name: str, tmp_path: Path) -> None:
    """Check the page fits 1280 px, then save it whole: to docs/ with HPS_UI_SCREENSHOTS=1."""
    driver.set_window_size(WIDTH, 1000)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{name}: {width} px wide"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(max(height + 140, 600), 4000))
    target = DOCS if os.environ.get("HPS_UI_SCREENSHOTS") == "1" else tmp_path
    driver.save_screenshot(str(target / f"ui-{name}.png"))
    driver.set_window_size(WIDTH, 1000)


def table_column(driver: WebDriver, label: str) -> list[str]:
    """Return the cells under the heading `label` of the host list's table, in order."""
    headings = [th.text.rstrip(" ▲▼") for th in
                driver.find_elements(By.CSS_SELECTOR, "table#hosts tr:first-child th")]
    index = headings.index(label)
    return [row.find_elements(By.TAG_NAME, "td")[index].text
            for row in driver.find_elements(By.CSS_SELECTOR, "table#hosts tr")[1:]]


def replaced(old: object):  # type: ignore[no-untyped-def]
    """A wait condition: true once `old` (the page's root element) left the document.
    ChromeDriver, asked about an element while the next page comes in, may answer "Node with
    given id does not belong to the document" instead of calling it stale: the same news."""
    def check(driver: WebDriver) -> bool:
        try:
            return bool(ec.staleness_of(old)(driver))
        except WebDriverException as err:
            if "does not belong to the document" in str(err):
                return True
            raise
    return check


def submit_filters(driver: WebDriver) -> None:
    """Submit the host list's filter form and wait for the new page."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "form#filters button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(replaced(old))


def click_and_wait(driver: WebDriver, element: object, seconds: float = WAIT) -> None:
    """Click a link or button and wait until the next page replaced this one (`seconds`: for
    an answer that takes long, as 50 configures do on a loaded machine)."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.set_page_load_timeout(seconds)
    try:
        element.click()  # type: ignore[attr-defined]
        WebDriverWait(driver, seconds).until(replaced(old))
    finally:
        driver.set_page_load_timeout(WAIT)


# -- finding hosts ---------------------------------------------------------------------------


def test_search_filter_sort_and_paging_are_bookmarkable(driver: WebDriver, site: Site,
                                                        tmp_path: Path) -> None:
    driver.delete_all_cookies()
    open_page(driver, f"{site.lan_url}/hosts", "Hosts")
    assert "125 hosts; showing 1\u201350" in driver.find_element(By.ID, "found").text
    assert driver.find_elements(By.CSS_SELECTOR, "table#hosts input") == []  # not an admin
    search = driver.find_element(By.ID, "filter-q")
    search.send_keys("sch-00")
    submit_filters(driver)
    assert table_column(driver, "Hostname") == [f"sch-00{n}" for n in range(1, 10)]
    driver.find_element(By.ID, "filter-q").clear()
    Select(driver.find_element(By.ID, "filter-state")).select_by_value("INSTALL_FAILED")
    submit_filters(driver)
    assert sorted(table_column(driver, "Hostname")) == ["cch-062", "sch-001", "tch-014"]
    assert set(table_column(driver, "State")) == {"INSTALL_FAILED"}
    assert "state=INSTALL_FAILED" in driver.current_url
    open_page(driver, f"{site.lan_url}/hosts?type=TCH", "Hosts")
    click_and_wait(driver, driver.find_element(By.ID, "sort-hostname"))
    names = table_column(driver, "Hostname")
    assert names[:3] == ["tch-013", "tch-014", "tch-015"] and names == sorted(names)
    click_and_wait(driver, driver.find_element(By.ID, "sort-hostname"))
    assert table_column(driver, "Hostname")[0] == "tch-060"
    assert "sort=-hostname" in driver.current_url
    Select(driver.find_element(By.ID, "filter-per_page")).select_by_value("25")
    submit_filters(driver)
    first = table_column(driver, "Hostname")
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, "next →"))
    second = table_column(driver, "Hostname")
    assert len(first) == 25 and len(second) == 23 and not set(first) & set(second)
    assert second[0] < first[-1]  # still descending across the pages
    bookmark = driver.current_url
    assert all(part in bookmark for part in ("type=TCH", "sort=-hostname", "page=2",
                                             "per_page=25"))
    driver.get(bookmark)
    assert table_column(driver, "Hostname") == second


def test_the_dashboard_counts_lead_to_their_hosts(driver: WebDriver, site: Site,
                                                  tmp_path: Path) -> None:
    driver.delete_all_cookies()
    open_page(driver, f"{site.lan_url}/", "Cluster default")
    assert driver.find_element(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
    assert driver.find_elements(By.CSS_SELECTOR, "main form") == []
    failed = driver.find_element(By.CSS_SELECTOR, "#attention-install_failed h3 a")
    assert failed.text == "Install failed: 3"
    # docs/stuck.md: the 3 install failures are stuck too (install_failed)
    assert "Stuck: 8" in driver.find_element(By.ID, "attention-stuck").text
    assert "Waiting for a type: 50" in driver.find_element(By.ID, "attention-waiting").text
    colour = driver.find_element(By.CSS_SELECTOR, "#attention-selftest .result-fail")
    assert colour.text == "FAIL"
    assert colour.value_of_css_property("color") == "rgba(179, 38, 30, 1)"
    shoot(driver, "dashboard", tmp_path)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR,
                                               '#state-counts a[href="/hosts?state=FAILED"]'))
    assert table_column(driver, "State") == ["FAILED"]


# -- acting on hosts -------------------------------------------------------------------------


def test_an_admin_configures_50_hosts_in_one_bulk_action(driver: WebDriver, site: Site,
                                                         tmp_path: Path) -> None:
    log_in(driver, site.lan_url)
    open_page(driver, f"{site.lan_url}/hosts?state=UNCONFIGURED&per_page=50&sort=mac", "Hosts")
    boxes = driver.find_elements(By.CSS_SELECTOR, "table#hosts input[name=mac]")
    assert [box.get_attribute("value") for box in boxes] == WAITING
    for box in boxes:
        box.click()
    Select(driver.find_element(By.ID, "bulk-action")).select_by_value("configure")
    Select(driver.find_element(By.ID, "bulk-choice")).select_by_value("SCH/DEFAULT")
    click_and_wait(driver, driver.find_element(By.ID, "bulk-review"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Configure as SCH/DEFAULT: 50 hosts?"
    assert len(driver.find_elements(By.CSS_SELECTOR, "table#confirm-hosts tr")) == 51
    assert site.store.items(RecordId.of_host("default", WAITING[0]))["STATE"] == "UNCONFIGURED"
    shoot(driver, "bulk-confirm", tmp_path)
    click_and_wait(driver, driver.find_element(By.ID, "confirm-run"), seconds=120)
    assert driver.find_element(By.ID, "summary").text == "50 done."
    records = [site.store.items(RecordId.of_host("default", mac)) for mac in WAITING]
    assert {r["STATE"] for r in records} == {"CONFIGURED"}
    assert len({r["IP"] for r in records}) == len({r["HOSTNAME"] for r in records}) == 50
    assert site.store.history(RecordId.of_host("default", WAITING[7]))[-1].actor == \
        f"admin:{ADMIN}"
    shoot(driver, "bulk-results", tmp_path)


def test_a_bulk_action_with_a_refused_host_names_it_and_does_the_rest(
        driver: WebDriver, site: Site) -> None:
    log_in(driver, site.lan_url)
    open_page(driver, f"{site.lan_url}/hosts?q=sch-00&sort=hostname", "Hosts")
    for box in driver.find_elements(By.CSS_SELECTOR, "table#hosts input[name=mac]")[:3]:
        box.click()  # sch-001 (INSTALL_FAILED), sch-002, sch-003 (INSTALLED)
    Select(driver.find_element(By.ID, "bulk-action")).select_by_value("configure")
    Select(driver.find_element(By.ID, "bulk-choice")).select_by_value("SCH/DEFAULT")
    click_and_wait(driver, driver.find_element(By.ID, "bulk-review"))
    click_and_wait(driver, driver.find_element(By.ID, "confirm-run"))
    assert driver.find_element(By.ID, "summary").text.startswith("1 done, 2 refused")
    failed = driver.find_elements(By.CSS_SELECTOR, "table#results tr.failed")
    assert len(failed) == 2 and all("unconfigure first" in row.text for row in failed)


# -- import, settings, network ---------------------------------------------------------------


def test_a_csv_import_with_one_bad_row_writes_nothing_and_names_the_row(
        driver: WebDriver, site: Site, tmp_path: Path) -> None:
    hosts_dir = site.config_dir / "clusters/default/hosts"
    before = {p.name: p.read_bytes() for p in hosts_dir.iterdir()}
    upload = tmp_path / "new-rack.csv"
    upload.write_text("MAC,HOSTNAME,TYPE,PROFILE,IP,RACK\n"
                      "52:54:00:20:00:01,sch-201,SCH,DEFAULT,10.99.0.201,r08\n"
                      "52:54:00:20:00:02,sch-202,SCH,DEFAULT,10.99.0.202,r08\n"
                      "52:54:00:20:00:03,sch-203,SCH,DEFAULT,10.99.1.203,r08\n"
                      "52:54:00:20:00:04,sch-204,SCH,DEFAULT,10.99.0.204,r08\n")
    log_in(driver, site.lan_url)
    open_page(driver, f"{site.lan_url}/hosts/import", "Import hosts")
    driver.find_element(By.ID, "import-file").send_keys(str(upload))
    click_and_wait(driver, driver.find_element(By.ID, "import-preview"))
    refused = driver.find_element(By.ID, "import-refused").text
    assert "nothing was written" in refused
    assert "line 4 (52:54:00:20:00:03): IP 10.99.1.203 lies in the DHCP range" in refused
    assert "line 2" not in refused and "line 5" not in refused
    assert "refused" in driver.find_element(By.ID, "line-4").text
    assert driver.find_elements(By.ID, "import-confirm") == []
    assert {p.name: p.read_bytes() for p in hosts_dir.iterdir()} == before
    shoot(driver, "import-refused", tmp_path)
    upload.write_text(upload.read_text().replace("10.99.1.203", "10.99.0.203"))
    open_page(driver, f"{site.lan_url}/hosts/import", "Import hosts")
    driver.find_element(By.ID, "import-file").send_keys(str(upload))
    click_and_wait(driver, driver.find_element(By.ID, "import-preview"))
    assert "4 lines: 4 new, 0 changed, 0 unchanged" in driver.page_source
    shoot(driver, "import-preview", tmp_path)
    click_and_wait(driver, driver.find_element(By.ID, "import-confirm"))
    assert driver.find_element(By.ID, "summary").text == "4 lines imported."
    assert site.store.items(RecordId.of_host("default", "525400200003"))["IP"] == "10.99.0.203"


def test_the_settings_page_refuses_a_bad_value_with_its_reason(
        driver: WebDriver, site: Site, tmp_path: Path) -> None:
    cluster = RecordId.of_cluster("default")
    before = site.store.items(cluster)
    log_in(driver, site.lan_url)
    open_page(driver, f"{site.lan_url}/cluster", "settings")
    form = driver.find_element(By.ID, "set-DHCP_RANGE_START")
    field = form.find_element(By.NAME, "value")
    field.clear()
    field.send_keys("10.99.0.1")
    click_and_wait(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    refused = driver.find_element(By.ID, "refused").text
    assert refused.startswith("DHCP_RANGE_START refused:")
    assert "contains the IPS address DHCP_IP=10.99.0.1" in refused
    row = driver.find_element(By.ID, "key-DHCP_RANGE_START")
    assert row.get_attribute("class") == "refused"
    assert row.find_element(By.NAME, "value").get_attribute("value") == "10.99.0.1"
    assert site.store.items(cluster) == before
    shoot(driver, "cluster-refused", tmp_path)
    form = driver.find_element(By.ID, "set-MENU_TIMEOUT")
    form.find_element(By.NAME, "value").send_keys("90")
    click_and_wait(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "Saved MENU_TIMEOUT." in driver.find_element(By.CSS_SELECTOR, "p.flash").text
    assert site.store.items(cluster)["MENU_TIMEOUT"] == "90"


def test_the_admins_host_list_the_os_registry_and_the_host_page(driver: WebDriver, site: Site,
                                           tmp_path: Path) -> None:
    log_in(driver, site.lan_url)
    open_page(driver, f"{site.lan_url}/hosts?sort=hostname&per_page=25", "Hosts")
    for box in driver.find_elements(By.CSS_SELECTOR, "table#hosts input[name=mac]")[3:6]:
        box.click()
    Select(driver.find_element(By.ID, "bulk-action")).select_by_value("reinstall")
    shoot(driver, "hosts", tmp_path)
    open_page(driver, f"{site.lan_url}/os", "OS registry")
    rocky = driver.find_element(By.ID, "os-x86_64-rocky-10").text
    alpine = driver.find_element(By.ID, "os-x86_64-alpine-3.20").text
    assert "present" in rocky and "missing: kernel, initrd" in alpine
    shoot(driver, "os", tmp_path)
    open_page(driver, f"{site.lan_url}/hosts/52540000001e", "Host 52:54:00:00:00:1e")
    badge = driver.find_element(By.CSS_SELECTOR, "p.subtitle .state")
    assert badge.text == "RESCUE"
    assert driver.find_element(By.ID, "rescue-off")
    shoot(driver, "host", tmp_path)
    open_page(driver, f"{site.lan_url}/unconfigured", "Unconfigured hosts")
    shoot(driver, "unconfigured", tmp_path)


def test_the_network_view_draws_every_host_and_prints_clean(
        driver: WebDriver, site: Site, tmp_path: Path) -> None:
    driver.delete_all_cookies()
    open_page(driver, f"{site.lan_url}/network", "Network of cluster default")
    svg = driver.find_element(By.CSS_SELECTOR, "figure.netview svg")
    assert svg.size["width"] > 1000 and svg.size["height"] > 200
    squares = driver.find_elements(By.CSS_SELECTOR, "figure.netview svg a rect")
    assert len(squares) == 125
    failed = [s for s in squares if s.get_attribute("fill") == "#cf222e"]
    assert len(failed) == 3
    titles = [s.find_element(By.TAG_NAME, "title").get_attribute("textContent") for s in failed]
    assert sorted(titles)[0].startswith("cch-062 · INSTALL_FAILED")
    assert len(driver.find_elements(By.CSS_SELECTOR, "figure.netview svg line title")) == 48
    shoot(driver, "network", tmp_path)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        header = driver.find_element(By.CSS_SELECTOR, "header.top")
        assert header.value_of_css_property("display") == "none"
        pdf = driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF")
    (tmp_path / "network.pdf").write_bytes(data)


def test_the_header_shows_the_ips_health_on_every_page(driver: WebDriver, site: Site) -> None:
    driver.delete_all_cookies()
    for path in ("/", "/hosts", "/network", "/cluster", "/os", "/hosts/52540000001e"):
        driver.get(f"{site.lan_url}{path}")
        badge = driver.find_element(By.CSS_SELECTOR, "header a.ips")
        assert badge.text.startswith("IPS degraded"), path  # no dnsmasq files rendered yet
        assert badge.get_attribute("href").endswith("/health")
