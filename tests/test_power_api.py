"""`/api/v1/hosts/<mac>/power`, `/api/v1/hosts/<mac>/bmc` and `/api/v1/power/actions/<id>` on
the real app, with the BMC emulated by ipmi_sim (tests/bmc_emulators.py): the request answers
202 at once and the action runs in a background thread; the password is write-only."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import webtest
from bmc_emulators import IPMI_PASSWORD, IPMI_USER, IpmiBmc, free_port, ipmi_sim
from flask import Flask

from hps_api import create_app
from hps_api.ops import power
from hps_api.ops.power_jobs import Runner
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

MAC = "525400aabb01"
FAST = power.Policy(attempts=2, backoff=0.1, timeout=3.0, verify_timeout=2.0,
                    verify_interval=0.25)


@pytest.fixture
def app(config_dir: Path, tmp_path: Path, store: FileStore, host: RecordId) -> Flask:
    app = create_app(Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                              arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                              admin_token="admin-token-1", lock_timeout=0.5))
    app.extensions["hps_power_runner"] = Runner(store, FAST)
    return app


@pytest.fixture
def admin(app: Flask) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "10.99.0.21",
                                               "HTTP_AUTHORIZATION": "Bearer admin-token-1"})


@pytest.fixture
def ipmi(tmp_path: Path) -> Iterator[IpmiBmc]:
    with ipmi_sim(tmp_path / "ipmi") as running:
        yield running


def put_bmc(admin: webtest.TestApp, body: dict, status: int | str = 200) -> webtest.TestResponse:
    return admin.put_json(f"/api/v1/hosts/{MAC}/bmc", body, status=status)


def ipmi_body(sim: IpmiBmc, password: str = IPMI_PASSWORD) -> dict:
    return {"driver": "ipmi", "address": sim.address, "username": IPMI_USER,
            "password": password}


def finished(admin: webtest.TestApp, location: str, seconds: float = 20.0) -> dict:
    """Poll an action until it is done or failed; return it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        action = admin.get(location).json["data"]
        if action["status"] in ("done", "failed"):
            return action
        time.sleep(0.1)
    raise AssertionError(f"{location} still {action['status']} after {seconds} s")


def test_the_password_is_accepted_and_never_answered(admin: webtest.TestApp, ipmi: IpmiBmc,
                                                     tmp_path: Path) -> None:
    answer = put_bmc(admin, ipmi_body(ipmi))
    shown = admin.get(f"/api/v1/hosts/{MAC}/bmc")
    assert shown.json["data"]["bmc"] == {"driver": "ipmi", "address": ipmi.address,
                                         "system_id": None, "username": IPMI_USER,
                                         "password_set": True, "insecure": False}
    for text in (answer.text, shown.text, admin.get(f"/api/v1/hosts/{MAC}/power").text,
                 admin.get(f"/api/v1/hosts/{MAC}/events").text,
                 admin.get(f"/api/v1/hosts/{MAC}").text,
                 (tmp_path / "log" / "hps-api.log").read_text()):
        assert IPMI_PASSWORD not in text


def test_an_action_answers_202_at_once_and_is_carried_out_in_the_background(
        admin: webtest.TestApp, ipmi: IpmiBmc) -> None:
    put_bmc(admin, ipmi_body(ipmi))
    started = time.monotonic()
    answer = admin.post_json(f"/api/v1/hosts/{MAC}/power", {"action": "on"}, status=202)
    assert time.monotonic() - started < 0.5
    action = answer.json["data"]
    assert (action["status"], action["action"], action["actor"]) == (
        "queued", "on", "admin:10.99.0.21")
    assert answer.headers["Location"] == f"/api/v1/power/actions/{action['id']}"
    done = finished(admin, answer.headers["Location"])
    assert (done["status"], done["state"]) == ("done", "on"), done["message"]
    assert ipmi.power() == "1"
    view = admin.get(f"/api/v1/hosts/{MAC}/power").json["data"]
    assert (view["state"], view["bmc"]["driver"]) == ("on", "ipmi")
    assert any(c["key"] == "POWER_ACTION" and c["actor"] == "admin:10.99.0.21"
               for c in admin.get(f"/api/v1/hosts/{MAC}/events").json["data"]["changes"])


def test_get_power_answers_without_asking_the_bmc(admin: webtest.TestApp, ipmi: IpmiBmc,
                                                  tmp_path: Path) -> None:
    put_bmc(admin, ipmi_body(ipmi))
    view = admin.get(f"/api/v1/hosts/{MAC}/power").json["data"]
    assert (view["state"], view["checked"]) == (None, None)  # never read yet
    assert not (ipmi.state / "log").exists()


