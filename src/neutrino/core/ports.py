"""Ports: MAC and fixed IP allocation (IPAM), security groups, address pairs, DHCP options and binding."""
from __future__ import annotations

import ipaddress
import random

from sqlalchemy import bindparam, delete, insert, literal_column, null, select, union_all
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy import update as sql_update

from neutrino.context import Context
from neutrino.core import binding, common, dns, ipam, qos, quotas, rbac, secgroups, used_addresses
from neutrino.db import models as m
from neutrino.errors import Forbidden, bad_request, conflict, not_found

T = m.Port.__table__
T_IP = m.IPAllocation.__table__
T_SUB = m.Subnet.__table__
T_NET = m.Network.__table__
T_SG = m.PortSecurityGroup.__table__
T_ROUTER = m.Router.__table__
T_FIP = m.FloatingIP.__table__
T_PF = m.PortForwarding.__table__
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")
PROTECTED_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip",
                    "network:router_interface_distributed", "network:ha_router_replicated_interface")


def visible(ctx: Context, row) -> bool:
    return ctx.is_admin or row.project_id == ctx.project_id


def scope(ctx: Context):
    if ctx.is_admin:
        return None
    own_nets = select(T_NET.c.id).where(T_NET.c.project_id == ctx.project_id)
    return (T.c.project_id == ctx.project_id) | T.c.network_id.in_(own_nets)


def get(s, ctx: Context, port_id: str):
    row = s.execute(common.by_id(T), {"id": port_id}).first() if isinstance(port_id, str) else None
    if row is not None and (visible(ctx, row) or _owns_network(s, ctx, row.network_id)):
        return row
    raise not_found("Port", port_id)


def _owns_network(s, ctx: Context, net_id: str) -> bool:
    return s.execute(select(T_NET.c.id).where(T_NET.c.id == net_id, T_NET.c.project_id == ctx.project_id)).first() \
        is not None


def fixed_ips(s, port_id: str) -> list[dict]:
    return fixed_ips_of(s, [port_id])[port_id]


def fixed_ips_of(s, port_ids: list[str]) -> dict[str, list[dict]]:
    """port id -> [{subnet_id, ip_address}] (IPv4 first), in one query per chunk of ids."""
    out: dict[str, list[dict]] = {i: [] for i in port_ids}
    for pid, sid, ip in common.in_chunks(s, lambda c: select(T_IP.c.port_id, T_IP.c.subnet_id, T_IP.c.ip_address)
                                         .where(T_IP.c.port_id.in_(c)), port_ids):
        out[pid].append({"subnet_id": sid, "ip_address": ip})
    for v in out.values():
        v.sort(key=lambda x: (":" in x["ip_address"], x["ip_address"]))
    return out


def groups_of(s, port_ids: list[str]) -> dict[str, list[str]]:
    """port id -> sorted security group ids."""
    out: dict[str, list[str]] = {i: [] for i in port_ids}
    for pid, gid in common.in_chunks(s, lambda c: select(T_SG.c.port_id, T_SG.c.security_group_id)
                                     .where(T_SG.c.port_id.in_(c)), port_ids):
        out[pid].append(gid)
    for v in out.values():
        v.sort()
    return out


# --- MAC and IP allocation ----------------------------------------------------------------------------------------

def _new_mac(base: str) -> str:
    """A random MAC under the base prefix; the (network, mac) unique key catches the rare clash and the
    transaction is retried with a new one."""
    return ":".join(base.split(":")[:3] + [f"{random.randint(0, 255):02x}" for _ in range(3)])


def _used(s, subnet_id: str) -> set[str]:
    return set(s.execute(select(T_IP.c.ip_address).where(T_IP.c.subnet_id == subnet_id)).scalars())


def _ip_in_use(s, subnet_id: str, ip: str) -> bool:
    return s.execute(select(T_IP.c.port_id).where(T_IP.c.subnet_id == subnet_id, T_IP.c.ip_address == ip)).first() \
        is not None


