"""The pages in a real browser: Debian's headless Chromium, driven by selenium, against the real
app served over real HTTP (werkzeug's server in a thread, on a loopback port chosen by the OS).

Two servers share one app and one store: one on loopback (the browser on the IPS itself) and a
LAN one whose tiny WSGI middleware rewrites REMOTE_ADDR to a provisioning-network address. A
browser is an admin on neither until it logs in; the IPS's own tools (python-requests here) are
admin on loopback.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import provide_os_files
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from hps_api import create_app
from hps_api.ops.accounts import Accounts
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise

webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--disable-quic", "--window-size=1280,1000")
WAIT = 10
LAN_ADDRESS = "10.99.0.77"
IPXE = {"User-Agent": "iPXE/1.21.1+"}
WAITING = "525400aabb02"
ADMIN, PASSWORD = "alice", "correct horse battery"
SEEDED = {  # mac12 -> the state the dashboard must show
    "525400aabb01": "INSTALLED", WAITING: "UNCONFIGURED", "525400aabb03": "FAILED",
    "525400aabb04": "INSTALLING", "525400aabb05": "INSTALL_FAILED",
}


@dataclass
class Site:
    """The running app: its two base URLs and its store."""

    admin_url: str
    lan_url: str
    store: FileStore
    config_dir: Path


class QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without a stderr line per request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Log nothing."""


def as_lan_client(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Return the app as seen from a provisioning-network address (never admin)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["REMOTE_ADDR"] = LAN_ADDRESS
        return app(environ, start_response)

    return wrapped


def seed(store: FileStore) -> None:
    """A bootable cluster with hosts in several states, one with a hardware change."""
    store.update(RecordId.of_cluster("default"), {"DHCP_IP": "10.99.0.1",
                                                  "NETWORK_CIDR": "10.99.0.0/24"}, "test:setup")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod", "HPS_TYPES": "SCH",
        "REPO_PATH": "rocky/10", "KERNEL": "images/pxeboot/vmlinuz",
        "INITRD": "images/pxeboot/initrd.img"}, "test:setup", create=True)
    extra = {"525400aabb01": {"HOSTNAME": "sch-001", "TYPE": "SCH", "PROFILE": "DEFAULT",
                              "IP": "10.99.0.11", "LAST_SEEN": "2025-01-05T09:00:00Z",
                              "BOOT_SESSION": "a1b2c3", "SELFTEST_RESULT": "pass",
                              "HW_PRODUCT": "R650", "HW_PREVIOUS_PRODUCT": "R640",
                              "HW_MEMORY": "64 GiB", "HW_PREVIOUS_MEMORY": "64 GiB",
                              "HW_CHANGED_AT": "2025-01-05T08:59:00Z"},
             "525400aabb04": {"HOSTNAME": "sch-004", "TYPE": "SCH", "IP": "10.99.0.14"}}
    for mac, state in SEEDED.items():
        store.update(RecordId.of_host("default", mac), {"STATE": state, **extra.get(mac, {})},
                     "test:setup", create=True)


def serve(app: Callable[..., Iterable[bytes]]) -> tuple[BaseWSGIServer, threading.Thread]:
    """Start a threaded werkzeug server for `app` on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="hps-ui-server", daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The real app over a seeded store, served twice (admin and LAN view); stopped after."""
    config_dir = tmp_path / "hps-config"
    initialise(FileStore(config_dir), "default", "test:setup")
    store = FileStore(config_dir, lock_timeout=2)
    seed(store)
    provide_os_files(tmp_path / "resources", store)
    Accounts(config_dir).add(ADMIN, PASSWORD)
    app = create_app(Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                              arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                              resources_dir=tmp_path / "resources",
                              dnsmasq_pidfile=tmp_path / "dnsmasq.pid", lock_timeout=2))
    servers = [serve(app), serve(as_lan_client(app))]
    try:
        admin, lan = (f"http://127.0.0.1:{server.server_port}" for server, _ in servers)
        yield Site(admin, lan, store, config_dir)
    finally:
        for server, thread in servers:
            server.shutdown()
            thread.join(WAIT)
            server.server_close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium (Debian's binary and driver); quit after the module's tests."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"apt-get install chromium chromium-driver (missing: {', '.join(missing)})")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (*CHROME_ARGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        browser.set_page_load_timeout(WAIT)
        browser.set_script_timeout(WAIT)
        yield browser
    finally:
        browser.quit()


def open_page(driver: WebDriver, url: str, heading: str) -> None:
    """Load `url` and wait until its <h1> contains `heading`."""
    driver.get(url)
    WebDriverWait(driver, WAIT).until(
        ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), heading))


def listed_states(driver: WebDriver) -> dict[str, str]:
    """Return mac12 -> state cell text of the host list's table."""
    headings = [th.text.rstrip(" ▲▼") for th in
                driver.find_elements(By.CSS_SELECTOR, "table#hosts tr:first-child th")]
    mac, state = headings.index("MAC"), headings.index("State")
    states = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "table#hosts tr")[1:]:
        cells = row.find_elements(By.TAG_NAME, "td")
        states[cells[mac].text.replace(":", "")] = cells[state].text
    return states


