"""Where each record lives under `HPS_CONFIG_DIR` (the file backend's map; see docs/storage.md)."""

from __future__ import annotations

import re
from pathlib import Path

from hps_api.ids import os_id_to_stem, validate_cluster
from hps_api.store.records import Kind, RecordId

HOST_FILE = re.compile(r"([0-9a-f]{12})\.conf")  # use with fullmatch


class Layout:
    """Paths of the store's files; building a path never touches the disk."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._clusters = str(self.clusters_dir)
        self._hps_conf = self.root / "hps.conf"

    @property
    def hps_conf(self) -> Path:
        return self._hps_conf

    @property
    def os_dir(self) -> Path:
        return self.root / "os"

    @property
    def clusters_dir(self) -> Path:
        return self.root / "clusters"

    @property
    def global_journal(self) -> Path:
        """The journal of changes to `hps.conf` and OS records, which belong to no cluster."""
        return self.root / "journal.log"

    def cluster_dir(self, cluster: str) -> Path:
        return self.clusters_dir / validate_cluster(cluster)

    def hosts_dir(self, cluster: str) -> Path:
        return self.cluster_dir(cluster) / "hosts"

    def services_dir(self, cluster: str) -> Path:
        return self.cluster_dir(cluster) / "services"

    def journal(self, cluster: str) -> Path:
        return self.cluster_dir(cluster) / "journal.log"

    def alloc_lock(self, cluster: str) -> Path:
        return self.cluster_dir(cluster) / ".alloc.lock"

    def path(self, rid: RecordId) -> Path:
        """Return the file of a record."""
        if rid.kind is Kind.GLOBAL:
            return self.hps_conf
        if rid.kind is Kind.OS:
            return self.os_dir / f"{os_id_to_stem(rid.name or '')}.conf"
        assert rid.cluster is not None
        # One Path built from a string: joining four Path parts costs more than the read.
        cluster = f"{self._clusters}/{validate_cluster(rid.cluster)}"
        if rid.kind is Kind.CLUSTER:
            return Path(f"{cluster}/cluster.conf")
        return Path(f"{cluster}/hosts/{rid.name}.conf")

    def journal_for(self, rid: RecordId) -> Path:
        """Return the journal a change to this record is written to."""
        if rid.cluster:
            return Path(f"{self._clusters}/{validate_cluster(rid.cluster)}/journal.log")
        return self.global_journal

    def parent_record(self, rid: RecordId) -> RecordId | None:
        """Return the record that must exist before this one can be created (hosts need their
        cluster), or None."""
        if rid.kind is Kind.HOST and rid.cluster:
            return RecordId.of_cluster(rid.cluster)
        return None
