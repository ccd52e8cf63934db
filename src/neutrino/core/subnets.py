"""Subnets: CIDR (given or carved from a subnet pool), gateway, pools, DNS, host routes, IPv6 modes."""
from __future__ import annotations

import ipaddress

from sqlalchemy import delete, insert, select

from neutrino.context import Context
from neutrino.core import addressscopes, common, ipam, networks, quotas, rbac, subnetpools, used_addresses
from neutrino.db import models as m
from neutrino.errors import NotFound, bad_request, conflict, not_found

T = m.Subnet.__table__
T_NET = m.Network.__table__
T_IP = m.IPAllocation.__table__
T_PORT = m.Port.__table__


def scope(ctx: Context):
    """A caller sees its own subnets and every subnet of a network it sees (shared or external to it)."""
    if ctx.is_admin:
        return None
    return (T.c.project_id == ctx.project_id) | T.c.network_id.in_(select(T_NET.c.id).where(networks.scope(ctx)))


def shared_filter(values: list[str]):
    """`shared` filters subnets by their network's sharing with everyone (a filter only: Neutron does not show
    it)."""
    wanted = {v.lower() in ("true", "1") for v in values}
    shared = T.c.network_id.in_(rbac.granted_ids("network", rbac.WILDCARD))
    return shared if wanted == {True} else ~shared if wanted == {False} else T.c.id.is_not(None)


def get(s, ctx: Context, subnet_id: str):
    row = s.execute(select(T).where(T.c.id == subnet_id)).first() if isinstance(subnet_id, str) else None
    if row is not None and row.project_id != ctx.project_id:
        try:
            networks.get(s, ctx, row.network_id)
        except NotFound:
            row = None
    if row is None:
        raise not_found("Subnet", subnet_id)
    return row


def _from_pool(s, ctx: Context, data: dict) -> tuple[str, int]:
    """Carve the first free prefix of the wanted length out of the subnet pool."""
    pool = subnetpools.get(s, ctx, data["subnetpool_id"])
    plen = data.get("prefixlen") or pool.default_prefixlen
    if not pool.min_prefixlen <= plen <= pool.max_prefixlen:
        raise bad_request(f"Illegal prefix bounds: prefixlen={plen}, min_prefixlen={pool.min_prefixlen}, "
                          f"max_prefixlen={pool.max_prefixlen}.", "IllegalSubnetPoolPrefixBounds")
    taken = [ipam.network(r[0]) for r in s.execute(select(T.c.cidr).where(T.c.subnetpool_id == pool.id))]
    if "cidr" in data:
        want = ipam.network(data["cidr"])
        if not any(want.subnet_of(ipam.network(p)) for p in pool.prefixes if ipam.network(p).version == want.version):
            raise bad_request(f"Cidr {want} is not within the prefixes of subnet pool {pool.id}.", "InvalidInput")
        if any(want.overlaps(t) for t in taken):
            raise conflict("SubnetAllocationError", f"Failed to allocate subnet: {want} is in use.")
        return str(want), pool.ip_version
    for prefix in pool.prefixes:
        cand = ipam.first_free_subnet(ipam.network(prefix), plen, taken)
        if cand is not None:
            return str(cand), pool.ip_version
    raise conflict("SubnetAllocationError", "Failed to allocate subnet: Insufficient prefix space to allocate "
                                            f"subnet size /{plen}.")


def _check_v6(data: dict, version: int) -> None:
    ra, addr = data.get("ipv6_ra_mode"), data.get("ipv6_address_mode")
    if version == 4 and (ra or addr):
        raise bad_request("Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when "
                          "ip_version is 4.", "InvalidInput")
    if ra and addr and ra != addr:
        raise bad_request(f"Invalid input for operation: ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                          f"'{addr}' is not valid. If both attributes are set, they must be the same value.",
                          "InvalidInput")


def _check_routes_dns(data: dict, version: int) -> None:
    for ns in data.get("dns_nameservers") or []:
        if ipaddress.ip_address(ns).version != version:
            raise bad_request(f"Invalid input for operation: DNS nameserver {ns} does not match the ip_version.",
                              "InvalidInput")
    for r in data.get("host_routes") or []:
        if ipaddress.ip_network(r["destination"]).version != version or \
                ipaddress.ip_address(r["nexthop"]).version != version:
            raise bad_request(f"Invalid input for operation: host route {r} does not match the ip_version.",
                              "InvalidInput")


