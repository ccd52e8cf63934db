"""What clients read to find their way: the v3 version document, and the read-only services, endpoints and regions
(all built from settings, like the token catalog)."""
from __future__ import annotations

from fastapi import Request

from neutrino.identity.catalog import endpoint_list, service_list
from neutrino.identity.http import Json, caller, collection, link, settings


def version(request: Request) -> Json:
    return {"version": {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                        "links": [{"rel": "self", "href": link(request, "")}],
                        "media-types": [{"base": "application/json",
                                         "type": "application/vnd.openstack.identity-v3+json"}]}}


def services(request: Request) -> Json:
    caller(request)
    return collection(request, "services", service_list(settings(request)))


def endpoints(request: Request) -> Json:
    caller(request)
    return collection(request, "endpoints", endpoint_list(settings(request)))


def regions(request: Request) -> Json:
    caller(request)
    region = settings(request).region
    return collection(request, "regions", [{"id": region, "description": "", "parent_region_id": None,
                                            "links": {"self": link(request, f"regions/{region}")}}])

