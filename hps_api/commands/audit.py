"""`host_audit`: hardware facts a host reports about itself, and what changed since last time.

`data` is `name=value|name=value...`. iPXE builds it from `${manufacturer:uristring}` and the
like and then the whole parameter is URL-encoded again, so after the endpoint's decoding the
text is decoded up to twice more, while a `%XX` sequence remains and decoding changes it. A
value therefore cannot hold `|`. Values are trimmed (firmware pads its strings with spaces).

Facts become `HW_<NAME>` keys: names upper-cased, every run of other characters than letters and
digits turned into one `_`. With `prefix=nic` the names become `NIC_<NAME>` and the call is the
complete `NIC_*` group: a fact of that group it does not repeat is removed (a NIC or disk that
went away). Without a prefix the facts are added or updated and nothing is removed. HW_HASH is
the sha256 of every fact, sorted, as `NAME=value` lines.

A hardware change is a fact whose value changed or that disappeared, or a new fact in a prefixed
group that already had facts. Facts seen for the first time otherwise are not a change (a first
audit, or a client that reports more than before), though they change HW_HASH. On a change the
previous facts are kept beside the new ones as `HW_PREVIOUS_<NAME>` with HW_PREVIOUS_HASH,
HW_CHANGED_AT is set and a warning names the changed facts (values of sensitive keys are never
logged). Everything is one store update.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from hps_api.commands.base import CommandContext, IpxeAnswer, Reply
from hps_api.errors import InvalidInput
from hps_api.ids import is_sensitive, validate_value
from hps_api.observe import eventlog
from hps_api.ops import nodes as node_ops
from hps_api.store.journal import utc_now

MAX_FACTS = 64
MAX_STORED_FACTS = 256
MAX_DATA_BYTES = 64 * 1024
MAX_NAME = 64
EXTRA_DECODES = 2
BOOKKEEPING = frozenset({"HASH", "CHANGED_AT"})
PREVIOUS = "PREVIOUS_"

_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class Audit:
    """What one audit does: the key changes for one update, the new hash, the changed facts."""

    changes: dict[str, str | None]
    hash: str
    changed: list[str]


def host_audit(ctx: CommandContext) -> Reply:
    """Store the caller's hardware facts; answer `ok` (iPXE: a script that does nothing).

    Raises InvalidInput (bad or too much data, bad prefix, a fact whose HW_ key is sensitive:
    `HW_ROOT_PASSWORD` would be hidden from non-admins yet written by the host), NotFound
    (unknown host), Conflict
    (another audit of this host changed it meanwhile), StoreBusy.
    """
    prefix = fact_name(ctx.params["prefix"]) if ctx.params.get("prefix") else ""
    facts = parse_facts(decode_data(ctx.param("data")), prefix)
    refused = [f"HW_{name}" for name in facts
               if is_sensitive(f"HW_{name}", ctx.settings.sensitive_keys)]
    if refused:
        raise InvalidInput(f"fact {refused[0]} has a sensitive name: a host cannot set it")
    host = ctx.host_items()
    audit = plan_audit(host, facts, prefix, utc_now())
    node_ops.record_audit(ctx.store, ctx.host, audit.changes, host.get("HW_HASH"), ctx.actor)
    if audit.changed:
        eventlog.event(logging.WARNING, describe_change(host, audit, ctx.settings.sensitive_keys),
                       host=ctx.mac, session=ctx.session, client=ctx.negotiated.client.value)
    data = {"mac": ctx.mac, "facts": len(facts), "hash": audit.hash, "changed": audit.changed}
    answer = IpxeAnswer("audit-ok.ipxe", {"facts": len(facts), "changed": bool(audit.changed)})
    return Reply("ok", data, ipxe=answer)


def decode_data(text: str) -> str:
    """Return `data` decoded again while a `%XX` remains and decoding changes it (at most twice).

    Raises InvalidInput when it is too large or does not decode to UTF-8.
    """
    for _ in range(EXTRA_DECODES):
        if not _PERCENT.search(text):
            break
        try:
            decoded = unquote(text, errors="strict")
        except UnicodeDecodeError:
            raise InvalidInput("data does not decode to UTF-8 text") from None
        if decoded == text:
            break
        text = decoded
    if len(text.encode("utf-8")) > MAX_DATA_BYTES:
        raise InvalidInput(f"data larger than {MAX_DATA_BYTES} bytes")
    return text


def parse_facts(text: str, prefix: str = "") -> dict[str, str]:
    """Return the facts of `name=value|...` as {NAME: value}, names with the prefix applied.

    Empty pairs are skipped. Raises InvalidInput for a pair without `=`, a name that cannot be
    made a key or is one the audit keeps for itself (HASH, CHANGED_AT, PREVIOUS_*), a name
    given twice, a bad value, more than MAX_FACTS facts.
    """
    facts: dict[str, str] = {}
    for pair in text.split("|"):
        if not pair.strip():
            continue
        raw, eq, value = pair.partition("=")
        if not eq:
            raise InvalidInput(f"fact {eventlog.clean(pair)[:40]!r}: expected name=value")
        name = f"{prefix}_{fact_name(raw)}" if prefix else fact_name(raw)
        if len(name) > MAX_NAME:
            raise InvalidInput(f"fact name {name[:40]}... longer than {MAX_NAME} characters")
        if name in BOOKKEEPING or name.startswith(PREVIOUS):
            raise InvalidInput(f"fact name {name} is reserved")
        if name in facts:
            raise InvalidInput(f"fact {name} given twice")
        facts[name] = validate_value(value).strip()
        if len(facts) > MAX_FACTS:
            raise InvalidInput(f"more than {MAX_FACTS} facts in one audit")
    if not facts:
        raise InvalidInput("data holds no facts (expected name=value|name=value...)")
    return facts


def fact_name(raw: str) -> str:
    """Return a fact name (or prefix) as key syntax (`nic0.mac` -> `NIC0_MAC`); InvalidInput
    when no letter or digit is left or it is longer than MAX_NAME."""
    name = _NOT_ALNUM.sub("_", raw).strip("_").upper()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"fact name {eventlog.clean(raw)[:40]!r} cannot be made a key "
                           f"(letters and digits, at most {MAX_NAME})")
    return name


def facts_of(record: Mapping[str, str]) -> dict[str, str]:
    """Return the hardware facts of a host record ({NAME: value}, bookkeeping keys left out)."""
    facts = {}
    for key, value in record.items():
        name = key[3:]
        if key.startswith("HW_") and name not in BOOKKEEPING and not name.startswith(PREVIOUS):
            facts[name] = value
    return facts


def fact_hash(facts: Mapping[str, str]) -> str:
    """Return the sha256 (hex) of the facts as sorted `NAME=value` lines."""
    text = "\n".join(f"{name}={facts[name]}" for name in sorted(facts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan_audit(record: Mapping[str, str], facts: Mapping[str, str], prefix: str,
               now: str) -> Audit:
    """Return the changes one audit makes to a host record (see the module docstring).

    Raises InvalidInput when the host would hold more than MAX_STORED_FACTS facts.
    """
    old = facts_of(record)
    new = {name: value for name, value in old.items() if not in_group(name, prefix)} | dict(facts)
    if len(new) > MAX_STORED_FACTS:
        raise InvalidInput(f"a host holds at most {MAX_STORED_FACTS} hardware facts")
    digest = fact_hash(new)
    changes: dict[str, str | None] = {f"HW_{name}": value for name, value in new.items()}
    changes |= {f"HW_{name}": None for name in old if name not in new}
    changes["HW_HASH"] = digest
    changed = changed_facts(old, new, prefix)
    if changed:
        changes |= _previous(record, old, now)
    return Audit(changes, digest, changed)


def changed_facts(old: Mapping[str, str], new: Mapping[str, str], prefix: str) -> list[str]:
    """Return, sorted, the facts that changed or disappeared, and the facts new to the prefix's
    group when that group had facts before."""
    names = {name for name, value in old.items() if new.get(name) != value}
    if any(in_group(name, prefix) for name in old):
        names |= {name for name in new if in_group(name, prefix) and name not in old}
    return sorted(names)


def in_group(name: str, prefix: str) -> bool:
    """Return True when a fact belongs to the group of a prefix (never without one)."""
    return bool(prefix) and name.startswith(f"{prefix}_")


def describe_change(record: Mapping[str, str], audit: Audit, sensitive: tuple[str, ...]) -> str:
    """Return the warning line of a hardware change: each changed fact, with its old and new
    value unless the key is sensitive."""
    parts = []
    for name in audit.changed:
        key = f"HW_{name}"
        old, new = record.get(key), audit.changes.get(key)
        if is_sensitive(key, sensitive):
            parts.append(f"{key} changed")
        else:
            parts.append(f"{key} {_shown(old)} -> {_shown(new)}")
    return "hardware changed: " + ", ".join(parts)


def _previous(record: Mapping[str, str], old: Mapping[str, str], now: str) -> dict[str, str | None]:
    """Return the keys that keep the previous facts side by side with the new ones."""
    keep: dict[str, str | None] = {f"HW_{PREVIOUS}{name}": value for name, value in old.items()}
    stale = [key for key in record if key.startswith(f"HW_{PREVIOUS}") and key not in keep]
    keep |= dict.fromkeys(stale)
    keep["HW_PREVIOUS_HASH"] = record.get("HW_HASH") or fact_hash(old)
    keep["HW_CHANGED_AT"] = now
    return keep


def _shown(value: str | None) -> str:
    return "(none)" if value is None else repr(value)