def _subnets(s, net_id: str) -> list:
    """The network's subnets, locked until commit (PostgreSQL; SQLite has one writer anyway): concurrent
    allocations on one network take turns instead of all choosing the same lowest free address."""
    return s.execute(select(T_SUB).where(T_SUB.c.network_id == net_id).order_by(T_SUB.c.created_at, T_SUB.c.id)
                     .with_for_update()).all()


def _auto_v6(sub) -> bool:
    return sub.ip_version == 6 and sub.ipv6_address_mode in ("slaac", "dhcpv6-stateless")


def _first_free(s, subnets: list, net_id: str) -> dict | None:
    """One address from the first of these subnets with room (Neutron: one per address family); 409 if all full.
    The subnet's used addresses are kept between transactions (core/used_addresses.py)."""
    for sub in subnets:
        entry = used_addresses.used(s, sub.id, lambda: _used(s, sub.id))
        ip = ipam.next_free(sub.allocation_pools, entry[0], entry[1])
        if ip:
            entry[1] = int(ipaddress.ip_address(ip)) + 1
            return {"subnet_id": sub.id, "ip_address": ip}
    if subnets:
        raise conflict("IpAddressGenerationFailure", f"No more IP addresses available on network {net_id}.")
    return None


def allocate(s, net_id: str, mac: str, requested: list[dict] | None, device_owner: str,
             keep: list[dict] = ()) -> list[dict]:
    """Addresses for a port: the requested ones (checked), or one IPv4 and one DHCPv6-stateful address from the
    first subnets with room; either way, as Neutron, plus the EUI-64 address of every SLAAC/DHCPv6-stateless subnet
    unless the port is a router interface. `keep` are addresses the port already holds (on update)."""
    subnets = _subnets(s, net_id)
    out: list[dict] = []
    if requested is None:
        for family in ([x for x in subnets if x.ip_version == 4],
                       [x for x in subnets if x.ip_version == 6 and not _auto_v6(x)]):
            if (ip := _first_free(s, family, net_id)) is not None:
                out.append(ip)
    else:
        out = _requested(s, net_id, subnets, mac, requested, device_owner, keep)
    if device_owner not in ROUTER_INTERFACE_OWNERS:
        have = {o["subnet_id"] for o in out}
        out += [{"subnet_id": x.id, "ip_address": ipam.eui64(x.cidr, mac)} for x in subnets
                if _auto_v6(x) and x.id not in have]
    return out


def _requested(s, net_id: str, subnets: list, mac: str, requested: list[dict], device_owner: str,
               keep: list[dict]) -> list[dict]:
    by_id = {sub.id: sub for sub in subnets}
    held = {(k["subnet_id"], k["ip_address"]) for k in keep}
    out: list[dict] = []
    for req in requested:
        sub_id, ip = req.get("subnet_id"), req.get("ip_address")
        if sub_id is None and ip is None:
            raise bad_request("Invalid input for operation: fixed_ips entry needs subnet_id or ip_address.",
                              "InvalidInput")
        if sub_id is None:
            sub = next((x for x in subnets if ipaddress.ip_address(ip) in ipam.network(x.cidr)), None)
            if sub is None:
                raise bad_request(f"Invalid input for operation: IP address {ip} is not a valid IP for any of the "
                                  "subnets on the specified network.", "InvalidInput")
        else:
            sub = by_id.get(sub_id)
            if sub is None:
                if s.execute(select(T_SUB.c.id).where(T_SUB.c.id == sub_id)).first():
                    raise bad_request(f"Invalid input for operation: Failed to create port on network {net_id}, "
                                      f"because fixed_ips included invalid subnet {sub_id}.", "InvalidInput")
                raise not_found("Subnet", sub_id)
        auto = _auto_v6(sub) and device_owner not in ROUTER_INTERFACE_OWNERS
        if ip is None:
            ip = (ipam.eui64(sub.cidr, mac) if auto
                  else ipam.next_free(sub.allocation_pools, _used(s, sub.id) | {
                      o["ip_address"] for o in out if o["subnet_id"] == sub.id}))
            if ip is None:
                raise conflict("IpAddressGenerationFailure", f"No more IP addresses available for subnet {sub.id}.")
        else:
            if ipaddress.ip_address(ip) not in ipam.network(sub.cidr):
                raise bad_request(f"Invalid input for operation: IP address {ip} is not a valid IP for the specified "
                                  "subnet.", "InvalidInput")
            if auto and ip != ipam.eui64(sub.cidr, mac):
                raise bad_request(f"IPv6 address {ip} cannot be directly assigned to a port on subnet {sub.id} "
                                  "since the subnet is configured for automatic addresses.",
                                  "AllocationOnAutoAddressSubnet")
            if ip == sub.gateway_ip and device_owner not in ("network:router_interface", "network:router_gateway"):
                raise conflict("IpAddressInUse", f"Unable to complete operation for network {net_id}. The IP "
                                                 f"address {ip} is in use.")
            if (sub.id, ip) not in held and _ip_in_use(s, sub.id, ip):
                raise conflict("IpAddressInUse", f"Unable to complete operation for network {net_id}. The IP "
                                                 f"address {ip} is in use.")
        entry = {"subnet_id": sub.id, "ip_address": ip}
        if entry in out:
            raise bad_request("Invalid input for operation: Duplicate IP address in fixed_ips.", "InvalidInput")
        out.append(entry)
    return out