def test_a_wrong_password_fails_the_action_with_a_clear_message(admin: webtest.TestApp,
                                                                ipmi: IpmiBmc) -> None:
    put_bmc(admin, ipmi_body(ipmi, password="wrong-password"))
    answer = admin.post_json(f"/api/v1/hosts/{MAC}/power", {"action": "on"}, status=202)
    done = finished(admin, answer.headers["Location"])
    assert done["status"] == "failed"
    assert "refused the username or password" in done["message"]
    assert ipmi.power() == "0"


def test_a_bmc_that_takes_the_command_and_does_nothing_fails_the_action(
        admin: webtest.TestApp, ipmi: IpmiBmc) -> None:
    ipmi.ignore_changes()
    put_bmc(admin, ipmi_body(ipmi))
    answer = admin.post_json(f"/api/v1/hosts/{MAC}/power", {"action": "on"}, status=202)
    done = finished(admin, answer.headers["Location"])
    assert done["status"] == "failed"
    assert "accepted on but the host still reports power off after 2 s" in done["message"]


def test_an_unreachable_bmc_never_holds_the_request(admin: webtest.TestApp) -> None:
    put_bmc(admin, {"driver": "redfish", "address": f"http://127.0.0.1:{free_port()}",
                    "username": "u", "password": "p"})
    started = time.monotonic()
    answer = admin.post_json(f"/api/v1/hosts/{MAC}/power", {"action": "off"}, status=202)
    assert time.monotonic() - started < 0.5
    assert admin.get("/api/v1/health").status_int == 200  # the server keeps answering
    done = finished(admin, answer.headers["Location"])
    assert done["status"] == "failed"
    assert "connection refused (after 2 attempts)" in done["message"]


def test_a_host_without_bmc_is_409_saying_how_to_set_one(admin: webtest.TestApp) -> None:
    answer = admin.post_json(f"/api/v1/hosts/{MAC}/power", {"action": "on"}, status=409)
    assert f"host {MAC} has no BMC: set one first" in answer.json["error"]["message"]
    view = admin.get(f"/api/v1/hosts/{MAC}/power").json["data"]
    assert (view["bmc"], view["state"]) == (None, None)
    admin.get(f"/api/v1/hosts/{MAC}/bmc", status=404)


@pytest.mark.parametrize(("body", "says"), [
    ({"driver": "ipmi", "address": "10.0.0.6:99999", "username": "a", "password": "b"},
     "is not 1-65535"),
    ({"driver": "redfish", "address": "10.0.0.5", "username": "a", "password": "b"},
     "https://HOST[:PORT]"),
    ({"driver": "ipmi", "address": "10.0.0.6"}, "a username is required"),
    ({"driver": "wol", "address": "10.0.0.255", "insecure": "yes"}, "true or false"),
    ({"driver": "wol", "address": "10.0.0.255", "port": 9}, 'unknown field "port"'),
    ({"driver": "floppy", "address": "x"}, "unknown BMC driver"),
])
def test_malformed_bmc_settings_are_400_and_change_nothing(admin: webtest.TestApp,
                                                           body: dict, says: str) -> None:
    answer = put_bmc(admin, body, status=400)
    assert says in answer.json["error"]["message"]
    admin.get(f"/api/v1/hosts/{MAC}/bmc", status=404)


def test_an_unknown_action_is_400(admin: webtest.TestApp, ipmi: IpmiBmc) -> None:
    put_bmc(admin, ipmi_body(ipmi))
    answer = admin.post_json(f"/api/v1/hosts/{MAC}/power", {"action": "explode"}, status=400)
    assert "unknown power action 'explode'" in answer.json["error"]["message"]


def test_unknown_and_malformed_action_ids(admin: webtest.TestApp) -> None:
    admin.get("/api/v1/power/actions/0123456789abcdef", status=404)
    admin.get("/api/v1/power/actions/not-an-id", status=400)


def test_delete_forgets_the_bmc(admin: webtest.TestApp, ipmi: IpmiBmc) -> None:
    put_bmc(admin, ipmi_body(ipmi))
    admin.delete(f"/api/v1/hosts/{MAC}/bmc")
    admin.get(f"/api/v1/hosts/{MAC}/bmc", status=404)


def test_only_admins_reach_power_and_bmc(app: Flask) -> None:
    lan = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "10.99.0.21"})
    for call in (lambda: lan.get(f"/api/v1/hosts/{MAC}/power", status=403),
                 lambda: lan.post(f"/api/v1/hosts/{MAC}/power", json.dumps({"action": "on"}),
                                  content_type="application/json", status=403),
                 lambda: lan.put(f"/api/v1/hosts/{MAC}/bmc", "{}",
                                 content_type="application/json", status=403),
                 lambda: lan.get("/api/v1/power/actions/0123456789abcdef", status=403)):
        assert "admin only" in call().json["error"]["message"]
