"""Shared fixture of the L3/metadata functional tests: a throwaway "host" namespace standing in for a network node.

Inside the host namespace, three Linux bridges play br-int's networks: `private` 10.0.0.0/24, `private2`
10.0.1.0/24 and `public` 172.24.4.0/24, whose bridge itself carries 172.24.4.1/24 like br-ex on DevStack. Guests
are namespaces with a static address and a default route via the router. Everything is removed afterwards,
failure or not.
"""
from __future__ import annotations

import os
import secrets
import uuid

import pytest

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.l3 import L3Driver
from neutrino.lib import ip, proc
from neutrino.sync.schema import empty_view

NETS = {
    "private": {"bridge": "br-priv", "cidr": "10.0.0.0/24", "gw": "10.0.0.1"},
    "private2": {"bridge": "br-priv2", "cidr": "10.0.1.0/24", "gw": "10.0.1.1"},
    "public": {"bridge": "br-ext", "cidr": "172.24.4.0/24", "gw": "172.24.4.1"},
}
GW_IP = "172.24.4.10"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")


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
    """The host namespace, its bridges, guests, and an L3 driver whose ns- ends land in the host namespace."""

    def __init__(self, tmp_path):
        self.tag = secrets.token_hex(4)
        self.host = f"nt-{self.tag}"
        self.namespaces = [self.host]
        ip.ensure_netns(self.host)
        for net in NETS.values():
            ip.ensure_bridge(net["bridge"], self.host)
        ip.ensure_addresses("br-ext", ["172.24.4.1/24"], self.host)
        self.config = HostConfig(host="host1", state_dir=str(tmp_path / "state"))
        self.driver = L3Driver(self.config, host_ns=self.host)
        self.guests: dict[str, str] = {}

    def guest(self, name: str, network: str, address: str) -> str:
        """A guest namespace whose eth0 sits on the network's bridge, default route via the router's .1."""
        ns = f"nt-{self.tag}-{name}"
        self.namespaces.append(ns)
        ip.ensure_netns(ns)
        host_end = f"v{self.tag}{name}"[:15]
        ip.ensure_veth(host_end, "eth0", ns=self.host, peer_ns=ns)
        ip.set_link(host_end, self.host, master=NETS[network]["bridge"])
        plen = NETS[network]["cidr"].split("/")[1]
        ip.ensure_addresses("eth0", [f"{address}/{plen}"], ns)
        ip.ensure_route("default", ns, gateway=NETS[network]["gw"])
        self.guests[name] = ns
        return ns

    def plug(self, r: dict) -> None:
        """What the L2 driver would do: put each router port's ns- end on its network's bridge."""
        ports = list(r["interfaces"]) + ([r["gateway"]] if r["gateway"] else [])
        for p in ports:
            ip.set_link(p["device"], self.host, master=NETS[p["network_id"]]["bridge"])

    def sync(self, *routers, **kw):
        result = self.driver.sync(view(*routers, **kw))
        for r in routers:
            self.plug(r)
        return result

    def sh(self, ns: str, *argv: str, check: bool = True, timeout: float = 15):
        return proc.run(list(argv), netns=ns, check=check, timeout=timeout)

    def close(self) -> None:
        try:
            self.driver.cleanup()
        finally:
            for ns in reversed(self.namespaces):
                ip.delete_netns(ns)


@pytest.fixture
def lab(tmp_path):
    need_root()
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()
