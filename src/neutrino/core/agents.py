"""Agents: liveness from heartbeats, and choosing a host for a role (DHCP networks, routers)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from neutrino.core import common
from neutrino.db import models as m

T = m.Agent.__table__
L2_TYPES = {"ovs": "Open vSwitch agent", "linuxbridge": "Linux bridge agent"}
ROLE_TYPES = {"dhcp": "DHCP agent", "l3": "L3 agent", "metadata": "Metadata agent"}
DEFAULT_DOWN_TIME = 75


def alive(row, down_time: int = DEFAULT_DOWN_TIME) -> bool:
    return row.heartbeat_timestamp >= common.now() - timedelta(seconds=down_time)


def l2_agent(s, host: str, down_time: int = DEFAULT_DOWN_TIME):
    """The live L2 agent row of a host, or None."""
    for row in s.execute(select(T).where(T.c.host == host, T.c.agent_type.in_(list(L2_TYPES.values())))):
        if alive(row, down_time):
            return row
    return None


def pick_host(s, role: str, down_time: int = DEFAULT_DOWN_TIME) -> str | None:
    """The live host with the role that carries the least of it (ties: by name), for scheduling."""
    rows = [r for r in s.execute(select(T).where(T.c.agent_type == ROLE_TYPES[role])) if alive(r, down_time)
            and r.admin_state_up]
    if not rows:
        return None
    load = {r.host: 0 for r in rows}
    if role == "dhcp":
        for (host,) in s.execute(select(m.DhcpBinding.__table__.c.host)):
            if host in load:
                load[host] += 1
    elif role == "l3":
        for (host,) in s.execute(select(m.Router.__table__.c.host)):
            if host in load:
                load[host] += 1
    return min(load, key=lambda h: (load[h], h))