def store_ips(s, port_id: str, net_id: str, ips: list[dict]) -> None:
    if ips:
        s.execute(insert(T_IP), [{"port_id": port_id, "network_id": net_id, **ip} for ip in ips])
        used_addresses.allocated(s, ips)


def release_ips(s, clause) -> None:
    """Delete the addresses the clause selects."""
    s.execute(delete(T_IP).where(clause))
    used_addresses.released(s)


# --- security groups, address pairs -------------------------------------------------------------------------------

def _pairs(pairs: list[dict], mac: str) -> list[dict]:
    out = {}
    for p in pairs:
        entry = {"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or mac}
        key = (entry["ip_address"], entry["mac_address"])
        if key in out:
            raise bad_request("Invalid input for operation: duplicate address pair.", "DuplicateAddressPairInRequest")
        out[key] = entry
    return list(out.values())


def _set_groups(s, port_id: str, sg_ids: list[str], new: bool = False) -> None:
    if not new:
        s.execute(delete(T_SG).where(T_SG.c.port_id == port_id))
    if sg_ids:
        s.execute(insert(T_SG), [{"port_id": port_id, "security_group_id": g} for g in dict.fromkeys(sg_ids)])


def _groups_for_new(s, ctx: Context, data: dict, project_id: str, owner: str, port_security: bool) -> list[str]:
    if "security_groups" in data:
        ids = secgroups.check_ids(s, ctx, data["security_groups"])
        if ids and not port_security:
            raise conflict("PortSecurityAndIPRequiredForSecurityGroups",
                           "Port security must be enabled and port must have an IP address in order to use "
                           "security groups.")
        return ids
    if not port_security or owner.startswith("network:"):
        return []
    return [secgroups.ensure_default(s, project_id)]


# --- create / update / delete -------------------------------------------------------------------------------------

NET_OWNER_ATTRS = ("mac_address", "port_security_enabled", "allowed_address_pairs")


def _check_net_owner_attrs(ctx: Context, net, data: dict, action: str) -> None:
    """Neutron's policy: only an admin or the network's owner may set a port's MAC (on create), port security,
    address pairs or a fixed IP address; a member using another project's shared network gets 403."""
    if ctx.is_admin or net.project_id == ctx.project_id:
        return
    names = [k for k in NET_OWNER_ATTRS if k in data]
    if any("ip_address" in f for f in data.get("fixed_ips") or []):
        names.append("fixed_ips:ip_address")
    if names:
        raise Forbidden(f"(rule:{action}:{names[0]}) is disallowed by policy")


def _affects(s, network_id: str, hosts: list, groups: list[str]) -> None:
    """A port changes the views of its hosts, of the hosts that see the other ports of its network (its DHCP host,
    hosts with tunnels: l2pop) and of hosts whose rules name its groups as remote groups."""
    common.affects(s, f"ports:{network_id}", *(f"host:{h}" for h in hosts if h),
                   *(f"members:{g}" for g in groups))


def check_device(s, ctx: Context, net_project: str, owner: str, device_id: str, project_id: str,
                 action: str) -> None:
    """Neutron's policy and checks on who a port claims to belong to: a `network:` owner (router, DHCP, floating
    IP ports) needs the network's owner, and a router interface's device_id must be a router of the port's project
    (else another project's router would gain an interface it can neither see nor remove)."""
    if ctx.is_admin:
        return
    if owner.startswith("network:") and net_project != ctx.project_id:
        raise Forbidden(f"(rule:{action}_port:device_owner) is disallowed by policy")
    if owner in ROUTER_INTERFACE_OWNERS and device_id:
        router = s.execute(select(T_ROUTER.c.project_id).where(T_ROUTER.c.id == device_id)).first()
        if router is not None and router.project_id != project_id:
            raise conflict("DeviceIDNotOwnedByTenant", f"The following device_id {device_id} is not owned by your "
                                                       "tenant or matches another tenants router.")


def create(s, ctx: Context, data: dict, settings) -> str:
    net = rbac.get_visible(s, "network", data["network_id"], ctx, "Network", rbac.NETWORK_ACTIONS)
    if not rbac.usable(s, ctx, "network", net, rbac.SHARED):
        raise Forbidden(f"(rule:create_port) is disallowed by policy: network {net.id} is not yours")
    _check_net_owner_attrs(ctx, net, data, "create_port")
    row = common.new_row(ctx, data)
    check_device(s, ctx, net.project_id, data.get("device_owner", ""), data.get("device_id", ""), row["project_id"],
                 "create")
    dns.validate(data.get("dns_name", ""), settings.dns_domain)
    quotas.check(s, row["project_id"], "port")
    owner = data.get("device_owner", "")
    if "mac_address" in data:
        mac = data["mac_address"]
        if s.execute(select(T.c.id).where(T.c.network_id == net.id, T.c.mac_address == mac)).first():
            raise conflict("MacAddressInUse", f"Unable to complete operation for network {net.id}. The mac address "
                                              f"{mac} is in use.")
    else:
        mac = _new_mac(settings.base_mac)
    port_security = data.get("port_security_enabled", net.port_security_enabled)
    pairs = _pairs(data.get("allowed_address_pairs", []), mac)
    if pairs and not port_security:
        raise conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have "
                                                            "allowed address pairs on a port.")
    ips = allocate(s, net.id, mac, data.get("fixed_ips"), owner)
    groups = _groups_for_new(s, ctx, data, row["project_id"], owner, port_security)
    row.update(network_id=net.id, name=data.get("name", ""), admin_state_up=data.get("admin_state_up", True),
               status="N/A" if owner == "network:floatingip" else "DOWN", mac_address=mac,
               device_id=data.get("device_id", ""), device_owner=owner, port_security_enabled=port_security,
               host_id=data.get("binding:host_id", ""), vnic_type=data.get("binding:vnic_type", "normal"),
               profile=data.get("binding:profile", {}), allowed_address_pairs=pairs,
               extra_dhcp_opts=data.get("extra_dhcp_opts", []), dns_name=data.get("dns_name", ""))
    s.execute(insert(T), row)
    _affects(s, net.id, [row["host_id"]], groups)
    store_ips(s, row["id"], net.id, ips)
    _set_groups(s, row["id"], groups, new=True)
    if data.get("qos_policy_id"):
        qos.bind(s, ctx, "port", row["id"], data["qos_policy_id"])
    if row["host_id"]:
        binding.bind(s, row["id"], settings)
    return row["id"]


