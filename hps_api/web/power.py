"""Power and BMC endpoints of `/api/v1` (docs/power.md): admin-only, like the rest of the API.

No handler talks to a BMC. `POST .../power` checks the request, hands the action to this
process's runner (hps_api.ops.power_jobs) and answers 202 with the action, whose progress
`GET /api/v1/power/actions/<id>` shows (any worker can answer: actions are files). `GET
.../power` answers the last known state (the poller's or the last action's). A BMC password is
accepted by `PUT .../bmc` and never sent back.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from hps_api.errors import InvalidInput
from hps_api.ops import power as power_ops
from hps_api.ops.power_jobs import Runner
from hps_api.power.bmc import Bmc
from hps_api.power.records import ActionLog
from hps_api.store import Store
from hps_api.web.api import PREFIX, _admin_only, _log_change
from hps_api.web.params import TEXT, json_object, require_json
from hps_api.web.respond import json_response
from hps_api.web.runtime import runtime

bp = Blueprint("power", __name__, url_prefix=PREFIX)
bp.before_request(_admin_only)
bp.after_request(_log_change)
#: the fields of the bodies; `insecure` (a boolean) is checked apart, see `_bmc_body`
POWER_BODY = {"action": (True, TEXT)}
BMC_BODY = {"driver": (True, TEXT), "address": (True, TEXT), "system_id": (False, TEXT),
            "username": (False, TEXT), "password": (False, TEXT)}
_RUNNER = "hps_power_runner"


@bp.get("/hosts/<mac>/power")
def power_state(mac: str) -> Response:
    """The host's BMC (as shown) and its last known power state; never asks the BMC."""
    return json_response(power_ops.power_view(_store(), _cluster(), mac))


@bp.post("/hosts/<mac>/power")
def power_action(mac: str) -> Response:
    """Start `{"action": "on|off|cycle|pxe-once|status"}`: 202 with the queued action."""
    require_json(request.mimetype, request.mimetype_params)
    body = json_object(request.get_data(cache=False), POWER_BODY)
    steps = power_ops.parse_steps(body["action"])
    record = runner().submit(_cluster(), mac, steps, g.caller.actor)
    response = json_response(_shown(record), 202)
    response.headers["Location"] = f"{PREFIX}/power/actions/{record['id']}"
    return response


@bp.get("/power/actions/<action_id>")
def action(action_id: str) -> Response:
    """One power action: queued, running, done or failed, with its message."""
    return json_response(_shown(ActionLog(_store().layout.root).get(action_id)))


@bp.get("/hosts/<mac>/bmc")
def bmc(mac: str) -> Response:
    """The host's BMC settings (the password only as `password_set`)."""
    return json_response(power_ops.show_bmc(_store(), _cluster(), mac))


@bp.put("/hosts/<mac>/bmc")
def set_bmc(mac: str) -> Response:
    """Set the host's BMC from `{"driver", "address", "system_id", "username", "password",
    "insecure"}` (a password left out is kept when the driver stays the same)."""
    body = _bmc_body()
    settings = Bmc(driver=body["driver"], address=body["address"],
                   system_id=body.get("system_id", ""), username=body.get("username", ""),
                   password=body.get("password", ""), insecure=body.get("insecure", False))
    return json_response(power_ops.set_bmc(_store(), _cluster(), mac, settings,
                                           g.caller.actor))


@bp.delete("/hosts/<mac>/bmc")
def unset_bmc(mac: str) -> Response:
    """Forget the host's BMC settings."""
    return json_response(power_ops.unset_bmc(_store(), _cluster(), mac, g.caller.actor))


def runner() -> Runner:
    """Return this process's power runner (made at first use: after gunicorn's fork)."""
    found: Runner | None = current_app.extensions.get(_RUNNER)
    if found is None:
        found = current_app.extensions.setdefault(_RUNNER, Runner(_store()))
    return found


def _bmc_body() -> dict[str, Any]:
    """Return the checked body of `PUT .../bmc`: the text fields through params.json_object,
    `insecure` a JSON boolean (the shared body checker knows only text)."""
    require_json(request.mimetype, request.mimetype_params)
    raw = request.get_data(cache=False)
    insecure: object = False
    try:
        loose = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique) \
            if not raw.startswith(b"\xef\xbb\xbf") else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        loose = None  # json_object below says what is wrong with it
    if isinstance(loose, dict) and "insecure" in loose:
        insecure = loose.pop("insecure")
        if not isinstance(insecure, bool):
            raise InvalidInput('"insecure" must be true or false')
        raw = json.dumps(loose).encode()
    return {**json_object(raw, BMC_BODY), "insecure": insecure}


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a field given twice")
    return found


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    """Return an action as the API shows it (without the internal process id)."""
    return {key: value for key, value in record.items() if key != "pid"}


def _store() -> Store:
    return runtime().store


def _cluster() -> str:
    return request.args.get("cluster") or runtime().active_cluster()