def log_in(driver: WebDriver, url: str) -> None:
    """Log in at `url` through the login form, as an operator would."""
    driver.delete_all_cookies()
    open_page(driver, f"{url}/login", "Log in")
    driver.find_element(By.ID, "name").send_keys(ADMIN)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, "header .session span"), ADMIN))


def configure_in_browser(driver: WebDriver, site: Site, mac: str, choice: str) -> None:
    """Pick `choice` in the host's form on /unconfigured, submit, wait for the host page."""
    open_page(driver, f"{site.admin_url}/unconfigured", "Unconfigured hosts")
    form = driver.find_element(By.ID, f"configure-{mac}")
    Select(form.find_element(By.NAME, "choice")).select_by_value(choice)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(ec.url_contains(f"/hosts/{mac}?done=configure"))


def post_from_page(driver: WebDriver, action: str, fields: dict[str, str]) -> None:
    """Build a form in the current page, post it, and wait for the answer to load."""
    driver.execute_script("""
        const [action, fields] = arguments;
        const form = document.createElement('form');
        form.method = 'post';
        form.action = action;
        for (const [name, value] of Object.entries(fields)) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = name; input.value = value;
            form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
    """, action, fields)
    WebDriverWait(driver, WAIT).until(
        ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "403"))


def admin_token(site: Site, action: str) -> str:
    """Return a valid CSRF token for `action`, copied from the admin's host page."""
    page = requests.get(f"{site.admin_url}/unconfigured", timeout=WAIT).text
    found = re.search(rf'action="{re.escape(action)}".*?name="csrf_token" value="([^"]+)"',
                      page, re.S)
    assert found, "no configure form on the admin page"
    return found.group(1)


def test_the_host_list_shows_the_seeded_hosts_with_their_states_and_the_dashboard_counts(
        driver: WebDriver, site: Site, tmp_path: Path) -> None:
    driver.delete_all_cookies()
    open_page(driver, f"{site.admin_url}/hosts", "Hosts")
    assert listed_states(driver) == SEEDED
    open_page(driver, f"{site.admin_url}/", "Cluster default")
    assert driver.find_element(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
    assert driver.find_elements(By.CSS_SELECTOR, "main form") == []
    counts = {row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
              for row in driver.find_elements(By.CSS_SELECTOR, "#state-counts tr")[1:]}
    assert counts == {**{state: "1" for state in SEEDED.values()}, "Total": "5"}
    driver.save_screenshot(str(tmp_path / "dashboard.png"))


def test_an_admin_configures_a_host_from_the_form_and_init_then_serves_the_installer(
        driver: WebDriver, site: Site, tmp_path: Path) -> None:
    log_in(driver, site.admin_url)
    open_page(driver, f"{site.admin_url}/unconfigured", "Unconfigured hosts")
    driver.save_screenshot(str(tmp_path / "unconfigured.png"))
    configure_in_browser(driver, site, WAITING, "SCH/DEFAULT")
    flash = driver.find_element(By.CSS_SELECTOR, "p.flash").text
    assert flash.startswith("Configured")
    record = site.store.items(RecordId.of_host("default", WAITING))
    assert (record["STATE"], record["TYPE"], record["HOSTNAME"]) == ("CONFIGURED", "SCH",
                                                                   "sch-002")
    driver.save_screenshot(str(tmp_path / "host.png"))
    answer = requests.get(f"{site.admin_url}/cgi-bin/boot_manager.sh",
                          params={"cmd": "init", "mac": WAITING}, headers=IPXE, timeout=WAIT)
    assert answer.status_code == 200
    assert answer.text.startswith("#!ipxe")
    assert "installing x86_64:rocky:10 on sch-002 as SCH/DEFAULT" in answer.text
    assert "/distros/rocky/10/images/pxeboot/vmlinuz" in answer.text


def test_a_non_admin_sees_no_form_and_a_forged_post_is_refused(
        driver: WebDriver, site: Site) -> None:
    action = f"/hosts/{WAITING}/configure"
    before = site.store.items(RecordId.of_host("default", WAITING))
    driver.delete_all_cookies()
    open_page(driver, f"{site.lan_url}/unconfigured", "Unconfigured hosts")
    assert driver.find_elements(By.TAG_NAME, "form") == []
    assert "Only admins can configure hosts" in driver.page_source
    fields = {"csrf_token": admin_token(site, action), "choice": "SCH/DEFAULT"}
    post_from_page(driver, action, fields)
    assert "admin only" in driver.find_element(By.TAG_NAME, "main").text
    copied = requests.post(f"{site.lan_url}{action}", data=fields, timeout=WAIT,
                           allow_redirects=False)
    assert copied.status_code == 403
    assert site.store.items(RecordId.of_host("default", WAITING)) == before


def test_a_cross_site_page_in_the_admins_browser_cannot_post(
        driver: WebDriver, site: Site) -> None:
    action = f"/hosts/{WAITING}/configure"
    before = site.store.items(RecordId.of_host("default", WAITING))
    log_in(driver, site.admin_url)
    fields = {"csrf_token": admin_token(site, action), "choice": "SCH/DEFAULT"}
    driver.get("data:text/html,<h1>somewhere else</h1>")
    post_from_page(driver, f"{site.admin_url}{action}", fields)
    assert site.store.items(RecordId.of_host("default", WAITING)) == before


def test_the_host_page_shows_the_history_entry_of_the_change(
        driver: WebDriver, site: Site, tmp_path: Path) -> None:
    log_in(driver, site.admin_url)
    configure_in_browser(driver, site, WAITING, "SCH/DEFAULT")
    rows = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "table.history tr")[1:]]
    assert [row[1:] for row in rows if row[1] == "TYPE"] == [["TYPE", "(unset)", "SCH",
                                                              f"admin:{ADMIN}"]]
    assert next(row[3] for row in rows if row[1] == "STATE") == "CONFIGURED"