def create_internal(s, ctx: Context, network_id: str, device_owner: str, device_id: str,
                    fixed_ips: list[dict] | None = None, project_id: str | None = None, name: str = "",
                    settings=None) -> str:
    """A port the service makes for itself (router, DHCP, floating IP): no policy checks, no security groups."""
    from neutrino.config import Settings
    data = {"network_id": network_id, "device_owner": device_owner, "device_id": device_id, "name": name,
            "project_id": project_id if project_id is not None else ctx.project_id, "security_groups": []}
    if fixed_ips is not None:
        data["fixed_ips"] = fixed_ips
    return create(s, Context.admin(), data, settings or Settings())


def update(s, ctx: Context, row, data: dict, settings) -> None:
    if not (ctx.is_admin or row.project_id == ctx.project_id or _owns_network(s, ctx, row.network_id)):
        raise Forbidden("(rule:update_port) is disallowed by policy")
    if "mac_address" in data and not ctx.is_admin:
        raise Forbidden("(rule:update_port:mac_address) is disallowed by policy")
    _check_net_owner_attrs(ctx, s.execute(common.by_id(T_NET), {"id": row.network_id}).first(),
                           {k: v for k, v in data.items() if k != "fixed_ips" or v != fixed_ips(s, row.id)},
                           "update_port")
    before = groups_of(s, [row.id])[row.id]
    if "device_owner" in data or "device_id" in data:
        net_project = s.execute(select(T_NET.c.project_id).where(T_NET.c.id == row.network_id)).scalar_one()
        check_device(s, ctx, net_project, data.get("device_owner", row.device_owner),
                     data.get("device_id", row.device_id), row.project_id, "update")
    dns.validate(data.get("dns_name", ""), settings.dns_domain)
    values = {}
    mac = data.get("mac_address", row.mac_address)
    if "mac_address" in data and mac != row.mac_address:
        if row.vif_type not in ("unbound", "binding_failed") and row.host_id:
            raise conflict("PortBound", f"Unable to complete operation on port {row.id}, port is already bound.")
        if s.execute(select(T.c.id).where(T.c.network_id == row.network_id, T.c.mac_address == mac)).first():
            raise conflict("MacAddressInUse", f"Unable to complete operation for network {row.network_id}. The mac "
                                              f"address {mac} is in use.")
        values["mac_address"] = mac
    port_security = data.get("port_security_enabled", row.port_security_enabled)
    if "fixed_ips" in data:
        common.affects_all(s)               # a floating IP's fixed address may follow: its router's host
        current = fixed_ips(s, row.id)
        new = allocate(s, row.network_id, mac, data["fixed_ips"], row.device_owner, keep=current)
        release_ips(s, T_IP.c.port_id == row.id)
        store_ips(s, row.id, row.network_id, new)
    if "security_groups" in data:
        groups = secgroups.check_ids(s, ctx, data["security_groups"])
        _set_groups(s, row.id, groups)
    else:
        groups = [g for (g,) in s.execute(select(T_SG.c.security_group_id).where(T_SG.c.port_id == row.id))]
    pairs = _pairs(data["allowed_address_pairs"], mac) if "allowed_address_pairs" in data else \
        row.allowed_address_pairs
    if not port_security and (groups or pairs):
        if groups:
            raise conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable "
                                                               "port security or ip address until security group "
                                                               "is removed.")
        raise conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have "
                                                             "allowed address pairs on a port.")
    names = {"binding:host_id": "host_id", "binding:vnic_type": "vnic_type", "binding:profile": "profile"}
    for k, v in data.items():
        if k in ("fixed_ips", "security_groups", "mac_address", "qos_policy_id"):
            continue
        values[names.get(k, k)] = v
    if "allowed_address_pairs" in data:
        values["allowed_address_pairs"] = pairs
    if "qos_policy_id" in data:
        qos.bind(s, ctx, "port", row.id, data["qos_policy_id"])
    common.touch(s, T, row.id, values)
    _affects(s, row.network_id, [row.host_id, data.get("binding:host_id")], before + groups)
    if data.get("binding:host_id", row.host_id) != row.host_id or \
            data.get("binding:vnic_type", row.vnic_type) != row.vnic_type or \
            ("binding:host_id" in data and row.vif_type == "binding_failed"):
        binding.bind(s, row.id, settings)


