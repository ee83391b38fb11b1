"""The host page's Timeline section in a real browser (Debian's headless Chromium, as in
tests/test_browser.py): a host in the middle of its install shows each phase it went through,
and the one it waits in. With HPS_UI_SCREENSHOTS=1 the section's screenshot is written to
docs/ui-timeline.png (docs/timeline.md); without it, to the test's tmp_path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_browser
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from test_browser import WAIT, as_lan_client, open_page, serve
from test_timeline import (
    ACCESS,
    DNSMASQ,
    EVENTS,
    INITRD,
    IPXE_IP,
    KERNEL,
    NODES,
    OS_IP,
    SESSION,
    T0,
    access,
    ack,
    event,
    syslog,
)

from hps_api import create_app
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise

pytestmark = pytest.mark.slow

driver = test_browser.driver
DOCS = Path(__file__).resolve().parents[1] / "docs"
MAC, MAC12 = "52:54:00:10:00:07", "525400100007"
WIDTH = 1280


def story(now: float) -> dict[str, list[str]]:
    """An install that began nine minutes ago and has been installing for six."""
    def ago(seconds: float) -> float:
        return now - seconds - T0

    init = "/cgi-bin/boot_manager.sh?cmd=init&mac=52-54-00-10-00-07"
    return {
        DNSMASQ: [ack(ago(545), IPXE_IP, MAC)],
        ACCESS: [access(ago(541), IPXE_IP, "/boot.ipxe"), access(ago(538), IPXE_IP, init),
                 access(ago(418), IPXE_IP, init + "&session=*"),
                 access(ago(417), IPXE_IP, KERNEL.replace("images/pxeboot/", ""),
                        size="14190528", ms=1000),
                 access(ago(416), IPXE_IP, INITRD.replace("images/pxeboot/", ""),
                        size="91336704", ms=6000),
                 access(ago(391), OS_IP, f"/cgi-bin/boot_manager.sh?cmd=kickstart&mac={MAC12}",
                        agent="curl/7.76.1")],
        EVENTS: [event(ago(538), "init: menu (new host: registered as UNCONFIGURED)",
                       host=MAC12),
                 *(event(ago(538 - n * 60), "init: menu (UNCONFIGURED: waiting for an operator "
                         "(menu, then poll))", host=MAC12) for n in (1, 2)),
                 event(ago(418), "init: install (CONFIGURED: unattended install of SCH)",
                       host=MAC12),
                 event(ago(391), "kickstart served: SCH x86_64:rocky:10, state INSTALLING -> "
                       "INSTALLING", client="script", host=MAC12),
                 event(ago(372), "[anaconda] partitioning /dev/sda", client="script",
                       host=MAC12),
                 event(ago(95), "[anaconda] installing packages: 812 of 1204", client="script",
                       host=MAC12)],
        NODES: [syslog(ago(360), OS_IP, "anaconda[1622]: Created disklabel on /dev/sda")],
    }


@pytest.fixture
def lan_url(tmp_path: Path) -> Iterator[str]:
    """The app over a store with the installing host, its logs written, seen from the LAN."""
    config_dir = tmp_path / "hps-config"
    initialise(FileStore(config_dir), "default", "test:setup")
    store = FileStore(config_dir, lock_timeout=5)
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod", "HPS_TYPES": "SCH",
        "REPO_PATH": "rocky/10", "KERNEL": "vmlinuz", "INITRD": "initrd.img"}, "test:setup",
        create=True)
    now = time.time()
    store.update(RecordId.of_host("default", MAC), {
        "STATE": "INSTALLING", "TYPE": "SCH", "PROFILE": "DEFAULT", "HOSTNAME": "sch-007",
        "IP": OS_IP, "OS_ID": "x86_64:rocky:10", "BOOT_SESSION": SESSION,
        "BOOT_TIME": str(int(now - 538))}, "test:setup", create=True)
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    for name, lines in story(now).items():
        (log_dir / name).write_text("".join(f"{line}\n" for line in lines))
    app = create_app(Settings(config_dir=config_dir, log_dir=log_dir, arp_table=tmp_path / "arp",
                              dhcp_leases=tmp_path / "leases", lock_timeout=5))
    server, thread = serve(as_lan_client(app))
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(WAIT)
        server.server_close()


def test_the_timeline_section_shows_each_phase_and_where_the_host_waits(
        driver: WebDriver, lan_url: str, tmp_path: Path) -> None:
    driver.delete_all_cookies()
    driver.set_window_size(WIDTH, 1000)
    open_page(driver, f"{lan_url}/hosts/{MAC12}", "Host 52:54:00:10:00:07")
    section = driver.find_element(By.ID, "timeline")
    assert section.find_element(By.ID, "timeline-now").text.startswith("In installing for 6 min")
    rows = {row.get_attribute("id"): row.text for row in
            section.find_elements(By.CSS_SELECTOR, "tr[id^=phase-]")}
    assert list(rows) == [f"phase-{name}" for name in (
        "dhcp", "bootstrap", "menu", "decision", "kernel", "initrd", "kickstart", "installing",
        "installed", "first-selftest")]
    assert "2 min" in rows["phase-menu"] and "3 menu answers" in rows["phase-menu"]
    assert "GET /distros/rocky/10/vmlinuz 200, 14,190,528 bytes" in rows["phase-kernel"]
    assert "so far" in rows["phase-installing"]
    assert "[anaconda] installing packages: 812 of 1204" in rows["phase-installing"]
    assert rows["phase-installed"].endswith("not seen")
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{width} px wide"
    target = DOCS if os.environ.get("HPS_UI_SCREENSHOTS") == "1" else tmp_path
    driver.execute_script("arguments[0].scrollIntoView()", section)
    assert section.screenshot(str(target / "ui-timeline.png"))
