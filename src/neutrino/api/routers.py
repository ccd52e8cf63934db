"""Routers and floating IPs on the generic controller, plus what it cannot express: the router actions
(`add/remove_router_interface`, `add/remove_extraroutes`) and the port forwardings under a floating IP."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from neutrino.api import listing
from neutrino.api.attrs import (PROJECT_ATTRS, REQUIRED, STD_ATTRS, Attr, Limit, boolean, check_limit, cidr,
                                dict_of, integer, invalid, ip_address, list_of, nullable, one_of, show, string,
                                typed, unique_list_of, uuid_str, validate_body)
from neutrino.api.controller import Resource, json_response, list_response, read_json, write, writer
from neutrino.core import floatingips, portforwardings, routers
from neutrino.errors import bad_request

_route = dict_of({"destination": cidr, "nexthop": ip_address}, required=("destination", "nexthop"))
ROUTE_LIST = unique_list_of(_route)
ROUTES = Limit("max_routes", "RoutesExhausted", "Unable to complete operation for router. The number of routes "
                                                "exceeds the maximum {quota}.")


def _routes(name, v):
    """routes: null is the empty list (Neutron's convert_none_to_empty_list)."""
    return [] if v is None else ROUTE_LIST(name, v)
_gw = dict_of({"network_id": uuid_str, "enable_snat": boolean,
               "external_fixed_ips": list_of(dict_of({"subnet_id": uuid_str, "ip_address": ip_address}))},
              required=("network_id",))


@typed({"anyOf": [_gw.schema, {"type": "null"}]})
def _gateway(name, v):
    """external_gateway_info: null or {} clears the gateway."""
    return None if v is None or v == {} else _gw(name, v)


ROUTER = Resource("router", "routers", routers, delete=routers.delete_router, attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "name": Attr(default="", convert=string(255)),
    "admin_state_up": Attr(default=True, convert=boolean),
    "external_gateway_info": Attr(convert=_gateway),
    "routes": Attr(post=False, convert=_routes, limit=ROUTES),
}, readonly=("status", "distributed", "ha", "availability_zone_hints", "availability_zones", "flavor_id"),
    reschedule=True)

FLOATINGIP = Resource("floatingip", "floatingips", floatingips, delete=floatingips.delete_floatingip, attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "floating_network_id": Attr(put=False, default=REQUIRED, convert=uuid_str),
    "floating_ip_address": Attr(put=False, convert=ip_address, admin_write=True),
    "subnet_id": Attr(put=False, convert=nullable(uuid_str)),
    "port_id": Attr(convert=nullable(uuid_str)),
    "fixed_ip_address": Attr(convert=nullable(ip_address)),
    "dns_name": Attr(put=False, convert=string(255)),
    "dns_domain": Attr(put=False, convert=string(255)),
}, readonly=("status", "router_id", "port_details", "port_forwardings"),
    sql_filters={"floating_network_id": floatingips.T.c.floating_network_id, "router_id": floatingips.T.c.router_id,
                 "port_id": floatingips.T.c.fixed_port_id, "status": floatingips.T.c.status,
                 "floating_ip_address": floatingips.T.c.floating_ip_address,
                 "fixed_ip_address": floatingips.T.c.fixed_ip_address})

RESOURCES = [ROUTER, FLOATINGIP]

_port = integer(1, 65535)
PF_ATTRS = {
    "internal_port_id": Attr(default=REQUIRED, convert=uuid_str),
    "internal_ip_address": Attr(default=REQUIRED, convert=ip_address),
    "internal_port": Attr(default=REQUIRED, convert=_port),
    "external_port": Attr(default=REQUIRED, convert=_port),
    "protocol": Attr(default=REQUIRED, convert=one_of("tcp", "udp", lower=True)),
    "description": Attr(default="", convert=string(255)),
}


# --- router actions -------------------------------------------------------------------------------------------------

async def _router_action(request: Request, rid: str, act):
    """Load the router (404 if not visible) and act on it, in one write transaction."""
    writer(request.state.ctx)
    body = await read_json(request)
    settings = request.app.state.settings

    def tx(s, ctx):
        return act(s, ctx, routers.get(s, ctx, rid), body, settings)
    return json_response(await write(request, tx, reschedule=True))     # new router ports follow the router to its host


async def add_router_interface(request: Request, rid: str):
    return await _router_action(request, rid, routers.add_interface)


async def remove_router_interface(request: Request, rid: str):
    def act(s, ctx, row, body, _settings):
        return routers.remove_interface(s, ctx, row, body)
    return await _router_action(request, rid, act)