def delete_port(s, ctx: Context, row) -> None:
    if not (ctx.is_admin or row.project_id == ctx.project_id or _owns_network(s, ctx, row.network_id)):
        raise Forbidden("(rule:delete_port) is disallowed by policy")
    if row.device_owner in PROTECTED_OWNERS:
        raise conflict("L3PortInUse" if "router" in row.device_owner else "PortInUse",
                       f"Port {row.id} cannot be deleted directly via the port API: has device owner "
                       f"{row.device_owner}.")
    remove(s, row.id)


def remove(s, port_id: str) -> None:
    """Delete a port and everything hanging off it (IPs, group bindings, FIP associations, tags)."""
    row = s.execute(select(T.c.network_id, T.c.host_id).where(T.c.id == port_id)).first()
    if row is not None:
        _affects(s, row.network_id, [row.host_id], groups_of(s, [port_id])[port_id])
    _free_floating_ips(s, port_id)
    release_ips(s, T_IP.c.port_id == port_id)
    s.execute(delete(T_SG).where(T_SG.c.port_id == port_id))
    s.execute(delete(m.ProvisioningBlock.__table__).where(m.ProvisioningBlock.__table__.c.port_id == port_id))
    common.delete_tags(s, port_id)
    s.execute(delete(T).where(T.c.id == port_id))


