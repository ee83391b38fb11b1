"""The OpenAPI document matches the app: every route documented, every documented call answered."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import webtest
from conftest import provide_os_files
from flask import Flask

from hps_api import __version__, create_app
from hps_api.ops import power
from hps_api.power.bmc import Bmc
from hps_api.power.records import ActionLog
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.web.legacy import PATHS as LEGACY_PATHS
from hps_api.web.openapi import document

DOC = document()
METHODS = ("get", "put", "post", "delete", "patch")
OPERATIONS = [(path, method) for path, item in DOC["paths"].items()
              for method in METHODS if method in item]

#: plausible values for the path parameters, on the store `seeded` prepares
PATH_VALUES = {"mac": "52-54-00-AA-BB-01", "name": "default", "key": "dns_domain",
               "switch": "on", "action_id": "0123456789abcdef",
               "iqn": "iqn.2026-11.default:tch-009.root0"}
#: request bodies and query strings by operationId (the legacy ones share a prefix)
BODIES: dict[str, Any] = {"createCluster": {"name": "lab2"}, "setClusterKey": {"value": "x"},
                          "setHostKey": {"value": "x"}, "configureHost": {"type": "SCH"},
                          "startPowerAction": {"action": "status"},
                          "setBmc": {"driver": "wol", "address": "127.255.255.255"},
                          "provisionStorage": {"mac": "525400aabb03", "size": "1G"},
                          "expandVolume": {"size": "2G"}}
LEGACY_QUERY = "cmd=host_variable&name=DNS_DOMAIN&mac=525400aabb01"


@pytest.fixture(autouse=True)
def seeded(store: FileStore, host: RecordId, tmp_path: Path) -> None:
    """The host and the cluster both hold DNS_DOMAIN, the key the calls use; the OS's files are
    in the app's resources tree, so the host can be reinstalled."""
    store.update(host, {"DNS_DOMAIN": "host.lan", "TYPE": "SCH", "HOSTNAME": "sch-001",
                        "IP": "10.99.0.11"}, "t")
    store.update(RecordId.of_cluster("default"), {"DNS_DOMAIN": "lab.lan", "DHCP_IP": "10.99.0.1",
                                                  "NETWORK_CIDR": "10.99.0.0/24"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {"STATUS": "prod", "HPS_TYPES": "SCH",
                                                     "REPO_PATH": "rocky/10"}, "t", create=True)
    provide_os_files(tmp_path / "resources", store)
    # a BMC that sends nothing for `status` (Wake-on-LAN reads nothing back), and an action
    power.set_bmc(store, "default", host.name or "", Bmc("wol", "127.255.255.255"), "t")
    # a storage host with room and an unused volume; a thin host without a disk
    store.update(RecordId.of_host("default", "525400aabb02"), {
        "TYPE": "SCH", "HOSTNAME": "sch-002", "STORAGE_FREE": str(100 << 30),
        "STORAGE_VOLUME_TCH_009_ROOT0": f"volume=tch-009-root0 size=1G iqn={PATH_VALUES['iqn']}"
                                        " host=525400aabb09 slot=0 portal=10.99.0.12:3260 "
                                        "job=0123456789ab"}, "t", create=True)
    store.update(RecordId.of_host("default", "525400aabb03"), {"TYPE": "TCH",
                                                               "HOSTNAME": "tch-003"}, "t",
                 create=True)
    actions = ActionLog(store.layout.root)
    actions.update(actions.create("default", host.name or "", ["status"], "t"),
                   id=PATH_VALUES["action_id"])


@pytest.fixture
def app(config_dir: Path, tmp_path: Path) -> Flask:
    return create_app(Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                               arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                               resources_dir=tmp_path / "resources", admin_token="s3cret",
                               lock_timeout=0.5))


@pytest.fixture
def admin(app: Flask) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})


