"""The state table's named groups (hps_api.model.states): "which states install" answered once."""

from __future__ import annotations

import pytest

from hps_api.model.states import (
    BOOT_STATES,
    INSTALL_STATES,
    KNOWN_STATES,
    LEGACY_DISK_BOOT,
    MENU_STATES,
    PROVISION_STATES,
    STATES,
    in_order,
)


def test_every_known_state_is_in_exactly_one_boot_behaviour() -> None:
    behaviours = [MENU_STATES, PROVISION_STATES, {"INSTALLING"}, {"NETWORK_BOOT"}, BOOT_STATES]
    for state in KNOWN_STATES:
        assert sum(state in group for group in behaviours) == 1, state
    assert set().union(*behaviours) == KNOWN_STATES


@pytest.mark.parametrize(("group", "members"), [
    (MENU_STATES, ("UNCONFIGURED", "INSTALL_FAILED", "FAILED")),
    (PROVISION_STATES, ("CONFIGURED", "REINSTALL")),
    (INSTALL_STATES, ("CONFIGURED", "INSTALLING", "REINSTALL")),
    (BOOT_STATES, ("INSTALLED", "UNMANAGED", "DISK_BOOT")),
])
def test_the_groups_hold_these_states_listed_in_table_order(
        group: frozenset[str], members: tuple[str, ...]) -> None:
    assert in_order(group) == members


def test_the_bash_era_disk_boot_is_known_but_never_a_state_to_set() -> None:
    assert LEGACY_DISK_BOOT in KNOWN_STATES and LEGACY_DISK_BOOT not in STATES
