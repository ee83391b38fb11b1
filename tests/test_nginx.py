"""The front end (docs/deploy.md): render-services' nginx.conf, checked and run by real nginx.

The running tier puts the IPS in a network namespace of its own, as a provisioning server is:
`hps-api serve` on 127.0.0.1:8080, nginx from the rendered file on port 80 and, with a
self-signed certificate, 443. A node in a second namespace calls it as `http://ips/`, so it is
a real LAN caller whose address nginx forwards; the IPS's own tools call it on loopback.
Needs root (namespaces) and Debian's nginx, curl, iproute2 and openssl (scripts/test installs
them).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import write_raw
from netns import Link, clean_env, neighbourhood

from hps_api.errors import InvalidInput
from hps_api.services import nginx, render_services
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
IPS, NODE = "10.96.0.1", "10.96.0.2"
NODE_MAC = "52:54:00:96:00:02"
OTHER_MAC = "52:54:00:96:00:09"
URL = "http://ips/cgi-bin/boot_manager.sh"
KERNEL = bytes(range(256)) * 4096  # 1 MiB, every byte value
TIMEOUT = 30
# time client method "path" status bytes request_time upstream_time "cmd" "mac"
TIMELINE = re.compile(r'(\S+) (\S+) (\S+) "([^"]*)" (\d{3}) (\d+) ([\d.]+) (\S+) "([^"]*)" '
                      r'"([^"]*)"')


def nginx_missing() -> str | None:
    """Return why real nginx cannot run here, or None."""
    if not Path(NGINX).is_file():
        return "NGINX TIER NOT RUN: nginx missing (scripts/test installs Debian's nginx)"
    return None


def nginx_test(conf: Path, log_dir: Path, *,
               as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `nginx -t` on `conf`, the way docs/deploy.md starts it (`-e` for the start-up log)."""
    prefix = (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if as_nobody
              else [])
    return subprocess.run([*prefix, NGINX, "-e", str(log_dir / nginx.ERROR_LOG), "-t", "-c",
                           str(conf)], capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)


@pytest.fixture
def front_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings with every directory nginx uses under tmp_path."""
    return settings.with_overrides(resources_dir=tmp_path / "resources",
                                   dnsmasq_pidfile=tmp_path / "run" / "dnsmasq.pid",
                                   front_bind="127.0.0.1:18080",
                                   trusted_proxies=("127.0.0.1",))


@pytest.fixture
def rendered(store: FileStore, front_settings: Settings, tmp_path: Path) -> Path:
    """The default cluster rendered; returns its services directory."""
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.96.0.1", "DHCP_IFACE": "hpsn0", "NETWORK_CIDR": "10.96.0.0/24"},
        "test:setup")
    render_services(store, front_settings, "default", ipxe_dir=tmp_path / "no-ipxe")
    return store.layout.services_dir("default")


def self_signed(directory: Path, name: str = "ips") -> tuple[Path, Path]:
    """Make a self-signed certificate for `name` with `openssl req`; return (cert, key)."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=TIMEOUT)
    return cert, key


# ---------------------------------------------------------------------------- rendering


