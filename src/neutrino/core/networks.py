"""Networks: segments (provider attributes, VNI allocation), sharing and external visibility, delete rules."""
from __future__ import annotations

from sqlalchemy import delete, insert, select

from neutrino.context import Context
from neutrino.core import addressscopes, common, ports, qos, quotas, rbac
from neutrino.db import models as m
from neutrino.errors import bad_request, conflict

T = m.Network.__table__
T_SUB = m.Subnet.__table__
T_PORT = m.Port.__table__
MAX_VNI = 2 ** 24 - 1
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")




def scope(ctx: Context):
    """SQL clause for the rows a caller may list (None = everything): own networks and those an RBAC policy
    shares with the caller or offers it as external."""
    return rbac.visible_clause(T, "network", ctx, rbac.NETWORK_ACTIONS)


def get(s, ctx: Context, net_id: str):
    return rbac.get_visible(s, "network", net_id, ctx, "Network", rbac.NETWORK_ACTIONS)


def usable(s, ctx: Context, net, action: str = rbac.SHARED) -> bool:
    """May the caller attach to the network: ports (access_as_shared) or router gateways and floating IPs
    (access_as_external)?"""
    return rbac.usable(s, ctx, "network", net, action)


def _segment(s, data: dict, external: bool, default_mtu: int, exclude: str | None = None) -> dict:
    """Validate provider attributes and fill the segment (network_type, physical_network, segmentation_id, mtu)."""
    ntype = data.get("provider:network_type")
    physnet = data.get("provider:physical_network")
    seg = data.get("provider:segmentation_id")
    if ntype is None and (physnet or seg is not None):
        raise bad_request("Invalid input for operation: provider:network_type required.", "InvalidInput")
    if ntype is None:
        ntype = "vxlan"
    others = select(T).where(T.c.network_type == ntype)
    if exclude:
        others = others.where(T.c.id != exclude)
    if ntype == "flat":
        if not physnet:
            raise bad_request("Invalid input for operation: physical_network required for flat provider network.",
                              "InvalidInput")
        if seg is not None:
            raise bad_request("Invalid input for operation: segmentation_id specified for flat provider network.",
                              "InvalidInput")
        if s.execute(others.where(T.c.physical_network == physnet)).first():
            raise conflict("FlatNetworkInUse", f"Unable to create the flat network. Physical network {physnet} "
                                               "is in use.")
    elif ntype == "vlan":
        if not physnet:
            raise bad_request("Invalid input for operation: physical_network required for vlan provider network.",
                              "InvalidInput")
        if seg is None:     # the lowest free VLAN of the physical network, as ML2 allocates from its range
            used = {r[0] for r in s.execute(select(T.c.segmentation_id).where(
                T.c.network_type == "vlan", T.c.physical_network == physnet))}
            seg = next((v for v in range(1, 4095) if v not in used), None)
            if seg is None:
                raise conflict("NoNetworkAvailable", f"Unable to create the network. No VLAN left on physical "
                                                     f"network {physnet}.")
        if not 1 <= seg <= 4094:
            raise bad_request(f"Invalid input for operation: segmentation_id {seg} out of range (1 through 4094).",
                              "InvalidInput")
        if s.execute(others.where(T.c.physical_network == physnet, T.c.segmentation_id == seg)).first():
            raise conflict("VlanIdInUse", f"Unable to create the network. The VLAN {seg} on physical network "
                                          f"{physnet} is in use.")
    elif ntype in ("vxlan", "geneve"):
        if physnet:
            raise bad_request(f"Invalid input for operation: provider:physical_network specified for {ntype} "
                              "network.", "InvalidInput")
        if seg is None:
            used = {r[0] for r in s.execute(select(T.c.segmentation_id).where(T.c.network_type == ntype))}
            seg = next(v for v in range(1, MAX_VNI) if v not in used)
        elif not 1 <= seg <= MAX_VNI:
            raise bad_request(f"Invalid input for operation: segmentation_id {seg} out of range.", "InvalidInput")
        elif s.execute(others.where(T.c.segmentation_id == seg)).first():
            raise conflict("TunnelIdInUse", f"Unable to create the network. The tunnel ID {seg} is in use.")
    elif ntype == "local":
        if physnet or seg is not None:
            raise bad_request("Invalid input for operation: local networks take no physical_network or "
                              "segmentation_id.", "InvalidInput")
    else:
        raise bad_request(f"Invalid input for operation: network_type value '{ntype}' not supported.",
                          "InvalidInput")
    mtu = default_mtu if ntype in ("vxlan", "geneve") else 1500
    return {"network_type": ntype, "physical_network": physnet, "segmentation_id": seg, "default_mtu": mtu}


