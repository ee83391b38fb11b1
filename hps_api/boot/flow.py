"""Assembling a boot decision from the store, and applying what it changes.

`decide` is pure; this module does the reading and writing around it, so `init`, the menu
items and the explain endpoint all reach the same answer the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from werkzeug.security import safe_join

from hps_api.boot.decide import Blocker, BootInputs, Decision, cannot_go_on, decide, no_os_message
from hps_api.errors import HpsError, InvalidInput, NotFound, StoreBusy
from hps_api.model.catalog import load_catalog
from hps_api.render import ipxe
from hps_api.store import RecordId, Store
from hps_api.store.journal import utc_now

_ARCH = re.compile(r"^[a-z0-9_]{1,16}$")
#: facts iPXE reports at init (docs/boot.md, "The chain", step 3), stored when a host registers
REGISTRATION_FACTS = {"platform": "PLATFORM", "uuid": "SMBIOS_UUID", "serial": "SERIAL",
                      "manufacturer": "MANUFACTURER", "product": "PRODUCT"}


def session_id(name: str, epoch: int) -> str:
    """Return a boot session id: the first 6 hex digits of sha256("<name>:<epoch>")."""
    return hashlib.sha256(f"{name}:{epoch}".encode()).hexdigest()[:6]


def host_or_none(store: Store, rid: RecordId) -> dict[str, str] | None:
    """Return the host record, or None when the host is not registered."""
    try:
        return store.items(rid)
    except NotFound:
        return None


def inputs_for(
    store: Store, cluster: str, mac: str, host: Mapping[str, str] | None, *,
    base_url: str, session: str, arch: str | None = None, resources_dir: Path | None = None,
) -> BootInputs:
    """Return the BootInputs of a host (None: not registered yet), reading cluster and OS; with
    `resources_dir` (HPS_RESOURCES_DIR), also which of its OS's files are missing there."""
    cluster_items = store.items(RecordId.of_cluster(cluster))
    record = dict(host or {})
    host_arch = record.get("ARCH") or arch or "x86_64"
    os_id, os_record, problem = _os_of(store, cluster_items, record, host_arch)
    missing = () if os_record is None or resources_dir is None else \
        missing_os_files(os_record, resources_dir)
    return BootInputs(mac=mac, host=record, cluster=cluster_items, types=load_catalog(),
                      os_id=os_id, os=os_record, base_url=base_url, session=session,
                      now=utc_now(), arch=host_arch, registered=host is not None,
                      os_problem=problem, missing_files=missing)


def decision_for(store: Store, cluster: str, mac: str, host: Mapping[str, str] | None, *,
                 base_url: str, session: str, arch: str | None = None,
                 resources_dir: Path | None = None) -> Decision:
    """Return the decision `init` would take now for this host (no writes); with
    `resources_dir`, an OS whose files are missing there blocks the install, as at `init`."""
    return answer(inputs_for(store, cluster, mac, host, base_url=base_url, session=session,
                             arch=arch, resources_dir=resources_dir))[0]


def missing_os_files(os_record: Mapping[str, str], resources_dir: Path) -> tuple[str, ...]:
    """Return the files an OS record points at (REPO_PATH/KERNEL, REPO_PATH/INITRD) that
    `/distros/` would not serve from `resources_dir`, as the paths the host would ask for.

    One `stat` each: a path that is not a regular file, or that leaves the tree (`..`, an
    absolute name), is missing. A symlink pointing outside the tree passes here and is still
    refused by `/distros/` (hps_api.web.static); resolving it would cost a `stat` per part.
    """
    root = os.path.join(resources_dir, "distros")  # per init: a Path costs more than the stat
    repo = os_record.get("REPO_PATH", "").strip("/")
    missing = []
    for key, default in (("KERNEL", "vmlinuz"), ("INITRD", "initrd.img")):
        relative = f"{repo}/{os_record.get(key, default)}"  # as `decide` builds its URL
        if not _is_served(root, relative):
            missing.append(f"/distros/{relative}")
    return tuple(missing)


