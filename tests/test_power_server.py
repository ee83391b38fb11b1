"""Power under the real server (`hps-api serve`, gunicorn, 3 workers) over real HTTP, with an
ipmi_sim BMC: one worker polls (the poller lock), any worker answers for any action."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bmc_emulators import IPMI_PASSWORD, IPMI_USER, IpmiBmc, ipmi_sim
from test_gunicorn import BIN, Server, free_port, server_env, stop_server

from hps_api.ops import power
from hps_api.power.bmc import Bmc
from hps_api.store import FileStore, RecordId

MAC = "525400aabb01"
TOKEN = "power-token-1"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ipmi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpmiBmc]:
    with ipmi_sim(tmp_path_factory.mktemp("ipmi")) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ipmi: IpmiBmc) -> Iterator[Server]:
    """Three workers on a store with one host whose BMC is the ipmi_sim."""
    root = tmp_path_factory.mktemp("server")
    env = server_env(root, HPS_ADMIN_TOKEN=TOKEN)
    subprocess.run([str(BIN / "hps-api"), "init"], env=env, cwd=root, check=True,
                   capture_output=True, timeout=30)
    store = FileStore(Path(env["HPS_CONFIG_DIR"]))
    store.update(RecordId.of_host("default", MAC), {"STATE": "INSTALLED"}, "t", create=True)
    power.set_bmc(store, "default", MAC,
                  Bmc("ipmi", ipmi.address, username=IPMI_USER, password=IPMI_PASSWORD), "t")
    port = free_port()
    stderr = root / "gunicorn.stderr"
    with stderr.open("wb") as err:
        process = subprocess.Popen([str(BIN / "hps-api"), "serve", "--bind",
                                    f"127.0.0.1:{port}", "--workers", "3"],
                                   env=env, cwd=root, stdout=err, stderr=err,
                                   start_new_session=True)
    running = Server(process, f"http://127.0.0.1:{port}", Path(env["HPS_CONFIG_DIR"]),
                     Path(env["HPS_LOG_DIR"]), stderr)
    try:
        wait_for(lambda: call(running, "GET", "/api/v1/health")[0] == 200, 20)
        yield running
    finally:
        stop_server(running)


def call(server: Server, method: str, path: str,
         body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
        "User-Agent": "curl/8.5.0"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.load(err)
    except OSError:
        return 0, {}


def wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


def test_one_worker_polls_the_bmcs_at_start_whatever_the_worker_count(server: Server) -> None:
    wait_for(lambda: call(server, "GET", f"/api/v1/hosts/{MAC}/power")[1]["data"]["state"]
             == "off", 20)
    view = call(server, "GET", f"/api/v1/hosts/{MAC}/power")[1]["data"]
    assert (view["source"], view["error"]) == ("poller", None)
    time.sleep(2)  # every worker has started and tried the lock by now
    polls = [line for line in (server.log_dir / "hps-api.log").read_text().splitlines()
             if "power poll:" in line]
    assert len(polls) == 1, polls
    assert "power poll: 1 hosts in" in polls[0]


def test_an_action_started_on_one_worker_is_followed_on_any(server: Server,
                                                            ipmi: IpmiBmc) -> None:
    status, answer = call(server, "POST", f"/api/v1/hosts/{MAC}/power", {"action": "on"})
    assert status == 202, answer
    location = f"/api/v1/power/actions/{answer['data']['id']}"
    seen: list[str] = []

    def finished() -> bool:
        seen.append(call(server, "GET", location)[1]["data"]["status"])
        return seen[-1] in ("done", "failed")

    wait_for(finished, 30)
    assert seen[-1] == "done"
    assert ipmi.power() == "1"
    assert call(server, "GET", f"/api/v1/hosts/{MAC}/power")[1]["data"]["state"] == "on"
