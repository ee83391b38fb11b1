"""Record addresses: which record an operation is about, independent of the backend."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hps_api.ids import normalize_mac, normalize_os_id, validate_cluster


class Kind(Enum):
    """The four kinds of record the store holds."""

    GLOBAL = "hps"
    CLUSTER = "cluster"
    HOST = "host"
    OS = "os"


@dataclass(frozen=True)
class RecordId:
    """The address of one record; build it with the constructors, which validate every part."""

    kind: Kind
    cluster: str | None = None
    name: str | None = None

    @classmethod
    def global_(cls) -> RecordId:
        """Return the id of `hps.conf`, the IPS-wide settings."""
        return cls(Kind.GLOBAL)

    @classmethod
    def of_cluster(cls, cluster: str) -> RecordId:
        """Return the id of a cluster's `cluster.conf`."""
        return cls(Kind.CLUSTER, validate_cluster(cluster))

    @classmethod
    def of_host(cls, cluster: str, mac: str) -> RecordId:
        """Return the id of a host record (any common MAC spelling)."""
        return cls(Kind.HOST, validate_cluster(cluster), normalize_mac(mac))

    @classmethod
    def of_os(cls, os_id: str) -> RecordId:
        """Return the id of an OS record (`x86_64:rocky:10`)."""
        return cls(Kind.OS, None, normalize_os_id(os_id))

    @property
    def label(self) -> str:
        """Return the short name the journal and messages use (`host/525400aabb01`)."""
        if self.kind is Kind.HOST:
            return f"host/{self.name}"
        if self.kind is Kind.OS:
            return f"os/{self.name}"
        if self.kind is Kind.CLUSTER:
            return f"cluster/{self.cluster}"
        return "hps"

    @property
    def stamped(self) -> bool:
        """Return True for records that carry an `UPDATED` stamp (hosts and clusters)."""
        return self.kind in (Kind.HOST, Kind.CLUSTER)
