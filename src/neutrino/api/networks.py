"""Networks, subnets and subnet pools: attribute maps (what POST/PUT accept) wired to the generic controller."""
import ipaddress

from neutrino.api.attrs import (PROJECT_ATTRS, REQUIRED, STD_ATTRS, Attr, Limit, boolean, cidr, dict_of, int_choice,
                                integer, invalid, ip_address, list_of, nullable, one_of, schema_of, string, typed,
                                unique_list_of, uuid_str)
from neutrino.api.controller import Resource
from neutrino.core import addressscopes, networks, subnetpools, subnets

NETWORK = Resource("network", "networks", networks, delete=networks.delete_network, attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "name": Attr(default="", convert=string(255)),
    "admin_state_up": Attr(default=True, convert=boolean),
    "shared": Attr(default=False, convert=boolean, admin_write=True),
    "router:external": Attr(default=False, convert=boolean, admin_write=True),
    "is_default": Attr(convert=boolean, admin_write=True),
    "mtu": Attr(convert=integer(0, 65535)),
    "port_security_enabled": Attr(default=True, convert=boolean),
    "provider:network_type": Attr(convert=one_of("vxlan", "geneve", "flat", "vlan", "local", lower=True),
                                  admin_write=True),
    "provider:physical_network": Attr(convert=nullable(string(64)), admin_write=True),
    "provider:segmentation_id": Attr(convert=nullable(integer(0)), admin_write=True),
    "availability_zone_hints": Attr(put=False, convert=list_of(string(255))),
    "dns_domain": Attr(convert=string(255)),
    "qos_policy_id": Attr(convert=nullable(uuid_str)),
}, readonly=("status", "subnets", "availability_zones", "ipv4_address_scope", "ipv6_address_scope",
             "l2_adjacency"), reschedule=True,
    # provider filters work for everyone, as Neutron filters in the database: members just do not see the values
    sql_filters={"provider:network_type": networks.T.c.network_type,
                 "provider:physical_network": networks.T.c.physical_network,
                 "provider:segmentation_id": lambda vals: networks.T.c.segmentation_id.in_(
                     [int(v) for v in vals if v.isdigit()])})

@typed({"type": "string", "maxLength": 64})
def _pool_prefix(name, v):
    """A subnet pool prefix: host bits are allowed and dropped (Neutron takes 10.11.12.13/24 as 10.11.12.0/24)."""
    if not isinstance(v, str) or "/" not in v:
        raise invalid(name, v, f"'{v}' is not a valid IP subnet")
    try:
        return str(ipaddress.ip_network(v.strip(), strict=False))
    except ValueError:
        raise invalid(name, v, f"'{v}' is not a valid IP subnet") from None


_plen = integer(0, 128)


@typed({"anyOf": [schema_of(_plen), {"type": "string", "pattern": "^[0-9]+$"}]})
def _pool_prefixlen(name, v):
    """A subnet pool's prefix length: 24 or "24" in, a string out (Neutron's _make_subnetpool_dict shows them so)."""
    return _plen(name, v)


_route = dict_of({"destination": cidr, "nexthop": ip_address}, required=("destination", "nexthop"))
_pool = dict_of({"start": ip_address, "end": ip_address}, required=("start", "end"))
HOST_ROUTES = Limit("max_subnet_host_routes", "HostRoutesExhausted",
                    "Unable to complete operation for subnet. The number of host routes exceeds the limit {quota}.")
DNS = Limit("max_dns_nameservers", "DNSNameServersExhausted",
            "Unable to complete operation for subnet. The number of DNS nameservers exceeds the limit {quota}.")

SUBNET = Resource("subnet", "subnets", subnets, delete=subnets.delete_subnet, attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "network_id": Attr(put=False, default=REQUIRED, convert=uuid_str),
    "name": Attr(default="", convert=string(255)),
    "ip_version": Attr(put=False, convert=int_choice(4, 6)),
    "cidr": Attr(put=False, convert=cidr),
    "prefixlen": Attr(put=False, convert=integer(0, 128)),
    "subnetpool_id": Attr(put=False, convert=nullable(uuid_str)),
    "gateway_ip": Attr(convert=nullable(ip_address)),
    "allocation_pools": Attr(convert=list_of(_pool)),
    "dns_nameservers": Attr(convert=unique_list_of(ip_address), limit=DNS),
    "host_routes": Attr(convert=list_of(_route), limit=HOST_ROUTES),
    "enable_dhcp": Attr(default=True, convert=boolean),
    "ipv6_ra_mode": Attr(put=False, convert=nullable(one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless"))),
    "ipv6_address_mode": Attr(put=False, convert=nullable(one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless"))),
    "service_types": Attr(convert=list_of(string(255))),
    "dns_publish_fixed_ip": Attr(convert=boolean),
}, readonly=("router:external", "shared"), reschedule=True,
    sql_filters={"network_id": subnets.T.c.network_id, "cidr": subnets.T.c.cidr, "shared": subnets.shared_filter})

SUBNETPOOL = Resource("subnetpool", "subnetpools", subnetpools, delete=subnetpools.delete_pool, attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "name": Attr(default="", convert=string(255)),
    "prefixes": Attr(default=REQUIRED, convert=list_of(_pool_prefix)),
    "min_prefixlen": Attr(convert=_pool_prefixlen),
    "max_prefixlen": Attr(convert=_pool_prefixlen),
    "default_prefixlen": Attr(convert=_pool_prefixlen),
    "default_quota": Attr(convert=nullable(integer(0))),
    "shared": Attr(default=False, put=False, convert=boolean, admin_write=True),
    "is_default": Attr(convert=boolean, admin_write=True),
    "address_scope_id": Attr(convert=nullable(uuid_str)),
}, readonly=("ip_version",))

ADDRESS_SCOPE = Resource("address_scope", "address-scopes", addressscopes, delete=addressscopes.delete_scope,
                         taggable=False, attrs={
    **PROJECT_ATTRS,
    "name": Attr(default="", convert=string(255)),
    "ip_version": Attr(put=False, default=REQUIRED, convert=int_choice(4, 6)),
    "shared": Attr(default=False, convert=boolean, admin_write=True),
})
