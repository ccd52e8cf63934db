"""Address groups: named sets of CIDRs a security group rule may name as its remote side
(`remote_address_group_id`); adding or removing addresses changes the ipset / nft set in place on every host."""
from __future__ import annotations

import ipaddress

from sqlalchemy import delete, insert, select

from neutrino.context import Context
from neutrino.core import common
from neutrino.db import models
from neutrino.db import services as m
from neutrino.errors import bad_request, conflict, not_found

T = m.AddressGroup.__table__
T_ADDR = m.AddressGroupAddress.__table__
T_SGR = models.SecurityGroupRule.__table__


def cidr(address: str) -> str:
    """Addresses are kept as CIDRs, host bits cleared: 10.0.0.1 -> 10.0.0.1/32 (as Neutron normalizes them)."""
    return str(ipaddress.ip_network(address, strict=False))


def scope(ctx: Context):
    return None if ctx.is_admin else T.c.project_id == ctx.project_id


def get(s, ctx: Context, group_id: str):
    return common.get_visible(s, T, group_id, ctx, "AddressGroup")


def addresses_of(s, ids) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in ids}
    for gid, addr in common.in_chunks(s, lambda c: select(T_ADDR.c.address_group_id, T_ADDR.c.address)
                                      .where(T_ADDR.c.address_group_id.in_(c)), list(ids)):
        out[gid].append(addr)
    for v in out.values():
        v.sort(key=lambda a: (":" in a, ipaddress.ip_network(a)))
    return out


def create(s, ctx: Context, data: dict, settings) -> str:
    row = common.new_row(ctx, data)
    row.update(name=data.get("name", ""))
    s.execute(insert(T), row)
    add(s, row["id"], data.get("addresses", []))
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    common.require_owner(ctx, row, "update_address_group")
    common.touch(s, T, row.id, data)


def add(s, group_id: str, addresses: list[str]) -> None:
    """Add addresses; any already in the group is a 400 and nothing is added."""
    new = list(dict.fromkeys(cidr(a) for a in addresses))
    have = set(addresses_of(s, [group_id])[group_id])
    dup = [a for a in new if a in have]
    if dup:
        raise bad_request(f"Addresses {dup} already exist in address group {group_id}.", "AddressesAlreadyExist")
    if new:
        s.execute(insert(T_ADDR), [{"address_group_id": group_id, "address": a} for a in new])


def remove(s, group_id: str, addresses: list[str]) -> None:
    """Remove addresses; any not in the group is a 404 and nothing is removed."""
    gone = list(dict.fromkeys(cidr(a) for a in addresses))
    have = set(addresses_of(s, [group_id])[group_id])
    missing = [a for a in gone if a not in have]
    if missing:
        err = not_found("Addresses", group_id)
        err.message = f"Addresses {missing} not found in the address group {group_id}."
        raise err
    if gone:
        s.execute(delete(T_ADDR).where(T_ADDR.c.address_group_id == group_id, T_ADDR.c.address.in_(gone)))


def change(s, ctx: Context, row, addresses: list[str], adding: bool) -> None:
    common.require_owner(ctx, row, f"{'add' if adding else 'remove'}_addresses")
    (add if adding else remove)(s, row.id, addresses)
    common.touch(s, T, row.id)


def delete_group(s, ctx: Context, row) -> None:
    common.require_owner(ctx, row, "delete_address_group")
    if s.execute(select(T_SGR.c.id).where(T_SGR.c.remote_address_group_id == row.id).limit(1)).first():
        raise conflict("AddressGroupInUse",
                       f"Address group {row.id} is in use on one or more security group rules.")
    s.execute(delete(T_ADDR).where(T_ADDR.c.address_group_id == row.id))
    common.delete_tags(s, row.id)
    s.execute(delete(T).where(T.c.id == row.id))


def render(s, ctx: Context, rows) -> list[dict]:
    ids = [r.id for r in rows]
    addrs, tags = addresses_of(s, ids), common.tags_of(s, ids)
    return [{"id": r.id, "name": r.name, "addresses": addrs[r.id], "tags": tags[r.id], **common.std(r)}
            for r in rows]


def members(s, ids) -> dict[str, dict[str, list[str]]]:
    """group id -> {"IPv4": [cidr], "IPv6": [cidr]}: what the firewall's sets hold for rules naming the group,
    overlaps merged (an nft interval set refuses overlapping elements; an ipset matches the same either way)."""
    out = {}
    for gid, addrs in addresses_of(s, ids).items():
        nets = [ipaddress.ip_network(a) for a in addrs]
        out[gid] = {eth: [str(n) for n in ipaddress.collapse_addresses(x for x in nets if x.version == v)]
                    for eth, v in (("IPv4", 4), ("IPv6", 6))}
    return out