def remove_floating_ip(s, fip_id: str, port_id: str) -> None:
    """Delete a floating IP and its own port (on the external network, holding its address)."""
    common.delete_tags(s, fip_id)
    s.execute(delete(T_FIP).where(T_FIP.c.id == fip_id))
    remove(s, port_id)


def _free_floating_ips(s, port_id: str) -> None:
    """A port is going away: its floating IPs are freed and its port forwardings removed (a floating IP left with no
    forwarding no longer belongs to a router)."""
    associated = s.execute(select(T_FIP.c.id).where(T_FIP.c.fixed_port_id == port_id)).all()
    for (fid,) in associated:
        common.touch(s, T_FIP, fid, {"fixed_port_id": None, "fixed_ip_address": None, "router_id": None,
                                     "status": "DOWN"})
    fips = {f for (f,) in s.execute(select(T_PF.c.floatingip_id).where(T_PF.c.internal_port_id == port_id))}
    if associated or fips:
        common.affects_all(s)               # a router's NAT changes: its host is named by no key of the port
    s.execute(delete(T_PF).where(T_PF.c.internal_port_id == port_id))
    for fid in fips:
        if not s.execute(select(T_PF.c.id).where(T_PF.c.floatingip_id == fid).limit(1)).first():
            s.execute(sql_update(T_FIP).where(T_FIP.c.id == fid).values(router_id=None))


# --- rendering ----------------------------------------------------------------------------------------------------

def _related_select(ids, nets):
    """What a port shows from other tables, in one statement (a statement costs more than its rows): (what, id,
    value, value2) rows of its addresses, groups, tags and QoS policy, and its networks' QoS policies. ids and nets:
    expanding parameters, a list's own select of its ports' ids and networks, or (one port) plain parameters."""
    none = null()

    def match(col, values):
        return col == values if isinstance(values, BindParameter) and not values.expanding else col.in_(values)
    return union_all(
        select(literal_column("'ip'"), T_IP.c.port_id, T_IP.c.subnet_id, T_IP.c.ip_address)
        .where(match(T_IP.c.port_id, ids)),
        select(literal_column("'sg'"), T_SG.c.port_id, T_SG.c.security_group_id, none)
        .where(match(T_SG.c.port_id, ids)),
        select(literal_column("'tag'"), common.T_TAGS.c.resource_id, common.T_TAGS.c.tag, none)
        .where(match(common.T_TAGS.c.resource_id, ids)),
        select(literal_column("'qos'"), qos.T_PORT.c.port_id, qos.T_PORT.c.policy_id, none)
        .where(match(qos.T_PORT.c.port_id, ids)),
        select(literal_column("'netqos'"), qos.T_NET.c.network_id, qos.T_NET.c.policy_id, none)
        .where(match(qos.T_NET.c.network_id, nets)))


