"""Networks, subnets and subnet pools: attribute maps (what POST/PUT accept) wired to the generic controller."""
import ipaddress

from neutrino.api.attrs import (PROJECT_ATTRS, REQUIRED, STD_ATTRS, Attr, boolean, cidr, dict_of, integer, invalid,
                                ip_address, list_of, nullable, one_of, string, unique_list_of, uuid_str)
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

def _pool_prefix(name, v):
    """A subnet pool prefix: host bits are allowed and dropped (Neutron takes 10.11.12.13/24 as 10.11.12.0/24)."""
    if not isinstance(v, str) or "/" not in v:
        raise invalid(name, v, f"'{v}' is not a valid IP subnet")
    try:
        return str(ipaddress.ip_network(v.strip(), strict=False))
    except ValueError:
        raise invalid(name, v, f"'{v}' is not a valid IP subnet") from None


_route = dict_of({"destination": cidr, "nexthop": ip_address}, required=("destination", "nexthop"))
_pool = dict_of({"start": ip_address, "end": ip_address}, required=("start", "end"))

SUBNET = Resource("subnet", "subnets", subnets, delete=subnets.delete_subnet, attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "network_id": Attr(put=False, default=REQUIRED, convert=uuid_str),
    "name": Attr(default="", convert=string(255)),
    "ip_version": Attr(put=False, convert=lambda n, v: one_of(4, 6)(n, integer()(n, v))),
    "cidr": Attr(put=False, convert=cidr),
    "prefixlen": Attr(put=False, convert=integer(0, 128)),
    "subnetpool_id": Attr(put=False, convert=nullable(uuid_str)),
    "gateway_ip": Attr(convert=nullable(ip_address)),
    "allocation_pools": Attr(convert=list_of(_pool)),
    "dns_nameservers": Attr(convert=unique_list_of(ip_address)),
    "host_routes": Attr(convert=list_of(_route)),
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
    "min_prefixlen": Attr(convert=integer(0, 128)),
    "max_prefixlen": Attr(convert=integer(0, 128)),
    "default_prefixlen": Attr(convert=integer(0, 128)),
    "default_quota": Attr(convert=nullable(integer(0))),
    "shared": Attr(default=False, put=False, convert=boolean, admin_write=True),
    "is_default": Attr(convert=boolean, admin_write=True),
    "address_scope_id": Attr(convert=nullable(uuid_str)),
}, readonly=("ip_version",))

ADDRESS_SCOPE = Resource("address_scope", "address-scopes", addressscopes, delete=addressscopes.delete_scope,
                         taggable=False, attrs={
    **PROJECT_ATTRS,
    "name": Attr(default="", convert=string(255)),
    "ip_version": Attr(put=False, default=REQUIRED, convert=lambda n, v: one_of(4, 6)(n, integer()(n, v))),
    "shared": Attr(default=False, convert=boolean, admin_write=True),
})
