"""trace on the captured world (tests/unit/test_hood_world.json): the kernel's routing answers recorded at capture
time are replayed, so the whole walk is checked without a kernel; the functional test compares it with reality."""
from __future__ import annotations

import json
import os

import pytest

from neutrino.hood.trace import render, trace

WORLD = os.path.join(os.path.dirname(__file__), "test_hood_world.json")


@pytest.fixture(scope="module")
def world():
    with open(WORLD) as f:
        return json.load(f)


def replay(world):
    answers = {(c["ns"], c["dst"], c["src"], c["iif"]): c["answer"] for c in world["route_get"]}

    def route_get(ns, dst, src=None, iif=None):
        return answers[(ns, dst, src, iif)]
    return route_get


def run(world, src, dst, proto="icmp", port=None, **kw):
    ids = world["names"]["port_id"]
    return trace(world["view"], world["snapshot"], ids.get(src, src), ids.get(dst, dst), proto, port,
                 route_get=replay(world), **kw)


@pytest.mark.parametrize("src, dst, proto, port, verdict, at", [
    ("A", "B", "tcp", 22, "delivered", "tap"),
    ("A", "B", "tcp", 23, "dropped", "neutron-openvswi-i"),
    ("A", "B", "udp", 53, "delivered", "tap"),
    ("A", "F", "icmp", None, "dropped", "neutron-openvswi-i"),
    ("F", "A", "icmp", None, "dropped", "neutron-openvswi-o"),
    ("A", "C", "tcp", 2222, "delivered", "tap"),
    ("B", "C", "tcp", 2222, "dropped", "neutron-openvswi-i"),
    ("A", "E", "icmp", None, "delivered", "tap"),
    ("E", "A", "tcp", 23, "dropped", "neutron-openvswi-i"),
    ("A", "D", "tcp", 22, "delivered", "tap"),
    ("D", "A", "tcp", 22, "delivered", "tap"),
    ("external", "172.24.4.20", "tcp", 23, "dropped", "neutron-openvswi-i"),
    ("external", "10.0.1.5", "icmp", None, "dropped", "external"),
    ("A", "external", "icmp", None, "delivered", "external (br-ex 172.24.4.1)"),
    ("A", "10.0.0.77", "icmp", None, "dropped", "br-int VLAN"),
])
def test_verdicts(world, src, dst, proto, port, verdict, at):
    t = run(world, src, dst, proto, port)
    assert (t.verdict, t.at[:len(at)]) == (verdict, at), render(t)
    assert not t.unknown


def test_spoofed_source_stops_at_the_anti_spoof_chain(world):
    t = run(world, "A", "B", src_ip="10.0.0.99")
    a = world["names"]["port_id"]["A"]
    assert t.verdict == "dropped" and t.at == "neutron-openvswi-s" + a[:10]
    assert t.rule == f"-A neutron-openvswi-s{a[:10]} -j DROP"


def test_router_hops_show_nat_route_and_rules(world):
    t = run(world, "external", "172.24.4.20", "tcp", 23)
    whats = [h.what for h in t.hops]
    assert "DNAT 172.24.4.20 → 10.0.0.5" in whats
    assert any(w.startswith("ip route get 10.0.0.5 from 172.24.4.1 iif qg-") for w in whats)
    assert t.rule.endswith("-A neutron-openvswi-sg-fallback -j DROP")
    out = run(world, "A", "external")
    assert "SNAT 10.0.0.5 → 172.24.4.20" in [h.what for h in out.hops]
    as_data = json.loads(json.dumps(out.to_dict()))
    assert as_data["verdict"] == "delivered" and len(as_data["hops"]) == len(out.hops)


def test_missing_tap_and_unknown_port(world):
    import copy
    w = copy.deepcopy(world)
    a = w["names"]["port_id"]["A"]
    del w["snapshot"]["links"]["tap" + a[:11]]
    t = run(w, "A", "B")
    assert t.verdict == "dropped" and t.at == "tap" + a[:11]
    assert run(world, "nope", "B").at == "(input)"


def test_address_on_another_host_leaves_by_vxlan(world):
    import copy
    w = copy.deepcopy(world)
    net1 = w["names"]["net"]["net1"]
    w["view"]["fdb"] = [{"network_id": net1, "vni": 1001, "mac_address": "fa:16:3e:99:99:99",
                         "ip_address": "10.0.0.50", "host_ip": "10.255.0.2"}]
    t = run(w, "A", "10.0.0.50")
    assert t.verdict == "forwarded" and t.at.startswith("br-tun → 10.255.0.2")
    w["view"]["fdb"][0]["network_id"] = w["names"]["net"]["net2"]     # not on A's network: nobody answers
    assert run(w, "A", "10.0.0.50").verdict == "dropped"


def test_spoofed_arp_is_dropped_by_the_anti_spoof_flow(world):
    """ARP never reaches the security group chains: br-int's flows at the port's qvo decide, and say which flow."""
    b_ip = world["view"]["ports"][[p["id"] for p in world["view"]["ports"]].index(
        world["names"]["port_id"]["B"])]["fixed_ips"][0]["ip_address"]
    own = run(world, "A", b_ip, "arp")
    assert own.verdict == "delivered" and f"{b_ip} is port {world['names']['port_id']['B']}" in own.at
    for kw in ({"src_ip": b_ip}, {"src_mac": "fa:16:3e:66:66:66"}):
        t = run(world, "A", "10.0.0.1", "arp", **kw)
        assert (t.verdict, t.at, t.rule) == ("dropped", "br-int table 24", "table=24,priority=0 actions=drop"), \
            render(t)
        assert not t.unknown
    t = run(world, "A", "B", "icmp", src_mac="fa:16:3e:66:66:66")
    assert t.verdict == "dropped" and t.at.startswith("neutron-openvswi-s")