def documented_path(rule: str) -> str:
    """Return the OpenAPI spelling of a Flask rule (`<mac>`, `<string:mac>` -> `{mac}`)."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Return the component a `$ref` points at (or the node itself)."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = DOC
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return resolve(target)


def test_the_document_is_openapi_3_0_3_for_this_version(admin) -> None:
    served = admin.get("/api/v1/openapi.json", extra_environ={"REMOTE_ADDR": "10.99.0.50"})
    assert served.content_type == "application/json"
    assert served.json == DOC
    assert DOC["openapi"] == "3.0.3"
    assert DOC["info"]["title"] == "hps-api"
    assert DOC["info"]["version"] == __version__


def test_the_bearer_scheme_protects_everything_but_health_and_the_document() -> None:
    scheme = DOC["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert DOC["security"] == [{"bearerAuth": []}]
    public = {path for path, method in OPERATIONS
              if DOC["paths"][path][method].get("security") == []}
    assert public == {"/api/v1/health", "/api/v1/openapi.json"}


def test_every_api_and_legacy_route_is_documented_with_all_its_methods(app: Flask) -> None:
    missing = []
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/v1") or rule.rule in LEGACY_PATHS):
            continue
        item = DOC["paths"].get(documented_path(rule.rule), {})
        missing += [f"{method} {rule.rule}" for method in rule.methods or ()
                    if method not in ("HEAD", "OPTIONS") and method.lower() not in item]
    assert missing == []


def test_the_document_describes_no_route_the_app_lacks(app: Flask) -> None:
    routes = {(documented_path(r.rule), m.lower()) for r in app.url_map.iter_rules()
              for m in r.methods or ()}
    assert [op for op in OPERATIONS if op not in routes] == []


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_every_documented_operation_answers_an_admin(admin, path: str, method: str) -> None:
    operation = DOC["paths"][path][method]
    url = re.sub(r"{([a-z_]+)}", lambda m: PATH_VALUES[m.group(1)], path)
    if operation["operationId"].startswith("legacyCommand"):
        url += f"?{LEGACY_QUERY}"
    body = BODIES.get(operation["operationId"])
    if body is None:
        res = admin.request(url, method=method.upper(), status="*")
    else:
        res = admin.request(url, method=method.upper(), body=json.dumps(body).encode(),
                            content_type="application/json", status="*")
    assert res.status_int not in (404, 405)
    assert 200 <= res.status_int < 300, res.text


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_every_operation_declares_its_parameters_and_error_responses(path: str,
                                                                     method: str) -> None:
    operation = DOC["paths"][path][method]
    parameters = [resolve(p) for p in operation.get("parameters", [])]
    in_path = {p["name"] for p in parameters if p["in"] == "path"}
    assert in_path == set(re.findall(r"{([a-z_]+)}", path))
    assert all(p["required"] for p in parameters if p["in"] == "path")
    responses = operation["responses"]
    success = [code for code in responses if code.startswith("2")]
    assert len(success) == 1
    if operation.get("security") != []:
        assert "403" in responses
    if in_path:
        assert {"400", "404"} <= set(responses)
    if "requestBody" in operation:
        assert {"400", "413"} <= set(responses)


JSON_BODIES = [(path, method) for path, method in OPERATIONS if "application/json" in
               DOC["paths"][path][method].get("requestBody", {}).get("content", {})]


@pytest.mark.parametrize(("path", "method"), JSON_BODIES)
def test_a_json_body_takes_only_its_documented_fields_and_only_as_json(path: str,
                                                                      method: str) -> None:
    operation = DOC["paths"][path][method]
    content = operation["requestBody"]["content"]
    assert list(content) == ["application/json"]
    assert resolve(content["application/json"]["schema"])["additionalProperties"] is False
    assert "415" in operation["responses"]


def test_every_reference_in_the_document_resolves() -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(DOC):
        assert resolve({"$ref": ref})


def test_operation_ids_are_unique() -> None:
    ids = [DOC["paths"][path][method]["operationId"] for path, method in OPERATIONS]
    assert len(ids) == len(set(ids))


def test_the_legacy_endpoint_documents_cmd_as_required_for_get_and_post() -> None:
    for path in LEGACY_PATHS:
        for method in ("get", "post"):
            cmd = [p for p in DOC["paths"][path][method]["parameters"] if p["name"] == "cmd"]
            assert cmd == [{**cmd[0], "in": "query", "required": True}]
