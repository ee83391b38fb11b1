"""The OpenAPI document against the app itself: generated calls to every operation, as an admin.

Schemathesis reads `/api/v1/openapi.json` from the WSGI app (no network) and, per operation,
sends calls that fit the document (random, and aimed at the seeded host, cluster and key so
that success bodies are checked too) and calls that break it (wrong types, unknown fields,
missing parameters). Every answer must be no 5xx, a status the document lists, the content type
it names, and a body matching its schema; a call that breaks the document must be refused.
Bounded and derandomized: the same calls on every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hps_api import create_app
from hps_api.commands import COMMANDS
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.web.openapi import document

TOKEN = "s3cret"
#: an admin as the document says, on every call: the bearer token (the WSGI environ names no
#: client address, so there is no loopback right); calls that break the document break
#: something else than the credentials
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MAC = "525400aabb01"
#: path parameters and bodies naming what `app` stores, so generated calls reach success answers
KNOWN_PATH = {"mac": MAC, "name": "default", "key": "DNS_DOMAIN"}
KNOWN_BODY = {"configureHost": {"type": "SCH"}}
EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
OPERATIONS = sorted(op["operationId"] for item in document()["paths"].values()
                    for op in item.values())


@pytest.fixture
def app(config_dir: Path, tmp_path: Path, store: FileStore) -> Flask:
    """The app on a store with a configurable host, a cluster with a network and an OS."""
    store.update(RecordId.of_host("default", MAC), {"STATE": "UNCONFIGURED",
                                                    "DNS_DOMAIN": "host.lan"}, "t", create=True)
    store.update(RecordId.of_cluster("default"), {"DNS_DOMAIN": "lab.lan",
                                                  "DHCP_IP": "10.99.0.1",
                                                  "NETWORK_CIDR": "10.99.0.0/24"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {"STATUS": "prod", "HPS_TYPES": "SCH"}, "t",
                 create=True)
    return create_app(Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                               arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                               resources_dir=tmp_path / "resources", admin_token=TOKEN,
                               lock_timeout=0.5))


def strategies(operation: APIOperation, operation_id: str) -> SearchStrategy[Case]:
    """Return calls that fit the document (also aimed at stored things) and calls that don't."""
    known = {name: value for name, value in KNOWN_PATH.items()
             if name in operation.path_parameters}
    extra = {"body": KNOWN_BODY[operation_id]} if operation_id in KNOWN_BODY else {}
    fitting = [positive(operation), positive(operation, path_parameters=known, **extra)]
    if operation_id.startswith("legacyCommand"):
        fitting += [positive(operation, query={"cmd": name, "mac": MAC})
                    for name in sorted(COMMANDS)]
    negative = operation.as_strategy(GenerationMode.NEGATIVE, feedback=NO_FEEDBACK,
                                     headers=ADMIN)
    return st.one_of(st.one_of(fitting), negative)


def positive(operation: APIOperation, **fixed: Any) -> SearchStrategy[Case]:
    """Return calls that fit the document, without literals harvested from the app's modules
    (the order they are found in changes between processes, and so would the calls)."""
    return operation.as_strategy(GenerationMode.POSITIVE, feedback=NO_FEEDBACK, headers=ADMIN,
                                 **fixed)


@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_generated_calls_get_documented_answers_and_never_a_server_error(
    app: Flask, operation_id: str,
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema.find_operation_by_id(operation_id)
    answered: list[int] = []

    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None,
              database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=strategies(operation, operation_id))
    def call(case: Case) -> None:
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        checks = [*CHECKS, negative_data_rejection] if negative else CHECKS
        response = case.call_and_validate(checks=checks)
        answered.append(response.status_code)

    call()
    assert answered, f"{operation_id}: no call was made"
    assert [status for status in answered if status >= 500] == []
