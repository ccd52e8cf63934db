"""Port binding: a port with binding:host_id binds when a live L2 agent runs there (vif_type ovs or bridge),
else binding_failed; bound ports stay DOWN until their provisioning blocks (L2, DHCP) clear."""
from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from neutrino.core import agents, common
from neutrino.db import models as m

T = m.Port.__table__
T_PB = m.ProvisioningBlock.__table__
T_IP = m.IPAllocation.__table__
T_SUB = m.Subnet.__table__
L2 = "L2"
DHCP = "DHCP"


def vif_for(agent_row) -> tuple[str, dict]:
    conf = agent_row.configurations or {}
    if agent_row.agent_type == agents.L2_TYPES["linuxbridge"]:
        return "bridge", {"port_filter": True, "connectivity": "l2"}
    return "ovs", {"port_filter": True, "ovs_hybrid_plug": conf.get("ovs_hybrid_plug", True),
                   "datapath_type": conf.get("datapath_type", "system"), "bridge_name": "br-int",
                   "connectivity": "l2"}


def needs_dhcp(s, port_row) -> bool:
    if port_row.device_owner.startswith("network:"):
        return False
    q = select(T_SUB.c.id).join(T_IP, T_IP.c.subnet_id == T_SUB.c.id).where(
        T_IP.c.port_id == port_row.id, T_SUB.c.enable_dhcp.is_(True)).limit(1)
    return s.execute(q).first() is not None


def bind(s, port_id: str, settings) -> None:
    row = s.execute(select(T).where(T.c.id == port_id)).first()
    if row is None:                 # deleted by a transaction that committed since the caller found it
        return
    s.execute(delete(T_PB).where(T_PB.c.port_id == port_id))
    if not row.host_id:
        values = {"vif_type": "unbound", "vif_details": {}}
        if row.device_owner != "network:floatingip":
            values["status"] = "DOWN"
        s.execute(update(T).where(T.c.id == port_id).values(**values))
        return
    agent = agents.l2_agent(s, row.host_id, getattr(settings, "agent_down_time", agents.DEFAULT_DOWN_TIME))
    if agent is None:
        s.execute(update(T).where(T.c.id == port_id).values(vif_type="binding_failed", vif_details={}))
        return
    vif_type, details = vif_for(agent)
    values = {"vif_type": vif_type, "vif_details": details}
    if row.device_owner != "network:floatingip":
        values["status"] = "DOWN"
        blocks = [L2] + ([DHCP] if needs_dhcp(s, row) else [])
        s.execute(insert(T_PB), [{"port_id": port_id, "entity": e} for e in blocks])
    s.execute(update(T).where(T.c.id == port_id).values(**values))


def blocked(s, port_ids) -> set[tuple[str, str]]:
    """The (port, entity) blocks left on these ports: one read spares an agent's report a delete per port it says is
    in place. Only the ports named: while a cloud provisions (or hosts never report their ports) the table holds a
    block per port, and 1000 agents heartbeating would each read all of them."""
    return {(r.port_id, r.entity) for r in common.in_chunks(
        s, lambda c: select(T_PB.c.port_id, T_PB.c.entity).where(T_PB.c.port_id.in_(c)), port_ids)}


def clear(s, port_id: str, entity: str) -> None:
    """An entity finished provisioning the port; ACTIVE when no block is left and the port is bound (as Neutron: a
    port on no host stays DOWN whatever the DHCP agent reports)."""
    s.execute(delete(T_PB).where(T_PB.c.port_id == port_id, T_PB.c.entity == entity))
    if not s.execute(select(T_PB.c.port_id).where(T_PB.c.port_id == port_id).limit(1)).first():
        s.execute(update(T).where(T.c.id == port_id, T.c.status != "ACTIVE", T.c.host_id != "",
                                  T.c.vif_type.not_in(("unbound", "binding_failed"))).values(status="ACTIVE"))
