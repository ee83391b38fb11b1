"""Commands booted nodes use: the node library, syslog proof, self-test reports, storage IPs."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from hps_api.commands.base import CommandContext, Reply
from hps_api.errors import InvalidInput
from hps_api.ids import normalize_key
from hps_api.model import resources
from hps_api.observe import eventlog
from hps_api.ops import nodes as node_ops

#: the served files, as hps_api.model.resources names them
NODE_LIBS = {"sh": "node_lib/sh/hps-functions.sh",
             "python": "node_lib/python/hps_node.py",
             "bootstrap": "node_lib/sh/hps-bootstrap.sh",
             "storage": "node_lib/sh/hps-storage.sh"}
SYSLOG_TAIL_BYTES = 1024 * 1024
MAX_SELFTESTS = 32
_KEY_TEXT = re.compile(r"^[A-Za-z0-9._:-]{4,128}$")
#: what old nodes send as `distro=`: <cpu>-<mfr>-<os id>-<os version>, e.g. x86_64-linux-rocky-10.0
_DISTRO = re.compile(r"^[A-Za-z0-9._+-]{1,64}$")


@lru_cache(maxsize=4)
def node_library(flavour: str = "sh") -> tuple[str, str]:
    """Return a node library's source and its version (first 12 hex of its sha256)."""
    source = resources.find(NODE_LIBS[flavour]).read_text(encoding="utf-8")
    return source, hashlib.sha256(source.encode()).hexdigest()[:12]


def remote_functions(ctx: CommandContext) -> Reply:
    """Return the node library with this IPS's URL and the library version filled in: the sh
    library for any distro string (`distro=python`: the Python client, `distro=storage`: the
    storage host's library, sourced after the sh library); for
    `node_get_bootstrap_functions` the bootstrap followed by the sh library.

    Raises InvalidInput when `distro=` is not a distro string.
    """
    distro = ctx.params.get("distro", "")
    if distro and not _DISTRO.match(distro):
        raise InvalidInput("distro must be 1-64 letters, digits and ._+- "
                           "(<cpu>-linux-<os>-<version>, or python)")
    if ctx.name == "node_get_bootstrap_functions":
        flavours = ["bootstrap", "sh"]
    else:
        flavours = [distro.lower() if distro.lower() in ("python", "storage") else "sh"]
    filled = [_filled(flavour, ctx.base_url) for flavour in flavours]
    script = "\n".join(text for text, _ in filled)
    version = filled[0][1]
    return Reply(script, {"version": version, "source": script}, raw=True,
                 title="node bootstrap" if len(filled) > 1 else "node library")


def _filled(flavour: str, base_url: str) -> tuple[str, str]:
    """Return a node library's source with the IPS URL and its version filled in, and the
    version."""
    source, version = node_library(flavour)
    text = source.replace("@HPS_API_URL@", base_url).replace("@HPS_NODE_LIB_VERSION@", version)
    return text, version


def syslog_check(ctx: CommandContext) -> Reply:
    """Answer `yes` when a syslog line containing `key` arrived from the caller's address."""
    key = ctx.param("key")
    if not _KEY_TEXT.match(key):
        raise InvalidInput("key must be 4-128 characters of letters, digits and ._:-")
    found = _syslog_has(ctx.settings.log_dir / "nodes.log", ctx.caller.ip, key)
    return Reply("yes" if found else "no", {"key": key, "arrived": found})


def selftest_report(ctx: CommandContext) -> Reply:
    """Store `name=pass|name=fail:reason|...` as SELFTEST_* keys with a summary; answer `ok`."""
    results = _parse_results(ctx.param("results"))
    ctx.host_items()
    verdict = "pass" if all(v == "pass" for v in results.values()) else "fail"
    node_ops.record_selftest(ctx.store, ctx.host, results, verdict,
                             datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), ctx.actor)
    failed = [k.removeprefix("SELFTEST_").lower() for k, v in results.items() if v != "pass"]
    eventlog.event(logging.WARNING if failed else logging.INFO,
                   f"self-test {verdict}" + (f": {', '.join(failed)}" if failed else ""),
                   host=ctx.mac, session=ctx.session, client=ctx.negotiated.client.value)
    return Reply("ok", {"result": verdict, "tests": results})


def host_allocate_networks(ctx: CommandContext) -> Reply:
    """Allocate (or return) the caller's address on storage network `index`; answer
    `<vlan>:<ip>:<netmask>:<gateway>:<mtu>`."""
    index = _index(ctx.param("index"))
    ctx.host_items()
    net, ip = node_ops.storage_address(ctx.store, ctx.host, index, ctx.actor)
    netmask = str(net.network.netmask)
    line = f"{net.vlan}:{ip}:{netmask}:{net.gateway}:{net.mtu}"
    return Reply(line, {"index": index, "vlan": net.vlan, "ip": ip, "netmask": netmask,
                        "gateway": str(net.gateway), "mtu": net.mtu})


def _syslog_has(path: Path, ip: str, key: str) -> bool:
    """Return True when the last MiB of the node log has a line from `ip` containing `key`."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - SYSLOG_TAIL_BYTES))
            tail = handle.read()
    except FileNotFoundError:
        return False
    needle, source = key.encode(), ip.encode()
    for line in tail.splitlines():
        fields = line.split(b" ", 2)
        if len(fields) >= 2 and fields[1] == source and needle in line:
            return True
    return False


def _parse_results(text: str) -> dict[str, str]:
    results: dict[str, str] = {}
    for part in filter(None, text.split("|")):
        name, sep, outcome = part.partition("=")
        if not sep:
            raise InvalidInput(f"self-test result {part[:40]!r} is not name=pass|fail:reason")
        key = "SELFTEST_" + normalize_key(name.strip())
        if outcome != "pass" and not outcome.startswith("fail"):
            raise InvalidInput(f"self-test {name!r}: outcome must be pass or fail:<reason>")
        results[key] = outcome
    if not results or len(results) > MAX_SELFTESTS:
        raise InvalidInput(f"results must name 1 to {MAX_SELFTESTS} self-tests")
    return results


def _index(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) < 16:
        raise InvalidInput(f"index must be a storage network number, not {text!r}")
    return int(text)
