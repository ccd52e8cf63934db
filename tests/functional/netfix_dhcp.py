"""Fixtures for DHCP functional tests: a throwaway "host" namespace with a Linux bridge standing in for br-int,
guests (namespaces with an `eth0` on that bridge) and hand-built DHCP views.

Everything is named `nt-<8 hex>` (qdhcp- namespaces carry random network ids) and removed at teardown, even when
the test failed.
"""
from __future__ import annotations

import ipaddress
import os
import uuid

import pytest

from neutrino import names
from neutrino.agent.dhcp import DhcpDriver
from neutrino.agent.driver import HostConfig
from neutrino.lib import guest, ip, proc
from neutrino.sync.schema import DhcpHost, DhcpNetwork, Subnet, empty_view

BRIDGE = "br-int"


def rand(prefix: str = "nt-") -> str:
    return prefix + uuid.uuid4().hex[:8]


def mac() -> str:
    b = uuid.uuid4().bytes
    return "fa:16:3e:%02x:%02x:%02x" % (b[0], b[1], b[2])


def subnet(cidr: str, gateway: str | None = "first", **kw) -> Subnet:
    net = ipaddress.ip_network(cidr)
    gw = str(net.network_address + 1) if gateway == "first" else gateway
    s: Subnet = {"id": str(uuid.uuid4()), "network_id": "", "cidr": cidr, "ip_version": net.version,
                 "gateway_ip": gw, "enable_dhcp": True, "dns_nameservers": [], "host_routes": [],
                 "allocation_pools": [], "ipv6_ra_mode": None, "ipv6_address_mode": None}
    s.update(kw)
    return s


def fixed_ip(s: Subnet, address: str) -> dict:
    net = ipaddress.ip_network(s["cidr"])
    return {"subnet_id": s["id"], "ip_address": address, "prefixlen": net.prefixlen, "cidr": s["cidr"],
            "gateway_ip": s["gateway_ip"]}


def host(s: Subnet, address: str, mac_address: str | None = None, hostname: str | None = None,
         port_id: str | None = None, extra: list[dict] | None = None) -> DhcpHost:
    return {"port_id": port_id or str(uuid.uuid4()), "mac_address": mac_address or mac(), "ip_address": address,
            "subnet_id": s["id"], "hostname": hostname or "host-" + address.replace(".", "-").replace(":", "-"),
            "extra_dhcp_opts": extra or []}


def dhcp_network(subnets: list[Subnet], dhcp_ips: list[str], hosts: list[DhcpHost], mtu: int = 1450,
                 isolated_metadata: bool = False, domain: str = "openstacklocal") -> DhcpNetwork:
    network_id = str(uuid.uuid4())
    port_id = str(uuid.uuid4())
    for s in subnets:
        s["network_id"] = network_id
    return {"network_id": network_id, "port_id": port_id, "ns_device": names.tap(port_id),
            "device": names.ns_peer(port_id), "mac_address": mac(),
            "fixed_ips": [fixed_ip(s, a) for s, a in zip(subnets, dhcp_ips)], "mtu": mtu, "domain": domain,
            "subnets": subnets, "hosts": hosts, "isolated_metadata": isolated_metadata}


def view_of(*nets: DhcpNetwork, host_name: str = "host1") -> dict:
    v = empty_view(host_name, revision=1)
    v["dhcp"] = list(nets)
    return v


class Lab:
    """A host namespace with br-int, a DhcpDriver working in it, and guests on the bridge."""

    def __init__(self, tmp_path):
        self.host_ns = rand()
        self.state_dir = str(tmp_path / "state")
        self.run_dir = str(tmp_path / "run")
        self.guests: list[str] = []
        ip.ensure_netns(self.host_ns)
        ip.ensure_bridge(BRIDGE, self.host_ns)
        self.driver = self.new_driver()

    def new_driver(self) -> DhcpDriver:
        """A fresh driver object on the same kernel and state dir: what an agent restart gives."""
        return DhcpDriver(HostConfig(host="host1", state_dir=self.state_dir), host_ns=self.host_ns)

    def sync(self, view: dict):
        res = self.driver.sync(view)
        for net in view["dhcp"]:       # what the L2 driver does: plug ns-<id> into the network's bridge
            if ip.link_exists(net["device"], self.host_ns):
                ip.set_link(net["device"], self.host_ns, master=BRIDGE)
        return res

    def guest(self, mac_address: str) -> str:
        ns = rand()
        self.guests.append(ns)
        ip.ensure_netns(ns)
        host_end = "tg" + ns[3:]
        ip.ensure_veth(host_end, "eth0", ns=self.host_ns, peer_ns=ns, peer_mac=mac_address)
        ip.set_link(host_end, self.host_ns, master=BRIDGE)
        return ns

    def guest_run_dir(self, ns: str) -> str:
        return os.path.join(self.run_dir, ns)

    def close(self) -> None:
        for ns in self.guests:
            guest.stop_dhcp_client(self.guest_run_dir(ns))
        try:
            self.driver.cleanup()
        finally:
            for ns in self.guests:
                ip.delete_netns(ns)
                guest.remove_netns_etc(ns)
            ip.delete_netns(self.host_ns)


def guest_addresses(ns: str) -> set[str]:
    return ip.addresses("eth0", ns)


def guest_sh(ns: str, cmd: str, check: bool = True) -> str:
    return proc.run(["sh", "-c", cmd], netns=ns, check=check).stdout


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    lb = Lab(tmp_path)
    try:
        yield lb
    finally:
        lb.close()
