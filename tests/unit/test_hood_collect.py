"""hood's collection on a snapshot captured from a world the real drivers built (tests/unit/test_hood_world.json,
made by tests/functional/netfix_hood.World): no drift as captured; edited copies show what is missing or extra."""
from __future__ import annotations

import copy
import json
import os

import pytest

from neutrino.errors import NotFound
from neutrino.hood.collect import collect, find
from neutrino.hood.show import render

WORLD = os.path.join(os.path.dirname(__file__), "test_hood_world.json")


@pytest.fixture(scope="module")
def world():
    with open(WORLD) as f:
        return json.load(f)


def states(report: dict) -> dict:
    return {(i["name"], x.get("rule")): x["state"] for s in report["sections"] for i in s["items"]
            for x in [i, *i.get("rules", [])]}


def port(world, name):
    return next(p for p in world["view"]["ports"] if p["id"] == world["names"]["port_id"][name])


def test_captured_world_has_no_drift(world):
    view, snap = world["view"], world["snapshot"]
    for kind, obj in [("port", port(world, n)) for n in "ABCDEF"] + [
            ("router", view["routers"][0]), *[("network", n) for n in view["networks"].values()]]:
        report = collect(view, snap, kind, obj)
        assert report["drift"] == 0, [k for k, v in states(report).items() if v != "ok"]


def test_port_report_follows_the_seed_page(world):
    a = port(world, "A")
    report = collect(world["view"], world["snapshot"], "port", a)
    assert [s["title"] for s in report["sections"]] == [
        "Network devices", "Namespaces", "Security group chains", "ARP/ND anti-spoofing", "DHCP",
        "Routing, floating IPs and metadata"]
    devices = [i["name"] for i in report["sections"][0]["items"]]
    short = a["id"][:11]
    assert devices[:4] == [f"tap{short}", f"qbr{short}", f"qvb{short}", f"qvo{short}"]
    assert {"br-int", "br-ex"} <= set(devices)
    qvo = report["sections"][0]["items"][3]
    assert qvo["detail"].startswith("br-int port, local VLAN tag ") and qvo["realizes"]["port"] == a["id"]
    chains = {i["name"]: i for i in report["sections"][2]["items"]}
    ingress = chains["neutron-openvswi-i" + a["id"][:10]]
    ssh = next(r for r in ingress["rules"] if "--dport 22 " in r["rule"])
    assert ssh["realizes"]["security_group"] == world["names"]["sg"]["base"]
    assert all({"packets", "bytes"} <= set(r) for r in ingress["rules"])
    assert ("NIPv4" + world["names"]["sg"]["grp"])[:29] in chains
    dhcp = report["sections"][4]["items"]
    assert dhcp[1]["name"].startswith("dnsmasq pid ") and dhcp[1]["detail"].startswith("--interface=tap")
    assert dhcp[2]["detail"].startswith(a["mac_address"] + ",host-10-0-0-5")
    nat = [r["rule"] for i in report["sections"][5]["items"] for r in i.get("rules", [])]
    assert "-A neutron-l3-agent-float-snat -s 10.0.0.5/32 -j SNAT --to-source 172.24.4.20" in nat
    assert "-A neutron-l3-agent-PREROUTING -d 172.24.4.20/32 -j DNAT --to-destination 10.0.0.5" in nat
    assert any("REDIRECT --to-ports 9697" in i["name"] for i in report["sections"][5]["items"])
    guard = report["sections"][3]["items"][0]
    assert guard["state"] == "ok" and guard["realizes"]["fixed_ips"] == ["10.0.0.5"]
    arp = next(r for r in guard["rules"] if "arp_spa=10.0.0.5," in r["rule"])
    assert arp["state"] == "ok" and arp["realizes"] == {"fixed_ip": "10.0.0.5"}


