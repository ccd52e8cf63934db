"""Fixtures for DHCP functional tests: a throwaway "host" namespace whose L2 driver (linuxbridge, or ovs with its
own daemons) wires the qdhcp- port and the guests (namespaces whose `eth0` is the peer of their tap), and
hand-built DHCP views.

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
from netfix_l2 import Host, Namespaces, ViewBuilder, l2_hosts  # noqa: F401 - l2_hosts is a fixture

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
    """A host namespace, a DhcpDriver working in it, and the host's L2 driver wiring its port and the guests'."""

    def __init__(self, tmp_path, l2host: Host):
        self.made = Namespaces()
        self.l2host = l2host
        self.host_ns = self.l2host.ns
        self.state_dir = str(tmp_path / "state")
        self.run_dir = str(tmp_path / "run")
        self.guests: list[str] = []
        self.guest_ports: dict[str, str] = {}         # guest MAC -> its port id
        self.view = view_of()
        self.l2 = self.l2host.driver(tunnel_ip=None)
        self.driver = self.new_driver()

    def new_driver(self) -> DhcpDriver:
        """A fresh driver object on the same kernel and state dir: what an agent restart gives."""
        config = HostConfig(host="host1", state_dir=self.state_dir, userspace_ovs=self.l2host.userspace_ovs)
        return DhcpDriver(config, host_ns=self.host_ns)

    def sync(self, view: dict):
        """The agent's order: DHCP first, then L2 plugs its port (and the guests' taps)."""
        res = self.driver.sync(view)
        self.view = view
        self.wire()
        return res

    def wire(self) -> None:
        """The L2 view of the DHCP networks: each network, its DHCP port, and a port for every guest (on the network
        whose hosts name its MAC, else the first)."""
        vb = ViewBuilder()
        nets = self.view["dhcp"]
        for i, net in enumerate(nets):
            vb.network("vxlan", 1000 + i, mtu=net["mtu"], net_id=net["network_id"])
            p = vb.port(net["network_id"], net["fixed_ips"][0]["ip_address"], kind="dhcp", port_id=net["port_id"])
            p.update(mac_address=net["mac_address"], port_security_enabled=False)
        for mac_address, port_id in self.guest_ports.items():
            on = next((n for n in nets if any(h["mac_address"] == mac_address for h in n["hosts"])),
                      nets[0] if nets else None)
            if on is not None:
                p = vb.port(on["network_id"], "0.0.0.0", port_id=port_id)
                p.update(mac_address=mac_address, port_security_enabled=False)
        self.l2.sync(vb.view)

    def guest(self, mac_address: str) -> str:
        port_id = str(uuid.uuid4())
        ns = self.made.add()
        self.guests.append(ns)
        ip.ensure_veth(names.tap(port_id), "eth0", netns=self.host_ns, peer_netns=ns, peer_mac=mac_address)
        self.guest_ports[mac_address] = port_id
        self.wire()
        return ns

    def guest_run_dir(self, ns: str) -> str:
        return os.path.join(self.run_dir, ns)

    def close(self) -> None:
        for ns in self.guests:
            guest.stop_dhcp_client(self.guest_run_dir(ns))
        try:
            self.driver.cleanup()
            self.l2.cleanup()
        finally:
            for ns in self.guests:
                guest.remove_netns_etc(ns)
            self.made.close()


def guest_addresses(ns: str) -> set[str]:
    return ip.addresses("eth0", ns)


def guest_sh(ns: str, cmd: str, check: bool = True) -> str:
    return proc.run(["sh", "-c", cmd], netns=ns, check=check).stdout


@pytest.fixture(params=["linuxbridge"])
def lab(tmp_path, request, l2_hosts):
    """A DHCP lab on linuxbridge; a test about traffic runs on every L2 backend with
    `@pytest.mark.parametrize("lab", BACKENDS, indirect=True)`."""
    lb = Lab(tmp_path, l2_hosts(request.param))
    try:
        yield lb
    finally:
        lb.close()