def _is_served(root: str, relative: str) -> bool:
    # without `..` or a leading `/`, safe_join's normalising changes nothing the kernel would
    # not resolve alike: the join it returns is the plain one
    plain = not relative.startswith("/") and ".." not in relative.split("/")
    path = f"{root}/{relative}" if plain else safe_join(root, relative)
    try:
        return path is not None and stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def answer(inputs: BootInputs) -> tuple[Decision, str]:
    """Return the boot decision and its iPXE script.

    A decision whose script cannot be built (a record value iPXE would expand, such as `${`
    in an OS record's REPO_PATH) falls back to the main menu saying why, so the host does not
    retry the same refusal forever.
    """
    decision = decide(inputs)
    try:
        return decision, script_of(decision)
    except InvalidInput as err:
        blocked = Blocker(f"the {decision.action} script cannot be built: {err}",
                          "INSTALL_FAILED")
        fallback = cannot_go_on(inputs, blocked)
        return fallback, script_of(fallback)


def boot_stamps(host: Mapping[str, str] | None, mac: str, params: Mapping[str, str],
                epoch: int | None = None) -> tuple[str, dict[str, str]]:
    """Return the boot session id and the keys `init` writes: at a boot, a new session (and, for
    a new host, the registration facts); at a poll of a menu of the current boot (`session=`
    names the host's BOOT_SESSION: the menus' poll chains carry it), the same session and
    LAST_SEEN alone, so a host waiting at its menu for a day is one boot, not one per poll.
    A caller that names no session (the bootstrap, a firmware reboot, an old menu) starts a
    new one."""
    current = (host or {}).get("BOOT_SESSION")
    if host is not None and current and params.get("session") == current:
        return current, {"LAST_SEEN": utc_now()}  # a menu's poll: the same boot goes on
    epoch = int(time.time()) if epoch is None else epoch
    name = (host or {}).get("HOSTNAME") or mac
    session = session_id(name, epoch)
    stamps = {"BOOT_SESSION": session, "BOOT_TIME": str(epoch), "LAST_SEEN": utc_now()}
    if host is None:
        stamps.update({"STATE": "UNCONFIGURED", "FIRST_SEEN": stamps["LAST_SEEN"],
                       "ARCH": parse_arch(params.get("arch"))})
        stamps.update({key: params[name] for name, key in REGISTRATION_FACTS.items()
                       if params.get(name)})
    return session, stamps


def parse_arch(text: str | None) -> str:
    """Return the architecture iPXE reported (`${buildarch}`), x86_64 when absent."""
    arch = (text or "x86_64").strip().lower()
    if not _ARCH.match(arch):
        raise InvalidInput(f"invalid arch {text!r}")
    return arch


def script_of(decision: Decision) -> str:
    """Return the iPXE script of a decision."""
    return ipxe.render(decision.template, dict(decision.context))


def explain(decision: Decision, script: str | None = None) -> dict[str, object]:
    """Return a decision as data: action, template, reason, changes and the script (rendered
    here unless the caller already has it)."""
    return {"action": decision.action, "template": decision.template,
            "reason": decision.reason, "changes": dict(decision.changes),
            "script": script_of(decision) if script is None else script}


def resolve_for(store: Store, cluster: Mapping[str, str], host_type: str,
                arch: str) -> tuple[str | None, dict[str, str] | None, str]:
    """Return (OS id, OS record, "") for a host type and arch, or (None, None, why not).

    Raises StoreBusy (worth retrying); every other problem is the reason returned.
    """
    from hps_api.model.osreg import resolve_os

    try:
        found = resolve_os(store, cluster, host_type, arch)
    except StoreBusy:
        raise
    except HpsError as err:
        return None, None, str(err)
    if not found:
        return None, None, no_os_message(host_type.upper(), arch)
    return found[0], found[1], ""


def _os_of(store: Store, cluster: Mapping[str, str], host: Mapping[str, str],
           arch: str) -> tuple[str | None, dict[str, str] | None, str]:
    """Return the host's OS: its OS_ID if set and present, else what resolves for its type;
    with the reason when there is none."""
    if host.get("OS_ID"):
        try:
            rid = RecordId.of_os(host["OS_ID"])
            return rid.name, store.items(rid), ""
        except InvalidInput:
            return host["OS_ID"], None, f"OS_ID {host['OS_ID']!r} is not an OS id"
        except NotFound:
            return host["OS_ID"], None, (f"OS {host['OS_ID']} (this host's OS_ID) has no "
                                         "record: add it with 'hps-api os add' or choose "
                                         "the type again in the install menu")
        except StoreBusy:
            raise
        except HpsError as err:
            return host["OS_ID"], None, str(err)
    if not host.get("TYPE"):
        return None, None, ""
    return resolve_for(store, cluster, host["TYPE"], arch)

