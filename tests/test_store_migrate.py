"""`hps-api store migrate`: file -> etcd -> file gives back the same store, run as the console
script an operator runs (docs/scale-out.md, "Moving a store").
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from etcd_cluster import (  # noqa: F401 (fixtures)
    EtcdCluster,
    random_prefix,
    running_cluster_fixture,
    shared_cluster_fixture,
)

from hps_api.errors import NotFound
from hps_api.store import FileStore, Kind, RecordId, Store
from hps_api.store.bootstrap import initialise
from hps_api.store.etcdstore import EtcdStore
from hps_api.store.migrate import every_record

BIN = Path(sys.executable).parent
ACTOR = "cli:tester"
HOSTS = [RecordId.of_host("default", f"52:54:00:00:00:{n:02x}") for n in range(1, 6)]


def migrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    environment["HPS_CONFIG_DIR"] = str(cwd / "local")
    return subprocess.run([str(BIN / "hps-api"), "store", "migrate", *args], capture_output=True,
                          text=True, env=environment, timeout=120, cwd=cwd)


def etcd_store(cluster: EtcdCluster, prefix: str, root: Path) -> EtcdStore:
    return cluster.store(prefix, root)


def contents(store: Store) -> dict[str, object]:
    """Every record, attachment and journal of a store, comparable across backends."""
    found: dict[str, object] = {}
    for rid in every_record(store):
        found[rid.label] = store.items(rid)
        found[rid.label + " history"] = store.history(rid)
        if rid.kind is Kind.HOST:
            with contextlib.suppress(NotFound):
                found[rid.label + ".ks"] = store.read_attachment(rid, "ks")
    clusters = [rid.cluster for rid in store.list_records(Kind.CLUSTER)]
    for scope in [None, *clusters]:
        found[f"journal {scope}"] = store.journal_lines(scope).lines
    return found


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A file store with a cluster, hosts (stamped, one with a kickstart), an OS record, a
    comment and a journal."""
    root = tmp_path / "source"
    store = FileStore(root)
    initialise(store, "default", ACTOR)
    initialise(store, "second", ACTOR)
    store.update(RecordId.of_os("x86_64:rocky:10"), {"NAME": "rocky"}, ACTOR, create=True)
    for n, rid in enumerate(HOSTS):
        store.update(rid, {"STATE": "UNCONFIGURED", "ROOT_PASSWORD": "s3cret"}, ACTOR,
                     create=True)
        store.stamp(rid, {"BOOT_SESSION": f"s{n}", "BOOT_TIME": str(n)}, ACTOR)
        store.update(rid, {"STATE": "INSTALLING", "NOTE": "a=b $(x) \u00e9"}, ACTOR)
    store.stamp(HOSTS[0], {"BOOT_SESSION": "late", "LAST_SEEN": "9"}, ACTOR)
    store.write_attachment(HOSTS[1], "ks", "kickstart \u00e9\n", ACTOR)
    conf = root / "hps.conf"
    conf.write_text("# a comment an operator wrote\n" + conf.read_text())
    return root


@pytest.mark.slow
def test_file_to_etcd_to_file_gives_back_the_same_store(source, etcd, tmp_path):
    prefix = random_prefix()
    there = migrate("--from", f"file://{source}", "--to", etcd.url(prefix), cwd=tmp_path)
    assert there.returncode == 0, there.stderr
    lines = there.stdout.splitlines()
    assert "copied host/525400000001" in lines
    assert lines[-1].startswith("migrated 9 record(s), 1 attachment(s) and ")
    assert lines[-1].endswith("every record verified")

    back = tmp_path / "back"
    again = migrate("--from", etcd.url(prefix), "--to", f"file://{back}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1].split(" from ")[0] == lines[-1].split(" from ")[0]

    original = contents(FileStore(source))
    assert contents(etcd_store(etcd, prefix, tmp_path)) == original
    assert contents(FileStore(back)) == original
    assert (back / "hps.conf").read_text() == (source / "hps.conf").read_text()


@pytest.mark.slow
def test_a_target_that_holds_something_needs_force(source, etcd, tmp_path):
    prefix = random_prefix()
    target = etcd_store(etcd, prefix, tmp_path)
    target.update(RecordId.global_(), {"ACTIVE_CLUSTER": "other"}, ACTOR, create=True)
    target.update(RecordId.of_cluster("other"), {"N": "1"}, ACTOR, create=True)
    before = contents(target)

    refused = migrate("--from", f"file://{source}", "--to", etcd.url(prefix), cwd=tmp_path)
    assert refused.returncode == 2
    assert "the target is not empty: pass --force" in refused.stderr
    assert refused.stdout == ""
    assert contents(target) == before

    forced = migrate("--from", f"file://{source}", "--to", etcd.url(prefix), "--force",
                     cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert contents(target) == contents(FileStore(source))
    assert not target.exists(RecordId.of_cluster("other"))


def test_a_file_target_that_holds_something_needs_force_too(source, tmp_path):
    target = tmp_path / "target"
    initialise(FileStore(target), "other", ACTOR)
    refused = migrate("--from", f"file://{source}", "--to", f"file://{target}", cwd=tmp_path)
    assert refused.returncode == 2
    assert FileStore(target).list_records(Kind.CLUSTER) == [RecordId.of_cluster("other")]
    forced = migrate("--from", f"file://{source}", "--to", f"file://{target}", "--force",
                     cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert contents(FileStore(target)) == contents(FileStore(source))


@pytest.mark.parametrize("args, says", [
    (["--from", "ftp://x/y", "--to", "file:///tmp/t"], "expected file:///DIR or etcd://"),
    (["--from", "file://relative/dir", "--to", "file:///tmp/t"], "file:///ABSOLUTE/DIR"),
    (["--from", "{source}", "--to", "etcd://127.0.0.1/hps"], "expected HOST:PORT"),
    (["--from", "{source}", "--to", "etcd://127.0.0.1:2379"], "needs a key prefix"),
    (["--from", "{source}", "--to", "{source}/"], "the same store"),
    (["--from", "file://{empty}", "--to", "file://{target}"], "the source holds no record"),
    (["--from", "{source}"], "required: --to"),
    (["--to", "{source}"], "required: --from"),
])
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(source, tmp_path, args,
                                                                   says):
    names = {"source": f"file://{source}", "empty": str(tmp_path / "empty"),
             "target": str(tmp_path / "target")}
    before = contents(FileStore(source))
    done = migrate(*(arg.format(**names) for arg in args), cwd=tmp_path)
    assert done.returncode == 2
    assert says in done.stderr
    assert done.stderr.startswith("hps-api: ") and done.stderr.count("\n") == 1
    assert done.stdout == ""
    assert not (tmp_path / "target").exists() and not (tmp_path / "empty").exists()
    assert not Path("/tmp/t").exists()
    assert contents(FileStore(source)) == before
