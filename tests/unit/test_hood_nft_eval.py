"""The nftables evaluator and hood's nft chain comparison, on `nft -j list ruleset` objects shaped like the ones the
nftables firewall and the linuxbridge anti-spoof table leave in the kernel (captured from a lab, trimmed)."""
from __future__ import annotations

from neutrino.hood import nft_eval
from neutrino.hood.ipt_eval import Packet
from neutrino.hood.items import EXTRA, MISSING, OK
from neutrino.hood.nft_items import chain_item
from neutrino.lib.nft import Chain

TAP, DEV, BRQ = "tapaaaaaaaa-aa", "aaaaaaaa-a", "brq11111111-11"
MAC = "fa:16:3e:00:00:05"


def _chain(family, table, name, hook=None, prio=0):
    c = {"family": family, "table": table, "name": name}
    if hook:
        c.update(type="filter", hook=hook, prio=prio, policy="accept")
    return {"chain": c}


def _rule(family, table, chain, *expr, comment=None):
    r = {"family": family, "table": table, "chain": chain, "expr": list(expr)}
    if comment:
        r["comment"] = comment
    return {"rule": r}


def _eq(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(proto, field):
    return {"payload": {"protocol": proto, "field": field}}


def _meta(key):
    return {"meta": {"key": key}}


MARK = _meta("mark")
INGRESS = [
    [_eq({"ct": {"key": "state"}}, ["established", "related"], "in"), {"return": None}],
    [_eq(_payload("ip", "saddr"), "@NIPv4grp"), _eq(_payload("tcp", "dport"), 2222), {"return": None}],
    [_eq(_meta("nfproto"), "ipv4"), _eq(_payload("tcp", "dport"), 22), {"return": None}],
    [_eq(_meta("nfproto"), "ipv4"), _eq(_payload("ip", "saddr"), {"prefix": {"addr": "192.168.0.0", "len": 16}}),
     _eq(_payload("udp", "dport"), {"range": [53, 54]}), {"return": None}],
    [_eq(_meta("l4proto"), "icmp"), _eq(_payload("icmp", "type"), "echo-request"), {"return": None}],
    [_eq({"ct": {"key": "state"}}, "invalid", "in"), {"drop": None}],
    [{"jump": {"target": "sg-fallback"}}],
]
RULESET = [
    {"map": {"family": "bridge", "table": "neutrino", "name": "inport", "type": "ifname", "map": "mark",
             "elem": [[TAP, 1]]}},
    {"map": {"family": "bridge", "table": "neutrino", "name": "outport", "type": "ifname", "map": "verdict",
             "elem": [[TAP, {"goto": {"target": f"m{DEV}"}}]]}},
    _chain("bridge", "neutrino", "prerouting", "prerouting", -200),
    _chain("bridge", "neutrino", "forward", "forward", -200),
    _chain("bridge", "neutrino", f"m{DEV}"),
    _rule("bridge", "neutrino", "prerouting", {"mangle": {"key": MARK, "value": 0}}),
    _rule("bridge", "neutrino", "prerouting",
          {"mangle": {"key": MARK, "value": {"map": {"key": _meta("iifname"), "data": "@inport"}}}}),
    _rule("bridge", "neutrino", "forward", {"vmap": {"key": _meta("oifname"), "data": "@outport"}}),
    _rule("bridge", "neutrino", f"m{DEV}", {"mangle": {"key": MARK, "value": {"|": [{"&": [MARK, 131071]},
                                                                                   65536]}}}),
    {"set": {"family": "inet", "table": "neutrino", "name": "NIPv4grp", "type": "ipv4_addr",
             "elem": ["10.0.0.6", {"prefix": {"addr": "10.0.9.0", "len": 24}},
                      {"range": ["10.0.20.5", "10.0.20.9"]}]}},
    {"set": {"family": "inet", "table": "neutrino", "name": "stateless", "type": "mark"}},
    {"map": {"family": "inet", "table": "neutrino", "name": "to_port", "type": "mark", "map": "verdict",
             "elem": [[65536, {"jump": {"target": f"i{DEV}"}}]]}},
    {"map": {"family": "inet", "table": "neutrino", "name": "from_port", "type": "mark", "map": "verdict",
             "elem": [[1, {"jump": {"target": f"o{DEV}"}}]]}},
    _chain("inet", "neutrino", "prerouting", "prerouting", -300),
    _chain("inet", "neutrino", "forward", "forward"),
    _chain("inet", "neutrino", "sg-fallback"),
    _chain("inet", "neutrino", f"i{DEV}"),
    _chain("inet", "neutrino", f"o{DEV}"),
    _chain("inet", "neutrino", f"s{DEV}"),
    _rule("inet", "neutrino", "prerouting", _eq({"&": [MARK, 65535]}, "@stateless"), {"notrack": None},
          {"accept": None}),
    _rule("inet", "neutrino", "forward", {"vmap": {"key": {"&": [MARK, 4294901760]}, "data": "@to_port"}}),
    _rule("inet", "neutrino", "forward", {"vmap": {"key": {"&": [MARK, 65535]}, "data": "@from_port"}}),
    _rule("inet", "neutrino", "sg-fallback", {"drop": None}),
    *[_rule("inet", "neutrino", f"i{DEV}", *e) for e in INGRESS],
    _rule("inet", "neutrino", f"o{DEV}", {"jump": {"target": f"s{DEV}"}}),
    _rule("inet", "neutrino", f"o{DEV}", {"return": None}),
    _rule("inet", "neutrino", f"s{DEV}", _eq(_payload("ether", "saddr"), MAC), _eq(_payload("ip", "saddr"), "10.0.0.5"),
          {"return": None}),
    _rule("inet", "neutrino", f"s{DEV}", {"drop": None}),
    _rule("inet", "neutrino", "odd", {"xt": {"type": "match", "name": "physdev"}}, {"accept": None}),
]


def _filter(pkt: Packet) -> nft_eval.Result:
    """The firewall as a packet bridged by brq meets it: bridge labels, then inet filters (br_netfilter)."""
    rs = nft_eval.parse(RULESET)
    for family, chain in (("bridge", "prerouting"), ("bridge", "forward"), ("inet", "prerouting")):
        pkt = nft_eval.evaluate(rs, family, "neutrino", chain, pkt).packet
    return nft_eval.evaluate(rs, "inet", "neutrino", "forward", pkt)


def _to_port(src: str, proto: str, dport: int | None, icmp_type: int = 8) -> Packet:
    return Packet(src, "10.0.0.5", proto, 40000 if dport else None, dport, icmp_type, iif=BRQ, oif=BRQ,
                  physdev_in="ns-router", physdev_out=TAP)


def test_ingress_allows_what_a_rule_returns_for_and_the_fallback_drops_the_rest():
    ok = _filter(_to_port("172.24.4.1", "tcp", 22))
    assert ok.verdict == "accept" and ok.rule is None                 # returned, then the base chain's policy
    assert [r.chain for r in ok.path] == ["forward", f"i{DEV}"]
    assert ok.path[-1].text == "meta nfproto ipv4 tcp dport 22 return"
    bad = _filter(_to_port("172.24.4.1", "tcp", 2323))
    assert bad.verdict == "drop" and bad.rule.chain == "sg-fallback"
    assert bad.path[-2].line == f"inet neutrino i{DEV}: jump sg-fallback"


def test_sets_prefixes_ranges_and_icmp_names():
    assert _filter(_to_port("10.0.0.6", "tcp", 2222)).verdict == "accept"          # set element
    assert _filter(_to_port("10.0.9.77", "tcp", 2222)).verdict == "accept"         # set prefix element
    assert _filter(_to_port("10.0.20.9", "tcp", 2222)).verdict == "accept"         # set range element
    assert _filter(_to_port("10.0.20.10", "tcp", 2222)).verdict == "drop"
    assert _filter(_to_port("10.0.0.7", "tcp", 2222)).verdict == "drop"
    assert _filter(_to_port("192.168.3.4", "udp", 54)).verdict == "accept"         # prefix and port range
    assert _filter(_to_port("192.169.3.4", "udp", 54)).verdict == "drop"
    assert _filter(_to_port("192.168.3.4", "udp", 55)).verdict == "drop"
    assert _filter(_to_port("1.2.3.4", "icmp", None)).verdict == "accept"          # echo-request
    assert _filter(_to_port("1.2.3.4", "icmp", None, icmp_type=13)).verdict == "drop"


def test_established_returns_and_the_mark_comes_from_the_bridge_port():
    est = _filter(Packet("1.2.3.4", "10.0.0.5", "tcp", 40000, 9, iif=BRQ, oif=BRQ, physdev_in="ns-router",
                         physdev_out=TAP, ctstate=frozenset({"ESTABLISHED"})))
    assert est.verdict == "accept" and est.packet.mark == 0x10000


def test_egress_goes_through_the_anti_spoof_chain():
    out = Packet("10.0.0.5", "1.1.1.1", "tcp", 40000, 80, iif=BRQ, oif=BRQ, physdev_in=TAP, physdev_out="ns-r",
                 mac_src=MAC)
    assert _filter(out).verdict == "accept"
    spoofed = _filter(Packet("10.0.0.99", "1.1.1.1", "tcp", 40000, 80, iif=BRQ, oif=BRQ, physdev_in=TAP,
                             physdev_out="ns-r", mac_src=MAC))
    assert spoofed.verdict == "drop" and spoofed.rule.chain == f"s{DEV}"


def test_an_unknown_expression_is_reported_and_never_taken():
    res = nft_eval.evaluate(nft_eval.parse(RULESET), "inet", "neutrino", "odd", _to_port("1.2.3.4", "tcp", 22))
    assert res.verdict == "accept" and res.rule is None and res.path == []
    assert len(res.unknown) == 1 and "physdev" in res.unknown[0]


def test_a_chain_is_as_wanted_by_count_and_digest_and_drift_otherwise():
    wanted = ["tcp dport 22 return", "jump sg-fallback"]
    digest = Chain(wanted).digest()
    live = [_rule("inet", "neutrino", "c", _eq(_payload("tcp", "dport"), 22), {"return": None}),
            _rule("inet", "neutrino", "c", {"jump": {"target": "sg-fallback"}}, comment=digest)]
    rs = nft_eval.parse([_chain("inet", "neutrino", "c"), *live])
    it = chain_item(rs, "inet", "neutrino", "c", wanted, "", {}, {"tcp dport 22 return": {"rule": "r1"}})
    assert it["state"] == OK and [r["state"] for r in it["rules"]] == [OK, OK]
    assert it["rules"][0]["realizes"] == {"rule": "r1"}
    short = nft_eval.parse([_chain("inet", "neutrino", "c"), live[1]])         # the tcp/22 rule deleted
    states = [r["state"] for r in chain_item(short, "inet", "neutrino", "c", wanted, "", {})["rules"]]
    assert states == [EXTRA, MISSING, MISSING]
    assert chain_item(rs, "inet", "neutrino", "c", None, "", {})["state"] == EXTRA
