"""`/boot.ipxe`: the static bootstrap DHCP hands to iPXE (docs/boot.md, "The chain", step 3)."""

from __future__ import annotations

from flask import Blueprint, Response, g

from hps_api.render import ipxe
from hps_api.render.negotiate import Client, Negotiated
from hps_api.web.respond import MIME, base_url

bp = Blueprint("bootstrap", __name__)


@bp.get("/boot.ipxe")
def boot_ipxe() -> Response:
    """Return the script that tries each NIC and chains `init` with the identity parameters."""
    g.negotiated = Negotiated(Client.IPXE, "ipxe")
    script = ipxe.render("bootstrap.ipxe", {"base_url": base_url()})
    return Response(script, 200, content_type=MIME["ipxe"])
