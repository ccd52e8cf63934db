"""Pure logic of the OVS L2 driver: local VLAN allocation/recovery and br-tun flows."""
from __future__ import annotations

import sys
from pathlib import Path

from neutrino.agent.driver import HostConfig
from neutrino.agent.l2.ovs import OvsL2Driver, vxlan_port
from neutrino.lib.ovs import BridgeInfo, PortInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional"))
from netfix_l2 import ViewBuilder  # noqa: E402


def driver() -> OvsL2Driver:
    return OvsL2Driver(HostConfig(host="h", state_dir="/tmp/x", tunnel_ip="192.0.2.1"))


def br_int(*ports: tuple[str, str, int]) -> BridgeInfo:
    return BridgeInfo("br-int", "netdev", "secure", {
        name: PortInfo(name, tag=4095, other_config={"net_uuid": net, "tag": str(tag)}) for name, net, tag in ports})


def test_allocation_recovers_from_ovs_and_skips_used_tags():
    vb = ViewBuilder()
    a, b, c = vb.network(), vb.network(), vb.network()
    for n in (a, b, c):
        vb.port(n)
    # a had tag 2 (port admin-down: Port.tag 4095, other_config keeps 2); a stale port still holds tag 1
    got = driver().local_vlans(vb.view, br_int(("qvo1", a, 2), ("qvo2", "gone-net", 1)))
    assert got[a] == 2
    assert sorted([got[b], got[c]]) == [3, 4]


def test_allocation_is_stable_across_calls_and_frees_unused():
    d = driver()
    vb = ViewBuilder()
    a, b = vb.network(), vb.network()
    pa = vb.port(a)
    vb.port(b)
    first = d.local_vlans(vb.view, None)
    assert d.local_vlans(vb.view, None) == first
    vb.remove_port(pa["id"])
    del vb.view["networks"][a]
    assert d.local_vlans(vb.view, None) == {b: first[b]}


def test_tunnel_flows_unicast_and_flood_per_vni():
    vb = ViewBuilder()
    net = vb.network("vxlan", 77)
    vb.port(net)
    vb.view["tunnels"] = {"local_ip": "192.0.2.1", "peers": [{"host": "h2", "ip": "192.0.2.2"}]}
    vb.view["fdb"] = [{"network_id": net, "vni": 77, "mac_address": "fa:16:3e:00:00:09", "ip_address": "10.0.0.9",
                       "host_ip": "192.0.2.2"}]
    tun = BridgeInfo("br-tun", "netdev", "secure", {"patch-int": PortInfo("patch-int", ofport=1),
                                                    vxlan_port("192.0.2.2"): PortInfo("x", ofport=5)})
    flows = driver()._tun_flows(vb.view, {net: 3}, tun)
    assert "table=4,priority=1,tun_id=77,actions=mod_vlan_vid:3,output:1" in flows
    assert ("table=20,priority=2,dl_vlan=3,dl_dst=fa:16:3e:00:00:09,actions=strip_vlan,"
            "load:0x4d->NXM_NX_TUN_ID[],output:5") in flows
    assert "table=22,priority=1,dl_vlan=3,actions=strip_vlan,load:0x4d->NXM_NX_TUN_ID[],output:5" in flows
    assert vxlan_port("192.0.2.2") == "vxlan-c0000202"
