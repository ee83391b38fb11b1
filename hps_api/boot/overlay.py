"""The Alpine boot overlay (`apkovl`) of a diskless host: its /etc, as a tar.gz made here.

Alpine's initramfs unpacks the overlay over the root before init runs, so the host comes up
with its hostname, static address, package list and a start script that tells hps-api it is
up. The archive is deterministic (fixed mtimes and owners): the same record gives the same
bytes, which makes it testable and cacheable.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping

PACKAGES = {
    "DEFAULT": ["alpine-base", "openssh", "chrony", "curl"],
    "KVM": ["alpine-base", "openssh", "chrony", "curl", "qemu-system-x86_64", "libvirt-daemon"],
    "DOCKER": ["alpine-base", "openssh", "chrony", "curl", "docker"],
    "BUILD": ["alpine-base", "openssh", "chrony", "curl", "build-base", "git"],
}
_EPOCH = 0


def overlay_files(mac: str, host: Mapping[str, str], cluster: Mapping[str, str], base_url: str,
                  session: str, repo_url: str) -> dict[str, tuple[str, int]]:
    """Return the overlay's files: path -> (text, mode)."""
    hostname = host.get("HOSTNAME", "node")
    domain = cluster.get("DNS_DOMAIN", "cluster.local")
    gateway = cluster.get("GATEWAY", cluster.get("DHCP_IP", ""))
    packages = PACKAGES.get(host.get("PROFILE", "DEFAULT"), PACKAGES["DEFAULT"])
    start = (
        "#!/bin/sh\n"
        "# Written by hps-api: tell the IPS this diskless boot is up.\n"
        f"api='{base_url}'\n"
        f"mac='{mac}'\n"
        "wget -q -O /dev/null --post-data \"cmd=set_status&status=NETWORK_BOOT&mac=$mac\" "
        "\"$api/cgi-bin/boot_manager.sh\" || "
        "logger -t hps 'could not report NETWORK_BOOT to the IPS'\n"
    )
    return {
        "etc/hostname": (f"{hostname}\n", 0o644),
        "etc/hosts": (f"127.0.0.1 localhost\n{host.get('IP', '127.0.1.1')} "
                      f"{hostname}.{domain} {hostname}\n", 0o644),
        "etc/network/interfaces": (
            "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n"
            f"    address {host.get('IP', '')}\n    netmask {host.get('NETMASK', '')}\n"
            f"    gateway {gateway}\n", 0o644),
        "etc/resolv.conf": (f"search {domain}\nnameserver {cluster.get('DHCP_IP', '')}\n",
                            0o644),
        "etc/apk/repositories": (f"{repo_url}/apks\n", 0o644),
        "etc/apk/world": ("".join(p + "\n" for p in packages), 0o644),
        "etc/hps/api": (base_url + "\n", 0o644),
        "etc/hps/session": (session + "\n", 0o644),
        "etc/local.d/hps.start": (start, 0o755),
    }


def build_apkovl(files: Mapping[str, tuple[str, int]]) -> bytes:
    """Return the tar.gz bytes of the overlay, with the runlevel links Alpine needs."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for directory in sorted({p.rsplit("/", 1)[0] for p in files} | {
                "etc", "etc/runlevels", "etc/runlevels/default"}):
            tar.addfile(_entry(directory, tarfile.DIRTYPE, 0o755))
        for path, (text, mode) in sorted(files.items()):
            data = text.encode("utf-8")
            info = _entry(path, tarfile.REGTYPE, mode)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = _entry("etc/runlevels/default/local", tarfile.SYMTYPE, 0o777)
        link.linkname = "/etc/init.d/local"
        tar.addfile(link)
    return gzip.compress(raw.getvalue(), mtime=_EPOCH)


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = _EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info
