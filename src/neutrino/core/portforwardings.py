"""Port forwardings: one external port (tcp/udp) of a free floating IP DNATed to a fixed IPv4 address and port of an
internal port, through the router joining both networks (Neutron's pf_plugin rules and messages)."""
from __future__ import annotations

import ipaddress

from sqlalchemy import delete, insert, select
from sqlalchemy import update as sql_update

from neutrino.context import Context
from neutrino.core import common, floatingips, ports
from neutrino.db import models as m
from neutrino.errors import bad_request, conflict, not_found

T = m.PortForwarding.__table__
T_FIP = m.FloatingIP.__table__
FIELDS = ("id", "internal_port_id", "internal_ip_address", "internal_port", "external_port", "protocol",
          "description")


def bad(msg: str):
    return bad_request(f"Bad port_forwarding request: {msg}.", "BadRequest")


def get(s, fip, pf_id: str):
    row = s.execute(select(T).where(T.c.id == pf_id, T.c.floatingip_id == fip.id)).first()
    if row is None:
        raise not_found("PortForwarding", pf_id)
    return row


def list_rows(s, fip) -> list:
    return s.execute(select(T).where(T.c.floatingip_id == fip.id)).all()


def render(rows) -> list[dict]:
    return [{k: getattr(r, k) for k in FIELDS} for r in rows]


def _router(s, ctx: Context, fip, pf: dict) -> str:
    """The router that reaches the internal address from the floating IP's network; the address must be one of the
    internal port's IPv4 addresses."""
    port = ports.get(s, ctx, pf["internal_port_id"])
    v4 = [ip for ip in ports.fixed_ips(s, port.id) if ipaddress.ip_address(ip["ip_address"]).version == 4]
    if not v4:
        raise bad(f"Requested internal port {port.id} must allocate an IPv4 address at least")
    match = [ip for ip in v4 if ip["ip_address"] == pf["internal_ip_address"]]
    if not match:
        raise bad(f"Requested internal IP address {pf['internal_ip_address']} is not suitable for internal neutron "
                  f"port {port.id}, as its fixed_ips are {v4}")
    subnet = s.execute(select(m.Subnet.__table__).where(m.Subnet.__table__.c.id == match[0]["subnet_id"])).first()
    try:
        router_id = floatingips.router_for(s, port, subnet, fip.floating_network_id)
    except floatingips.NoRouter:
        raise bad(f"External network {fip.floating_network_id} is not reachable from subnet {subnet.id}. Cannot set "
                  f"Port forwarding for port {port.id} with Floating IP {fip.id}") from None
    if fip.router_id and fip.router_id != router_id:
        raise bad(f"The Floating IP {fip.id} had been set on router {fip.router_id}, the internal Neutron port "
                  f"{port.id} can not reach it")
    return router_id


def _unique(s, fip, pf: dict, exclude: str | None = None) -> None:
    """(floating IP, external port, protocol) and (internal port, address, port, protocol) are each unique."""
    for params in ({"floatingip_id": fip.id, "external_port": pf["external_port"], "protocol": pf["protocol"]},
                   {"internal_port_id": pf["internal_port_id"], "internal_ip_address": pf["internal_ip_address"],
                    "internal_port": pf["internal_port"], "protocol": pf["protocol"]}):
        stmt = select(T.c.id).where(*[T.c[k] == v for k, v in params.items()])
        if exclude:
            stmt = stmt.where(T.c.id != exclude)
        if s.execute(stmt).first():
            raise bad(f"A duplicate port forwarding entry with same attributes already exists, conflicting values "
                      f"are {params}")


def create(s, ctx: Context, fip, data: dict) -> str:
    common.require_owner(ctx, fip, "create_floatingip_port_forwarding")
    bound = s.execute(select(T_FIP).where(T_FIP.c.fixed_port_id == data["internal_port_id"])).first()
    if bound:
        raise conflict("PortHasBindingFloatingIP",
                       f"Cannot create port forwarding to floating IP {bound.floating_ip_address} ({bound.id}) with "
                       f"port {data['internal_port_id']} using fixed IP {data['internal_ip_address']}, as that port "
                       "already has a binding floating IP.")
    if fip.fixed_port_id:
        raise conflict("FloatingIPPortAlreadyAssociated",
                       f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port "
                       f"{data['internal_port_id']} using fixed IP {data['internal_ip_address']}, as that fixed IP "
                       f"already has a floating IP on external network {fip.floating_network_id}.")
    router_id = _router(s, ctx, fip, data)
    _unique(s, fip, data)
    pf_id = common.new_id()
    s.execute(insert(T).values(id=pf_id, floatingip_id=fip.id, description=data.get("description", ""),
                               **{k: data[k] for k in FIELDS[1:6]}))
    common.touch(s, T_FIP, fip.id, {"router_id": router_id})
    return pf_id


def update(s, ctx: Context, fip, row, data: dict) -> None:
    common.require_owner(ctx, fip, "update_floatingip_port_forwarding")
    merged = {**{k: getattr(row, k) for k in FIELDS}, **data}
    if "internal_port_id" in data or "internal_ip_address" in data:
        _router(s, ctx, fip, merged)
    _unique(s, fip, merged, exclude=row.id)
    if data:
        s.execute(sql_update(T).where(T.c.id == row.id).values(**data))
    common.touch(s, T_FIP, fip.id)


def delete_pf(s, ctx: Context, fip, row) -> None:
    """Remove a forwarding; the floating IP leaves its router with the last one."""
    common.require_owner(ctx, fip, "delete_floatingip_port_forwarding")
    s.execute(delete(T).where(T.c.id == row.id))
    last = not s.execute(select(T.c.id).where(T.c.floatingip_id == fip.id).limit(1)).first()
    common.touch(s, T_FIP, fip.id, {"router_id": None} if last else {})