def test_render_services_writes_a_complete_nginx_conf_and_the_env_that_trusts_it(
        rendered: Path, front_settings: Settings) -> None:
    conf = (rendered / "nginx.conf").read_text()
    run, log = front_settings.dnsmasq_pidfile.parent, front_settings.log_dir
    assert f"pid {run}/hps-nginx.pid;" in conf
    assert f"error_log {log}/nginx-error.log" in conf
    assert f"access_log {log}/nginx-access.log hps_timeline;" in conf
    for kind in ("client-body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f"_temp_path {run}/hps-nginx-{kind};" in conf
    assert "listen 127.0.0.1:18080 default_server;" in conf
    assert "server 127.0.0.1:8080;" in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "443" not in conf
    assert (rendered / "front-end.env").read_text().splitlines()[-2:] == [
        "HPS_BIND=127.0.0.1:8080", "HPS_TRUSTED_PROXIES=127.0.0.1"]


def test_every_path_nginx_writes_is_under_the_log_or_runtime_directory(
        front_settings: Settings) -> None:
    conf = nginx.render_nginx(front_settings, "default")
    allowed = (str(front_settings.log_dir) + "/", str(front_settings.dnsmasq_pidfile.parent) + "/")
    written = re.findall(r"^\s*(?:pid|error_log|access_log|\w+_temp_path) (\S+?)[ ;]", conf,
                         re.MULTILINE)
    assert len(written) == 8
    assert all(path.startswith(allowed) for path in written), written


@pytest.mark.skipif(nginx_missing() is not None, reason=nginx_missing() or "")
def test_real_nginx_accepts_the_rendered_conf(rendered: Path, front_settings: Settings) -> None:
    front_settings.log_dir.mkdir(parents=True, exist_ok=True)
    front_settings.dnsmasq_pidfile.parent.mkdir(parents=True, exist_ok=True)
    result = nginx_test(rendered / "nginx.conf", front_settings.log_dir)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.skipif(nginx_missing() is not None or os.geteuid() != 0,
                    reason=nginx_missing() or "needs root to become another user")
def test_nginx_accepts_the_conf_rendered_for_a_user_who_is_not_root(
        front_settings: Settings) -> None:
    with tempfile.TemporaryDirectory(prefix="hps-nginx-") as temp:
        root = Path(temp)
        root.chmod(0o755)
        for name in ("log", "run"):
            (root / name).mkdir()
            os.chown(root / name, 65534, 65534)
        settings = front_settings.with_overrides(log_dir=root / "log",
                                                 dnsmasq_pidfile=root / "run" / "dnsmasq.pid")
        conf = root / "nginx.conf"
        conf.write_text(nginx.render_nginx(settings, "default", user=None))
        assert "user " not in conf.read_text()
        result = nginx_test(conf, settings.log_dir, as_nobody=True)
        assert result.returncode == 0, result.stderr


@pytest.mark.skipif(nginx_missing() is not None, reason=nginx_missing() or "")
def test_a_certificate_adds_https_on_port_443(front_settings: Settings, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = front_settings.with_overrides(tls_cert=str(cert), tls_key=str(key),
                                             front_bind="[::]:18080")
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx.render_nginx(settings, "default", user=nginx.worker_user()))
    text = conf.read_text()
    assert "listen [::]:18080 default_server ipv6only=off;" in text
    assert "listen [::]:443 ssl default_server ipv6only=off;" in text
    assert f"ssl_certificate {cert};" in text and f"ssl_certificate_key {key};" in text
    for path in (settings.log_dir, settings.dnsmasq_pidfile.parent):
        path.mkdir(parents=True, exist_ok=True)
    result = nginx_test(conf, settings.log_dir)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("changes", "named"), [
    ({"front_bind": "ips:80"}, "HPS_FRONT_BIND"),
    ({"front_bind": "0.0.0.0"}, "HPS_FRONT_BIND"),
    ({"front_bind": "0.0.0.0:70000"}, "HPS_FRONT_BIND"),
    ({"bind": "unix:/run/hps.sock"}, "HPS_BIND"),
    ({"tls_cert": "/etc/ssl/certs/ca-certificates.crt"}, "HPS_TLS_KEY"),
    ({"tls_key": "/nonexistent.key"}, "HPS_TLS_CERT"),
    ({"tls_cert": "/nonexistent.crt", "tls_key": "/nonexistent.key"}, "HPS_TLS_CERT"),
    ({"log_dir": Path("/var/log/hps; evil")}, "HPS_LOG_DIR"),
])
def test_a_bad_front_end_setting_is_invalid_input_naming_it(
        front_settings: Settings, changes: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        nginx.render_nginx(front_settings.with_overrides(**changes), "default")


def test_no_nginx_conf_while_gunicorn_itself_binds_the_front_port(
        store: FileStore, front_settings: Settings, tmp_path: Path) -> None:
    write_raw(store, RecordId.of_cluster("default"), {
        "DHCP_IP": "10.96.0.1", "DHCP_IFACE": "hpsn0", "NETWORK_CIDR": "10.96.0.0/24"})
    settings = front_settings.with_overrides(bind="0.0.0.0:80", front_bind="0.0.0.0:80")
    written = render_services(store, settings, "default", ipxe_dir=tmp_path / "no-ipxe")
    assert "dnsmasq.conf" in [p.name for p in written]
    assert "nginx.conf" not in [p.name for p in written]


def test_a_wildcard_gunicorn_bind_is_proxied_over_loopback_and_trusted_so(
        front_settings: Settings) -> None:
    settings = front_settings.with_overrides(bind="0.0.0.0:8080", trusted_proxies=())
    assert "server 127.0.0.1:8080;" in nginx.render_nginx(settings, "default")
    assert "HPS_TRUSTED_PROXIES=127.0.0.1\n" in nginx.render_front_end_env(settings)
    six = front_settings.with_overrides(bind="[::]:8080", trusted_proxies=("10.0.0.9",))
    assert nginx.proxy_address(six) == "::1"
    assert "HPS_TRUSTED_PROXIES=10.0.0.9,::1\n" in nginx.render_front_end_env(six)


# ---------------------------------------------------------------------------- the running tier


@dataclass(frozen=True)
class Front:
    """The IPS namespace running gunicorn and nginx, and a node namespace beside it."""

    ips_ns: str
    node_ns: str
    root: Path
    store: FileStore
    cert: Path

    def node(self, *argv: str) -> subprocess.CompletedProcess[bytes]:
        """Run a command on the node (a LAN neighbour of the IPS)."""
        return subprocess.run(["ip", "netns", "exec", self.node_ns, *argv], capture_output=True,
                              timeout=TIMEOUT, env=clean_env(), check=False)

    def on_ips(self, *argv: str) -> subprocess.CompletedProcess[bytes]:
        """Run a command on the IPS itself (its loopback)."""
        return subprocess.run(["ip", "netns", "exec", self.ips_ns, *argv], capture_output=True,
                              timeout=TIMEOUT, env=clean_env(), check=False)

    def timeline(self) -> list[re.Match[str]]:
        """Return nginx's access-log lines, parsed."""
        lines = (self.root / "log" / nginx.ACCESS_LOG).read_text().splitlines()
        return [m for line in lines if (m := TIMELINE.fullmatch(line))]


def curl(*args: str) -> list[str]:
    """Return a curl call printing the body, then the status on its own last line."""
    return ["curl", "-sS", "-m", "20", "-w", "\n%{http_code}", *args]


def split(result: subprocess.CompletedProcess[bytes]) -> tuple[bytes, int]:
    """Return (body, status) of a `curl()` call."""
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition(b"\n")
    return body, int(status)


LINK = Link("hpsn-ips", "hpsn-node", NODE_MAC, (f"{IPS}/24",), (f"{NODE}/24",))


def _seed(root: Path, store: FileStore) -> None:
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": IPS, "DHCP_IFACE": "hpsn-ips", "NETWORK_CIDR": "10.96.0.0/24",
        "DB_PASSWORD": "s3cret"}, "test:setup")
    store.update(RecordId.of_host("default", NODE_MAC), {"STATE": "INSTALLED", "NOTE": "the node"},
                 "test:setup", create=True)
    store.update(RecordId.of_host("default", OTHER_MAC), {"STATE": "INSTALLED", "NOTE": "other"},
                 "test:setup", create=True)
    kernel = root / "resources" / "distros" / "rocky" / "10" / "vmlinuz"
    kernel.parent.mkdir(parents=True)
    kernel.write_bytes(KERNEL)
    (kernel.parent / "linked-kernel").symlink_to("vmlinuz")
    (kernel.parent / "escape").symlink_to(root / "hps-config" / "hps.conf")
    (root / "resources" / "packages").mkdir()


