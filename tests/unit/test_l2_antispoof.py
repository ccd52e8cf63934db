"""ARP/ND anti-spoofing rules (agent/l2/antispoof.py) and the OpenFlow evaluator hood uses to read them back."""
from __future__ import annotations

from neutrino.agent.l2 import antispoof
from neutrino.hood import flow_eval
from neutrino.lib import nft

MAC, PAIR_MAC = "fa:16:3e:00:00:01", "fa:16:3e:00:00:99"


def port(**kw) -> dict:
    p = {"id": "p1", "kind": "instance", "device": "tapp1", "mac_address": MAC, "port_security_enabled": True,
         "fixed_ips": [{"ip_address": "10.0.0.3"}, {"ip_address": "fd00::3"}], "allowed_address_pairs": []}
    return {**p, **kw}


def table(p: dict, ofport: int = 5) -> list[flow_eval.Flow]:
    flows = ["table=0,priority=0,actions=NORMAL", *antispoof.OVS_DEFAULTS,
             *antispoof.ovs_flows(antispoof.guard(p), ofport)]
    return [flow_eval.parse_flow(f) for f in flows]


def verdict(p: dict, **fields) -> str:
    return flow_eval.evaluate(table(p), {"in_port": 5, "dl_src": MAC, **fields}).action


def test_only_guarded_ports_get_rules():
    view = {"ports": [port(), port(id="p2", port_security_enabled=False), port(id="p3", kind="dhcp")]}
    assert [p["id"] for p in antispoof.guarded_ports(view)] == ["p1"]


def test_guard_claims_fixed_ips_pairs_and_link_locals():
    g = antispoof.guard(port(allowed_address_pairs=[{"ip_address": "10.0.0.128/25", "mac_address": PAIR_MAC},
                                                    {"ip_address": "10.0.0.50"}]))
    assert g.macs == (MAC, PAIR_MAC)
    assert set(g.ipv4) == {("10.0.0.3/32", MAC), ("10.0.0.128/25", PAIR_MAC), ("10.0.0.50/32", MAC)}
    assert ("fd00::3/128", MAC) in g.ipv6 and ("fe80::f816:3eff:fe00:99/128", PAIR_MAC) in g.ipv6


def test_ovs_flows_let_exactly_the_claims_through():
    p = port(allowed_address_pairs=[{"ip_address": "10.0.0.128/25", "mac_address": PAIR_MAC}])
    arp = {"dl_type": "arp"}
    assert verdict(p, **arp, arp_spa="10.0.0.3", arp_sha=MAC) == "NORMAL"
    assert verdict(p, **arp, arp_spa="10.0.0.4", arp_sha=MAC) == "drop"          # another port's IP
    assert verdict(p, **arp, arp_spa="10.0.0.3", arp_sha=PAIR_MAC) == "drop"     # forged sender MAC
    assert verdict(p, **arp, arp_spa="0.0.0.0", arp_sha=MAC) == "NORMAL"         # probe
    assert flow_eval.evaluate(table(p), {"in_port": 5, "dl_src": PAIR_MAC, **arp, "arp_spa": "10.0.0.200",
                                         "arp_sha": PAIR_MAC}).action == "NORMAL"
    assert verdict(p, dl_type="ip", nw_proto=17, tp_src=67, tp_dst=68) == "drop"
    assert verdict(p, dl_type="ip", nw_proto=17, tp_src=68, tp_dst=67) == "NORMAL"
    na = {"dl_type": "ipv6", "nw_proto": 58, "icmp_type": 136, "icmp_code": 0}
    assert verdict(p, **na, nd_target="fd00::3", nd_tll=MAC) == "NORMAL"
    assert verdict(p, **na, nd_target="fd00::4", nd_tll=MAC) == "drop"
    assert verdict(p, **na, nd_target="fd00::3", nd_tll=PAIR_MAC) == "drop"
    assert verdict(p, dl_type="ipv6", nw_proto=58, icmp_type=134, icmp_code=0) == "drop"
    assert flow_eval.evaluate(table(p), {"in_port": 5, "dl_src": "fa:16:3e:66:66:66", "dl_type": "ip"}).action \
        == "drop"
    assert flow_eval.evaluate(table(p), {"in_port": 7, "dl_src": "fa:16:3e:66:66:66", **arp}).action == "NORMAL"


