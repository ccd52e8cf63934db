"""The service catalog put in scoped tokens, built from Settings (no catalog tables: the services are ours).

Clients pick the `public` endpoint of a service type; with a region configured they also need `region`/`region_id`
(see reference/openstack-clients.md §2). The network URL is published without `/v2.0` on purpose."""
from __future__ import annotations

import uuid

from neutrino.config import Settings

INTERFACES = ("public", "internal", "admin")
_NS = uuid.UUID("5b0a1d3e-7c55-4c71-9a43-6e2f1f0b9d10")


def _id(*parts: str) -> str:
    """Stable ids, so the catalog looks the same on every token and every server."""
    return uuid.uuid5(_NS, "/".join(parts)).hex


def services(settings: Settings) -> list[tuple[str, str, str]]:
    """(type, name, url) of each service we publish."""
    return [("network", "neutron", settings.network_url()), ("identity", "keystone", settings.identity_url())]


def catalog(settings: Settings) -> list[dict]:
    return [{"id": _id(kind), "type": kind, "name": name,
             "endpoints": [endpoint(settings, kind, url, interface) for interface in INTERFACES]}
            for kind, name, url in services(settings)]


def endpoint(settings: Settings, kind: str, url: str, interface: str) -> dict:
    return {"id": _id(kind, interface), "interface": interface, "region": settings.region,
            "region_id": settings.region, "url": url}


def endpoint_list(settings: Settings) -> list[dict]:
    """Endpoints as `GET /v3/endpoints` shows them (with service_id and enabled)."""
    return [{**endpoint(settings, kind, url, interface), "service_id": _id(kind), "enabled": True}
            for kind, _name, url in services(settings) for interface in INTERFACES]


def service_list(settings: Settings) -> list[dict]:
    return [{"id": _id(kind), "type": kind, "name": name, "enabled": True, "description": ""}
            for kind, name, _url in services(settings)]