def _wait_for(front: Front, url: str, what: str, process: subprocess.Popen[bytes] | None,
              log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}")
        if front.on_ips("curl", "-fsS", "-m", "2", "-o", "/dev/null", url).returncode == 0:
            return
        time.sleep(0.2)
    pytest.fail(f"{what} not answering {url}: {log.read_text()[-2000:]}")


def _start_nginx(front: Front, conf: Path) -> int:
    """Start nginx with the rendered file as it is; return its master's pid."""
    error_log = front.root / "log" / nginx.ERROR_LOG
    started = front.on_ips(NGINX, "-e", str(error_log), "-c", str(conf))
    assert started.returncode == 0, started.stderr
    pidfile = front.root / "run" / nginx.PID_FILE
    deadline = time.monotonic() + TIMEOUT
    while not (pidfile.is_file() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, error_log.read_text()
        time.sleep(0.05)
    return int(pidfile.read_text())


def _stop(pid: int) -> None:
    """Stop the nginx master `pid` (SIGTERM: it ends its workers), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def front() -> Iterator[Front]:
    """gunicorn on 127.0.0.1:8080 and nginx on ports 80 and 443 of the IPS namespace."""
    if os.geteuid() != 0:
        pytest.skip("NGINX TIER NOT RUN: needs root (network namespaces)")
    missing = nginx_missing() or next((f"NGINX TIER NOT RUN: {tool} missing" for tool in
                                       ("ip", "curl", "openssl") if not shutil.which(tool)), None)
    if missing:
        pytest.skip(missing)
    # nginx's workers run as www-data: the tree must be readable by others, unlike tmp_path.
    root = Path(tempfile.mkdtemp(prefix="hps-nginx-"))
    root.chmod(0o755)
    tag = f"{os.getpid() % 100000}"
    ips_ns, node_ns = f"hpsn-ips-{tag}", f"hpsn-node-{tag}"
    env = {**clean_env(), "HPS_CONFIG_DIR": str(root / "hps-config"),
           "HPS_LOG_DIR": str(root / "log"), "HPS_RESOURCES_DIR": str(root / "resources"),
           "HPS_DNSMASQ_PIDFILE": str(root / "run" / "dnsmasq.pid"),
           "HPS_DHCP_LEASES": str(root / "run" / "dnsmasq.leases"), "HPS_LOCK_TIMEOUT": "5"}
    try:
        subprocess.run([str(BIN / "hps-api"), "init"], env=env, cwd=root, check=True,
                       capture_output=True, timeout=60)
        store = FileStore(root / "hps-config")
        _seed(root, store)
        (root / "run").mkdir()
        cert, key = self_signed(root)
        env.update(HPS_TLS_CERT=str(cert), HPS_TLS_KEY=str(key))
        rendered = subprocess.run([str(BIN / "hps-api"), "render-services"], env=env, cwd=root,
                                  capture_output=True, text=True, timeout=60, check=False)
        services = store.layout.services_dir("default")
        # No dnsmasq runs here: whether that is an error is not this module's business.
        assert f"wrote {services / 'nginx.conf'}" in rendered.stdout.splitlines(), \
            rendered.stdout + rendered.stderr
        for line in (services / nginx.FRONT_END_ENV).read_text().splitlines():
            if line.startswith("HPS_"):  # the deployment's own settings for hps-api
                name, _, value = line.partition("=")
                env[name] = value
        with neighbourhood(ips_ns, node_ns, LINK, IPS):
            hood = Front(ips_ns, node_ns, root, store, cert)
            log = root / "serve.stderr"
            with log.open("wb") as err:
                server = subprocess.Popen(
                    ["ip", "netns", "exec", ips_ns, str(BIN / "hps-api"), "serve",
                     "--workers", "1"], env=env, cwd=root, stdout=err, stderr=err,
                    start_new_session=True)
            pid = None
            try:
                _wait_for(hood, "http://127.0.0.1:8080/api/v1/health", "hps-api serve", server,
                          log)
                pid = _start_nginx(hood, services / "nginx.conf")
                _wait_for(hood, "http://127.0.0.1/api/v1/health", "nginx", None,
                          root / "log" / nginx.ERROR_LOG)
                yield hood
            finally:
                if pid is not None:
                    _stop(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=20)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_a_legacy_command_through_nginx_answers_the_old_text(front: Front) -> None:
    body, status = split(front.node(*curl("-L", f"{URL}?cmd=determine_state")))
    assert (status, body) == (200, b"INSTALLED\n")


@pytest.mark.slow
def test_a_lan_caller_through_nginx_is_known_by_its_own_address_and_is_no_admin(
        front: Front) -> None:
    # The node claims to be loopback: nginx replaces the header, it does not append to it.
    forged = ("-H", "X-Forwarded-For: 127.0.0.1")
    command = f"{URL}?cmd=cluster_variable&name="
    body, status = split(front.node(*curl(*forged, f"{command}DB_PASSWORD")))
    assert status == 403 and b"s3cret" not in body
    _, status = split(front.node(*curl(*forged, f"{command}NEW_KEY&value=x")))
    assert status == 403
    assert "NEW_KEY" not in front.store.items(RecordId.of_cluster("default"))
    # Known by its own address (the IPS's neighbour entry for it): its own record, nobody else's.
    body, status = split(front.node(*curl(*forged, f"{URL}?cmd=host_variable&name=NOTE")))
    assert (status, body) == (200, b"the node\n")
    body, status = split(front.node(*curl(*forged,
                                          f"{URL}?cmd=host_variable&name=NOTE&mac={OTHER_MAC}")))
    assert status == 403 and b"does not match the caller's verified MAC" in body


@pytest.mark.slow
def test_the_ips_own_tools_on_loopback_keep_their_rights_through_nginx(front: Front) -> None:
    body, status = split(front.on_ips(*curl(
        "http://127.0.0.1/cgi-bin/boot_manager.sh?cmd=cluster_variable&name=DB_PASSWORD")))
    assert (status, body) == (200, b"s3cret\n")


@pytest.mark.slow
def test_a_boot_file_comes_whole_and_by_range_from_nginx_itself(front: Front) -> None:
    path = "http://ips/distros/rocky/10/vmlinuz"
    body, status = split(front.node(*curl(path)))
    assert status == 200 and body == KERNEL
    body, status = split(front.node(*curl("-r", "1000-1999", path)))
    assert status == 206 and body == KERNEL[1000:2000]
    served = [m for m in front.timeline() if m[4] == "/distros/rocky/10/vmlinuz"]
    assert [(m[2], m[5], m[8]) for m in served[-2:]] == [(NODE, "200", "-"), (NODE, "206", "-")]
    assert "vmlinuz" not in (front.root / "log" / "access.log").read_text()  # not gunicorn's


@pytest.mark.slow
def test_a_symlink_inside_the_tree_is_still_served_by_the_app(front: Front) -> None:
    body, status = split(front.node(*curl("http://ips/distros/rocky/10/linked-kernel")))
    assert status == 200 and body == KERNEL


@pytest.mark.slow
@pytest.mark.parametrize("path", [
    "/distros/../hps-config/hps.conf",
    "/distros/%2e%2e/hps-config/hps.conf",
    "/distros/rocky/%2e%2e/%2e%2e/%2e%2e/hps-config/hps.conf",
    "/distros/../../../etc/passwd",
    "/distros/rocky/10/escape",
    "/distros/%2Fetc%2Fpasswd",
    "/distros//etc/passwd",
])
def test_no_path_leaves_the_boot_trees(front: Front, path: str) -> None:
    body, status = split(front.node(*curl("--path-as-is", f"http://ips{path}")))
    assert status in (400, 404), body
    assert b"ACTIVE" not in body and b"root:" not in body


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/distros/", "/distros/rocky/", "/distros/rocky",
                                  "/packages/"])
def test_no_directory_is_listed(front: Front, path: str) -> None:
    body, status = split(front.node(*curl(f"http://ips{path}")))
    assert status == 404
    assert b"vmlinuz" not in body and b"Index of" not in body


@pytest.mark.slow
def test_https_reaches_the_app_as_https(front: Front) -> None:
    body, status = split(front.node(*curl("--cacert", str(front.cert),
                                          "https://ips/boot.ipxe")))
    assert status == 200 and b"https://ips" in body
    body, status = split(front.node(*curl("http://ips/boot.ipxe")))
    assert status == 200 and b"http://ips" in body


@pytest.mark.slow
def test_the_access_log_has_one_timeline_line_per_request(front: Front) -> None:
    before = len(front.timeline())
    split(front.node(*curl(f"{URL}?cmd=determine_state&mac={NODE_MAC}&secret=hunter2")))
    lines = (front.root / "log" / nginx.ACCESS_LOG).read_text().splitlines()
    assert all(TIMELINE.fullmatch(line) for line in lines), lines[-3:]
    new = front.timeline()[before:]
    assert len(new) == 1
    when, client, method, path, status, size, took, upstream, cmd, mac = new[0].groups()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", when)
    assert (client, method, path, status, cmd, mac) == (
        NODE, "GET", "/cgi-bin/boot_manager.sh", "200", "determine_state", NODE_MAC)
    assert int(size) > 0 and float(took) >= 0 and float(upstream) >= 0
    assert "hunter2" not in "\n".join(lines)


@pytest.mark.slow
def test_the_front_end_benchmark_runs_and_reports_numbers() -> None:
    if nginx_missing():
        pytest.skip(nginx_missing() or "")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench" / "front_end.py"), "--clients", "20",
         "--size", "4", "--rate", "2", "--seconds", "3"], capture_output=True, text=True,
        timeout=180, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(("| baseline",
                                                                            "| front end"))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert int(cells[1].replace(",", "")) > 0  # init answers
        float(cells[2].replace(",", ""))  # p50
        float(cells[4].replace(",", ""))  # max


@pytest.mark.slow
def test_the_static_file_benchmark_reports_numbers_and_no_boot_file_reaches_gunicorn() -> None:
    if nginx_missing() or not shutil.which("wrk"):
        pytest.skip(nginx_missing() or "STATIC FILE BENCHMARK NOT RUN: wrk missing")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench" / "static_files.py"), "--size", "2",
         "--small", "64", "--connections", "2", "--rounds", "1", "--seconds", "1"],
        capture_output=True, text=True, timeout=180, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines()
            if line.startswith(("| 2 MiB `/distros/", "| 64 KiB `/ipxe.efi`"))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip().replace(",", "") for c in row.strip("|").split("|")]
        assert all(float(cell) > 0 for cell in cells[1:6])  # req/s, MB/s, ratio
        assert cells[6] == "0"  # errors
    assert "gunicorn access-log lines for the boot files: 0 (" in result.stdout
    assert re.search(r"front end downloads \([\d.,]+ GB\): gunicorn CPU [\d,]+ ms",
                     result.stdout)
