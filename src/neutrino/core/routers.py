"""Routers: the external gateway (port on an external network, SNAT switch), interfaces on subnets, extra routes,
and the L3 host a router is scheduled to. Checks and messages follow Neutron's l3_db / extraroute_db."""
from __future__ import annotations

import ipaddress

from sqlalchemy import delete, insert, select
from sqlalchemy import update as sql_update

from neutrino.context import Context
from neutrino.core import common, networks, ports, quotas, rbac, subnets
from neutrino.db import models as m
from neutrino.errors import Forbidden, NotFound, bad_request, conflict
from neutrino.text import canonical_uuid

T = m.Router.__table__
T_PORT = m.Port.__table__
T_IP = m.IPAllocation.__table__
T_SUB = m.Subnet.__table__
T_FIP = m.FloatingIP.__table__
T_PF = m.PortForwarding.__table__
GW_OWNER = "network:router_gateway"
IF_OWNER = "network:router_interface"
MAX_ROUTES = 30


def bad(msg: str):
    """Neutron's `BadRequest(resource='router', msg=...)`."""
    return bad_request(f"Bad router request: {msg}.", "BadRequest")


def scope(ctx: Context):
    return None if ctx.is_admin else T.c.project_id == ctx.project_id


def get(s, ctx: Context, router_id: str):
    return common.get_visible(s, T, router_id, ctx, "Router")


# --- router ports ---------------------------------------------------------------------------------------------------

def _ports(s, router_id: str, owners=(IF_OWNER, GW_OWNER)) -> list:
    return s.execute(select(T_PORT).where(T_PORT.c.device_id == router_id,
                                          T_PORT.c.device_owner.in_(owners))).all()


def _port_subnets(s, port_ids: list[str]) -> list:
    """(port_id, ip_address, subnet row) for every address of these ports."""
    if not port_ids:
        return []
    ips = s.execute(select(T_IP.c.port_id, T_IP.c.ip_address, T_IP.c.subnet_id)
                    .where(T_IP.c.port_id.in_(port_ids))).all()
    subs = {r.id: r for r in s.execute(select(T_SUB).where(T_SUB.c.id.in_({sid for _p, _i, sid in ips})))}
    return [(pid, ip, subs[sid]) for pid, ip, sid in ips]


def _check_dup_subnets(s, router_id: str, new_subnets: list, include_gateway: bool = False) -> None:
    """A subnet only once per router; no overlapping CIDRs among interfaces (or among gateway subnets)."""
    rports = _ports(s, router_id)
    owner = {p.id: p.device_owner for p in rports}
    new_ids = {sub.id for sub in new_subnets}
    others = []
    for pid, _ip, sub in _port_subnets(s, list(owner)):
        if sub.id in new_ids:
            raise bad(f"Router already has a port on subnet {sub.id}")
        if (owner[pid] == GW_OWNER) == include_gateway:
            others.append(sub)
    for old in others:
        for new in new_subnets:
            if ipaddress.ip_network(old.cidr).overlaps(ipaddress.ip_network(new.cidr)):
                raise bad(f"Cidr {new.cidr} of subnet {new.id} overlaps with cidr {old.cidr} of subnet {old.id}")


# --- gateway --------------------------------------------------------------------------------------------------------

def _gw_policy(ctx: Context, info: dict | None, action: str) -> None:
    """Neutron's policy: only admins choose SNAT or the gateway's addresses."""
    if ctx.is_admin or not info:
        return
    for key in ("enable_snat", "external_fixed_ips"):
        if key in info:
            raise Forbidden(f"(rule:{action}_router:external_gateway_info:{key}) is disallowed by policy")


def _fips_through(s, router_id: str) -> bool:
    return s.execute(select(T_FIP.c.id).where(T_FIP.c.router_id == router_id).limit(1)).first() is not None


def _drop_gateway(s, router) -> None:
    if not router.gw_port_id:
        return
    if _fips_through(s, router.id):
        net = s.execute(select(T_PORT.c.network_id).where(T_PORT.c.id == router.gw_port_id)).scalar()
        raise conflict("RouterExternalGatewayInUseByFloatingIp",
                       f"Gateway cannot be updated for router {router.id}, since a gateway to external network "
                       f"{net} is required by one or more floating IPs.")
    s.execute(sql_update(T).where(T.c.id == router.id).values(gw_port_id=None))
    ports.remove(s, router.gw_port_id)


