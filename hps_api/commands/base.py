"""What a legacy command gets (CommandContext) and gives back (Reply)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hps_api.errors import Forbidden, InvalidInput, NotFound
from hps_api.ids import is_sensitive
from hps_api.net.identity import Caller
from hps_api.render.negotiate import Negotiated
from hps_api.settings import Settings
from hps_api.store import RecordId, Store


@dataclass(frozen=True)
class IpxeAnswer:
    """An iPXE template and its context, rendered for iPXE clients."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """A command's answer, before rendering.

    `text` is the legacy body (a newline is added unless `raw`); `data` the JSON payload
    (defaults to `text`); `ipxe` what an iPXE client gets (default: the text as `hps_reply`).
    `binary` (with `content_type`) is sent as it is to every client: archives are not
    negotiated.
    """

    text: str
    data: Any = None
    ipxe: IpxeAnswer | None = None
    raw: bool = False
    title: str = ""
    binary: bytes | None = None
    content_type: str = ""


@dataclass(frozen=True)
class CommandContext:
    """Everything a command may use: parameters, caller, store, settings, active cluster."""

    name: str
    params: Mapping[str, str]
    caller: Caller
    store: Store
    settings: Settings
    cluster: str
    negotiated: Negotiated
    base_url: str

    def param(self, name: str) -> str:
        """Return a required parameter; InvalidInput `Param '<name>' is required` if absent."""
        value = self.params.get(name)
        if value is None or value == "":
            raise InvalidInput(f"Param '{name}' is required")
        return value

    @property
    def mac(self) -> str:
        """Return the caller's MAC; InvalidInput when nothing identifies the caller."""
        if not self.caller.mac:
            raise InvalidInput("Param 'mac' is required")
        return self.caller.mac

    @property
    def host(self) -> RecordId:
        """Return the caller's host record id in the active cluster."""
        return RecordId.of_host(self.cluster, self.mac)

    def host_items(self) -> dict[str, str]:
        """Return the caller's host record; NotFound when the host is not registered."""
        try:
            return self.store.items(self.host)
        except NotFound:
            raise NotFound(f"Host {self.mac} not found") from None

    def readable(self, key: str) -> None:
        """Raise Forbidden when a non-admin asks for a sensitive key."""
        if not self.caller.admin and is_sensitive(key, self.settings.sensitive_keys):
            raise Forbidden(f"Key '{key}' is sensitive: admin only")

    def visible(self, items: Mapping[str, str]) -> dict[str, str]:
        """Return the items this caller may see (sensitive keys dropped for non-admins)."""
        if self.caller.admin:
            return dict(items)
        return {k: v for k, v in items.items()
                if not is_sensitive(k, self.settings.sensitive_keys)}

    def require_admin(self, action: str) -> None:
        """Raise Forbidden unless the caller is an admin."""
        if not self.caller.admin:
            raise Forbidden(f"{action} is admin only")

    @property
    def actor(self) -> str:
        """Return the journal actor: `admin:<ip>` or `api:<mac>` (see Caller.actor)."""
        return self.caller.actor

    @property
    def session(self) -> str | None:
        """Return the boot session the request names, if any."""
        return self.params.get("session") or None
