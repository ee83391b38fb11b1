"""The request-path shortcuts the server benchmark led to give the answers the long way gives,
and the benchmark's own report reads as documented (docs/performance.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder

from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise
from hps_api.web.caller import environ_looks_like_browser, looks_like_browser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))
import server as bench
from http_bench import Result

HEADERS = [{}, {"User-Agent": "iPXE/1.21.1"}, {"User-Agent": "Mozilla/5.0"},
           {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Mode": ""}, {"Origin": "null"},
           {"Referer": "http://x/"}, {"Sec-Fetch-User": "?1", "User-Agent": "curl/8"}]


@pytest.mark.parametrize("headers", HEADERS)
def test_browser_marks_read_from_the_environ_match_the_headers(headers: dict[str, str]) -> None:
    environ = EnvironBuilder(headers=headers).get_environ()
    assert environ_looks_like_browser(environ) == looks_like_browser(Headers(headers))


def test_remembered_record_paths_are_the_layouts(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    initialise(store, "lab", "test")
    rids = [RecordId.global_(), RecordId.of_cluster("lab"),
            RecordId.of_host("lab", "52:54:00:00:00:01")]
    for rid in rids + rids:
        assert store._path_of(rid) == store.layout.path(rid)


def test_the_table_takes_ratios_against_the_faster_ceiling() -> None:
    rows = [("gthread", Result(2000, 1.0, 1, 2, 0)), ("sync", Result(2500, 1.0, 1, 2, 0)),
            ("init", Result(1250, 1.0, 1, 2, 0, 1.0))]
    lines = bench.table(rows).splitlines()
    assert lines[2].endswith("| 0.80 |")
    assert lines[3].endswith("| 1.00 |")
    assert lines[4].endswith("| 800 | 0.50 |")


def test_every_boot_mix_checks_its_answers() -> None:
    mixes = bench.build_mixes([bench.host_mac(0)], fronted=True)
    assert [m.server for m in mixes[:2]] == ["ceiling", "sync"]
    boot = [m for m in mixes if "iPXE" in m.name]
    assert len(boot) == 4
    assert all(m.agent == bench.IPXE_AGENT and m.expect for m in boot)


def test_the_checkout_ab_compares_two_checkouts_request_by_request() -> None:
    import checkout_ab

    repo = Path(__file__).resolve().parents[1]
    table = checkout_ab.run(checkout_ab.parse_args(["--before", str(repo), "--rounds", "2",
                                                    "--requests", "20", "--hosts", "5"]))
    rows = [line for line in table.splitlines() if line.startswith("| init ")
            or line.startswith("| determine_state ")]
    assert len(rows) == 2
    for row in rows:
        before, after = (float(cell) for cell in row.split("|")[2:4])
        assert before > 0 and after > 0


def test_the_checkout_ab_refuses_a_folder_that_is_no_checkout(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              ) -> None:
    import checkout_ab

    with pytest.raises(SystemExit) as stop:
        checkout_ab.parse_args(["--before", str(tmp_path)])
    assert stop.value.code == 2
    assert "not a checkout of hps-api" in capsys.readouterr().err
