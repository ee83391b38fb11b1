"""Bulk actions (hps_api.ops.bulk, `/hosts/bulk`): checked as a whole, confirmed with the count
before anything changes, then applied host by host with one result each; a host that fails
never hides the others. Deleting one host from its page goes through the same confirmation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import test_ui
import webtest
from test_ui import WAITING, add_host, form_token

from hps_api.errors import InvalidInput
from hps_api.ops import bulk
from hps_api.store import FileStore, RecordId

#: the page fixtures of test_ui: the real app, a LAN browser, a logged-in admin
app, web, admin = test_ui.app, test_ui.web, test_ui.admin
bootable, hosts_in_states = test_ui.bootable, test_ui.hosts_in_states

WAITERS = [f"525400aabb0{n}" for n in (2, 3, 4)]


def review(admin: webtest.TestApp, action: str, macs: list[str], choice: str = "",
           **fields: str) -> webtest.TestResponse:
    """Tick `macs` on the host list, pick `action`, and ask for the review page."""
    form = admin.get("/hosts").forms["bulk"]
    for checkbox in form.fields["mac"]:
        checkbox.checked = checkbox._value in macs
    form["action"] = action
    if choice:
        form["choice"] = choice
    for name, value in fields.items():
        form[name] = value
    return form.submit()


@pytest.mark.parametrize(("action", "macs", "choice", "message"), [
    ("explode", ["525400aabb01"], "", "unknown action"),
    ("reinstall", [], "", "no host selected"),
    ("configure", ["525400aabb01"], "", "choose a host type"),
    ("configure", ["525400aabb01"], "XYZ/DEFAULT", "unknown host type"),
    ("configure", ["525400aabb01"], "SCH/KVM", "no profile"),
    ("delete", [f"5254000{n:05x}" for n in range(bulk.MAX_HOSTS + 1)], "", "at most"),
])
def test_a_batch_is_checked_as_a_whole(action, macs, choice, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        bulk.plan(action, macs, choice)


def test_a_batch_keeps_each_host_once_in_the_order_given() -> None:
    batch = bulk.plan("configure", ["b", "a", "b"], "tch/kvm")
    assert (batch.macs, batch.label) == (("b", "a"), "Configure as TCH/KVM")


@pytest.mark.usefixtures("hosts_in_states")
def test_the_review_names_the_count_and_the_hosts_and_changes_nothing(
        admin, config_dir: Path, snapshot) -> None:
    admin.get("/health")  # the header's IPS self-test runs once per worker (its probe lock stays)
    before = snapshot(config_dir)
    page = review(admin, "delete", WAITERS)
    assert "<h1>Delete: 3 hosts?</h1>" in page.text
    assert "Delete: 3 hosts</button>" in page.text
    assert all(f'value="{mac}"' in page.text for mac in WAITERS)
    assert "525400aabb05" not in page.text
    assert snapshot(config_dir) == before


@pytest.mark.usefixtures("hosts_in_states")
def test_confirming_applies_the_action_to_exactly_the_reviewed_hosts(admin, store) -> None:
    page = review(admin, "configure", WAITERS, "SCH/DEFAULT").forms["confirm"].submit()
    assert "3 done" in page.text
    states = {mac: store.items(RecordId.of_host("default", mac)) for mac in WAITERS}
    assert {r["STATE"] for r in states.values()} == {"CONFIGURED"}
    assert {r["TYPE"] for r in states.values()} == {"SCH"}
    assert store.items(RecordId.of_host("default", "525400aabb05"))["STATE"] == "INSTALLED"
    assert store.history(RecordId.of_host("default", WAITING))[-1].actor == "admin:alice"


@pytest.mark.usefixtures("hosts_in_states")
def test_a_host_that_fails_is_named_with_its_reason_and_the_others_are_done(
        admin, store) -> None:
    macs = ["525400aabb05", *WAITERS]  # aabb05 is INSTALLED: not waiting for a type
    page = review(admin, "configure", macs, "SCH/DEFAULT").forms["confirm"].submit()
    assert "3 done, 1 refused" in page.text
    failed = re.search(r'<tr class="failed">.*?</tr>', page.text, re.S)
    assert failed is not None
    assert "525400aabb05" in failed.group(0) and "unconfigure first" in failed.group(0)
    assert page.text.count('<tr class="ok">') == 3
    for mac in WAITERS:
        assert store.items(RecordId.of_host("default", mac))["STATE"] == "CONFIGURED"


@pytest.mark.usefixtures("hosts_in_states")
@pytest.mark.parametrize(("action", "key", "value"), [
    ("rescue_on", "RESCUE", "yes"), ("unconfigure", "STATE", "UNCONFIGURED"),
    ("reinstall", "STATE", "REINSTALL"),
])
def test_each_action_goes_through_its_operation(admin, store, action, key, value) -> None:
    target = "525400aabb05"
    review(admin, action, [target]).forms["confirm"].submit()
    assert store.items(RecordId.of_host("default", target)).get(key) == value


@pytest.mark.usefixtures("hosts_in_states")
def test_rescue_off_and_delete(admin, store) -> None:
    rid = RecordId.of_host("default", "525400aabb05")
    store.update(rid, {"RESCUE": "yes"}, "t")
    review(admin, "rescue_off", ["525400aabb05"]).forms["confirm"].submit()
    assert "RESCUE" not in store.items(rid)
    done = review(admin, "delete", ["525400aabb05"]).forms["confirm"].submit()
    assert "1 done" in done.text and "deleted" in done.text
    assert not store.exists(rid)


@pytest.mark.usefixtures("hosts_in_states")
def test_acting_on_the_filter_takes_every_matching_host_of_every_page(admin, store) -> None:
    form = admin.get("/hosts?state=FAILED,INSTALL_FAILED&per_page=1").forms["bulk"]
    form["action"] = "unconfigure"
    form["scope"] = "filter"
    page = form.submit()
    assert "<h1>Unconfigure: 2 hosts?</h1>" in page.text
    page.forms["confirm"].submit()
    for mac in ("525400aabb03", "525400aabb04"):
        assert store.items(RecordId.of_host("default", mac))["STATE"] == "UNCONFIGURED"
    assert store.items(RecordId.of_host("default", "525400aabb05"))["STATE"] == "INSTALLED"


@pytest.mark.usefixtures("hosts_in_states")
def test_a_batch_configure_refreshes_the_service_files_once(
        admin, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(bulk, "refresh_services", lambda store, settings, cluster:
                        calls.append(cluster))
    review(admin, "configure", WAITERS, "SCH/DEFAULT").forms["confirm"].submit()
    assert calls == ["default"]


@pytest.mark.usefixtures("hosts_in_states")
def test_the_host_page_deletes_after_a_confirmation(admin, store) -> None:
    rid = RecordId.of_host("default", "525400aabb05")
    confirm = admin.get("/hosts/525400aabb05").forms["delete"].submit()
    assert "<h1>Delete: 1 host?</h1>" in confirm.text
    assert store.exists(rid)
    confirm.forms["confirm"].submit()
    assert not store.exists(rid)


@pytest.mark.usefixtures("hosts_in_states")
def test_the_host_page_switches_rescue_on_and_off(admin, store) -> None:
    rid = RecordId.of_host("default", "525400aabb05")
    page = admin.get("/hosts/525400aabb05").forms["rescue-on"].submit().follow()
    assert store.items(rid)["RESCUE"] == "yes"
    assert "Rescue on: every boot" in page.text
    assert '>RESCUE</span>' in page.text
    page.forms["rescue-off"].submit()
    assert "RESCUE" not in store.items(rid)


@pytest.mark.usefixtures("hosts_in_states")
@pytest.mark.parametrize("path", ["/hosts/bulk", "/hosts/bulk/run"])
def test_non_admins_and_forged_posts_are_refused_and_change_nothing(
        web, admin, config_dir: Path, snapshot, path: str) -> None:
    token = form_token(admin.get("/hosts"), "/hosts/bulk")
    before = snapshot(config_dir)
    fields = {"action": "delete", "mac": "525400aabb05", "csrf_token": token}
    assert "admin only" in web.post(path, fields, status=403).text
    admin.post(path, {**fields, "csrf_token": "1.bad"}, status=403)
    if path == "/hosts/bulk/run":  # a token for the review does not run the action
        admin.post(path, fields, status=403)
    assert snapshot(config_dir) == before


def test_outcomes_catch_store_errors_per_host(store: FileStore, settings) -> None:
    add_host(store, "52:54:00:aa:bb:01", STATE="INSTALLED")
    batch = bulk.plan("rescue_on", ["525400aabb01", "525400aabb99"])
    outcomes = bulk.run(store, settings, "default", batch, "test")
    assert [(o.mac, o.ok) for o in outcomes] == [("525400aabb01", True), ("525400aabb99", False)]
    assert "not found" in outcomes[1].message
