"""Address scopes: routing domains of subnet pools. Subnets from pools of one scope never overlap and a router
routes between them without NAT (the L3 agent marks each interface with its scope); across scopes only NAT goes."""
from __future__ import annotations

import ipaddress

from sqlalchemy import delete, insert, select

from neutrino.context import Context
from neutrino.core import common, rbac
from neutrino.db import models as m
from neutrino.errors import bad_request, conflict

T = m.AddressScope.__table__
T_POOL = m.SubnetPool.__table__
T_SUB = m.Subnet.__table__


def scope(ctx: Context):
    return rbac.visible_clause(T, "address_scope", ctx)


def get(s, ctx: Context, scope_id: str):
    return rbac.get_visible(s, "address_scope", scope_id, ctx, "AddressScope")


def create(s, ctx: Context, data: dict, settings) -> str:
    row = {"id": data.get("id") or common.new_id(), "project_id": data.get("project_id") or ctx.project_id or "",
           "name": data.get("name", ""), "ip_version": data["ip_version"]}
    s.execute(insert(T), row)
    rbac.set_wildcard(s, "address_scope", row, rbac.SHARED, data.get("shared", False))
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    common.require_owner(ctx, row, "update_address_scope")
    if "shared" in data:
        if not data["shared"] and rbac.is_granted(s, "address_scope", row.id, None):
            raise bad_request(f"Unable to update address scope {row.id} : Shared address scope can't be unshared.",
                              "AddressScopeUpdateError")
        rbac.set_wildcard(s, "address_scope", row, rbac.SHARED, data.pop("shared"))
    if data:
        s.execute(T.update().where(T.c.id == row.id).values(**data))


def delete_scope(s, ctx: Context, row) -> None:
    common.require_owner(ctx, row, "delete_address_scope")
    if s.execute(select(T_POOL.c.id).where(T_POOL.c.address_scope_id == row.id).limit(1)).first():
        raise conflict("AddressScopeInUse", f"Unable to complete operation on address scope {row.id}. There are one "
                                            "or more subnet pools in use on the address scope.")
    rbac.delete_for(s, row.id)
    s.execute(delete(T).where(T.c.id == row.id))


def render(s, ctx: Context, rows) -> list[dict]:
    shared = rbac.shared_to(s, "address_scope", [r.id for r in rows], ctx.project_id)
    return [{"id": r.id, "name": r.name, "ip_version": r.ip_version, "shared": r.id in shared,
             "project_id": r.project_id, "tenant_id": r.project_id} for r in rows]


def check_pool(s, ctx: Context, pool: dict) -> None:
    """A pool may join a scope the caller may use, of its IP version, whose other pools it does not overlap; and
    networks with subnets from it must not end up with subnets in two scopes."""
    scope_id = pool.get("address_scope_id")
    if scope_id:
        found = get(s, ctx, scope_id)          # yours, or shared with you; 404 otherwise
        if found.ip_version != pool["ip_version"]:
            raise bad_request(f"Illegal subnetpool association: subnetpool {pool['id']} cannot associate with "
                              f"address scope {scope_id} because subnetpool ip_version is not {found.ip_version}.",
                              "IllegalSubnetPoolIpVersionAssociationWithAddressScope")
        mine = [ipaddress.ip_network(p) for p in pool["prefixes"]]
        others = s.execute(select(T_POOL.c.prefixes).where(T_POOL.c.address_scope_id == scope_id,
                                                           T_POOL.c.id != pool["id"])).all()
        if any(a.overlaps(ipaddress.ip_network(b)) for (prefixes,) in others for b in prefixes for a in mine):
            raise conflict("AddressScopePrefixConflict", "Failed to associate address scope: subnetpools within "
                                                         "an address scope must have unique prefixes.")
    nets = select(T_SUB.c.network_id).where(T_SUB.c.subnetpool_id == pool["id"])
    mixed = s.execute(select(T_SUB.c.network_id).join(T_POOL, T_POOL.c.id == T_SUB.c.subnetpool_id, isouter=True)
                      .where(T_SUB.c.network_id.in_(nets), T_SUB.c.ip_version == pool["ip_version"],
                             (T_SUB.c.subnetpool_id != pool["id"]) | T_SUB.c.subnetpool_id.is_(None),
                             T_POOL.c.address_scope_id.is_distinct_from(scope_id)).limit(1)).first()
    if mixed:
        raise bad_request(f"Subnets of network {mixed[0]} would be in different address scopes.",
                          "NetworkAddressScopeAffinityError")


def check_network(s, network_id: str, version: int, pool_id: str | None) -> None:
    """A network's subnets of one IP version share an address scope, or without one the same pool (or none): so a
    router port has one scope per version."""
    rows = s.execute(select(T_SUB.c.subnetpool_id, T_POOL.c.address_scope_id)
                     .join(T_POOL, T_POOL.c.id == T_SUB.c.subnetpool_id, isouter=True)
                     .where(T_SUB.c.network_id == network_id, T_SUB.c.ip_version == version)).all()
    if not rows:
        return
    net_scope = next((r.address_scope_id for r in rows if r.address_scope_id), None)
    new_scope = s.execute(select(T_POOL.c.address_scope_id).where(T_POOL.c.id == pool_id)).scalar() \
        if pool_id else None
    if net_scope:
        if new_scope != net_scope:
            raise bad_request(f"Subnets of network {network_id} must be allocated from subnet pools of its address "
                              f"scope {net_scope}.", "NetworkAddressScopeAffinityError")
    elif any(r.subnetpool_id != pool_id for r in rows):
        raise bad_request("Subnets hosted on the same network must be allocated from the same subnet pool.",
                          "NetworkSubnetPoolAffinityError")


def of_subnets(s, subnet_ids) -> dict[str, str]:
    """subnet id -> the address scope of the pool it was allocated from (subnets without one are absent)."""
    rows = common.in_chunks(s, lambda c: select(T_SUB.c.id, T_POOL.c.address_scope_id)
                            .join(T_POOL, T_POOL.c.id == T_SUB.c.subnetpool_id)
                            .where(T_SUB.c.id.in_(c), T_POOL.c.address_scope_id.is_not(None)), list(subnet_ids))
    return {sid: scope_id for sid, scope_id in rows}


def of_networks(s, net_ids) -> dict[str, dict[int, str]]:
    """network id -> {ip_version: address scope}, as Neutron's ipv4_address_scope / ipv6_address_scope."""
    out: dict[str, dict[int, str]] = {}
    rows = common.in_chunks(s, lambda c: select(T_SUB.c.network_id, T_SUB.c.ip_version, T_POOL.c.address_scope_id)
                            .join(T_POOL, T_POOL.c.id == T_SUB.c.subnetpool_id)
                            .where(T_SUB.c.network_id.in_(c), T_POOL.c.address_scope_id.is_not(None)), list(net_ids))
    for nid, version, scope_id in rows:
        out.setdefault(nid, {})[version] = scope_id
    return out
