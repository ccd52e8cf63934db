"""Floating IPs: an address held by a `network:floatingip` port on an external network, associated with one fixed
IPv4 address of an internal port through the router that joins both networks (Neutron's l3_db rules and messages)."""
from __future__ import annotations

import ipaddress

from sqlalchemy import insert, select

from neutrino.context import Context
from neutrino.core import common, networks, ports, quotas, rbac
from neutrino.core.routers import GW_OWNER, IF_OWNER
from neutrino.db import models as m
from neutrino.errors import NotFound, bad_request, conflict

T = m.FloatingIP.__table__
T_PORT = m.Port.__table__
T_IP = m.IPAllocation.__table__
T_SUB = m.Subnet.__table__
T_PF = m.PortForwarding.__table__
FIP_OWNER = "network:floatingip"
PORT_DETAILS = ("name", "network_id", "mac_address", "admin_state_up", "status", "device_id", "device_owner")


def bad(msg: str):
    """Neutron's `BadRequest(resource='floatingip', msg=...)`."""
    return bad_request(f"Bad floatingip request: {msg}.", "BadRequest")


def scope(ctx: Context):
    return None if ctx.is_admin else T.c.project_id == ctx.project_id


def get(s, ctx: Context, fip_id: str):
    return common.get_visible(s, T, fip_id, ctx, "FloatingIP")


# --- which router serves a fixed IP ---------------------------------------------------------------------------------

class NoRouter(NotFound):
    """No router joins the internal subnet and the external network."""
    type_name = "ExternalGatewayForFloatingIPNotFound"


def router_for(s, port, subnet, ext_net_id: str) -> str:
    """A router with its gateway on the external network and an interface on the subnet; the one holding the
    subnet's gateway IP wins (Neutron's get_router_for_floatingip)."""
    gw = T_PORT.alias("gw")
    rows = s.execute(
        select(T_PORT.c.device_id, T_IP.c.ip_address).join(T_IP, T_IP.c.port_id == T_PORT.c.id)
        .join(gw, gw.c.device_id == T_PORT.c.device_id)
        .where(T_PORT.c.network_id == port.network_id, T_PORT.c.device_owner == IF_OWNER,
               T_IP.c.subnet_id == subnet.id, gw.c.network_id == ext_net_id, gw.c.device_owner == GW_OWNER)
        .order_by(T_PORT.c.created_at, T_PORT.c.device_id)).all()
    for router_id, ip in rows:
        if ip == subnet.gateway_ip:
            return router_id
    if rows:
        return rows[0][0]
    raise NoRouter(f"External network {ext_net_id} is not reachable from subnet {subnet.id}.  Therefore, cannot "
                   f"associate Port {port.id} with a Floating IP.")


def internal_address(s, port, fixed_ip: str | None) -> tuple[str, object]:
    """The fixed IPv4 address of the port to use (given, or its only one) and its subnet row."""
    ips = ports.fixed_ips(s, port.id)
    if fixed_ip:
        if ipaddress.ip_address(fixed_ip).version != 4:
            raise bad(f"Cannot process floating IP association with {fixed_ip}, since that is not an IPv4 address")
        match = [ip for ip in ips if ip["ip_address"] == fixed_ip]
        if not match:
            raise bad(f"Port {port.id} does not have fixed ip {fixed_ip}")
        chosen = match[0]
    else:
        v4 = [ip for ip in ips if ipaddress.ip_address(ip["ip_address"]).version == 4]
        if not v4:
            raise bad(f"Cannot add floating IP to port {port.id} that has no fixed IPv4 addresses")
        if len(v4) > 1:
            raise bad(f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when "
                      "assigning a floating IP")
        chosen = v4[0]
    subnet = s.execute(select(T_SUB).where(T_SUB.c.id == chosen["subnet_id"])).first()
    return chosen["ip_address"], subnet


def _association(s, ctx: Context, fip: dict, data: dict) -> dict:
    """fixed_port_id / fixed_ip_address / router_id after applying `data` to `fip` (checks as Neutron)."""
    if data.get("fixed_ip_address") and not data.get("port_id"):
        raise bad("fixed_ip_address cannot be specified without a port_id")
    if "port_id" not in data:
        return {k: fip[k] for k in ("fixed_port_id", "fixed_ip_address", "router_id")}
    if not data["port_id"]:
        return {"fixed_port_id": None, "fixed_ip_address": None, "router_id": None}
    port = ports.get(s, ctx, data["port_id"])
    if port.project_id != fip["project_id"] and not ctx.is_admin:
        raise bad(f"Cannot process floating IP association with Port {port.id}, since that port is owned by a "
                  "different tenant")
    if port.device_owner.startswith("network:"):
        raise bad(f"Port {port.id} is unable to be assigned a floating IP")
    fixed_ip, subnet = internal_address(s, port, data.get("fixed_ip_address"))
    router_id = router_for(s, port, subnet, fip["floating_network_id"])
    if s.execute(select(T_PF.c.id).where(T_PF.c.floatingip_id == fip["id"]).limit(1)).first():
        raise conflict("FipInUseByPortForwarding", f"Floating IP {fip['id']} in use by Port Forwarding resources.")
    other = s.execute(select(T.c.id).where(T.c.fixed_port_id == port.id, T.c.fixed_ip_address == fixed_ip,
                                           T.c.floating_network_id == fip["floating_network_id"],
                                           T.c.id != fip["id"])).first()
    if other:
        raise conflict("FloatingIPPortAlreadyAssociated",
                       f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) with port {port.id} "
                       f"using fixed IP {fixed_ip}, as that fixed IP already has a floating IP on external network "
                       f"{fip['floating_network_id']}.")
    return {"fixed_port_id": port.id, "fixed_ip_address": fixed_ip, "router_id": router_id}