_RELATED = _related_select(common.IDS, bindparam("nets", expanding=True))
_RELATED_ALL = _related_select(select(T.c.id), select(T.c.network_id))
_RELATED_ONE = _related_select(bindparam("id"), bindparam("net"))      # no per-call expansion of the SQL


def _related_rows(s, rows, listed):
    if listed is not None:
        # the list's own statement instead of its ids: 1000 bound ids cost more than the rows they bring
        if listed.whereclause is None:
            return [s.execute(_RELATED_ALL).all()]
        return [s.execute(_related_select(listed.with_only_columns(T.c.id),
                                          listed.with_only_columns(T.c.network_id))).all()]
    if len(rows) == 1:
        return [s.execute(_RELATED_ONE, {"id": rows[0].id, "net": rows[0].network_id}).all()]
    ids, nets = [r.id for r in rows], list({r.network_id for r in rows})
    # SQLite caps bound parameters; the networks go with the first
    return [s.execute(_RELATED, {"ids": ids[n:n + 900], "nets": nets if n == 0 else []}).all()
            for n in range(0, len(ids), 900)]


def _related(s, rows, listed=None):
    """Each port's addresses, groups, tags and QoS policies, and its network's policy; `listed`: the select
    these rows came from (what it selects at another moment is ignored)."""
    ids = [r.id for r in rows]
    ips: dict[str, list[dict]] = {i: [] for i in ids}
    groups: dict[str, list[str]] = {i: [] for i in ids}
    tags: dict[str, list[str]] = {i: [] for i in ids}
    own_qos: dict[str, str | None] = dict.fromkeys(ids)
    net_qos: dict[str, str | None] = dict.fromkeys({r.network_id for r in rows})
    for batch in _related_rows(s, rows, listed):
        for what, rid, value, value2 in batch:
            try:
                if what == "ip":
                    ips[rid].append({"subnet_id": value, "ip_address": value2})
                elif what == "sg":
                    groups[rid].append(value)
                elif what == "tag":
                    tags[rid].append(value)
                elif what == "qos":
                    own_qos[rid] = value
                else:
                    net_qos[rid] = value
            except KeyError:
                pass
    for i in ids:
        if len(ips[i]) > 1:
            ips[i].sort(key=lambda x: (":" in x["ip_address"], x["ip_address"]))
        groups[i].sort()
        tags[i].sort()
    return ips, groups, tags, own_qos, net_qos


def render(s, ctx: Context, rows, dns_domain: str = dns.DISABLED_DOMAIN, listed=None) -> list[dict]:
    """The ports' API bodies; `listed`: the select the rows came from (a list's)."""
    rows = common.plain(rows)
    ips, groups, tags, own_qos, net_qos = _related(s, rows, listed)
    out = []
    for r in rows:
        d = {"id": r.id, "name": r.name, "network_id": r.network_id, "admin_state_up": r.admin_state_up,
             "status": r.status, "mac_address": r.mac_address,
             "fixed_ips": ips[r.id],
             "device_id": r.device_id, "device_owner": r.device_owner,
             "port_security_enabled": r.port_security_enabled, "security_groups": groups[r.id],
             "allowed_address_pairs": r.allowed_address_pairs or [], "extra_dhcp_opts": r.extra_dhcp_opts or [],
             "dns_name": r.dns_name, "dns_assignment": dns.assignment(r.dns_name, ips[r.id], dns_domain),
             "binding:vnic_type": r.vnic_type,
             "ip_allocation": "immediate", "propagate_uplink_status": False, "resource_request": None,
             "qos_policy_id": own_qos[r.id], "qos_network_policy_id": net_qos[r.network_id],
             "tags": tags[r.id], **common.std(r)}
        if ctx.is_admin:
            d.update({"binding:host_id": r.host_id, "binding:profile": r.profile or {},
                      "binding:vif_type": r.vif_type, "binding:vif_details": r.vif_details or {}})
        out.append(d)
    return out
