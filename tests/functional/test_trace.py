"""`trace` against reality: for a matrix of flows over a world built by the real drivers, the verdict of the trace
(read from iptables-save, ipsets, OVSDB and the router namespace) must equal what ping / nc actually do."""
from __future__ import annotations

import pytest

from neutrino.hood.trace import trace
from netfix_hood import EXT_GW, FIP, World
from netfix_l2 import need_root

# (name, src, dst, proto, port, expected delivered, receiver of udp, spoofed source)
CASES = [
    ("same net icmp", "A", "B", "icmp", None, True, None, None),
    ("same net tcp/22 allowed", "A", "B", "tcp", 22, True, None, None),
    ("same net tcp/23 blocked", "A", "B", "tcp", 23, False, None, None),
    ("same net udp/53 allowed", "A", "B", "udp", 53, True, "B", None),
    ("same net udp/54 blocked", "A", "B", "udp", 54, False, "B", None),
    ("to a port whose group has no rules", "A", "F", "icmp", None, False, None, None),
    ("from a port whose group has no rules", "F", "A", "icmp", None, False, None, None),
    ("remote group member", "A", "C", "tcp", 2222, True, None, None),
    ("remote group non-member", "B", "C", "tcp", 2222, False, None, None),
    ("to a port without port security", "A", "E", "icmp", None, True, None, None),
    ("from a port without port security", "E", "A", "icmp", None, True, None, None),
    ("from a port without port security, tcp/23", "E", "A", "tcp", 23, False, None, None),
    ("spoofed source", "A", "B", "icmp", None, False, None, "10.0.0.99"),
    ("spoofed source tcp", "A", "B", "tcp", 22, False, None, "10.0.0.99"),
    ("other network via router icmp", "A", "D", "icmp", None, True, None, None),
    ("other network via router tcp/22", "A", "D", "tcp", 22, True, None, None),
    ("other network via router tcp/23", "A", "D", "tcp", 23, False, None, None),
    ("other network back tcp/22", "D", "A", "tcp", 22, True, None, None),
    ("other network to no port security", "D", "E", "icmp", None, True, None, None),
    ("to the router's own address", "A", "10.0.0.1", "icmp", None, True, None, None),
    ("FIP from external icmp", "external", FIP, "icmp", None, True, None, None),
    ("FIP from external tcp/22", "external", FIP, "tcp", 22, True, None, None),
    ("FIP from external tcp/23", "external", FIP, "tcp", 23, False, None, None),
    ("FIP from external udp/53", "external", FIP, "udp", 53, True, "A", None),
    ("external to a fixed IP (no route)", "external", "10.0.1.5", "icmp", None, False, None, None),
    ("external to an unused address", "external", "172.24.4.21", "icmp", None, False, None, None),
    ("guest with FIP to external", "A", "external", "icmp", None, True, None, None),
    ("guest without FIP to external", "D", "external", "icmp", None, True, None, None),
    ("guest without FIP to external tcp", "D", "external", "tcp", 8080, True, None, None),
]
AFTER_REMOVAL = [
    ("removed rule: same net tcp/22", "A", "B", "tcp", 22, False, None, None),
    ("removed rule: FIP from external tcp/22", "external", FIP, "tcp", 22, False, None, None),
    ("removed rule: icmp still allowed", "A", "B", "icmp", None, True, None, None),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_root()
    w = World(str(tmp_path_factory.mktemp("hood")))
    try:
        yield w
    finally:
        w.close()


def _run(world: World, cases, snap) -> list[str]:
    """Trace and probe each case; the lines of disagreement (empty when trace matched reality everywhere)."""
    bad = []
    for name, src, dst, proto, port, expected, receiver, spoof in cases:
        src_ref = "external" if src == "external" else world.port_id[src]
        dst_ref = world.port_id[dst] if dst in world.port_id else dst
        t = trace(world.view, snap, src_ref, dst_ref, proto, port, src_ip=spoof)
        dst_ip = world.ip_of(dst) if dst in world.port_id else (EXT_GW if dst == "external" else dst)
        real = world.reach(src, dst_ip, proto, port, src_ip=spoof, receiver=receiver)
        traced = t.verdict == "delivered"
        seen = "delivered" if real else "dropped"
        print(f"{'ok ' if traced == real else 'BAD'} {name:45s} trace={t.verdict:9s} real={seen:9s} at {t.at}"
              + (f"  by {t.rule}" if t.rule else ""))
        if traced != real or real != expected or t.unknown:
            bad.append(f"{name}: trace {t.verdict} at {t.at}, reality {real}, expected {expected}, "
                       f"unknown {t.unknown}")
    return bad


def test_trace_agrees_with_reality(world):
    bad = _run(world, CASES, world.snapshot())
    world.remove_rule("base", "tcp", 22)
    bad += _run(world, AFTER_REMOVAL, world.snapshot())
    total = len(CASES) + len(AFTER_REMOVAL)
    print(f"trace agreed with reality in {total - len(bad)}/{total} cases ({100 * (total - len(bad)) / total:.0f} %)")
    assert not bad, "\n".join(bad)


def test_trace_names_the_deciding_rules(world):
    """A blocked port ends at its ingress chain's fallback; FIP traffic shows the router's DNAT and the qr- route."""
    snap = world.snapshot()
    blocked = trace(world.view, snap, world.port_id["A"], world.port_id["F"], "icmp")
    assert blocked.verdict == "dropped"
    assert blocked.at.startswith("neutron-openvswi-i" + world.port_id["F"][:10])
    assert blocked.rule.endswith("-A neutron-openvswi-sg-fallback -j DROP")
    spoof = trace(world.view, snap, world.port_id["A"], world.port_id["B"], "icmp", src_ip="10.0.0.99")
    assert spoof.at == "neutron-openvswi-s" + world.port_id["A"][:10]
    fip = trace(world.view, snap, "external", FIP, "tcp", 22)
    whats = [h.what for h in fip.hops]
    assert f"DNAT {FIP} → 10.0.0.5" in whats
    assert any(h.rule == f"-A neutron-l3-agent-PREROUTING -d {FIP}/32 -j DNAT --to-destination 10.0.0.5"
               for h in fip.hops)
    out = trace(world.view, snap, world.port_id["A"], "external", "icmp")
    assert f"SNAT 10.0.0.5 → {FIP}" in [h.what for h in out.hops]


def test_hood_matches_the_drivers_then_shows_drift(world):
    """On state the drivers just made, hood reports no drift for a port, the router and a network; a rule added
    behind the agent's back shows up as extra, a deleted device as missing."""
    from neutrino.hood.collect import collect
    from neutrino.lib import proc

    view = world.view
    ports = {p["id"]: p for p in view["ports"]}
    a = ports[world.port_id["A"]]
    snap = world.snapshot()
    for kind, obj in (("port", a), ("port", ports[world.port_id["E"]]), ("router", view["routers"][0]),
                      ("network", view["networks"][world.net["net1"]])):
        report = collect(view, snap, kind, obj)
        bad = [(s["title"], i["name"], x.get("rule"), x["state"]) for s in report["sections"] for i in s["items"]
               for x in [i, *i.get("rules", [])] if x["state"] != "ok"]
        assert report["drift"] == 0, bad
    titles = [s["title"] for s in collect(view, snap, "port", a)["sections"]]
    assert titles == ["Network devices", "Namespaces", "Security group chains", "ARP/ND anti-spoofing", "DHCP",
                      "Routing, floating IPs and metadata"]
    chain = "neutron-openvswi-i" + a["id"][:10]
    proc.run(["iptables", "-I", chain, "1", "-p", "tcp", "-m", "tcp", "--dport", "99", "-j", "RETURN"],
             netns=world.host)
    proc.run(["ip", "link", "del", "qvb" + a["id"][:11]], netns=world.host)
    try:
        report = collect(view, world.snapshot(), "port", a)
        states = {(i["name"], x.get("rule")): x["state"] for s in report["sections"] for i in s["items"]
                  for x in [i, *i.get("rules", [])]}
        assert states[(chain, f"-A {chain} -p tcp -m tcp --dport 99 -j RETURN")] == "extra"
        assert states[("qvb" + a["id"][:11], None)] == "missing"
        assert states[("qvo" + a["id"][:11], None)] == "missing"
    finally:
        world.sync()
    assert collect(view, world.snapshot(), "port", a)["drift"] == 0


SCOPED = [   # net1 and public in one address scope, net2 in another (tcp/22 was removed above: icmp east-west)
    ("same scope out: routed, not NATed", "B", "external", "tcp", 8080, True, None, None),
    ("other scope out: SNATed", "D", "external", "tcp", 8080, True, None, None),
    ("across scopes east-west", "A", "D", "icmp", None, False, None, None),
    ("across scopes back", "D", "B", "icmp", None, False, None, None),
    ("FIP from external still", "external", FIP, "icmp", None, True, None, None),
    ("same scope east-west", "A", "B", "icmp", None, True, None, None),
]


def test_address_scopes_in_trace_and_hood(world):
    """With address scopes on the router's ports, trace follows the scope marks and the no-SNAT rule the L3 driver
    wrote, and still agrees with reality; hood shows each port's scope and mark without drift."""
    from neutrino.hood.collect import collect
    from neutrino.lib import proc

    router = world.view["routers"][0]
    ports = [*router["interfaces"], router["gateway"]]
    for p in ports:
        p["address_scopes"] = {"4": "scope-2" if p["network_id"] == world.net["net2"] else "scope-1", "6": None}
    world.sync()
    proc.run(["ip", "route", "replace", "10.0.0.0/24", "via", "172.24.4.10"], netns=world.host)  # upstream learns it
    try:
        snap = world.snapshot()
        bad = _run(world, SCOPED, snap)
        assert not bad, "\n".join(bad)
        routed = trace(world.view, snap, world.port_id["B"], "external", "tcp", 8080)
        assert "no SNAT: 10.0.0.6 is in the external network's address scope" in [h.what for h in routed.hops]
        assert any(h.what == "address scope mark 0x4000000" for h in routed.hops)
        nated = trace(world.view, snap, world.port_id["D"], "external", "tcp", 8080)
        assert "SNAT 10.0.1.5 → 172.24.4.10" in [h.what for h in nated.hops]
        crossed = trace(world.view, snap, world.port_id["A"], world.port_id["D"], "icmp")
        assert crossed.at.endswith("filter FORWARD") and "address scope mark 0x4000000" in crossed.hops[-1].what
        report = collect(world.view, snap, "router", router)
        scopes = next(s for s in report["sections"] if s["title"] == "Address scopes")
        assert {i["name"]: i["detail"] for i in scopes["items"]}[router["interfaces"][1]["ns_device"]] == \
            "address scope scope-2, mark 0x4010000/0xffff0000"
        assert report["drift"] == 0
    finally:
        proc.run(["ip", "route", "del", "10.0.0.0/24"], netns=world.host, check=False)
        for p in ports:
            p.pop("address_scopes")
        world.sync()
