"""Discovery documents: `GET /` (versions, what clients need to find v2.0) and `GET /v2.0/` (resources)."""
from fastapi import APIRouter, Request

from neutrino.api.controller import json_response
from neutrino.identity.discovery import version

COLLECTIONS = ("networks", "subnets", "subnetpools", "address-scopes", "ports", "routers", "floatingips",
               "security-groups", "security-group-rules", "rbac-policies", "network-ip-availabilities", "quotas",
               "agents", "extensions")

SINGULAR = {"rbac-policies": "rbac_policy", "network-ip-availabilities": "network_ip_availability"}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def on_identity_port(request: Request) -> bool:
    settings = request.app.state.settings
    server = request.scope.get("server") or (None, None)
    return settings.auth == "keystone" and settings.identity_port != settings.port and \
        server[1] == settings.identity_port


async def versions(request: Request):
    """The Networking API's versions; on the identity port, Keystone's version discovery (300 Multiple Choices),
    so an auth_url without /v3 (DevStack's clouds.yaml) finds v3."""
    if on_identity_port(request):
        v3 = version(request)["version"]
        return json_response({"versions": {"values": [v3]}}, 300)
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                        "links": [{"href": f"{_base(request)}/v2.0/", "rel": "self"}]}]})


async def v2(request: Request):
    base = _base(request)
    resources = [{"name": SINGULAR.get(c, c.rstrip("s").replace("-", "_")), "collection": c,
                  "links": [{"href": f"{base}/v2.0/{c}", "rel": "self"}]} for c in COLLECTIONS]
    version = {"id": "v2.0", "status": "CURRENT", "links": [{"href": f"{base}/v2.0/", "rel": "self"}]}
    return json_response({"resources": resources, "version": version})


async def health(_request: Request):
    return json_response({"status": "ok"})


def add_routes(router: APIRouter) -> None:
    router.add_api_route("/", versions, methods=["GET"])
    router.add_api_route("/v2.0", v2, methods=["GET"])
    router.add_api_route("/v2.0/", v2, methods=["GET"])
    router.add_api_route("/healthz", health, methods=["GET"])
