"""Scheduling, level-triggered: networks with DHCP get a DHCP host and port, routers get an L3 host, service
ports follow their router/network's host, and ports waiting for an agent bind once it is alive.

`schedule(s, settings)` is idempotent and cheap when nothing is pending; the server calls it after writes that can
create work (subnets, routers, agent reports).
"""
from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from neutrino.context import Context
from neutrino.core import agents, binding, common, ports
from neutrino.db import models as m

T_NET = m.Network.__table__
T_SUB = m.Subnet.__table__
T_PORT = m.Port.__table__
T_IP = m.IPAllocation.__table__
T_DHCP = m.DhcpBinding.__table__
T_ROUTER = m.Router.__table__
ROUTER_OWNERS = ("network:router_interface", "network:router_gateway")


def _down_time(settings) -> int:
    return getattr(settings, "agent_down_time", agents.DEFAULT_DOWN_TIME)


def _dhcp(s, settings) -> None:
    dhcp_nets = {nid for (nid,) in s.execute(select(T_SUB.c.network_id).where(T_SUB.c.enable_dhcp.is_(True),
                                                                              T_SUB.c.ip_version == 4))}
    bound = dict(s.execute(select(T_DHCP.c.network_id, T_DHCP.c.host)).all())
    for nid in set(bound) - dhcp_nets:
        s.execute(delete(T_DHCP).where(T_DHCP.c.network_id == nid))
        for (pid,) in s.execute(select(T_PORT.c.id).where(T_PORT.c.network_id == nid,
                                                          T_PORT.c.device_owner == "network:dhcp")).all():
            ports.remove(s, pid)
    for nid in sorted(dhcp_nets):
        host = bound.get(nid)
        if host is None:
            host = agents.pick_host(s, "dhcp", _down_time(settings))
            if host is None:
                continue
            s.execute(insert(T_DHCP).values(network_id=nid, host=host))
            common.affects_all(s)
        _dhcp_port(s, nid, host, settings)


def _dhcp_port(s, nid: str, host: str, settings) -> None:
    """The network's DHCP port exists, sits on the DHCP host and has an address on every DHCP-enabled subnet."""
    row = s.execute(select(T_PORT).where(T_PORT.c.network_id == nid, T_PORT.c.device_owner == "network:dhcp")).first()
    subnets = [sid for (sid,) in s.execute(select(T_SUB.c.id).where(T_SUB.c.network_id == nid,
                                                                    T_SUB.c.enable_dhcp.is_(True)))]
    if row is None:
        project = s.execute(select(T_NET.c.project_id).where(T_NET.c.id == nid)).scalar_one()
        pid = ports.create_internal(s, Context.admin(), nid, "network:dhcp", f"dhcp-{nid}",
                                    fixed_ips=[{"subnet_id": sid} for sid in subnets], project_id=project,
                                    settings=settings)
        row = s.execute(select(T_PORT).where(T_PORT.c.id == pid)).first()
    else:
        have = {ip["subnet_id"] for ip in ports.fixed_ips(s, row.id)}
        missing = [sid for sid in subnets if sid not in have]
        if missing:
            new = ports.allocate(s, nid, row.mac_address, [{"subnet_id": sid} for sid in missing], "network:dhcp")
            common.affects(s, f"ports:{nid}")
            ports.store_ips(s, row.id, nid, new)
    _place(s, row, host, settings)


def _place(s, row, host: str, settings) -> None:
    """Bind a service port to its host (re-bind when the host changes or binding failed earlier)."""
    if row.host_id != host or row.vif_type in ("unbound", "binding_failed"):
        common.affects_all(s)
        s.execute(update(T_PORT).where(T_PORT.c.id == row.id).values(host_id=host))
        binding.bind(s, row.id, settings)


def _routers(s, settings) -> None:
    for rid, host in s.execute(select(T_ROUTER.c.id, T_ROUTER.c.host)).all():
        if host is None:
            host = agents.pick_host(s, "l3", _down_time(settings))
            if host is None:
                continue
            s.execute(update(T_ROUTER).where(T_ROUTER.c.id == rid).values(host=host))
            common.affects_all(s)
        for row in s.execute(select(T_PORT).where(T_PORT.c.device_id == rid,
                                                  T_PORT.c.device_owner.in_(ROUTER_OWNERS))).all():
            _place(s, row, host, settings)


def _waiting_ports(s, settings, host: str | None = None) -> None:
    """Bind the ports that failed for want of a live agent on hosts that now have one (one agent lookup per host:
    a host coming back may hold thousands of them); only `host`'s when its agent's report is what changed, so that
    agents coming back together do not all bind the same ports in their transactions."""
    live: dict[str, bool] = {}
    stmt = select(T_PORT.c.id, T_PORT.c.network_id, T_PORT.c.host_id).where(T_PORT.c.vif_type == "binding_failed")
    if host is not None:
        stmt = stmt.where(T_PORT.c.host_id == host)
    for pid, nid, where in s.execute(stmt).all():
        if where not in live:
            live[where] = agents.l2_agent(s, where, _down_time(settings)) is not None
        if live[where]:
            binding.bind(s, pid, settings)
            common.affects(s, f"ports:{nid}", f"host:{where}")


def schedule(s, settings, host: str | None = None) -> None:
    """Everything pending, or (`host`: its agent registered or came back) what that can change: DHCP and routers
    anywhere (a new candidate host), ports of that host only."""
    _dhcp(s, settings)
    _routers(s, settings)
    _waiting_ports(s, settings, host)