def create(s, ctx: Context, data: dict, settings) -> str:
    net = networks.get(s, ctx, data["network_id"])
    common.require_owner(ctx, net, "create_subnet")
    row = common.new_row(ctx, data)
    quotas.check(s, row["project_id"], "subnet")
    if data.get("subnetpool_id"):
        cidr, version = _from_pool(s, ctx, data)
    elif "cidr" in data:
        cidr, version = data["cidr"], ipam.network(data["cidr"]).version
    else:
        raise bad_request("Bad subnets request: a cidr must be specified in the absence of a subnet pool.")
    if data.get("ip_version", version) != version:
        raise bad_request("Invalid input for operation: Cidr and ip_version do not match.", "InvalidInput")
    net_ = ipam.network(cidr)
    networks.check_mtu_for_subnet(net.mtu, version, net.id)
    _check_v6(data, version)
    _check_routes_dns(data, version)
    addressscopes.check_network(s, net.id, version, data.get("subnetpool_id"))
    others = [r[0] for r in s.execute(select(T.c.cidr).where(T.c.network_id == net.id))]
    ipam.check_overlap(net_, others, net.id)
    gateway = data["gateway_ip"] if "gateway_ip" in data else ipam.default_gateway(net_)
    ipam.validate_gateway(net_, gateway)
    pools = (ipam.validate_pools(net_, data["allocation_pools"], gateway) if data.get("allocation_pools")
             else ipam.default_pools(net_, gateway))
    row.update(network_id=net.id, name=data.get("name", ""), ip_version=version, cidr=cidr, gateway_ip=gateway,
               enable_dhcp=data.get("enable_dhcp", True), ipv6_ra_mode=data.get("ipv6_ra_mode"),
               ipv6_address_mode=data.get("ipv6_address_mode"), subnetpool_id=data.get("subnetpool_id"),
               allocation_pools=pools, dns_nameservers=data.get("dns_nameservers", []),
               host_routes=data.get("host_routes", []), service_types=data.get("service_types", []),
               dns_publish_fixed_ip=data.get("dns_publish_fixed_ip", False))
    s.execute(insert(T), row)
    common.touch(s, T_NET, net.id)        # the network's subnets changed: a new revision, as Neutron
    return row["id"]


def _check_gateway_not_routed(s, row) -> None:
    """A router interface holding the current gateway address pins it (409 GatewayIpInUse, as Neutron)."""
    port = s.execute(select(T_PORT.c.id).join(T_IP, T_IP.c.port_id == T_PORT.c.id).where(
        T_IP.c.subnet_id == row.id, T_IP.c.ip_address == row.gateway_ip,
        T_PORT.c.device_owner.like("network:router_interface%"))).first()
    if port:
        raise conflict("GatewayIpInUse", f"Current gateway ip {row.gateway_ip} already in use by port {port.id}. "
                                         "Unable to update.")


def update(s, ctx: Context, row, data: dict, settings) -> None:
    common.require_owner(ctx, row, "update_subnet")
    net_ = ipam.network(row.cidr)
    _check_routes_dns(data, row.ip_version)
    gateway = data.get("gateway_ip", row.gateway_ip) if "gateway_ip" in data else row.gateway_ip
    ipam.validate_gateway(net_, gateway)
    if gateway != row.gateway_ip and row.gateway_ip:
        _check_gateway_not_routed(s, row)
    if "allocation_pools" in data:
        data["allocation_pools"] = ipam.validate_pools(net_, data["allocation_pools"], gateway)
    elif "gateway_ip" in data:
        ipam.validate_pools(net_, row.allocation_pools, gateway)
    common.touch(s, T, row.id, data)


def delete_subnet(s, ctx: Context, row) -> None:
    """Ports keep a subnet in use, except the DHCP port and, on a SLAAC/DHCPv6-stateless subnet, any port but a router
    interface: their automatic addresses go with the subnet (as Neutron). The network gets a new revision."""
    common.require_owner(ctx, row, "delete_subnet")
    users = select(T_PORT.c.id).join(T_IP, T_IP.c.port_id == T_PORT.c.id).where(
        T_IP.c.subnet_id == row.id, T_PORT.c.device_owner != "network:dhcp")
    if row.ip_version == 6 and row.ipv6_address_mode in ("slaac", "dhcpv6-stateless"):
        users = users.where(T_PORT.c.device_owner.like("network:router_interface%"))
    if s.execute(users.limit(1)).first():
        raise conflict("SubnetInUse", f"Unable to complete operation on subnet {row.id}: One or more ports have an "
                                      "IP allocation from this subnet.")
    holders = {p for (p,) in s.execute(select(T_IP.c.port_id).where(T_IP.c.subnet_id == row.id))}
    s.execute(delete(T_IP).where(T_IP.c.subnet_id == row.id))
    used_addresses.released(s)
    for port_id in holders:
        common.touch(s, T_PORT, port_id)
    common.delete_tags(s, row.id)
    s.execute(delete(T).where(T.c.id == row.id))
    common.touch(s, T_NET, row.network_id)


def render(s, ctx: Context, rows) -> list[dict]:
    ids = [r.id for r in rows]
    tags = common.tags_of(s, ids)
    net_ids = list({r.network_id for r in rows})
    external = {nid: ext for nid, ext in common.in_chunks(
        s, lambda c: select(T_NET.c.id, T_NET.c.external).where(T_NET.c.id.in_(c)), net_ids)}
    return [{"id": r.id, "name": r.name, "network_id": r.network_id, "ip_version": r.ip_version, "cidr": r.cidr,
             "gateway_ip": r.gateway_ip, "allocation_pools": r.allocation_pools or [],
             "host_routes": r.host_routes or [], "dns_nameservers": r.dns_nameservers or [],
             "enable_dhcp": r.enable_dhcp, "ipv6_ra_mode": r.ipv6_ra_mode, "ipv6_address_mode": r.ipv6_address_mode,
             "subnetpool_id": r.subnetpool_id, "service_types": r.service_types or [], "segment_id": None,
             "dns_publish_fixed_ip": r.dns_publish_fixed_ip, "router:external": external.get(r.network_id, False),
             "tags": tags[r.id], **common.std(r)} for r in rows]
