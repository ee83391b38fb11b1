"""Settings: every HPS_* variable read once, with defaults, validated at start-up."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hps_api.errors import InvalidInput
from hps_api.settings import Settings, env_name, load_settings


def test_defaults_apply_when_nothing_is_set() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.config_dir == Path("/srv/hps-config")
    assert settings.lock_timeout == 5.0
    assert "*PASSWORD*" in settings.sensitive_keys


def test_variables_override_defaults() -> None:
    settings = load_settings({
        "HPS_CONFIG_DIR": "/tmp/x", "HPS_LOCK_TIMEOUT": "0.25", "HPS_WORKERS": "3",
        "HPS_SENSITIVE_KEYS": "*SECRET*, *PIN", "HPS_TRUSTED_PROXIES": "10.0.0.1,10.0.0.2",
        "HPS_ADMIN_TOKEN": "tok",
    })
    assert settings.config_dir == Path("/tmp/x")
    assert settings.lock_timeout == 0.25
    assert settings.workers == 3
    assert settings.sensitive_keys == ("*SECRET*", "*PIN")
    assert settings.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert settings.admin_token == "tok"


@pytest.mark.parametrize(("name", "value"), [
    ("HPS_LOCK_TIMEOUT", "abc"), ("HPS_LOCK_TIMEOUT", "0"), ("HPS_LOCK_TIMEOUT", "-1"),
    ("HPS_LOCK_TIMEOUT", "1e9"), ("HPS_WORKERS", "many"), ("HPS_WORKERS", "-2"),
    ("HPS_WORKERS", "100000"),
])
def test_a_bad_value_fails_at_start_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(InvalidInput, match=name):
        load_settings({name: value})


def test_an_empty_variable_means_the_default() -> None:
    assert load_settings({"HPS_LOCK_TIMEOUT": ""}).lock_timeout == 5.0


def test_every_field_has_an_hps_variable() -> None:
    assert env_name("config_dir") == "HPS_CONFIG_DIR"
    assert env_name("dhcp_leases") == "HPS_DHCP_LEASES"


def test_the_site_dir_is_unset_by_default_and_absolute_when_set(tmp_path: Path) -> None:
    assert load_settings({}).site_dir is None
    assert load_settings({"HPS_SITE_DIR": str(tmp_path)}).site_dir == tmp_path


@pytest.mark.parametrize(("make", "reason"), [
    (lambda tmp: tmp / "missing", "no such directory"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "not a directory"),
])
def test_a_site_dir_that_is_not_a_directory_fails_at_start_naming_the_variable(
        tmp_path: Path, make, reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InvalidInput, match=rf"^HPS_SITE_DIR='{re.escape(str(path))}': {reason}$"):
        load_settings({"HPS_SITE_DIR": str(path)})


# -- scripts/serve's .env: the settings every command run from the checkout reads ----------------

SERVE = Path(__file__).resolve().parents[1] / "scripts" / "serve"
SERVE_KEYS = ("HPS_CONFIG_DIR", "HPS_LOG_DIR", "HPS_RESOURCES_DIR", "HPS_DHCP_LEASES",
              "HPS_DNSMASQ_PIDFILE", "HPS_BIND")


def write_env(checkout: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `scripts/serve --write-env-only` from a copy of it in `checkout`, without HPS_*."""
    (checkout / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy2(SERVE, checkout / "scripts" / "serve")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    return subprocess.run([str(checkout / "scripts" / "serve"), "--write-env-only"],
                          env={**clean, **env}, cwd="/", capture_output=True, text=True,
                          timeout=30, check=True)


def test_serve_writes_a_dot_env_keeping_everything_under_var_with_absolute_paths(
        tmp_path: Path) -> None:
    write_env(tmp_path)
    lines = (tmp_path / ".env").read_text().splitlines()
    assert [line.split("=", 1)[0] for line in lines] == list(SERVE_KEYS)
    settings = load_settings(dict(line.split("=", 1) for line in lines))
    var = tmp_path / "var"
    assert settings.config_dir == var / "hps-config"
    assert settings.log_dir == var / "log"
    assert settings.resources_dir == var / "resources"
    assert settings.dhcp_leases.parent == settings.dnsmasq_pidfile.parent == var / "run"
    assert settings.bind == "127.0.0.1:8080"


def test_serve_merges_an_existing_dot_env_keeping_the_operators_lines(tmp_path: Path) -> None:
    mine = ("# mine\nexport HPS_BIND=0.0.0.0:80\nHPS_CONFIG_DIR = /srv/hps-config\n"
            "HPS_ADMIN_TOKEN=secret")  # no newline at the end
    (tmp_path / ".env").write_text(mine)
    result = write_env(tmp_path)
    text = (tmp_path / ".env").read_text()
    assert text.startswith(mine + "\n")
    added = text[len(mine) + 1:].splitlines()
    assert [line.split("=", 1)[0] for line in added] == [
        "HPS_LOG_DIR", "HPS_RESOURCES_DIR", "HPS_DHCP_LEASES", "HPS_DNSMASQ_PIDFILE"]
    assert f"added HPS_LOG_DIR={tmp_path}/var/log" in result.stdout
    write_env(tmp_path)
    assert (tmp_path / ".env").read_text() == text  # nothing missing: nothing added


def test_serve_writes_a_value_given_in_the_environment_made_absolute(tmp_path: Path) -> None:
    write_env(tmp_path, HPS_LOG_DIR="logs", HPS_BIND="127.0.0.1:9999")
    values = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines())
    assert values["HPS_LOG_DIR"] == f"{tmp_path}/logs"
    assert values["HPS_BIND"] == "127.0.0.1:9999"


def test_every_command_run_from_the_checkout_reads_the_dot_env(tmp_path: Path) -> None:
    write_env(tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    script = ("from hps_api.settings import load_settings\n"
              "s = load_settings()\nprint(s.config_dir, s.log_dir, s.resources_dir)")
    result = subprocess.run([sys.executable, "-c", script], env=clean, cwd=tmp_path,
                            capture_output=True, text=True, timeout=30, check=True)
    var = tmp_path / "var"
    assert result.stdout.split() == [str(var / "hps-config"), str(var / "log"),
                                     str(var / "resources")]
