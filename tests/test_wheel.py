"""The package as an operator installs it: a wheel built from the checkout, installed into a
fresh virtualenv outside it, run from a directory that is not the checkout. Every data file
(iPXE templates, host types, installer templates, the node library, page templates) must come
from the wheel, and a site directory's file must win over the shipped one."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hps_api.commands import kickstart
from hps_api.errors import InvalidInput
from hps_api.model import catalog, resources
from hps_api.render import ipxe

REPO = Path(__file__).resolve().parents[1]
#: what the wheel is built from (a copy: the checkout's own build/ is never touched)
SOURCES = ("pyproject.toml", "README.md", "hps_api", "node_lib", "ipxe", "cluster-config")
MAC = "52:54:00:aa:bb:0c"
IPXE = "iPXE/1.21.1+ (g8ef5)"
CURL = "curl/8.5.0"
START_TIMEOUT = 30.0


@dataclass
class Installed:
    """A wheel and the virtualenv it is installed in."""

    wheel: Path
    bin: Path


@dataclass
class Server:
    """A running `hps-api serve` of the installed package."""

    process: subprocess.Popen[bytes]
    url: str
    workdir: Path
    env: dict[str, str]


# -- building and installing ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of the checkout and install it into a fresh virtualenv."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=skip)
        else:
            shutil.copy2(path, source / name)
    built = run([sys.executable, "-m", "build", "--wheel", "--outdir", str(root / "dist"),
                 str(source)], cwd=root, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("hps_api-*.whl")
    venv = root / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)], cwd=root).returncode == 0
    pip = run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
              cwd=root, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return Installed(wheel, venv / "bin")


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command without the checkout's HPS_* settings or virtualenv in its environment."""
    environment = env or clean_env()
    return subprocess.run(argv, cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout)


def clean_env(**extra: str) -> dict[str, str]:
    """Return this process's environment less HPS_*, PYTHONPATH and the virtualenv, plus
    `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HPS_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


@pytest.mark.slow
def test_the_wheel_carries_every_data_file_of_the_checkout(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    expected = {f"hps_api/_data/{path.relative_to(REPO)}"
                for folder, pattern in (("ipxe", "*.ipxe"), ("cluster-config", "**/*.toml"),
                                        ("cluster-config", "**/*.j2"), ("node_lib/sh", "*.sh"))
                for path in (REPO / folder).glob(pattern)}
    expected |= {f"hps_api/{path.relative_to(REPO / 'hps_api')}"
                 for folder in ("templates", "static", "deploy")
                 for path in (REPO / "hps_api" / folder).iterdir()}
    assert "hps_api/_data/ipxe/menu-main.ipxe" in expected
    assert expected - names == set()


@pytest.mark.slow
def test_the_wheel_carries_every_package_of_the_checkout(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    modules = {str(path.relative_to(REPO)) for path in (REPO / "hps_api").rglob("*.py")}
    assert modules - names == set()
    assert "node_lib/python/hps_node.py" in names


@pytest.mark.slow
def test_the_installed_package_reads_nothing_from_the_checkout(
        installed: Installed, tmp_path: Path) -> None:
    script = ("import hps_api, hps_api.model.resources as r\n"
              "print(hps_api.__file__)\nprint(r.find('cluster-config/host-types.toml'))")
    result = run([str(installed.bin / "python"), "-c", script], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    package, catalog_file = result.stdout.split()
    assert not package.startswith(str(REPO)) and "site-packages" in package
    assert catalog_file.endswith("site-packages/hps_api/_data/cluster-config/host-types.toml")


# -- the installed commands, run from elsewhere ------------------------------------------------


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(installed: Installed, workdir: Path, **extra: str) -> Server:
    """`hps-api init` and `hps-api serve` from `workdir`, whose .env keeps the state there."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / ".env").write_text(
        f"HPS_CONFIG_DIR={workdir}/hps-config\nHPS_LOG_DIR={workdir}/log\n"
        f"HPS_RESOURCES_DIR={workdir}/resources\nHPS_DNSMASQ_PIDFILE={workdir}/dnsmasq.pid\n"
        f"HPS_DHCP_LEASES={workdir}/leases\nHPS_LOCK_TIMEOUT=2\n")
    env = clean_env(**extra)
    init = run([str(installed.bin / "hps-api"), "init"], cwd=workdir, env=env)
    assert init.returncode == 0, init.stderr
    url = f"http://127.0.0.1:{free_port()}"
    with (workdir / "serve.out").open("wb") as out:
        process = subprocess.Popen(
            [str(installed.bin / "hps-api"), "serve", "--bind", url[len("http://"):],
             "--workers", "1"], cwd=workdir, env=env, stdout=out, stderr=out,
            start_new_session=True)
    server = Server(process, url, workdir, env)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"hps-api serve exited: {(workdir / 'serve.out').read_text()}")
        try:
            if get(server, "/api/v1/health")[0] == 200:
                return server
        except OSError:
            time.sleep(0.1)
    stop(server)
    pytest.fail(f"no answer on {url}: {(workdir / 'serve.out').read_text()}")


