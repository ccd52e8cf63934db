"""Linux bridge L2 on the real kernel: brq<net> per network, kernel VXLAN between two host namespaces."""
from __future__ import annotations

import subprocess

import pytest

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.l2.linuxbridge import LinuxBridgeL2Driver
from neutrino.lib import ip
from netfix_l2 import ViewBuilder, nets, ping, tcp_transfer  # noqa: F401 - nets is a fixture


def make_driver(ns: str, **kw) -> LinuxBridgeL2Driver:
    kw.setdefault("tunnel_ip", "10.255.1.1")
    return LinuxBridgeL2Driver(HostConfig(host="host1", state_dir="/nonexistent", **kw), netns=ns)


def test_same_network_ping_tcp_and_noop_resync(nets):
    host = nets.add()
    drv = make_driver(host)
    vb = ViewBuilder()
    net = vb.network()
    pa, pb = vb.port(net, "10.0.0.11"), vb.port(net, "10.0.0.12")
    ga, gb = nets.guest(host, pa, "10.0.0.11/24"), nets.guest(host, pb, "10.0.0.12/24")
    res = drv.sync(vb.view)
    assert res.ports == {pa["id"]: True, pb["id"]: True} and res.changed
    links = ip.links(host)
    brq = names.brq(net)
    assert links[pa["device"]]["master"] == links[brq]["index"]
    assert links[names.vxlan(1000)]["master"] == links[brq]["index"]
    assert ping(ga, "10.0.0.12")
    assert tcp_transfer(gb, "10.0.0.12", ga) == 300_000
    assert not drv.sync(vb.view).changed
    assert {k: v["index"] for k, v in ip.links(host).items()} == {k: v["index"] for k, v in links.items()}


def test_two_networks_isolated_and_removal(nets):
    host = nets.add()
    drv = make_driver(host)
    vb = ViewBuilder()
    na, nb = vb.network(), vb.network()
    pa, pb = vb.port(na, "10.0.0.11"), vb.port(nb, "10.0.0.12")
    ga = nets.guest(host, pa, "10.0.0.11/24")
    nets.guest(host, pb, "10.0.0.12/24")
    drv.sync(vb.view)
    assert not ping(ga, "10.0.0.12", count=2, wait=1)
    vb.remove_port(pb["id"])
    assert drv.sync(vb.bump()).changed
    links = ip.links(host)
    assert names.brq(nb) not in links and names.vxlan(1001) not in links
    assert links[pb["device"]]["master"] is None      # the tap stays with its owner
    pa["admin_state_up"] = False
    drv.sync(vb.bump())
    assert ip.links(host)[pa["device"]]["master"] is None
    drv.cleanup()
    assert not [n for n in ip.links(host) if n.startswith(("brq", "vxlan-"))]


def test_flat_network_uses_mapped_bridge(nets):
    host = nets.add()
    drv = make_driver(host, bridge_mappings={"public": "br-ex"})
    vb = ViewBuilder()
    pub = vb.network("flat", physical_network="public")
    p = vb.port(pub, "172.24.4.10")
    g = nets.guest(host, p, "172.24.4.10/24")
    drv.sync(vb.view)
    ip.ensure_addresses("br-ex", ["172.24.4.1/24"], host)
    assert ping(g, "172.24.4.1")
    assert not [n for n in ip.links(host) if n.startswith("brq")]


def test_vxlan_between_two_hosts(nets):
    hosts = [nets.add(), nets.add()]
    ip.ensure_veth("upl", "upl", hosts[0], hosts[1])
    net = "7a1e0c5d-0000-4000-8000-0000000000lb"
    vbs, drivers, ports, guests = [], [], [], []
    for i, h in enumerate(hosts):
        ip.ensure_addresses("upl", [f"10.255.1.{i + 1}/24"], h)
        vb = ViewBuilder(f"host{i}")
        vb.network("vxlan", 2000, net_id=net)
        ports.append(vb.port(net, f"10.0.0.{11 + i}"))
        vbs.append(vb)
        drivers.append(make_driver(h, tunnel_ip=f"10.255.1.{i + 1}"))
    for i, h in enumerate(hosts):
        other = 1 - i
        vbs[i].view["tunnels"] = {"local_ip": f"10.255.1.{i + 1}",
                                  "peers": [{"host": f"host{other}", "ip": f"10.255.1.{other + 1}"}]}
        vbs[i].view["fdb"] = [{"network_id": net, "vni": 2000, "mac_address": ports[other]["mac_address"],
                               "ip_address": f"10.0.0.{11 + other}", "host_ip": f"10.255.1.{other + 1}"}]
        guests.append(nets.guest(h, ports[i], f"10.0.0.{11 + i}/24"))
        assert drivers[i].sync(vbs[i].view).ports == {ports[i]["id"]: True}
    fdb = subprocess.run(["ip", "netns", "exec", hosts[0], "bridge", "fdb", "show", "dev", "vxlan-2000"],
                         capture_output=True, text=True).stdout
    assert "00:00:00:00:00:00 dst 10.255.1.2" in fdb and f"{ports[1]['mac_address']} dst 10.255.1.2" in fdb
    assert ping(guests[0], "10.0.0.12", count=3)
    assert tcp_transfer(guests[1], "10.0.0.12", guests[0]) == 300_000
    assert not drivers[0].sync(vbs[0].view).changed
    vbs[0].view["fdb"] = []
    assert drivers[0].sync(vbs[0].bump()).changed
    assert ip.fdb_entries("vxlan-2000", hosts[0]) == set()
    assert not ping(guests[0], "10.0.0.12", count=1, wait=1)


@pytest.mark.parametrize("kind", ["dhcp", "router_interface"])
def test_namespace_port_enslaved(nets, kind):
    host = nets.add()
    drv = make_driver(host)
    vb = ViewBuilder()
    net = vb.network()
    pa, pd = vb.port(net, "10.0.0.11"), vb.port(net, "10.0.0.2", kind=kind)
    ga = nets.guest(host, pa, "10.0.0.11/24")
    gd = nets.add()
    ip.ensure_veth(pd["device"], pd["ns_device"], host, gd, peer_mac=pd["mac_address"])
    ip.ensure_addresses(pd["ns_device"], ["10.0.0.2/24"], gd)
    assert drv.sync(vb.view).ports == {pa["id"]: True, pd["id"]: True}
    assert ping(ga, "10.0.0.2")