def test_dumped_flows_read_back_as_the_ones_written():
    dumped = flow_eval.parse_flow(" cookie=0x0, duration=7.3s, table=24, n_packets=3, n_bytes=126, idle_age=2, "
                                  "priority=2,arp,in_port=5,arp_spa=10.0.0.3,arp_sha=fa:16:3e:00:00:01 "
                                  "actions=resubmit(,25)")
    written = flow_eval.parse_flow("table=24,priority=2,in_port=5,arp,arp_spa=10.0.0.3,arp_sha=fa:16:3e:00:00:01,"
                                   "actions=resubmit(,25)")
    assert flow_eval.same(dumped, written) and (dumped.packets, dumped.bytes) == (3, 126)
    assert dumped.line == "table=24,priority=2,arp,in_port=5,arp_spa=10.0.0.3,arp_sha=fa:16:3e:00:00:01 " \
                          "actions=resubmit(,25)"
    odd = flow_eval.parse_flow("table=0,priority=5,ct_state=+trk,actions=drop")
    v = flow_eval.evaluate([odd], {"in_port": 1})
    assert v.action == "drop" and v.unknown


def test_nft_chains_for_linuxbridge():
    chains = antispoof.nft_chains(antispoof.guard(port(allowed_address_pairs=[
        {"ip_address": "10.0.0.128/25", "mac_address": PAIR_MAC}])))
    assert chains["stapp1"] == ["ether type 8021q drop", "ether type 8021ad drop", f"ether saddr {MAC} goto atapp1",
                                f"ether saddr {PAIR_MAC} goto atapp1", "drop"]
    rules = chains["atapp1"]
    assert f"arp saddr ether {PAIR_MAC} arp saddr ip 10.0.0.128/25 return" in rules
    assert "ether type arp drop" in rules and rules[-1] == "icmpv6 type nd-neighbor-advert drop"
    assert any("@th,64,128 0xfd000000000000000000000000000003" in r for r in rules)
    assert not any("{" in r for r in rules)         # no anonymous sets
    [t] = antispoof.nft_tables([antispoof.guard(port())])
    assert t.name == "neutrino_l2-0"
    assert t.sets["ports"].elements == {'"tapp1"': "jump stapp1"} and {"stapp1", "atapp1"} <= set(t.chains)


def test_nft_shards_keep_each_tap_where_it_is_and_fill_the_lowest_with_room(monkeypatch):
    """A tap stays in the shard table that holds it; new taps go to the lowest shard with room, so one tap added
    touches one table (the kernel checks a whole table on every commit that adds a rule)."""
    monkeypatch.setattr(antispoof, "SHARD", 2)
    guards = [antispoof.guard(port(device=f"tap{i}", id=f"p{i}")) for i in range(5)]
    first = antispoof.nft_tables(guards[:3])
    assert [(t.name, sorted(t.sets["ports"].elements)) for t in first] == [
        ("neutrino_l2-0", ['"tap0"', '"tap1"']), ("neutrino_l2-1", ['"tap2"'])]
    placed = antispoof.nft_placed({t.name: nft.state(t) for t in first})
    assert placed == {"tap0": "neutrino_l2-0", "tap1": "neutrino_l2-0", "tap2": "neutrino_l2-1"}
    later = antispoof.nft_tables([guards[1], guards[2], guards[3], guards[4]], placed)      # tap0 left
    assert [(t.name, sorted(t.sets["ports"].elements)) for t in later] == [
        ("neutrino_l2-0", ['"tap1"', '"tap3"']), ("neutrino_l2-1", ['"tap2"', '"tap4"'])]
    assert antispoof.nft_table_of([("bridge", "neutrino_l2-1", "stap4"), ("bridge", "x", "stap3")], "tap4") == \
        "neutrino_l2-1"