def test_drift_is_shown(world):
    view, snap = copy.deepcopy(world["view"]), copy.deepcopy(world["snapshot"])
    a = port(world, "A")
    short, chain = a["id"][:11], "neutron-openvswi-i" + a["id"][:10]
    del snap["links"][f"qbr{short}"]
    snap["iptables"]["filter"] = snap["iptables"]["filter"].replace(
        f"-A {chain} -p tcp -m tcp --dport 22 -j RETURN", f"-A {chain} -p tcp -m tcp --dport 23 -j RETURN")
    rs = snap["routers"][world["names"]["router_id"]]
    rs["iptables"]["nat"] = "\n".join(ln for ln in rs["iptables"]["nat"].splitlines() if "float-snat -s" not in ln)
    report = collect(view, snap, "port", a)
    s = states(report)
    assert s[(f"qbr{short}", None)] == "missing"
    assert s[(chain, f"-A {chain} -p tcp -m tcp --dport 23 -j RETURN")] == "extra"
    assert s[(chain, f"-A {chain} -p tcp -m tcp --dport 22 -j RETURN")] == "missing"
    assert s[("neutron-l3-agent-float-snat",
              "-A neutron-l3-agent-float-snat -s 10.0.0.5/32 -j SNAT --to-source 172.24.4.20")] == "missing"
    assert report["drift"] == 4
    text = render(report)
    assert len(text.renderables) == 2 + len(report["sections"])


def test_extra_router_port_and_stale_br_int_port(world):
    view, snap = copy.deepcopy(world["view"]), copy.deepcopy(world["snapshot"])
    rs = snap["routers"][world["names"]["router_id"]]
    rs["links"]["qr-deadbeef-00"] = {"kind": "veth", "master": None, "up": True, "mac": "", "mtu": 1500,
                                     "addresses": ["10.9.9.1/24"]}
    net1 = world["names"]["net"]["net1"]
    snap["ovs"]["br-int"]["ports"]["qvodeadbeef-00"] = {"tag": 1, "other_config": {"net_uuid": net1},
                                                        "external_ids": {"iface-id": "gone"}, "type": "",
                                                        "options": {}}
    r = states(collect(view, snap, "router", view["routers"][0]))
    assert r[("qr-deadbeef-00", None)] == "extra"
    n = states(collect(view, snap, "network", view["networks"][net1]))
    assert n[("qvodeadbeef-00", None)] == "extra"


def test_find_by_prefix_and_name(world):
    view = world["view"]
    assert find(view, world["names"]["port_id"]["A"][:8]) == ("port", port(world, "A"))
    assert find(view, "router1")[0] == "router"
    assert find(view, "net2")[1]["id"] == world["names"]["net"]["net2"]
    with pytest.raises(NotFound):
        find(view, "nothing-like-this")


def test_anti_spoof_flows_drift(world):
    """A flow gone from br-int is missing; a pair the kernel lacks is missing; port security off: flows are extra."""
    view, snap = copy.deepcopy(world["view"]), copy.deepcopy(world["snapshot"])
    a = next(p for p in view["ports"] if p["id"] == port(world, "A")["id"])
    snap["ovs"]["br-int"]["flows"] = "\n".join(ln for ln in snap["ovs"]["br-int"]["flows"].splitlines()
                                               if "arp_spa=10.0.0.5," not in ln)
    a["allowed_address_pairs"] = [{"ip_address": "10.0.0.128/25", "mac_address": None}]
    s = states(collect(view, snap, "port", a))
    missing = sorted(r for (_, r), st in s.items() if st == "missing" and r and r.startswith("table="))
    assert len(missing) == 2 and "arp_spa=10.0.0.5," in missing[1] and "arp_spa=10.0.0.128/25," in missing[0]
    a["port_security_enabled"] = False
    report = collect(view, snap, "port", a)
    guard = next(sec for sec in report["sections"] if sec["title"] == "ARP/ND anti-spoofing")["items"][0]
    assert guard["state"] == "extra" and {r["state"] for r in guard["rules"]} == {"extra"}