def _set_gateway(s, ctx: Context, router, info: dict | None, settings) -> None:
    """Create, move, re-address or remove the gateway port so it matches `info` (None = no gateway)."""
    current = s.execute(select(T_PORT).where(T_PORT.c.id == router.gw_port_id)).first() if router.gw_port_id \
        else None
    if not info:
        _drop_gateway(s, router)
        return
    net = networks.get(s, ctx, info["network_id"])
    if not net.external or not networks.usable(s, ctx, net, rbac.EXTERNAL):
        raise bad(f"Network {net.id} is not an external network")
    ext_ips = info.get("external_fixed_ips") or []
    gateways = {r[0] for r in s.execute(select(T_SUB.c.gateway_ip).where(T_SUB.c.network_id == net.id))}
    for ip in ext_ips:
        if ip.get("ip_address") and ip["ip_address"] in gateways:
            raise bad(f"External IP {ip['ip_address']} is the same as the gateway IP")
    values = {"enable_snat": info.get("enable_snat", True)}
    if current is not None and current.network_id == net.id:
        if ext_ips and _ips_change(ports.fixed_ips(s, current.id), ext_ips):
            ports.update(s, Context.admin(), current, {"fixed_ips": ext_ips}, settings)
    else:
        _drop_gateway(s, router)
        new_subnets = s.execute(select(T_SUB).where(T_SUB.c.network_id == net.id)).all()
        _check_dup_subnets(s, router.id, new_subnets, include_gateway=True)
        values["gw_port_id"] = ports.create_internal(s, ctx, net.id, GW_OWNER, router.id, fixed_ips=ext_ips or None,
                                                     project_id="", settings=settings)
    s.execute(sql_update(T).where(T.c.id == router.id).values(**values))


def _ips_change(have: list[dict], want: list[dict]) -> bool:
    if {i["subnet_id"] for i in have} != {w["subnet_id"] for w in want if w.get("subnet_id")}:
        return True
    return {i["ip_address"] for i in have} != {w["ip_address"] for w in want if w.get("ip_address")}


# --- extra routes ---------------------------------------------------------------------------------------------------

def _invalid_routes(routes: list[dict], reason: str):
    return bad_request(f"Invalid format for routes: {routes}, {reason}.", "InvalidRoutes")


def validate_routes(s, router_id: str, routes: list[dict]) -> None:
    """At most MAX_ROUTES; each nexthop on a subnet of the router and not one of the router's own addresses."""
    if len(routes) > MAX_ROUTES:
        raise bad_request(f"Unable to complete operation for {router_id}. The number of routes exceeds the maximum "
                          f"{MAX_ROUTES}.", "RoutesExhausted")
    rows = _port_subnets(s, [p.id for p in _ports(s, router_id)])
    cidrs = [ipaddress.ip_network(sub.cidr) for _pid, _ip, sub in rows]
    own = {ip for _pid, ip, _sub in rows}
    for route in routes:
        hop = ipaddress.ip_address(route["nexthop"])
        if not any(hop.version == c.version and hop in c for c in cidrs):
            raise _invalid_routes(routes, "the nexthop is not connected with router")
        if str(hop) in own:
            raise _invalid_routes(routes, "the nexthop is used by router")


def add_routes(s, ctx: Context, router, routes: list[dict], max_routes: int) -> None:
    """extraroute-atomic: add the routes not present yet, validating the resulting set (at most max_routes)."""
    common.require_owner(ctx, router, "add_extraroutes")
    merged = {(r["destination"], r["nexthop"]): r for r in [*(router.routes or []), *routes]}
    new = list(merged.values())
    if len(new) > max_routes:
        raise bad_request(f"Unable to complete operation for {router.id}. The number of routes exceeds the maximum "
                          f"{max_routes}.", "RoutesExhausted")
    validate_routes(s, router.id, new)
    common.touch(s, T, router.id, {"routes": new})


def remove_routes(s, ctx: Context, router, routes: list[dict]) -> None:
    common.require_owner(ctx, router, "remove_extraroutes")
    common.touch(s, T, router.id, {"routes": [r for r in (router.routes or []) if r not in routes]})


# --- create / update / delete ---------------------------------------------------------------------------------------

