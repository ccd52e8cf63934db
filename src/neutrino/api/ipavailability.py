"""`/v2.0/network-ip-availabilities`: read-only usage figures per network and subnet (admins only, as Neutron)."""
from fastapi import APIRouter, Request

from neutrino.api import listing
from neutrino.api.controller import json_response
from neutrino.core import ipavailability
from neutrino.errors import not_found

KNOWN = {"network_id", "network_name", "project_id", "tenant_id", "ip_version", "total_ips", "used_ips"}


def _by_version(item: dict, versions: list[str]) -> dict | None:
    """The `ip_version` filter keeps only subnets of that version (and networks that have one)."""
    subs = [x for x in item["subnet_ip_availability"] if str(x["ip_version"]) in versions]
    return ipavailability.with_totals({**item, "subnet_ip_availability": subs}) if subs else None


async def list_availabilities(request: Request):
    app, ctx = request.app.state, request.state.ctx
    pairs = list(request.query_params.multi_items())
    q = listing.parse(pairs, KNOWN, app.settings.pagination_max_limit)
    versions = q.filters.pop("ip_version", None)
    items = await app.db.call(ipavailability.availabilities, ctx, q.filters.pop("network_id", None))
    if versions:
        items = [x for x in (_by_version(i, versions) for i in items) if x is not None]
    items = listing.apply_filters(items, q.filters)
    for i in items:
        i["id"] = i["network_id"]          # paging markers are network ids
    page = listing.sort_and_page(items, q)
    page = [{k: v for k, v in i.items() if k != "id"} for i in page]
    return json_response({"network_ip_availabilities": listing.select_fields(page, q.fields)})


async def show_availability(request: Request, network_id: str):
    app, ctx = request.app.state, request.state.ctx
    fields = [f for k, v in request.query_params.multi_items() if k == "fields" for f in v.split(",")]
    items = await app.db.call(ipavailability.availabilities, ctx, [network_id])
    if not items:
        raise not_found("Network", network_id)
    return json_response({"network_ip_availability": listing.select_fields(items, fields)[0]})


def add_routes(router: APIRouter) -> None:
    router.add_api_route("/v2.0/network-ip-availabilities", list_availabilities, methods=["GET"])
    router.add_api_route("/v2.0/network-ip-availabilities.json", list_availabilities, methods=["GET"])
    router.add_api_route("/v2.0/network-ip-availabilities/{network_id}", show_availability, methods=["GET"])
