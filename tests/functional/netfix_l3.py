"""Shared fixture of the L3/metadata functional tests: a throwaway "host" namespace standing in for a network node.

The host's L2 driver (linuxbridge, or ovs with its own daemons) wires three networks: `private` 10.0.0.0/24,
`private2` 10.0.1.0/24 and the flat `public` 172.24.4.0/24 on br-ex, which carries 172.24.4.1/24 as on DevStack.
Guests are namespaces with a static address and a default route via the router. Everything a test makes is
removed afterwards, failure or not; the host itself is shared by a module's tests.
"""
from __future__ import annotations

import secrets
import uuid

import pytest

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.l3 import L3Driver
from neutrino.lib import ip, proc
from neutrino.sync.schema import empty_view
from netfix_l2 import Host, ViewBuilder, l2_hosts  # noqa: F401 - l2_hosts is a fixture

NETS = {
    "private": {"cidr": "10.0.0.0/24", "gw": "10.0.0.1", "vni": 1000},
    "private2": {"cidr": "10.0.1.0/24", "gw": "10.0.1.1", "vni": 1001},
    "public": {"cidr": "172.24.4.0/24", "gw": "172.24.4.1"},
}
GW_IP = "172.24.4.10"


def mac() -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


def router_port(network: str, ip_address: str, gateway: bool = False) -> dict:
    net = NETS[network]
    pid = str(uuid.uuid4())
    plen = int(net["cidr"].split("/")[1])
    port = {"port_id": pid, "network_id": network, "mac_address": mac(),
            "ns_device": names.qg(pid) if gateway else names.qr(pid), "device": names.ns_peer(pid), "mtu": 1500,
            "fixed_ips": [{"subnet_id": network + "-v4", "ip_address": ip_address, "prefixlen": plen,
                           "cidr": net["cidr"], "gateway_ip": net["gw"]}]}
    if gateway:
        port["enable_snat"] = True
    return port


def router(interfaces=("private", "private2"), gateway: bool = True) -> dict:
    """A router with an interface (at .1) on each named network and, optionally, its gateway on public."""
    return {"id": str(uuid.uuid4()), "name": "router1", "admin_state_up": True,
            "interfaces": [router_port(n, NETS[n]["gw"]) for n in interfaces],
            "gateway": router_port("public", GW_IP, gateway=True) if gateway else None,
            "routes": [], "floating_ips": [], "port_forwardings": []}


def fip(address: str, fixed: str) -> dict:
    return {"id": str(uuid.uuid4()), "floating_ip_address": address, "fixed_ip_address": fixed,
            "port_id": str(uuid.uuid4())}


def view(*routers, dhcp=(), port: int = 9697) -> dict:
    v = empty_view("host1")
    v["routers"] = list(routers)
    v["dhcp"] = list(dhcp)
    v["metadata"] = {"port": port}
    return v


class Lab:
    """The host namespace, its L2 driver, guests, and an L3 driver whose ns- ends land in the host namespace."""

    def __init__(self, tmp_path, l2host: Host):
        self.l2host = l2host
        self.host = l2host.ns
        self.tag = secrets.token_hex(4)
        self.namespaces: list[str] = []           # made by the test: removed at close
        self.config = HostConfig(host="host1", state_dir=str(tmp_path / "state"), userspace_ovs=l2host.userspace_ovs)
        self.driver = L3Driver(self.config, host_ns=self.host)
        self.l2 = l2host.driver(tunnel_ip=None)
        self.guests: dict[str, str] = {}
        self.guest_ports: list[dict] = []
        self.routers: tuple = ()
        self.wire()
        if not ip.link_exists("br-ex", self.host):      # linuxbridge makes a mapped bridge once a port needs it
            ip.ensure_bridge("br-ex", self.host)
        ip.ensure_addresses("br-ex", ["172.24.4.1/24"], self.host)
        ip.set_up("br-ex", self.host)

    def guest(self, name: str, network: str, address: str) -> str:
        """A guest namespace whose eth0 is wired by the L2 driver, default route via the router's .1."""
        ns = f"nt-{self.tag}-{name}"
        self.namespaces.append(ns)
        ip.ensure_netns(ns)
        port = {"port_id": str(uuid.uuid4()), "network_id": network, "mac_address": mac(), "address": address}
        ip.ensure_veth(names.tap(port["port_id"]), "eth0", netns=self.host, peer_netns=ns, peer_mac=port["mac_address"])
        plen = NETS[network]["cidr"].split("/")[1]
        ip.ensure_addresses("eth0", [f"{address}/{plen}"], ns)
        ip.ensure_route("default", ns, gateway=NETS[network]["gw"])
        self.guest_ports.append(port)
        self.wire()
        self.guests[name] = ns
        return ns

    def wire(self) -> None:
        """What the L2 driver does after the L3 one in the agent: wire the routers' ports and the guests' taps."""
        vb = ViewBuilder()
        for net_id, net in NETS.items():
            if "vni" in net:
                vb.network("vxlan", net["vni"], net_id=net_id)
            else:
                vb.network("flat", physical_network="public", net_id=net_id)
        for r in self.routers:
            for p in list(r["interfaces"]) + ([r["gateway"]] if r["gateway"] else []):
                kind = "router_gateway" if p is r["gateway"] else "router_interface"
                port = vb.port(p["network_id"], p["fixed_ips"][0]["ip_address"], kind=kind, port_id=p["port_id"])
                port.update(device=p["device"], ns_device=p["ns_device"], mac_address=p["mac_address"],
                            port_security_enabled=False)
        for g in self.guest_ports:
            port = vb.port(g["network_id"], g["address"], port_id=g["port_id"])
            port.update(mac_address=g["mac_address"], port_security_enabled=False)
        self.l2.sync(vb.view)

    def sync(self, *routers, **kw):
        result = self.driver.sync(view(*routers, **kw))
        self.routers = routers
        self.wire()
        return result

    def sh(self, ns: str, *argv: str, check: bool = True, timeout: float = 15):
        return proc.run(list(argv), netns=ns, check=check, timeout=timeout)

    def close(self) -> None:
        try:
            ip.ensure_addresses("br-ex", [], self.host)
            self.l2.cleanup()
            self.driver.cleanup()
        finally:
            for ns in reversed(self.namespaces):
                ip.delete_netns(ns)


@pytest.fixture(params=["linuxbridge"])
def lab(tmp_path, request, l2_hosts):
    """An L3 lab on linuxbridge; a test about traffic runs on every L2 backend with
    `@pytest.mark.parametrize("lab", BACKENDS, indirect=True)`."""
    lab = Lab(tmp_path, l2_hosts(request.param))
    try:
        yield lab
    finally:
        lab.close()
