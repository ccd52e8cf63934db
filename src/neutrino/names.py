"""Kernel object names, cut from ids exactly as Neutron does, so the seed page's commands find them.

Linux device names are at most 15 characters; Neutron uses a 3-character prefix plus the first 11 characters of
the port id (14 in all). Server and agent both name things only through this module.
"""

ID_LEN = 11


def _dev(prefix: str, port_id: str) -> str:
    return prefix + port_id[:ID_LEN]


def tap(port_id: str) -> str:
    """Instance NIC (host side) and the DHCP port inside qdhcp-."""
    return _dev("tap", port_id)


def qbr(port_id: str) -> str:
    return _dev("qbr", port_id)


def qvb(port_id: str) -> str:
    return _dev("qvb", port_id)


def qvo(port_id: str) -> str:
    return _dev("qvo", port_id)


def qr(port_id: str) -> str:
    return _dev("qr-", port_id)


def qg(port_id: str) -> str:
    return _dev("qg-", port_id)


def ifb(port_id: str) -> str:
    """The IFB device that shapes what a port's tap receives (QoS egress limit of the instance)."""
    return _dev("ifb", port_id)


def ns_peer(port_id: str) -> str:
    """Bridge-side end of the veth whose other end (tap/qr-/qg-) lives in a qdhcp-/qrouter- namespace."""
    return _dev("ns-", port_id)


def brq(network_id: str) -> str:
    """Per-network Linux bridge of the linuxbridge backend."""
    return _dev("brq", network_id)


def vxlan(vni: int) -> str:
    return f"vxlan-{vni}"


def qrouter(router_id: str) -> str:
    return f"qrouter-{router_id}"


def qdhcp(network_id: str) -> str:
    return f"qdhcp-{network_id}"


def sg_dev(port_id: str) -> str:
    """The device part of a port's chain names: the tap name without 'tap' (10 chars, as the seed shows)."""
    return port_id[:10]


IPT_PREFIX = "neutron-openvswi-"
IPT_LB_PREFIX = "neutron-linuxbri-"
L3_PREFIX = "neutron-l3-agent-"


def sg_chain(direction: str, port_id: str, prefix: str = IPT_PREFIX) -> str:
    """Per-port chain: direction 'i' (ingress), 'o' (egress) or 's' (anti-spoof); e.g. neutron-openvswi-ib5e2060e-0."""
    return f"{prefix}{direction}{sg_dev(port_id)}"


def ipset_name(sg_id: str, ethertype: str = "IPv4") -> str:
    """Remote-group member set, cut to 29 characters like Neutron's."""
    return f"N{ethertype}{sg_id}"[:29]
