"""Network IP availability, as Neutron computes it: per subnet, total = the size of its allocation pools and
used = its allocated addresses (every port's fixed IP, whether in a pool or not); per network, the sums.
`ip_availability_details` (network-ip-availability-details) splits both by subnet CIDR and by allocation pools."""
from __future__ import annotations

import ipaddress

from sqlalchemy import select

from neutrino.context import Context
from neutrino.core import common
from neutrino.db import models as m

T_NET = m.Network.__table__
T_SUB = m.Subnet.__table__
T_IP = m.IPAllocation.__table__


DETAILS = ("total_ips_in_subnet", "total_ips_in_allocation_pool", "used_ips_in_subnet",
           "used_ips_in_allocation_pool")


def _ranges(pools: list[dict]) -> list[tuple[int, int]]:
    return [(int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"]))) for p in pools]


def _details(cidr: str, pools: list[dict], addresses: list[str]) -> dict:
    """The subnet's size (IPv4 without network and broadcast) and pools' size, and the addresses used in each."""
    net = ipaddress.ip_network(cidr)
    ranges = _ranges(pools)
    in_pool = sum(1 for a in addresses if any(lo <= int(ipaddress.ip_address(a)) <= hi for lo, hi in ranges))
    return {"total_ips_in_subnet": net.num_addresses - (2 if net.version == 4 else 0),
            "total_ips_in_allocation_pool": sum(hi - lo + 1 for lo, hi in ranges),
            "used_ips_in_subnet": len(addresses), "used_ips_in_allocation_pool": in_pool}


def _sum(items: list[dict]) -> dict:
    return {k: sum(x["ip_availability_details"][k] for x in items) for k in DETAILS}


def availabilities(s, ctx: Context, net_ids: list[str] | None = None) -> list[dict]:
    """One entry per network (all, or `net_ids`); only admins get any (Neutron's default policy)."""
    if not ctx.is_admin:
        return []
    nets = select(T_NET.c.id, T_NET.c.name, T_NET.c.project_id).order_by(T_NET.c.id)
    if net_ids is not None:
        nets = nets.where(T_NET.c.id.in_(net_ids))
    rows = s.execute(nets).all()
    ids = [r.id for r in rows]
    subnets = common.in_chunks(s, lambda c: select(T_SUB.c.id, T_SUB.c.name, T_SUB.c.network_id, T_SUB.c.cidr,
                                                   T_SUB.c.ip_version, T_SUB.c.allocation_pools)
                               .where(T_SUB.c.network_id.in_(c)).order_by(T_SUB.c.id), ids)
    used: dict[str, list[str]] = {}
    for sid, addr in common.in_chunks(s, lambda c: select(T_IP.c.subnet_id, T_IP.c.ip_address)
                                      .where(T_IP.c.network_id.in_(c)), ids):
        used.setdefault(sid, []).append(addr)
    per_net: dict[str, list[dict]] = {i: [] for i in ids}
    for sub in subnets:
        details = _details(sub.cidr, sub.allocation_pools or [], used.get(sub.id, []))
        per_net[sub.network_id].append({
            "subnet_id": sub.id, "subnet_name": sub.name, "cidr": sub.cidr, "ip_version": sub.ip_version,
            "total_ips": details["total_ips_in_allocation_pool"], "used_ips": details["used_ips_in_subnet"],
            "ip_availability_details": details})
    return [with_totals({"network_id": r.id, "network_name": r.name, "project_id": r.project_id,
                         "tenant_id": r.project_id, "subnet_ip_availability": per_net[r.id]}) for r in rows]


def with_totals(item: dict) -> dict:
    """A network's figures are the sums over the subnets it lists."""
    subs = item["subnet_ip_availability"]
    return {**item, "total_ips": sum(x["total_ips"] for x in subs), "used_ips": sum(x["used_ips"] for x in subs),
            "ip_availability_details": _sum(subs)}
