#!/usr/bin/env python3
"""The journal at scale: a host page and `host_config MAC history` over a 1 M-line journal.

    .venv/bin/python scripts/bench/journal.py --before DIR [--after DIR] [--lines N]
                                              [--hosts H] [--rounds R]

DIR is a checkout of hps-api (e.g. `git worktree add /tmp/before <commit>`); --after defaults to
this one. The parent writes one journal of N lines as a cluster of H hosts accumulates them in
the format every version reads (two lines per boot, BOOT_SESSION and BOOT_TIME, and an
operator's change every 1,000 lines), and each side, in a process whose PYTHONPATH is its
checkout, seeds its own store around a copy of it and times, R times each (median CPU time of
the thread, user and system, so that a busy machine does not count):

- `page`: GET /hosts/<mac> through the app (`create_app` over `load_settings`, from loopback),
  the page that shows the host's history and boot sessions;
- `history`: `Store.history` of the host, which the page and the CLI call;
- `cli`: `host_config MAC history` in the side's process (the CLI without the interpreter's
  start, which `cli start` gives: `host_config MAC history` as a subprocess, wall time, the
  one figure here that other load on the machine inflates).

The after side is then timed again over the journal the same boots make when this version writes
them (one line per boot, through `hps_api.store.journal`, rotated by HPS_JOURNAL_MAX_MIB and
HPS_JOURNAL_ROTATIONS, default 64 MiB and 3), with `history(limit=50)` besides: the part of
the files the host page's two lists need. Printed: a markdown table. Nothing asserts a time
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "default"
#: the host the page and the CLI are asked about: one of many, its operator change early on
PROBE = 7

#: the code each side runs, in a process whose PYTHONPATH is its checkout
SIDE = r'''
import contextlib, io, json, os, statistics, subprocess, sys, time
from pathlib import Path
from werkzeug.test import EnvironBuilder

work, hosts, rounds, mode = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
source, probe = Path(sys.argv[5]), sys.argv[6]
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise
store = FileStore(work / "config")
initialise(store, "default", "bench")
for n in range(hosts):
    store.update(RecordId.of_host("default", f"52540a{n:06x}"), {
        "STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": f"sch-{n + 1:05d}"}, "bench",
        create=True)
journal = store.layout.journal("default")
if mode == "same":  # the journal the parent wrote, byte for byte
    journal.unlink()
    os.link(source, journal)
else:  # the same boots and changes, written as this version writes them
    from hps_api.store import journal as jmod
    from hps_api.settings import load_settings
    settings = load_settings(dotenv=False)
    journal.unlink()
    batch = []
    for line in source.open(encoding="utf-8"):
        f = json.loads(line)
        if f["key"] == "BOOT_TIME":
            batch[-1] = jmod.Change(**{**vars(batch[-1]), "facts": {"BOOT_TIME": f["new"]}})
            continue
        if len(batch) >= 1000:  # appended as the store appends, rotated as it rotates
            with jmod.appender(journal, settings.journal_max_mib * 1024 * 1024,
                               settings.journal_rotations) as write:
                write(batch)
            batch = []
        batch.append(jmod.Change(f["time"], f["record"], f["key"], f["old"], f["new"], f["actor"]))
    jmod.append(journal, batch)
files = [p for p in journal.parent.iterdir() if p.name.startswith("journal.log")]
rid = RecordId.of_host("default", probe)
from hps_api import create_app
from hps_api.settings import load_settings
app = create_app(load_settings(dotenv=False))
environ = EnvironBuilder(path=f"/hosts/{probe}", headers={"User-Agent": "Mozilla/5.0"},
                         environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()

def page():
    status = []
    body = b"".join(app(dict(environ), lambda s, h, e=None: status.append(s)))
    if not status[0].startswith("200") or b"<h2>History</h2>" not in body:
        raise SystemExit(f"{status[0]}: {body[:300]!r}")

def cli():
    from hps_api.cli.config import host_config
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # the CLI writes bytes
    with contextlib.redirect_stdout(out):
        assert host_config([probe, "history"]) == 0

def timed(call):
    call()  # warm: the page cache, the templates, the imports
    spent = []
    for _ in range(rounds):
        start = time.thread_time()  # CPU, user and system: the machine may be busy otherwise
        call()
        spent.append((time.thread_time() - start) * 1000)
    return statistics.median(spent)

found = {"lines": sum(1 for p in files for _ in p.open("rb")),
         "bytes": sum(p.stat().st_size for p in files), "files": len(files),
         "history entries": len(store.history(rid)),
         "page": timed(page), "history": timed(lambda: store.history(rid)), "cli": timed(cli)}
try:
    found["history limit=50"] = timed(lambda: store.history(rid, limit=50))
except TypeError:
    pass
start = time.perf_counter()
for _ in range(rounds):
    subprocess.run([str(Path(sys.executable).parent / "host_config"), probe, "history"],
                   check=True, capture_output=True, env={**os.environ})
found["cli start"] = (time.perf_counter() - start) * 1000 / rounds
print(json.dumps(found))
'''


def write_journal(path: Path, lines: int, hosts: int) -> None:
    """Write `lines` journal lines as a cluster of `hosts` accumulates them: boots (two lines
    each) of random hosts, and an operator's change every 1,000 lines."""
    rng = random.Random(18)
    sessions = [f"{n:06x}" for n in range(hosts)]
    written, epoch, out = 0, 1_735_689_600, []
    with path.open("w", encoding="utf-8") as handle:
        while written < lines:
            epoch += 7
            when = f"2025-01-{1 + (epoch // 86400) % 28:02d}T00:00:{epoch % 60:02d}Z"
            host = PROBE if written % 50_000 == 0 else rng.randrange(hosts)
            record = f"host/52540a{host:06x}"
            if written % 1000 == 0:
                out.append({"time": when, "record": record, "key": "NOTE", "old": None,
                            "new": f"change {written}", "actor": "cli:root"})
            session = f"{rng.getrandbits(24):06x}"
            out.append({"time": when, "record": record, "key": "BOOT_SESSION",
                        "old": sessions[host], "new": session, "actor": "ipxe:10.99.0.5"})
            out.append({"time": when, "record": record, "key": "BOOT_TIME",
                        "old": str(epoch - 7), "new": str(epoch), "actor": "ipxe:10.99.0.5"})
            sessions[host] = session
            written += len(out)
            handle.write("".join(json.dumps(line) + "\n" for line in out))
            out = []


