"""The IPS daemons' files, rendered from the store, and telling those daemons to reload.

`render_services(store, settings, cluster)` writes the cluster's `services/dnsmasq.conf`,
`services/dhcp-hosts` and `services/dns-hosts` (see `hps_api.services.dnsmasq`) and
`services/rsyslog.conf` (see `hps_api.services.rsyslog`; rsyslog reads it only at start),
`services/nginx.conf` and `services/front-end.env` (see `hps_api.services.nginx`), and copies
Debian's iPXE binaries into `HPS_RESOURCES_DIR/tftp`. `reload_dnsmasq(settings)` sends SIGHUP to
the dnsmasq whose pid is in `HPS_DNSMASQ_PIDFILE`, which makes it re-read `dhcp-hosts` and
`dns-hosts` (dnsmasq.conf itself is only read at start); `why_not_reloaded(settings)` does the
same and says why when it could not. Both run after every IP or HOSTNAME
change and from `hps-api render-services`.

A host record that gives no reservation (an IP outside the network, a malformed HOSTNAME, an IP
or HOSTNAME another host holds, a corrupt file) is left out of `dhcp-hosts` and `dns-hosts`, and
the files are written with every other host: one bad record never takes DHCP away from the
rest. The hosts left out come back in `Rendered.skipped` and are logged as warnings. A bad
cluster network is still an error: without it nothing can be rendered.

Renders are serialised by `services/.render.lock` and each reads the store inside that lock, so
the last render to write is also the last to read: two allocations finishing together can never
leave the files one change behind. Every file is replaced atomically (temporary file in the same
directory, fsync, `os.replace`): dnsmasq never reads half a file.
"""

from __future__ import annotations

import contextlib
import filecmp
import logging
import os
import signal
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from hps_api.errors import CorruptRecord, NotFound, StoreBusy, StoreUnreadable
from hps_api.model.network import ClusterNetwork
from hps_api.observe import eventlog
from hps_api.observe.timeline_logs import DNSMASQ as DNSMASQ_LOG
from hps_api.services import nginx
from hps_api.services.dnsmasq import (
    ConfPaths,
    Skipped,
    render_conf,
    render_dhcp_hosts,
    render_dns_hosts,
    reservations,
)
from hps_api.services.files import write_atomic
from hps_api.services.rsyslog import RSYSLOG_CONF, render_rsyslog
from hps_api.settings import Settings
from hps_api.store import Kind, RecordId, Store

DNSMASQ_CONF = "dnsmasq.conf"
DHCP_HOSTS = "dhcp-hosts"
DNS_HOSTS = "dns-hosts"
RENDER_LOCK = ".render.lock"
IPXE_DIR = Path("/usr/lib/ipxe")
# BIOS PXE, UEFI with iPXE's own drivers, UEFI through the firmware's network driver (SNP).
IPXE_BINARIES = ("undionly.kpxe", "ipxe.efi", "snponly.efi")

log = logging.getLogger("hps_api.services")

__all__ = ["IPXE_BINARIES", "Rendered", "Skipped", "reload_dnsmasq", "render_services",
           "tftp_root", "why_not_reloaded"]


class Rendered(list[Path]):
    """The files a render wrote, in order (a list, as callers iterate and count it), and
    `skipped`: the hosts left out of dnsmasq's files, each with the reason."""

    def __init__(self, written: Iterable[Path], skipped: Iterable[Skipped] = ()) -> None:
        super().__init__(written)
        self.skipped: tuple[Skipped, ...] = tuple(skipped)


def render_services(store: Store, settings: Settings, cluster: str, *,
                    ipxe_dir: Path = IPXE_DIR) -> Rendered:
    """Write the cluster's dnsmasq and rsyslog files and the iPXE binaries; return those written
    and the hosts left out of dnsmasq's files (each also logged as a warning).

    The service files are always rewritten, with every host whose record gives a reservation;
    an iPXE binary only when it is missing from the TFTP root or differs from `ipxe_dir`'s (one
    absent there is skipped: the caller can check `tftp_root`). Raises NotFound (cluster),
    InvalidInput naming the cluster's missing or bad key (nothing is written then), StoreBusy,
    CorruptRecord (the cluster record).
    """
    services = store.layout.services_dir(cluster)
    services.mkdir(parents=True, exist_ok=True)
    with _render_lock(services / RENDER_LOCK, settings.lock_timeout):
        files, skipped = _render(store, settings, cluster, services)
        written = [write_atomic(path, text.encode("ascii")) for path, text in files.items()]
    for host in skipped:
        eventlog.event(logging.WARNING, f"left out of dnsmasq's files of cluster {cluster}: "
                       f"{host.reason}", host=host.mac)
    return Rendered(written + _install_ipxe(tftp_root(settings), ipxe_dir), skipped)


def tftp_root(settings: Settings) -> Path:
    """Return the directory dnsmasq serves over TFTP: `HPS_RESOURCES_DIR/tftp`."""
    return settings.resources_dir / "tftp"