def create(s, ctx: Context, data: dict, settings) -> str:
    row = common.new_row(ctx, data)
    quotas.check(s, row["project_id"], "router")
    info = data.get("external_gateway_info")
    _gw_policy(ctx, info, "create")
    row.update(name=data.get("name", ""), admin_state_up=data.get("admin_state_up", True), status="ACTIVE",
               enable_snat=True, routes=[])
    s.execute(insert(T), row)
    if info:
        _set_gateway(s, ctx, get(s, Context.admin(), row["id"]), info, settings)
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    common.require_owner(ctx, row, "update_router")
    if "external_gateway_info" in data:
        _gw_policy(ctx, data["external_gateway_info"], "update")
        _set_gateway(s, ctx, row, data["external_gateway_info"], settings)
    if "routes" in data:
        validate_routes(s, row.id, data["routes"])
    common.touch(s, T, row.id, {k: v for k, v in data.items()
                                if k in ("name", "admin_state_up", "description", "routes")})


def delete_router(s, ctx: Context, row) -> None:
    common.require_owner(ctx, row, "delete_router")
    if _ports(s, row.id, (IF_OWNER,)):
        raise conflict("RouterInUse", f"Router {row.id} still has ports")
    _drop_gateway(s, row)
    common.delete_tags(s, row.id)
    s.execute(delete(T).where(T.c.id == row.id))


# --- interfaces -----------------------------------------------------------------------------------------------------

def _interface_args(body, removing: bool) -> tuple[str | None, str | None]:
    if not isinstance(body, dict) or not ({"port_id", "subnet_id"} & set(body)):
        raise bad("Either subnet_id or port_id must be specified")
    out = []
    for key in ("port_id", "subnet_id"):
        if key in body:
            out.append(canonical_uuid(body[key]))
            if out[-1] is None:
                raise bad(f"'{body[key]}' is not a valid UUID")
        else:
            out.append(None)
    if not removing and out[0] and out[1]:
        raise bad("Cannot specify both subnet-id and port-id")
    return out[0], out[1]


def _info(router_id: str, port, subnet_ids: list[str]) -> dict:
    return {"id": router_id, "tenant_id": port.project_id, "project_id": port.project_id, "port_id": port.id,
            "network_id": port.network_id, "subnet_id": subnet_ids[-1] if subnet_ids else None,
            "subnet_ids": subnet_ids}


def add_interface(s, ctx: Context, router, body, settings) -> dict:
    common.require_owner(ctx, router, "add_router_interface")
    port_id, subnet_id = _interface_args(body, removing=False)
    if port_id:
        port = ports.get(s, ctx, port_id)
        if port.device_id:
            raise conflict("PortInUse", f"Unable to complete operation on port {port.id} for network "
                                        f"{port.network_id}. Port already has an attached device {port.device_id}.")
        subs = [sub for _pid, _ip, sub in _port_subnets(s, [port.id])]
        if not subs:
            raise bad("Router port must have at least one fixed IP")
        _check_dup_subnets(s, router.id, subs)
        if sum(1 for sub in subs if sub.ip_version == 4) > 1:
            raise bad("Cannot have multiple IPv4 subnets on router port")
        common.touch(s, T_PORT, port.id, {"device_id": router.id, "device_owner": IF_OWNER})
    else:
        sub = subnets.get(s, ctx, subnet_id)
        if not sub.gateway_ip:
            raise bad("Subnet for router interface must have a gateway IP")
        if not ctx.is_admin and sub.project_id != ctx.project_id:
            raise bad(f"Cannot add interface to router because subnet {sub.id} is not owned by project making the "
                      "request")
        _check_dup_subnets(s, router.id, [sub])
        pid = ports.create_internal(s, ctx, sub.network_id, IF_OWNER, router.id,
                                    fixed_ips=[{"subnet_id": sub.id, "ip_address": sub.gateway_ip}],
                                    project_id=router.project_id, settings=settings)
        subs = [sub]
    common.touch(s, T, router.id)
    port = s.execute(select(T_PORT).where(T_PORT.c.id == (port_id or pid))).first()
    return _info(router.id, port, [sub.id for sub in subs])