MIN_MTU = {4: 68, 6: 1280}


def _check_max_mtu(mtu: int, max_mtu: int) -> None:
    if mtu > max_mtu:
        raise bad_request(f"Invalid input for operation: Requested MTU is too big, maximum is {max_mtu}.",
                          "InvalidInput")


def check_mtu_for_subnet(mtu: int, ip_version: int, net_id: str) -> None:
    """A network takes any MTU; its IPv4 subnets need 68, its IPv6 subnets 1280 (409 as Neutron, on subnet create
    and on the MTU update that would go below)."""
    if mtu < MIN_MTU[ip_version]:
        raise conflict("NetworkMtuTooSmall", f"Network {net_id} has MTU {mtu}: an IPv{ip_version} subnet needs at "
                                             f"least {MIN_MTU[ip_version]}.")


def create(s, ctx: Context, data: dict, settings) -> str:
    row = common.new_row(ctx, data)
    quotas.check(s, row["project_id"], "network")
    seg = _segment(s, data, data.get("router:external", False), settings.default_mtu)
    max_mtu = seg.pop("default_mtu")
    mtu = data.get("mtu") or max_mtu
    _check_max_mtu(mtu, max_mtu)
    row.update(name=data.get("name", ""), admin_state_up=data.get("admin_state_up", True), status="ACTIVE",
               external=data.get("router:external", False),
               is_default=data.get("is_default", False), mtu=mtu,
               port_security_enabled=data.get("port_security_enabled", True), dns_domain=data.get("dns_domain", ""),
               availability_zone_hints=data.get("availability_zone_hints", []), **seg)
    s.execute(insert(T), row)
    rbac.set_wildcard(s, "network", row, rbac.SHARED, data.get("shared", False))
    rbac.set_wildcard(s, "network", row, rbac.EXTERNAL, row["external"])
    qos.bind_new_network(s, ctx, row["id"], row["project_id"], data)
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    common.require_owner(ctx, row, "update_network")
    if any(k in data for k in PROVIDER):
        if s.execute(select(T_PORT.c.id).where(T_PORT.c.network_id == row.id).limit(1)).first():
            raise conflict("InvalidInput", "Provider attributes cannot be changed on a network with ports.")
        merged = {"provider:network_type": row.network_type, "provider:physical_network": row.physical_network,
                  "provider:segmentation_id": row.segmentation_id}
        merged.update({k: data[k] for k in PROVIDER if k in data})
        seg = _segment(s, merged, row.external, settings.default_mtu, exclude=row.id)
        seg.pop("default_mtu")
    else:
        seg = {}
    if "shared" in data:
        rbac.set_wildcard(s, "network", row, rbac.SHARED, data.pop("shared"), conflict(
            "InvalidSharedSetting", f"Unable to reconfigure sharing settings for network {row.id}. Multiple "
                                    "tenants are using it."))
    if "router:external" in data and data["router:external"] != row.external:
        if data["router:external"]:
            rbac.set_wildcard(s, "network", row, rbac.EXTERNAL, True)
        else:
            rbac.unset_external(s, row)
            del data["router:external"]
    if "mtu" in data:
        _check_max_mtu(data["mtu"], settings.default_mtu if row.network_type in ("vxlan", "geneve") else 1500)
        versions = {v for (v,) in s.execute(select(T_SUB.c.ip_version).where(T_SUB.c.network_id == row.id))}
        for version in versions:
            check_mtu_for_subnet(data["mtu"], version, row.id)
    if "qos_policy_id" in data:
        qos.bind(s, ctx, "network", row.id, data.pop("qos_policy_id"))
    names = {"router:external": "external"}
    values = {names.get(k, k): v for k, v in data.items() if k not in PROVIDER}
    common.touch(s, T, row.id, {**values, **seg})