def reload_dnsmasq(settings: Settings) -> bool:
    """Send SIGHUP to the dnsmasq in HPS_DNSMASQ_PIDFILE; return False when there is none."""
    return why_not_reloaded(settings) is None


def why_not_reloaded(settings: Settings) -> str | None:
    """Send SIGHUP to the dnsmasq in HPS_DNSMASQ_PIDFILE; return None when it was sent, else
    why not (one line naming the pidfile).

    A pidfile naming a process that is not dnsmasq (stale file, recycled pid) is ignored:
    SIGHUP would kill most other programs. The process is held by a pidfd while it is checked,
    so the signal cannot reach a process that took the pid in between.
    """
    pidfile = settings.dnsmasq_pidfile
    try:
        text = pidfile.read_text(encoding="ascii", errors="replace")[:32].strip()
    except OSError as err:
        return f"no running dnsmasq in {pidfile} ({err.strerror or err})"
    if not text.isdigit() or int(text) <= 1:
        log.warning("%s holds no pid: %r", pidfile, text[:16])
        return f"{pidfile} holds no pid"
    try:
        pidfd = os.pidfd_open(int(text))
    except OSError:
        return f"no running dnsmasq in {pidfile} (pid {text} has exited)"
    try:
        if _comm(int(text)) != "dnsmasq":
            log.warning("%s: pid %s is not dnsmasq; not signalled", pidfile, text)
            return f"{pidfile}: pid {text} is not dnsmasq; not signalled"
        signal.pidfd_send_signal(pidfd, signal.SIGHUP)
    except ProcessLookupError:
        return f"no running dnsmasq in {pidfile} (pid {text} has exited)"
    except PermissionError:
        log.warning("not allowed to signal dnsmasq (pid %s from %s)", text, pidfile)
        return f"not allowed to signal dnsmasq (pid {text} from {pidfile})"
    finally:
        os.close(pidfd)
    return None


def _render(store: Store, settings: Settings, cluster: str,
            services: Path) -> tuple[dict[Path, str], list[Skipped]]:
    """Return the service files' paths and texts (dhcp-hosts first, dnsmasq.conf last) and
    the hosts left out of them."""
    cluster_items = store.items(RecordId.of_cluster(cluster))
    net = ClusterNetwork.of(cluster_items, cluster)
    hosts, unreadable = _hosts(store, cluster)
    entries, skipped = reservations(hosts, net)
    paths = ConfPaths(services / DHCP_HOSTS, services / DNS_HOSTS, tftp_root(settings),
                      settings.dhcp_leases, settings.dnsmasq_pidfile,
                      settings.log_dir / DNSMASQ_LOG)
    files = {paths.dhcp_hosts: render_dhcp_hosts(entries),
             paths.dns_hosts: render_dns_hosts(entries, net),
             services / RSYSLOG_CONF: render_rsyslog(settings, cluster_items),
             services / DNSMASQ_CONF: render_conf(net, paths, cluster),
             **_front_end(settings, cluster, services)}
    return files, sorted(unreadable + skipped, key=lambda host: host.mac)


def _hosts(store: Store, cluster: str,
           ) -> tuple[list[tuple[str, Mapping[str, str]]], list[Skipped]]:
    """Return the cluster's host records as (mac, items), and the hosts whose record cannot
    be read (corrupt, unreadable) with the reason."""
    hosts: list[tuple[str, Mapping[str, str]]] = []
    unreadable = []
    for rid in store.list_records(Kind.HOST, cluster):
        try:
            hosts.append((rid.name or "", store.items(rid)))
        except NotFound:  # deleted since it was listed
            continue
        except (CorruptRecord, StoreUnreadable) as err:
            unreadable.append(Skipped(rid.name or "", str(err)))
    return hosts, unreadable


def _front_end(settings: Settings, cluster: str, services: Path) -> dict[Path, str]:
    """Return nginx.conf and front-end.env; none while gunicorn itself binds the front port."""
    if nginx.shares_port(settings):
        log.warning("nginx.conf not written: HPS_BIND %s takes HPS_FRONT_BIND's port (%s); "
                    "bind hps-api to 127.0.0.1:8080 to put nginx in front", settings.bind,
                    settings.front_bind)
        return {}
    return {services / nginx.NGINX_CONF: nginx.render_nginx(settings, cluster,
                                                             user=nginx.worker_user()),
            services / nginx.FRONT_END_ENV: nginx.render_front_end_env(settings)}


def _install_ipxe(root: Path, source: Path) -> list[Path]:
    """Copy each iPXE binary present in `source` that is missing or different under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in IPXE_BINARIES:
        src, dst = source / name, root / name
        if not src.is_file():
            continue
        if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
            continue
        copied.append(write_atomic(dst, src.read_bytes()))
    return copied


@contextlib.contextmanager
def _render_lock(path: Path, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise StoreBusy(f"{path}: another render still running after {timeout:g} s") from None
    try:
        yield
    finally:
        lock.release()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""
