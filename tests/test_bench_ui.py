"""The UI benchmark (scripts/bench/ui.py) runs: its seeded store reads back as varied hosts, every
page it measures answers 200, and its report has a row per size and page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))
import ui as bench

from hps_api.ops.host_index import HostIndex
from hps_api.store import FileStore


def test_the_seeded_hosts_are_varied_and_read_back(tmp_path: Path) -> None:
    bench.seed(tmp_path / "hps-config", 60)
    records = HostIndex().read(FileStore(tmp_path / "hps-config"), "default").records
    assert len(records) == 60
    assert {r.get("TYPE", "") for r in records.values()} == {"SCH", "TCH", "CCH", ""}
    assert {r["STATE"] for r in records.values()} >= {"INSTALLED", "FAILED", "UNCONFIGURED"}


def test_every_measured_page_answers_and_the_report_has_a_row_each(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.setattr(bench, "SETTLE", 0)
    args = argparse.Namespace(hosts=[30], runs=2, http=False, workers=1)
    report = bench.run(args, lambda text: None)
    rows = [line for line in report.splitlines() if line.startswith("| 30 |")]
    assert [row.split("|")[2].strip() for row in rows] == [f"`{page}`" for page in bench.PAGES]
