"""Subnet pools: prefixes from which subnets are carved (`subnet create --subnet-pool`)."""
from __future__ import annotations

from sqlalchemy import delete, insert, select

from neutrino.context import Context
from neutrino.core import addressscopes, common, ipam, quotas, rbac
from neutrino.db import models as m
from neutrino.errors import bad_request, conflict

T = m.SubnetPool.__table__
T_SUB = m.Subnet.__table__


def scope(ctx: Context):
    return rbac.visible_clause(T, "subnetpool", ctx)


def get(s, ctx: Context, pool_id: str):
    return rbac.get_visible(s, "subnetpool", pool_id, ctx, "SubnetPool")


def _prefixes(prefixes: list[str]) -> tuple[list[str], int]:
    nets = sorted({ipam.network(p) for p in prefixes}, key=lambda n: (n.version, int(n.network_address)))
    if not nets:
        raise bad_request("Invalid input for prefixes. Reason: at least one prefix is required.", "InvalidInput")
    if len({n.version for n in nets}) != 1:
        raise bad_request("Illegal subnetpool prefix: all prefixes must be of one IP version.", "InvalidInput")
    return [str(n) for n in nets], nets[0].version


def _bounds(data: dict, version: int, current=None) -> dict:
    hi = 32 if version == 4 else 128
    lo = data.get("min_prefixlen", current.min_prefixlen if current else (8 if version == 4 else 64))
    mx = data.get("max_prefixlen", current.max_prefixlen if current else hi)
    df = data.get("default_prefixlen", current.default_prefixlen if current else lo)
    if not (0 <= lo <= df <= mx <= hi):
        raise bad_request(f"Illegal prefix bounds: min_prefixlen={lo}, default_prefixlen={df}, max_prefixlen={mx}.",
                          "IllegalSubnetPoolPrefixBounds")
    return {"min_prefixlen": lo, "max_prefixlen": mx, "default_prefixlen": df}


def create(s, ctx: Context, data: dict, settings) -> str:
    row = common.new_row(ctx, data)
    prefixes, version = _prefixes(data["prefixes"])
    row.update(name=data.get("name", ""), ip_version=version, prefixes=prefixes,
               is_default=data.get("is_default", False), default_quota=data.get("default_quota"),
               address_scope_id=data.get("address_scope_id"), **_bounds(data, version))
    quotas.check(s, row["project_id"], "subnetpool")
    addressscopes.check_pool(s, ctx, row)
    s.execute(insert(T), row)
    rbac.set_wildcard(s, "subnetpool", row, rbac.SHARED, data.get("shared", False))
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    common.require_owner(ctx, row, "update_subnetpool")
    if "prefixes" in data:
        prefixes, version = _prefixes(data["prefixes"])
        if version != row.ip_version:
            raise bad_request("Illegal subnetpool prefix: IP version cannot change.", "InvalidInput")
        old = [ipam.network(p) for p in row.prefixes]
        if not all(any(o.subnet_of(n) for n in map(ipam.network, prefixes)) for o in old):
            raise bad_request("Illegal update to prefixes: existing prefixes may only be extended.",
                              "IllegalPrefixUpdate")
        data["prefixes"] = prefixes
    data.update(_bounds(data, row.ip_version, row))
    if "prefixes" in data or data.get("address_scope_id", row.address_scope_id) != row.address_scope_id:
        addressscopes.check_pool(s, ctx, {**row._asdict(), **data})
    common.touch(s, T, row.id, data)


def delete_pool(s, ctx: Context, row) -> None:
    common.require_owner(ctx, row, "delete_subnetpool")
    if s.execute(select(T_SUB.c.id).where(T_SUB.c.subnetpool_id == row.id).limit(1)).first():
        raise conflict("SubnetPoolInUse", f"Subnet pool {row.id} cannot be deleted: subnets are allocated from it.")
    common.delete_tags(s, row.id)
    rbac.delete_for(s, row.id)
    s.execute(delete(T).where(T.c.id == row.id))


def render(s, ctx: Context, rows) -> list[dict]:
    """Prefix lengths are strings, as Neutron's _make_subnetpool_dict shows them."""
    ids = [r.id for r in rows]
    tags = common.tags_of(s, ids)
    shared = rbac.shared_to(s, "subnetpool", ids, ctx.project_id)
    return [{"id": r.id, "name": r.name, "ip_version": r.ip_version, "prefixes": r.prefixes,
             "min_prefixlen": str(r.min_prefixlen), "max_prefixlen": str(r.max_prefixlen),
             "default_prefixlen": str(r.default_prefixlen), "default_quota": r.default_quota, "shared": r.id in shared,
             "is_default": r.is_default, "address_scope_id": r.address_scope_id, "tags": tags[r.id],
             **common.std(r)} for r in rows]
