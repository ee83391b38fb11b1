"""`/distros/...` and `/packages/...`: files under HPS_RESOURCES_DIR, ranges, and no escapes."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper

import pytest
import webtest  # type: ignore[import-untyped]

from hps_api import create_app
from hps_api.settings import Settings

KERNEL = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable


@pytest.fixture
def resources(tmp_path: Path, config_dir: Path) -> Path:
    """A resources tree: a kernel, a package, a dotfile, a directory, symlinks in and out."""
    root = tmp_path / "resources"
    rocky = root / "distros" / "rocky" / "10"
    rocky.mkdir(parents=True)
    (rocky / "vmlinuz").write_bytes(KERNEL)
    (rocky / ".treeinfo").write_text("[general]\n")
    (root / "packages").mkdir()
    (root / "packages" / "tool.rpm").write_bytes(b"rpm bytes")
    (tmp_path / "secret.txt").write_text("outside the root\n")
    (root / "distros" / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "distros" / "config-link").symlink_to(config_dir / "hps.conf")
    (root / "distros" / "config-dir").symlink_to(config_dir, target_is_directory=True)
    (root / "distros" / "inside").symlink_to(rocky / "vmlinuz")
    return root


@pytest.fixture
def app_settings(settings: Settings, resources: Path) -> Settings:
    """The conftest settings with HPS_RESOURCES_DIR pointing at the tree above."""
    return settings.with_overrides(resources_dir=resources)


@pytest.fixture
def client(app_settings: Settings) -> webtest.TestApp:
    """WebTest over the real app, from a LAN address."""
    return webtest.TestApp(create_app(app_settings), extra_environ={"REMOTE_ADDR": "10.99.0.21"})


def test_a_whole_file_is_served_as_bytes_with_length_and_range_support(
        client: webtest.TestApp) -> None:
    response = client.get("/distros/rocky/10/vmlinuz", headers={"Accept": "text/html"})
    assert response.status_int == 200
    assert response.body == KERNEL
    assert response.headers["Content-Length"] == str(len(KERNEL))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert "ETag" in response.headers


def test_packages_and_dotfiles_are_served_too(client: webtest.TestApp) -> None:
    assert client.get("/packages/tool.rpm").body == b"rpm bytes"
    assert client.get("/distros/rocky/10/.treeinfo").text == "[general]\n"


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=10-19", 10, 19),
    ("bytes=0-0", 0, 0),
    ("bytes=10000-", 10000, 10239),
    ("bytes=-16", 10224, 10239),
    ("bytes=10200-99999", 10200, 10239),
])
def test_a_range_request_gets_206_with_content_range_and_exactly_those_bytes(
        client: webtest.TestApp, header: str, first: int, last: int) -> None:
    response = client.get("/distros/rocky/10/vmlinuz", headers={"Range": header}, status=206)
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(KERNEL)}"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert response.body == KERNEL[first:last + 1]


def test_an_unsatisfiable_range_is_416(client: webtest.TestApp) -> None:
    response = client.get("/distros/rocky/10/vmlinuz", headers={"Range": "bytes=20000-"},
                          status=416)
    assert response.headers["Content-Range"] == f"bytes */{len(KERNEL)}"


def test_head_answers_the_length_without_a_body(client: webtest.TestApp) -> None:
    response = client.head("/distros/rocky/10/vmlinuz")
    assert response.status_int == 200
    assert response.headers["Content-Length"] == str(len(KERNEL))
    assert response.body == b""


def test_a_repeated_request_with_the_etag_is_304(client: webtest.TestApp) -> None:
    etag = client.get("/distros/rocky/10/vmlinuz").headers["ETag"]
    client.get("/distros/rocky/10/vmlinuz", headers={"If-None-Match": etag}, status=304)


def test_a_symlink_inside_the_tree_is_followed(client: webtest.TestApp) -> None:
    assert client.get("/distros/inside").body == KERNEL


@pytest.mark.parametrize("path", [
    "/distros/",
    "/distros",
    "/packages/",
    "/distros/rocky",
    "/distros/rocky/",
    "/distros/rocky/10/",
    "/distros/rocky/10/missing.img",
    "/distros/config-dir/hps.conf",
    "/distros/config-dir/",
])
def test_directories_missing_files_and_the_config_dir_are_404(client: webtest.TestApp,
                                                               path: str) -> None:
    response = client.get(path, status=404)
    assert b"hps.conf" not in response.body or b"no such" in response.body
    assert b"vmlinuz" not in response.body  # never a listing


@pytest.mark.parametrize("path", [
    "/distros/../packages/tool.rpm",
    "/distros/rocky/../../packages/tool.rpm",
    "/distros/%2e%2e/packages/tool.rpm",
    "/distros/%2E%2E%2Fpackages%2Ftool.rpm",
    "/distros/rocky/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/distros//etc/passwd",
    "/distros/%2Fetc%2Fpasswd",
    "/distros/escape",
    "/distros/config-link",
    "/distros/rocky/10/vmlinuz%00.txt",
    "/packages/..%2F..%2Fsecret.txt",
])
def test_paths_that_leave_the_tree_are_404(client: webtest.TestApp, path: str) -> None:
    response = client.get(path, status=404)
    assert b"outside the root" not in response.body
    assert b"ACTIVE_CLUSTER" not in response.body


def test_a_resources_tree_that_is_the_config_dir_serves_nothing(
        settings: Settings, config_dir: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd-resources"
    odd.mkdir()
    (odd / "distros").symlink_to(config_dir, target_is_directory=True)
    app = webtest.TestApp(create_app(settings.with_overrides(resources_dir=odd)))
    app.get("/distros/hps.conf", status=404)


def test_errors_go_through_the_app_error_handlers(client: webtest.TestApp) -> None:
    response = client.get("/distros/nope", headers={"Accept": "application/json"}, status=404)
    assert response.json["ok"] is False
    assert response.json["error"]["code"] == 404
    assert response.json["error"]["message"] == "no such file: /distros/nope"
    client.post("/distros/rocky/10/vmlinuz", status=405)


def test_files_are_streamed_through_the_server_file_wrapper_not_read_whole(
        app_settings: Settings, resources: Path) -> None:
    big = resources / "distros" / "big.iso"
    with big.open("wb") as out:
        out.truncate(64 * 1024 * 1024)
    wrapped: list[Any] = []

    def file_wrapper(file: io.BufferedReader, block_size: int = 8192) -> FileWrapper:
        wrapped.append(file)
        return FileWrapper(file, block_size)

    app = create_app(app_settings)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/distros/big.iso", "SERVER_NAME": "ips",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "REMOTE_ADDR": "10.99.0.21",
               "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO(),
               "wsgi.file_wrapper": file_wrapper, "HTTP_RANGE": "bytes=1000-1009"}
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], object]:
        status.append(line)
        return lambda data: None

    body = app(environ, start_response)
    try:
        first = next(iter(body))
    finally:
        body.close()  # type: ignore[attr-defined]
    assert status == ["206 PARTIAL CONTENT"]
    assert len(wrapped) == 1 and os.path.samefile(wrapped[0].name, big)
    assert first == b"\0" * 10


@pytest.mark.parametrize("path", ["/distros/rocky/10/missing", "/distros/escape",
                                  "/packages/nothing.rpm"])
def test_ipxe_loading_a_boot_file_it_cannot_have_gets_the_404_not_a_retry_script(
        client: webtest.TestApp, path: str) -> None:
    # `kernel URL || goto failed`: a 200 retry script would be loaded as the kernel and run
    answer = client.get(path, headers={"User-Agent": "iPXE/1.21.1"}, status=404)
    assert not answer.text.startswith("#!ipxe"), answer.text
    # a boot command still answers iPXE with the script it runs (HTTP 200)
    command = client.get("/cgi-bin/boot_manager.sh?cmd=no_such_command",
                         headers={"User-Agent": "iPXE/1.21.1"}, status=200)
    assert command.text.startswith("#!ipxe"), command.text