def stop(server: Server) -> None:
    """Kill the server's process group (gunicorn master and worker) and reap the master."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


def get(server: Server, path: str, agent: str = CURL) -> tuple[int, str]:
    """Return the status and body text of a GET, as `agent` sends it."""
    request = urllib.request.Request(server.url + path, headers={"User-Agent": agent})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode()


def cli(installed: Installed, server: Server, *argv: str) -> str:
    """Run an installed console script in the server's directory; return its stdout."""
    result = run([str(installed.bin / argv[0]), *argv[1:]], cwd=server.workdir, env=server.env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def server(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The installed server, run from a directory that is neither the checkout nor the venv."""
    running = start(installed, tmp_path_factory.mktemp("elsewhere") / "run")
    try:
        yield running
    finally:
        stop(running)


@pytest.mark.slow
def test_the_installed_server_answers_boot_ipxe(server: Server) -> None:
    status, body = get(server, "/boot.ipxe", IPXE)
    assert status == 200 and body.startswith("#!ipxe\n")
    assert "cmd=init&mac=${net${idx}/mac:hexhyp}" in body


@pytest.mark.slow
def test_the_installed_server_serves_its_pages_and_stylesheet(server: Server) -> None:
    status, page = get(server, "/", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    assert status == 200 and "<html" in page
    assert get(server, "/ui/ui.css")[0] == 200


@pytest.mark.slow
def test_the_installed_server_gives_a_new_host_its_main_menu(server: Server) -> None:
    status, body = get(server, f"/cgi-bin/boot_manager.sh?cmd=init&mac={MAC}&arch=x86_64",
                       IPXE)
    assert status == 200 and body.startswith("#!ipxe\n")
    assert "item poll                Wait for instructions (poll hps-api)" in body


@pytest.mark.slow
def test_the_installed_server_serves_the_node_library(server: Server) -> None:
    status, body = get(server, "/cgi-bin/boot_manager.sh?cmd=get_remote_functions")
    assert status == 200
    assert body.startswith("# shellcheck shell=sh\n# hps-functions.sh")
    assert "@HPS_" not in body


@pytest.mark.slow
def test_the_installed_server_renders_the_kickstart_of_a_storage_host(
        installed: Installed, server: Server) -> None:
    mac = "52:54:00:aa:bb:0d"
    for key, value in (("DHCP_IP", "10.99.0.1"), ("NETWORK_CIDR", "10.99.0.0/24")):
        cli(installed, server, "cluster_config", "set", key, value)
    cli(installed, server, "hps-api", "os", "add", "x86_64:rocky:10", "--repo-path", "rocky10",
        "--kernel", "images/pxeboot/vmlinuz", "--initrd", "images/pxeboot/initrd.img",
        "--status", "prod", "--types", "SCH")
    cli(installed, server, "host_config", mac, "set", "STATE", "UNCONFIGURED")
    status, body = get(server, f"/cgi-bin/boot_manager.sh?cmd=config_host&mac={mac}"
                               "&hosttype=SCH")
    assert (status, body) == (200, f"{mac.replace(':', '')} configured as SCH\n")
    status, body = get(server, f"/cgi-bin/boot_manager.sh?cmd=kickstart&mac={mac}")
    assert status == 200, body
    assert "\nurl --url=http://10.99.0.1:80/distros/rocky10\n" in body
    assert "\n%post --log=/root/hps-post.log\n" in body
    assert cli(installed, server, "host_config", mac, "get", "STATE") == "INSTALLING\n"


@pytest.mark.slow
def test_a_site_dir_template_wins_over_the_shipped_one(
        installed: Installed, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "ipxe").mkdir(parents=True)
    shipped = (REPO / "ipxe" / "menu-main.ipxe").read_text()
    (site / "ipxe" / "menu-main.ipxe").write_text(
        shipped.replace(":menu\n", ":menu\necho Welcome to the site's own menu\n", 1))
    running = start(installed, tmp_path / "run", HPS_SITE_DIR=str(site))
    try:
        status, body = get(running, f"/cgi-bin/boot_manager.sh?cmd=init&mac={MAC}", IPXE)
        assert status == 200
        assert "echo Welcome to the site's own menu\n" in body
        assert get(running, "/boot.ipxe", IPXE)[1].startswith("#!ipxe\n")  # the shipped one
    finally:
        stop(running)


@pytest.mark.slow
def test_an_installed_command_refuses_a_site_dir_that_is_not_there(
        installed: Installed, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run([str(installed.bin / "hps-api"), "init"], cwd=tmp_path,
                 env=clean_env(HPS_SITE_DIR=str(missing), HPS_CONFIG_DIR=str(tmp_path / "c")))
    assert result.returncode == 2
    assert result.stderr == f"hps-api: HPS_SITE_DIR='{missing}': no such directory\n"


# -- the same lookups in this process (the checkout) --------------------------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HPS_SITE_DIR set to an empty tmp directory; every reader forgets what it read."""
    monkeypatch.setenv("HPS_SITE_DIR", str(tmp_path))
    forget_all()
    try:
        yield tmp_path
    finally:
        monkeypatch.undo()
        forget_all()


def forget_all() -> None:
    """Clear every cache that holds a data file or its place."""
    resources.forget()
    ipxe.environment.cache_clear()
    catalog.load_catalog.cache_clear()
    kickstart._environment.cache_clear()


def test_without_a_site_dir_the_checkout_files_are_found() -> None:
    assert resources.find("ipxe/menu-main.ipxe") == REPO / "ipxe" / "menu-main.ipxe"
    assert resources.find("templates/base.html") == REPO / "hps_api" / "templates" / "base.html"


def test_a_missing_data_file_is_an_error_naming_the_places_looked_in() -> None:
    with pytest.raises(FileNotFoundError, match=r"ipxe/nosuch\.ipxe not found \(looked in: "):
        resources.find("ipxe/nosuch.ipxe")


def test_site_host_types_replace_the_shipped_ones(site: Path) -> None:
    (site / "cluster-config").mkdir()
    (site / "cluster-config" / "host-types.toml").write_text(
        '[GPU]\ndescription = "GPU node"\ninstall = "disk"\nprofiles = ["DEFAULT"]\n')
    assert list(catalog.load_catalog()) == ["GPU"]


def test_a_site_installer_template_wins_and_the_others_stay(site: Path) -> None:
    (site / "cluster-config" / "installers").mkdir(parents=True)
    (site / "cluster-config" / "installers" / "sch.ks.j2").write_text("# site {{ hostname }}\n")
    assert kickstart.render_kickstart("SCH", {"hostname": "sch-001"}) == "# site sch-001\n"
    assert "%post" in kickstart.render_kickstart("DRH", kickstart_values())


def test_a_site_ipxe_template_wins_and_every_template_still_compiles(site: Path) -> None:
    (site / "ipxe").mkdir()
    (site / "ipxe" / "reply.ipxe").write_text("#!ipxe\necho site {{ text | text }}\n")
    assert ipxe.compile_all() == len(list((REPO / "ipxe").glob("*.ipxe")))
    assert ipxe.render("reply.ipxe", {"text": "OK"}) == "#!ipxe\necho site OK\n"


def test_a_bad_site_dir_fails_the_first_lookup_naming_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPS_SITE_DIR", str(tmp_path / "nowhere"))
    resources.forget()
    try:
        with pytest.raises(InvalidInput, match=r"^HPS_SITE_DIR=.*: no such directory$"):
            resources.find("ipxe/menu-main.ipxe")
    finally:
        monkeypatch.undo()
        resources.forget()


def kickstart_values() -> dict[str, str]:
    """Return template values good enough for any shipped installer template."""
    names = ("mac", "mac12", "type", "profile", "os_id", "hostname", "domain", "fqdn", "ip",
             "netmask", "gateway", "nameserver", "ips", "hps_port", "syslog_port", "repo_url",
             "api_url", "session", "root_password_hash", "os_disk")
    values = dict.fromkeys(names, "x")
    values.update(root_password_hash="", os_disk="", hps_port="80", syslog_port="514")
    return values
