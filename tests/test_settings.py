"""Settings: every HPS_* variable read once, with defaults, validated at start-up."""

from __future__ import annotations

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