def _delete_free_floating_ips(s, network_id: str) -> None:
    """An external network is being deleted: its floating IPs that serve nothing go with it (as Neutron); an
    associated one keeps its port on the network, which stays in use."""
    fip = m.FloatingIP.__table__
    for row in s.execute(select(fip.c.id, fip.c.floating_port_id).where(
            fip.c.floating_network_id == network_id, fip.c.fixed_port_id.is_(None), fip.c.router_id.is_(None))).all():
        ports.remove_floating_ip(s, row.id, row.floating_port_id)


def delete_network(s, ctx: Context, row) -> None:
    common.require_owner(ctx, row, "delete_network")
    if row.external:
        _delete_free_floating_ips(s, row.id)
    busy = s.execute(select(T_PORT.c.id).where(T_PORT.c.network_id == row.id,
                                               T_PORT.c.device_owner != "network:dhcp").limit(1)).first()
    if busy:
        raise conflict("NetworkInUse", f"Unable to complete operation on network {row.id}. There are one or more "
                                       "ports still in use on the network.")
    for (pid,) in s.execute(select(T_PORT.c.id).where(T_PORT.c.network_id == row.id)).all():
        ports.remove(s, pid)
    for (sid,) in s.execute(select(T_SUB.c.id).where(T_SUB.c.network_id == row.id)).all():
        common.delete_tags(s, sid)
    s.execute(delete(T_SUB).where(T_SUB.c.network_id == row.id))
    s.execute(delete(m.DhcpBinding.__table__).where(m.DhcpBinding.__table__.c.network_id == row.id))
    common.delete_tags(s, row.id)
    rbac.delete_for(s, row.id)
    s.execute(delete(T).where(T.c.id == row.id))


def render(s, ctx: Context, rows) -> list[dict]:
    ids = [r.id for r in rows]
    subnets: dict[str, list[str]] = {i: [] for i in ids}
    for sid, nid in common.in_chunks(s, lambda c: select(T_SUB.c.id, T_SUB.c.network_id)
                                     .where(T_SUB.c.network_id.in_(c)), ids):
        subnets[nid].append(sid)
    tags, policies = common.tags_of(s, ids), qos.policies_of(s, "network", ids)
    shared = rbac.shared_to(s, "network", ids, ctx.project_id)
    scopes = addressscopes.of_networks(s, ids)
    out = []
    for r in rows:
        d = {"id": r.id, "name": r.name, "admin_state_up": r.admin_state_up, "status": r.status,
             "subnets": sorted(subnets[r.id]), "shared": r.id in shared, "router:external": r.external, "mtu": r.mtu,
             "port_security_enabled": r.port_security_enabled, "availability_zone_hints": r.availability_zone_hints,
             "availability_zones": ["nova"],
             "ipv4_address_scope": scopes.get(r.id, {}).get(4), "ipv6_address_scope": scopes.get(r.id, {}).get(6),
             "is_default": r.is_default, "l2_adjacency": True, "dns_domain": r.dns_domain,
             "qos_policy_id": policies[r.id],
             "tags": tags[r.id], **common.std(r)}
        if ctx.is_admin:
            d.update({"provider:network_type": r.network_type, "provider:physical_network": r.physical_network,
                      "provider:segmentation_id": r.segmentation_id})
        out.append(d)
    return out