def _not_in_use(s, router_id: str, sub) -> None:
    """An interface stays while extra routes or floating IPs (or their port forwardings) need its subnet."""
    cidr = ipaddress.ip_network(sub.cidr)
    router = s.execute(select(T.c.routes).where(T.c.id == router_id)).first()
    for route in router.routes or []:
        if ipaddress.ip_address(route["nexthop"]) in cidr:
            raise conflict("RouterInterfaceInUseByRoute",
                           f"Router interface for subnet {sub.id} on router {router_id} cannot be deleted, as it is "
                           "required by one or more routes.")
    fixed = [ip for (ip,) in s.execute(select(T_FIP.c.fixed_ip_address).where(T_FIP.c.router_id == router_id))]
    fixed += [ip for (ip,) in s.execute(select(T_PF.c.internal_ip_address).join(
        T_FIP, T_FIP.c.id == T_PF.c.floatingip_id).where(T_FIP.c.router_id == router_id))]
    if any(ip and ipaddress.ip_address(ip) in cidr for ip in fixed):
        raise conflict("RouterInterfaceInUseByFloatingIP",
                       f"Router interface for subnet {sub.id} on router {router_id} cannot be deleted, as it is "
                       "required by one or more floating IPs.")


def remove_interface(s, ctx: Context, router, body) -> dict:
    common.require_owner(ctx, router, "remove_router_interface")
    port_id, subnet_id = _interface_args(body, removing=True)
    if port_id:
        port = s.execute(select(T_PORT).where(T_PORT.c.id == port_id, T_PORT.c.device_id == router.id,
                                              T_PORT.c.device_owner == IF_OWNER)).first()
        if port is None:
            err = NotFound(f"Router {router.id} does not have an interface with id {port_id}")
            err.type_name = "RouterInterfaceNotFound"
            raise err
        subs = [sub for _pid, _ip, sub in _port_subnets(s, [port.id])]
        if subnet_id and subnet_id not in {sub.id for sub in subs}:
            raise bad_request(f"Subnet {subnet_id} could not be found on port {port_id}.", "SubnetMismatchForPort")
        for sub in subs:
            _not_in_use(s, router.id, sub)
        ports.remove(s, port.id)
        gone = subs
    else:
        sub = subnets.get(s, ctx, subnet_id)
        hits = [(pid, ip) for pid, ip, x in _port_subnets(s, [p.id for p in _ports(s, router.id, (IF_OWNER,))])
                if x.id == sub.id]
        if not hits:
            err = NotFound(f"Router {router.id} has no interface on subnet {sub.id}")
            err.type_name = "RouterInterfaceNotFoundForSubnet"
            raise err
        _not_in_use(s, router.id, sub)
        port = s.execute(select(T_PORT).where(T_PORT.c.id == hits[0][0])).first()
        if len(ports.fixed_ips(s, port.id)) > 1:
            ports.release_ips(s, (T_IP.c.port_id == port.id) & (T_IP.c.subnet_id == sub.id))
            common.touch(s, T_PORT, port.id)
        else:
            ports.remove(s, port.id)
        gone = [sub]
    common.touch(s, T, router.id)
    return _info(router.id, port, [sub.id for sub in gone])


# --- rendering ------------------------------------------------------------------------------------------------------

def render(s, ctx: Context, rows) -> list[dict]:
    ids = [r.id for r in rows]
    gw_ids = [r.gw_port_id for r in rows if r.gw_port_id]
    gw_net = dict(common.in_chunks(s, lambda c: select(T_PORT.c.id, T_PORT.c.network_id).where(T_PORT.c.id.in_(c)),
                                   gw_ids))
    gw_ips = ports.fixed_ips_of(s, gw_ids)
    tags = common.tags_of(s, ids)
    out = []
    for r in rows:
        gw = None
        if r.gw_port_id:
            gw = {"network_id": gw_net.get(r.gw_port_id), "enable_snat": r.enable_snat,
                  "external_fixed_ips": sorted(gw_ips[r.gw_port_id],
                                               key=lambda x: (":" in x["ip_address"], x["ip_address"]))}
        out.append({"id": r.id, "name": r.name, "admin_state_up": r.admin_state_up, "status": r.status,
                    "external_gateway_info": gw, "routes": r.routes or [], "distributed": False, "ha": False,
                    "availability_zone_hints": [], "availability_zones": ["nova"], "flavor_id": None,
                    "tags": tags[r.id], **common.std(r)})
    return out