# --- create / update / delete ---------------------------------------------------------------------------------------

def create(s, ctx: Context, data: dict, settings) -> str:
    net = networks.get(s, ctx, data["floating_network_id"])
    if not net.external or not networks.usable(s, ctx, net, rbac.EXTERNAL):
        raise bad(f"Network {net.id} is not a valid external network")
    if not s.execute(select(T_SUB.c.id).where(T_SUB.c.network_id == net.id, T_SUB.c.ip_version == 4)).first():
        raise bad(f"Network {net.id} does not contain any IPv4 subnet")
    row = common.new_row(ctx, data)
    quotas.check(s, row["project_id"], "floatingip")
    want = {k: v for k, v in (("subnet_id", data.get("subnet_id")),
                              ("ip_address", data.get("floating_ip_address"))) if v}
    port_id = ports.create_internal(s, ctx, net.id, FIP_OWNER, row["id"], fixed_ips=[want] if want else None,
                                    project_id="", settings=settings)
    v4 = [ip["ip_address"] for ip in ports.fixed_ips(s, port_id) if ipaddress.ip_address(ip["ip_address"]).version == 4]
    if not v4:
        raise bad_request(f"Unable to find any IP address on external network {net.id}.", "ExternalIpAddressExhausted")
    fip = {**row, "floating_network_id": net.id, "floating_ip_address": v4[0], "fixed_port_id": None,
           "fixed_ip_address": None, "router_id": None}
    fip.update(_association(s, ctx, fip, data))
    s.execute(insert(T).values(**fip, floating_port_id=port_id, status="DOWN", dns_name=data.get("dns_name", ""),
                               dns_domain=data.get("dns_domain", "")))
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    common.require_owner(ctx, row, "update_floatingip")
    if not data:
        data = {"port_id": None}     # an empty update clears the association (the API's original meaning)
    values = _association(s, ctx, dict(row._mapping), data)
    if row.fixed_port_id and not values["fixed_port_id"]:
        values["status"] = "DOWN"       # nothing to serve any more; the agent reports ACTIVE on re-association
    if "description" in data:
        values["description"] = data["description"]
    common.touch(s, T, row.id, values)


def delete_floatingip(s, ctx: Context, row) -> None:
    common.require_owner(ctx, row, "delete_floatingip")
    if s.execute(select(T_PF.c.id).where(T_PF.c.floatingip_id == row.id).limit(1)).first():
        raise conflict("FipInUseByPortForwarding", f"Floating IP {row.id} in use by Port Forwarding resources.")
    ports.remove_floating_ip(s, row.id, row.floating_port_id)


# --- rendering ------------------------------------------------------------------------------------------------------

def render(s, ctx: Context, rows) -> list[dict]:
    ids = [r.id for r in rows]
    port_ids = list({r.fixed_port_id for r in rows if r.fixed_port_id})
    details = {p.id: {k: getattr(p, k) for k in PORT_DETAILS} for p in common.in_chunks(
        s, lambda c: select(T_PORT).where(T_PORT.c.id.in_(c)), port_ids)}
    pfs: dict[str, list[dict]] = {i: [] for i in ids}
    for pf in common.in_chunks(s, lambda c: select(T_PF).where(T_PF.c.floatingip_id.in_(c)), ids):
        pfs[pf.floatingip_id].append({"protocol": pf.protocol, "internal_ip_address": pf.internal_ip_address,
                                      "internal_port": pf.internal_port, "external_port": pf.external_port})
    tags = common.tags_of(s, ids)
    return [{"id": r.id, "floating_ip_address": r.floating_ip_address, "floating_network_id": r.floating_network_id,
             "router_id": r.router_id, "port_id": r.fixed_port_id, "fixed_ip_address": r.fixed_ip_address,
             "status": r.status, "port_details": details.get(r.fixed_port_id), "port_forwardings": pfs[r.id],
             "dns_name": r.dns_name, "dns_domain": r.dns_domain, "tags": tags[r.id], **common.std(r)}
            for r in rows]