def side(checkout: Path, work: Path, args: argparse.Namespace, source: Path,
         mode: str) -> dict[str, float]:
    """Run one side; return what it measured."""
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    env.update({"PYTHONPATH": str(checkout), "HPS_CONFIG_DIR": str(work / "config"),
                "HPS_LOG_DIR": str(work / "log"), "HPS_RESOURCES_DIR": str(work / "resources"),
                "HPS_ARP_TABLE": str(work / "arp"), "HPS_DHCP_LEASES": str(work / "leases"),
                "HPS_METRICS": "off"})
    done = subprocess.run([sys.executable, "-c", SIDE, str(work), str(args.hosts),
                           str(args.rounds), mode, str(source), f"52540a{PROBE:06x}"],
                          env=env, cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="hps-journal-") as tmp:
        source = Path(tmp) / "journal.log"
        write_journal(source, args.lines, args.hosts)
        results = {"before": side(args.before, Path(tmp) / "before", args, source, "same"),
                   "after": side(args.after, Path(tmp) / "after", args, source, "same"),
                   "after, its own journal": side(args.after, Path(tmp) / "own", args, source,
                                                  "own")}
        shutil.rmtree(Path(tmp) / "before", ignore_errors=True)
    names = list(results)
    keys = ["lines", "bytes", "files", "history entries", "page", "history",
            "history limit=50", "cli", "cli start"]
    table = [f"before: {args.before}", f"after:  {args.after}",
             f"{args.lines} lines written, {args.hosts} hosts, median of {args.rounds} rounds "
             "(ms of CPU; `cli start`: ms, wall)", "", "| | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for key in keys:
        cells = [results[name].get(key) for name in names]
        shown = ["—" if c is None else f"{c:,.0f}" if key in ("lines", "bytes", "files",
                 "history entries") else f"{c:.1f}" for c in cells]
        table.append(f"| {key} | " + " | ".join(shown) + " |")
    return "\n".join(table)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare to")
    parser.add_argument("--after", type=Path, default=REPO, help="default: this checkout")
    parser.add_argument("--lines", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument("--hosts", type=int, default=1000, help="default 1,000")
    parser.add_argument("--rounds", type=int, default=5, help="default 5")
    args = parser.parse_args(argv)
    for name in ("before", "after"):
        path = getattr(args, name).resolve()
        if not (path / "hps_api" / "__init__.py").is_file():
            parser.error(f"--{name} {path}: not a checkout of hps-api")
        setattr(args, name, path)
    if args.lines < 1000 or args.hosts <= PROBE or args.rounds < 1:
        parser.error(f"--lines at least 1000, --hosts more than {PROBE}, --rounds at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    print(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
