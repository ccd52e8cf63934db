"""Network IP availability, as Neutron computes it: per subnet, total = the size of its allocation pools and
used = its allocated addresses (every port's fixed IP, whether in a pool or not); per network, the sums."""
from __future__ import annotations

import ipaddress

from sqlalchemy import func, select

from neutrino.context import Context
from neutrino.core import common
from neutrino.db import models as m

T_NET = m.Network.__table__
T_SUB = m.Subnet.__table__
T_IP = m.IPAllocation.__table__


def pool_size(pools: list[dict]) -> int:
    return sum(int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1 for p in pools)


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
    used = dict(common.in_chunks(s, lambda c: select(T_IP.c.subnet_id, func.count()).where(T_IP.c.network_id.in_(c))
                                 .group_by(T_IP.c.subnet_id), ids))
    per_net: dict[str, list[dict]] = {i: [] for i in ids}
    for sub in subnets:
        per_net[sub.network_id].append({
            "subnet_id": sub.id, "subnet_name": sub.name, "cidr": sub.cidr, "ip_version": sub.ip_version,
            "total_ips": pool_size(sub.allocation_pools or []), "used_ips": used.get(sub.id, 0)})
    return [{"network_id": r.id, "network_name": r.name, "project_id": r.project_id, "tenant_id": r.project_id,
             "total_ips": sum(x["total_ips"] for x in per_net[r.id]),
             "used_ips": sum(x["used_ips"] for x in per_net[r.id]),
             "subnet_ip_availability": per_net[r.id]} for r in rows]
