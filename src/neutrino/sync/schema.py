"""The host view: everything one agent must realize, as plain JSON (schema version 1).

The server compiles it per host (`GET /agent/v1/hosts/{host}/view`), the agent's drivers read it. Keys:

    {
      "schema": 1, "revision": 42, "host": "host1",
      "networks": {net_id: Network},          # every network with a port on this host
      "ports": [Port],                        # every port bound to this host (instances, DHCP, router ports)
      "security_groups": {sg_id: SecurityGroup},
      "remote_groups": {sg_id: {"IPv4": [ip, ...], "IPv6": [...]}},   # members of groups used as remote_group_id
                                              # (and CIDRs of address groups used as remote_address_group_id)
      "tunnels": {"local_ip": ip|None, "peers": [{"host": h, "ip": ip}]},
      "fdb": [{"network_id", "vni", "mac_address", "ip_address", "host_ip"}],   # ports on other hosts (l2pop)
      "routers": [Router],                    # routers scheduled to this host (l3 role)
      "dhcp": [DhcpNetwork],                  # networks whose DHCP is served from this host (dhcp role)
      "metadata": {"port": 9697}
    }

A watch that sees no change touching its host answers {"schema": 1, "revision": REV, "host": h, "unchanged": true}
instead: the agent keeps the view it holds, which stands for REV too.

Devices are named by the server with neutrino.names so drivers never guess: a port's `device` is the host-side
device that the L2 driver plugs (tap<id> for instances, ns-<id> for ports whose other end lives in a qdhcp-/qrouter-
namespace) and `ns_device` the namespace-side end (tap<id>, qr-<id>, qg-<id>) or None.
"""
from __future__ import annotations

from typing import Literal, TypedDict

SCHEMA_VERSION = 1


class Segment(TypedDict):
    network_type: Literal["vxlan", "flat", "vlan", "local"]
    segmentation_id: int | None
    physical_network: str | None


class FixedIP(TypedDict):
    subnet_id: str
    ip_address: str
    prefixlen: int          # of the subnet
    cidr: str               # the subnet's CIDR
    gateway_ip: str | None  # the subnet's gateway


class Subnet(TypedDict):
    id: str
    network_id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None
    enable_dhcp: bool
    dns_nameservers: list[str]
    host_routes: list[dict]          # [{"destination", "nexthop"}]
    allocation_pools: list[dict]     # [{"start", "end"}]
    ipv6_ra_mode: str | None
    ipv6_address_mode: str | None


class Network(TypedDict):
    id: str
    name: str
    mtu: int
    segment: Segment
    external: bool
    subnets: list[Subnet]


class Port(TypedDict):
    id: str
    network_id: str
    kind: Literal["instance", "dhcp", "router_interface", "router_gateway"]
    device: str              # host-side device the L2 driver plugs (tap<id> or ns-<id>)
    ns_device: str | None    # namespace-side end for dhcp/router ports
    mac_address: str
    fixed_ips: list[FixedIP]
    admin_state_up: bool
    device_owner: str
    device_id: str
    port_security_enabled: bool
    security_groups: list[str]
    allowed_address_pairs: list[dict]  # [{"ip_address": ip-or-cidr, "mac_address": mac}]
    mtu: int
    qos: list[dict]          # rules of its QoS policy (own, else its network's): {"type", "direction", "max_kbps",
                             # "max_burst_kbps", "dscp_mark", "min_kbps" as the type has them, "id", "qos_policy_id"}


class Rule(TypedDict):
    id: str
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"]
    protocol: str | None       # None (any), a lowercase name ("tcp", "udp", "icmp", "ipv6-icmp") or a number string
    port_range_min: int | None  # for icmp: type
    port_range_max: int | None  # for icmp: code
    remote_ip_prefix: str | None
    remote_group_id: str | None
    remote_address_group_id: str | None   # its CIDRs are in View["remote_groups"] under this id


class SecurityGroup(TypedDict):
    id: str
    stateful: bool
    rules: list[Rule]


class RouterPort(TypedDict):
    port_id: str
    network_id: str
    mac_address: str
    ns_device: str            # qr-<id> or qg-<id>
    device: str               # ns-<id>, plugged by L2
    fixed_ips: list[FixedIP]
    mtu: int
    address_scopes: dict[str, str | None]   # {"4": scope id, "6": scope id} of its subnets' pools


class FloatingIP(TypedDict):
    id: str
    floating_ip_address: str
    fixed_ip_address: str
    port_id: str


class PortForwarding(TypedDict):
    id: str
    floating_ip_address: str
    protocol: str
    internal_ip_address: str
    internal_port: int
    external_port: int


class MeteringRule(TypedDict):
    id: str
    direction: Literal["ingress", "egress"]
    remote_ip_prefix: str | None       # legacy: the far side (source when ingress, destination when egress)
    source_ip_prefix: str | None
    destination_ip_prefix: str | None
    excluded: bool


class MeteringLabel(TypedDict):
    id: str
    name: str
    rules: list[MeteringRule]


class Router(TypedDict):
    id: str
    name: str
    admin_state_up: bool
    interfaces: list[RouterPort]
    gateway: RouterPort | None       # with "enable_snat": bool added
    routes: list[dict]               # extra routes [{"destination", "nexthop"}]
    floating_ips: list[FloatingIP]
    port_forwardings: list[PortForwarding]
    metering_labels: list[MeteringLabel]   # its project's labels and the shared ones


class DhcpHost(TypedDict):
    port_id: str
    mac_address: str
    ip_address: str
    subnet_id: str
    hostname: str              # host-<ip with dashes> unless the port has a dns_name
    extra_dhcp_opts: list[dict]   # [{"opt_name", "opt_value", "ip_version"}]


class DhcpNetwork(TypedDict):
    network_id: str
    port_id: str               # the network:dhcp port
    ns_device: str             # tap<id> inside qdhcp-<network_id>
    device: str                # ns-<id>, plugged by L2
    mac_address: str
    fixed_ips: list[FixedIP]
    mtu: int
    domain: str
    subnets: list[Subnet]
    hosts: list[DhcpHost]
    isolated_metadata: bool    # no router on any subnet: serve metadata from qdhcp-


class View(TypedDict):
    schema: int
    revision: int
    host: str
    networks: dict[str, Network]
    ports: list[Port]
    security_groups: dict[str, SecurityGroup]
    remote_groups: dict[str, dict[str, list[str]]]
    tunnels: dict
    fdb: list[dict]
    routers: list[Router]
    dhcp: list[DhcpNetwork]
    metadata: dict


def empty_view(host: str, revision: int = 0) -> View:
    return {"schema": SCHEMA_VERSION, "revision": revision, "host": host, "networks": {}, "ports": [],
            "security_groups": {}, "remote_groups": {}, "tunnels": {"local_ip": None, "peers": []}, "fdb": [],
            "routers": [], "dhcp": [], "metadata": {"port": 9697}}


def unchanged_view(host: str, revision: int) -> dict:
    """The answer to a watch that saw no change touching its host up to `revision`: keep the view you hold."""
    return {"schema": SCHEMA_VERSION, "revision": revision, "host": host, "unchanged": True}