def _routes_body(body, settings) -> list[dict]:
    if not isinstance(body, dict) or not isinstance(body.get("router"), dict) or "routes" not in body["router"]:
        raise bad_request("Bad router request: the body must be {\"router\": {\"routes\": [...]}}.", "BadRequest")
    extra = set(body["router"]) - {"routes"}
    if extra:
        raise invalid("router", body["router"], f"Unrecognized attribute(s) '{show(', '.join(sorted(extra)))}'")
    routes = body["router"]["routes"]
    if isinstance(routes, list):
        check_limit(ROUTES, routes, settings)
    return ROUTE_LIST("routes", routes)


def _extraroutes(change):
    def act(s, ctx, row, body, settings):
        change(s, ctx, row, _routes_body(body, settings), settings)
        return {"router": routers.render(s, ctx, [routers.get(s, ctx, row.id)])[0]}
    return act


async def add_extraroutes(request: Request, rid: str):
    def add(s, ctx, row, routes, settings):
        routers.add_routes(s, ctx, row, routes, settings.max_routes)
    return await _router_action(request, rid, _extraroutes(add))


async def remove_extraroutes(request: Request, rid: str):
    def remove(s, ctx, row, routes, _settings):
        routers.remove_routes(s, ctx, row, routes)
    return await _router_action(request, rid, _extraroutes(remove))


# --- port forwardings -----------------------------------------------------------------------------------------------

PF_KNOWN = set(portforwardings.FIELDS)


async def list_pfs(request: Request, fid: str):
    ctx = request.state.ctx
    return await list_response(request, "port_forwardings", PF_KNOWN, lambda s: portforwardings.render(
        portforwardings.list_rows(s, floatingips.get(s, ctx, fid))))


async def show_pf(request: Request, fid: str, pid: str):
    ctx = request.state.ctx
    fields = [f for k, v in request.query_params.multi_items() if k == "fields" for f in v.split(",")]
    item = await request.app.state.db.call(
        lambda s: portforwardings.render([portforwardings.get(s, floatingips.get(s, ctx, fid), pid)])[0])
    return json_response({"port_forwarding": listing.select_fields([item], fields)[0]})


def _pf_body(body, creating: bool, ctx, settings) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("port_forwarding"), dict):
        raise bad_request("Resource body required: expected 'port_forwarding'.")
    return validate_body(PF_ATTRS, body["port_forwarding"], "port_forwarding", creating, ctx, settings)


async def create_pf(request: Request, fid: str):
    writer(request.state.ctx)
    data = _pf_body(await read_json(request), True, request.state.ctx, request.app.state.settings)

    def tx(s, ctx):
        fip = floatingips.get(s, ctx, fid)
        pid = portforwardings.create(s, ctx, fip, data)
        return portforwardings.render([portforwardings.get(s, fip, pid)])[0]

    return json_response({"port_forwarding": await write(request, tx)}, 201)


async def update_pf(request: Request, fid: str, pid: str):
    writer(request.state.ctx)
    data = _pf_body(await read_json(request), False, request.state.ctx, request.app.state.settings)

    def tx(s, ctx):
        fip = floatingips.get(s, ctx, fid)
        portforwardings.update(s, ctx, fip, portforwardings.get(s, fip, pid), data)
        return portforwardings.render([portforwardings.get(s, fip, pid)])[0]

    return json_response({"port_forwarding": await write(request, tx)})


async def delete_pf(request: Request, fid: str, pid: str):
    writer(request.state.ctx)

    def tx(s, ctx):
        fip = floatingips.get(s, ctx, fid)
        portforwardings.delete_pf(s, ctx, fip, portforwardings.get(s, fip, pid))

    await write(request, tx)
    return Response(status_code=204)


def add_routes(router: APIRouter) -> None:
    r = "/v2.0/routers/{rid}/"
    router.add_api_route(r + "add_router_interface", add_router_interface, methods=["PUT"])
    router.add_api_route(r + "remove_router_interface", remove_router_interface, methods=["PUT"])
    router.add_api_route(r + "add_extraroutes", add_extraroutes, methods=["PUT"])
    router.add_api_route(r + "remove_extraroutes", remove_extraroutes, methods=["PUT"])
    p = "/v2.0/floatingips/{fid}/port_forwardings"
    router.add_api_route(p, list_pfs, methods=["GET"])
    router.add_api_route(p, create_pf, methods=["POST"])
    router.add_api_route(p + "/{pid}", show_pf, methods=["GET"])
    router.add_api_route(p + "/{pid}", update_pf, methods=["PUT"])
    router.add_api_route(p + "/{pid}", delete_pf, methods=["DELETE"])
