"""Linux bridge L2 on the real kernel: brq<net> per network, kernel VXLAN between two host namespaces. What every
L2 backend does is in test_l2.py."""
from __future__ import annotations

import subprocess


from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.l2.linuxbridge import LinuxBridgeL2Driver
from neutrino.lib import ip
from netfix_l2 import ViewBuilder, nets, ping, tcp_transfer  # noqa: F401 - nets is a fixture


def make_driver(ns: str, **kw) -> LinuxBridgeL2Driver:
    kw.setdefault("tunnel_ip", "10.255.1.1")
    return LinuxBridgeL2Driver(HostConfig(host="host1", state_dir="/nonexistent", **kw), netns=ns)


def test_unused_network_devices_removed(nets):
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