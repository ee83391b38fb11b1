"""`kickstart`: the installer config of the calling host, rendered from its type's template.

Anaconda fetches `cmd=kickstart` (the `inst.ks=` URL of the installer script). The answer is
`cluster-config/installers/<type>.ks.j2` rendered with the host, cluster and OS values; the
same text is kept beside the host record (`hosts/<mac12>.ks`) so the host can be provisioned
again with exactly this config, and the host moves to INSTALLING. The template's `%post`
reports INSTALLED through `set_status` (`%onerror`: INSTALL_FAILED).

Kickstart command lines are split like a shell line (pykickstart uses `shlex`), and `%pre` /
`%post` bodies are shell scripts. So every value is validated for what it is (an address, a
host name...) before it reaches a template, the `ks` filter refuses anything that is not one
plain token, and the `sh` filter quotes a value for the shell. Templates render with
StrictUndefined: a missing variable is a bug, not an empty string.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import shlex
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from hps_api.commands.base import CommandContext, Reply
from hps_api.errors import Conflict, InvalidInput, NotFound
from hps_api.ids import DOMAIN_PATTERN, HOSTNAME_PATTERN, colon_mac
from hps_api.model import resources
from hps_api.model.osreg import resolve_os
from hps_api.model.states import INSTALL_STATES, in_order
from hps_api.observe import eventlog
from hps_api.ops import nodes as node_ops
from hps_api.store import RecordId, Store

#: the shipped installer templates (a site's own `cluster-config/installers/` is searched first)
INSTALLERS_DIR = resources.shipped("cluster-config/installers")

_TYPE = re.compile(r"^[A-Z][A-Z0-9]{0,15}$")
_TOKEN = re.compile(r"^[A-Za-z0-9._:/@%+=,$-]+$")
_CRYPT = re.compile(r"^\$[A-Za-z0-9]{1,3}\$[A-Za-z0-9./$=,]{8,255}$")
_DISK = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9/_.:-]{0,127}$")
_SESSION = re.compile(r"^[A-Za-z0-9]{0,32}$")
_BASE_URL = re.compile(r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$")


def kickstart(ctx: CommandContext) -> Reply:
    """Render the caller's kickstart, keep it as `hosts/<mac12>.ks`, set STATE=INSTALLING.

    Raises NotFound (unknown host, no OS for its type), Conflict (state not in INSTALL_STATES,
    host not configured, no installer template for its type, a stored value unusable in a
    kickstart), and the store's errors.
    """
    host = ctx.host_items()
    state = host.get("STATE", "")
    if state not in INSTALL_STATES:
        raise Conflict(f"host {ctx.mac} is {state or 'without STATE'}: a kickstart is served only "
                       f"in {', '.join(in_order(INSTALL_STATES))}")
    cluster = ctx.store.items(RecordId.of_cluster(ctx.cluster))
    os_id, os_record = host_os(ctx.store, host, cluster)
    values = kickstart_values(ctx.mac, host, cluster, os_id, os_record, ctx.base_url)
    text = render_kickstart(values["type"], values)
    ctx.store.write_attachment(ctx.host, "ks", text, ctx.actor)
    node_ops.start_install(ctx.store, ctx.host, state, ctx.actor)
    eventlog.event(logging.INFO, f"kickstart served: {values['type']} {os_id}, state {state} -> "
                   "INSTALLING", host=ctx.mac, session=ctx.session,
                   client=ctx.negotiated.client.value)
    data = {"mac": ctx.mac, "type": values["type"], "os_id": os_id, "kickstart": text}
    return Reply(text, data, raw=True, title=f"Kickstart of {values['hostname']}")


def host_os(store: Store, host: Mapping[str, str],
            cluster: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """Return (OS id, OS record) of a host: its OS_ID, else what the cluster's rules resolve.

    Raises Conflict (no TYPE), NotFound (OS_ID without a record, no OS for the type) and what
    `resolve_os` raises.
    """
    kind = _host_type(host)
    if host.get("OS_ID"):
        rid = RecordId.of_os(host["OS_ID"])
        try:
            return rid.name or "", store.items(rid)
        except NotFound:
            raise NotFound(f"the host's OS_ID {rid.name} has no OS record") from None
    found = resolve_os(store, cluster, kind, host.get("ARCH", ""))
    if found is None:
        raise NotFound(f"no OS for {kind}: set the cluster key OS_{kind} or add a prod OS record "
                       f"whose HPS_TYPES lists {kind} (hps-api os add)")
    return found


def kickstart_values(mac: str, host: Mapping[str, str], cluster: Mapping[str, str], os_id: str,
                     os_record: Mapping[str, str], base_url: str) -> dict[str, str]:
    """Return the template variables, each validated for its kind; Conflict names a bad one."""
    ips = _ip(cluster, "DHCP_IP", "cluster key")
    domain = _matching(DOMAIN_PATTERN, cluster.get("DNS_DOMAIN", "cluster.local").lower(),
                       "DNS_DOMAIN")
    hostname = _matching(HOSTNAME_PATTERN, _required(host, "HOSTNAME", "host key").lower(),
                         "HOSTNAME")
    port = _port(cluster, "HPS_PORT", "80")
    repo = _matching(_TOKEN, _required(os_record, "REPO_PATH", f"OS {os_id}:"), "REPO_PATH")
    return {
        "mac": colon_mac(mac), "mac12": mac, "type": _host_type(host),
        "profile": host.get("PROFILE", "DEFAULT"), "os_id": os_id,
        "hostname": hostname, "domain": domain, "fqdn": f"{hostname}.{domain}",
        "ip": _ip(host, "IP", "host key"), "netmask": _netmask(host, cluster),
        "gateway": ips, "nameserver": ips, "ips": ips, "hps_port": port,
        "syslog_port": _port(cluster, "SYSLOG_PORT", "514"),
        "repo_url": f"http://{ips}:{port}/distros/{repo}",
        "api_url": _matching(_BASE_URL, base_url, "the API URL"),
        "session": _matching(_SESSION, host.get("BOOT_SESSION", ""), "BOOT_SESSION"),
        "root_password_hash": _optional(_CRYPT, cluster.get("ROOT_PASSWORD_HASH", ""),
                                        "ROOT_PASSWORD_HASH", secret=True),
        "os_disk": _optional(_DISK, host.get("OS_DISK") or cluster.get("OS_DISK", ""),
                             "OS_DISK"),
    }


def render_kickstart(host_type: str, values: Mapping[str, str]) -> str:
    """Return `installers/<type>.ks.j2` rendered; Conflict when the type is not a type name or
    has no template."""
    name = f"{_matching(_TYPE, host_type.upper(), 'TYPE').lower()}.ks.j2"
    if not any((directory / name).is_file() for directory in _installer_dirs()):
        raise Conflict(f"no installer template for {host_type} "
                       f"(cluster-config/installers/{name}); diskless types boot from the network")
    return _environment().get_template(name).render(**values)


def ks_token(value: object) -> str:
    """Return a value that is one plain kickstart token; InvalidInput when it is not."""
    text = str(value)
    if not _TOKEN.fullmatch(text):
        raise InvalidInput(f"value not safe for a kickstart line: {text[:40]!r}")
    return text


def sh_word(value: object) -> str:
    """Return a value quoted as one shell word; InvalidInput when it holds a control character."""
    text = str(value)
    if not text.isprintable():
        raise InvalidInput(f"value not safe for a shell script: {text[:40]!r}")
    return shlex.quote(text)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Kickstarts are not HTML: values are checked by the `ks` and `sh` filters, not escaped.
    env = Environment(
        loader=FileSystemLoader([str(directory) for directory in _installer_dirs()]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701
    )
    env.filters["ks"] = ks_token
    env.filters["sh"] = sh_word
    return env


def _installer_dirs() -> tuple[Path, ...]:
    return resources.search_path("cluster-config/installers")


def _host_type(host: Mapping[str, str]) -> str:
    kind = host.get("TYPE", "").strip().upper()
    if not kind:
        raise Conflict("the host has no TYPE: configure it first (install menu or config_host)")
    return _matching(_TYPE, kind, "TYPE")


def _required(record: Mapping[str, str], key: str, kind: str) -> str:
    value = record.get(key, "")
    if not value:
        raise Conflict(f"{kind} {key} is not set")
    return value


def _matching(pattern: re.Pattern[str], value: str, what: str, *, secret: bool = False) -> str:
    if not pattern.fullmatch(value):
        shown = "" if secret else f" {value[:60]!r}"  # error texts reach logs and non-admins
        raise Conflict(f"{what}{shown} cannot be used in a kickstart")
    return value


def _optional(pattern: re.Pattern[str], value: str, what: str, *, secret: bool = False) -> str:
    return _matching(pattern, value, what, secret=secret) if value else ""


def _ip(record: Mapping[str, str], key: str, kind: str) -> str:
    value = _required(record, key, kind)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise Conflict(f"{kind} {key} is not an IPv4 address: {value[:40]!r}") from None


def _port(cluster: Mapping[str, str], key: str, default: str) -> str:
    value = cluster.get(key) or default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise Conflict(f"cluster key {key} is not a port number: {value[:20]!r}")
    return str(int(value))


def _netmask(host: Mapping[str, str], cluster: Mapping[str, str]) -> str:
    """Return the host's NETMASK, else the mask of the cluster's NETWORK_CIDR."""
    try:
        if host.get("NETMASK"):
            return str(ipaddress.IPv4Network(f"0.0.0.0/{host['NETMASK']}").netmask)
        return str(ipaddress.IPv4Network(cluster.get("NETWORK_CIDR", ""), strict=False).netmask)
    except ValueError:
        raise Conflict("no usable netmask: set the host's NETMASK or the cluster's "
                       "NETWORK_CIDR") from None