def test_the_host_page_shows_the_hardware_change_side_by_side(
        driver: WebDriver, site: Site, tmp_path: Path) -> None:
    open_page(driver, f"{site.admin_url}/hosts/52:54:00:AA:BB:01", "Host 52:54:00:aa:bb:01")
    changed = driver.find_elements(By.CSS_SELECTOR, "table.diff tr.changed")
    assert [row.text for row in changed] == ["PRODUCT R640 R650"]
    driver.find_element(By.CSS_SELECTOR, "details.script summary").click()
    assert driver.find_element(By.CSS_SELECTOR, "details.script pre").text.startswith("#!ipxe")
    driver.save_screenshot(str(tmp_path / "host-hardware.png"))


def load_image(driver: WebDriver, url: str) -> None:
    """Make the current page load `url` as an image, as any web site can; wait until done."""
    driver.execute_async_script("""
        const [url, done] = arguments;
        const img = document.createElement('img');
        img.onload = img.onerror = () => done(true);
        img.src = url;
        document.body.appendChild(img);
    """, url)


def test_login_an_action_and_logout_in_the_browser(driver: WebDriver, site: Site,
                                                   tmp_path: Path) -> None:
    driver.delete_all_cookies()
    open_page(driver, f"{site.lan_url}/unconfigured", "Unconfigured hosts")
    driver.find_element(By.LINK_TEXT, "log in").click()
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.ID, "password")))
    driver.find_element(By.ID, "name").send_keys(ADMIN)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.save_screenshot(str(tmp_path / "login.png"))
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(ec.url_contains("/unconfigured"))
    assert driver.find_element(By.CSS_SELECTOR, "header .session span").text == ADMIN
    cookie = driver.get_cookie("hps_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    form = driver.find_element(By.ID, f"configure-{WAITING}")
    Select(form.find_element(By.NAME, "choice")).select_by_value("SCH/DEFAULT")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(ec.url_contains(f"/hosts/{WAITING}?done=configure"))
    rid = RecordId.of_host("default", WAITING)
    assert site.store.items(rid)["TYPE"] == "SCH"
    assert site.store.history(rid)[-1].actor == f"admin:{ADMIN}"
    driver.find_element(By.CSS_SELECTOR, "header form.session button").click()
    WebDriverWait(driver, WAIT).until(ec.url_contains("/login?out=1"))
    open_page(driver, f"{site.lan_url}/hosts/{WAITING}", "Host")
    assert driver.find_elements(By.CSS_SELECTOR, "main form") == []
    assert driver.find_element(By.CSS_SELECTOR, "header a.session").text == "Log in"


def test_a_wrong_password_in_the_browser_opens_nothing(driver: WebDriver, site: Site) -> None:
    driver.delete_all_cookies()
    open_page(driver, f"{site.lan_url}/login", "Log in")
    driver.find_element(By.ID, "name").send_keys(ADMIN)
    driver.find_element(By.ID, "password").send_keys("not the password")
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, "p.notice"), "Wrong account"))
    assert driver.get_cookie("hps_session") is None


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
def test_another_site_cannot_make_the_browser_on_the_ips_write(
        driver: WebDriver, site: Site, logged_in: bool) -> None:
    """F2: `<img src=".../boot_manager.sh?cmd=cluster_variable&...&value=6.6.6.6">`."""
    if logged_in:
        log_in(driver, site.admin_url)
    else:
        driver.delete_all_cookies()
    cluster, host = RecordId.of_cluster("default"), RecordId.of_host("default", WAITING)
    before = (site.store.items(cluster), site.store.items(host))
    driver.get("data:text/html,<h1>somewhere else</h1>")
    legacy = f"{site.admin_url}/cgi-bin/boot_manager.sh"
    for query in ("cmd=cluster_variable&name=DHCP_IP&value=6.6.6.6",
                  f"cmd=host_variable&name=RESCUE&value=yes&mac={WAITING}",
                  f"cmd=config_host&hosttype=SCH&mac={WAITING}"):
        load_image(driver, f"{legacy}?{query}")
    assert (site.store.items(cluster), site.store.items(host)) == before
