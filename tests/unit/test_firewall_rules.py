"""Rendering of security groups to iptables / ipset / nft (order, canonical iptables-save form, deltas)."""
from __future__ import annotations

from neutrino import names
from neutrino.agent.firewall import nft_rules
from neutrino.agent.firewall import rules as R
from neutrino.agent.firewall.memory import KernelMemory, Rendered
from neutrino.agent.firewall.ports import (
    PortCache,
    SgRule,
    allocate,
    filtered_ports,
    link_local,
    norm_rule,
    remote_members,
)
from neutrino.lib import ipset, iptables, nft
from neutrino.sync.schema import empty_view

P = names.IPT_PREFIX
PID = "b5e2060e-02aa-4c1b-9d1e-000000000001"


def _rule(direction="ingress", protocol=None, lo=None, hi=None, prefix=None, group=None, eth="IPv4"):
    return {"id": "r", "direction": direction, "ethertype": eth, "protocol": protocol, "port_range_min": lo,
            "port_range_max": hi, "remote_ip_prefix": prefix, "remote_group_id": group}


def _view(rules, stateful=True, security=True, pairs=(), pid=PID):
    v = empty_view("h")
    v["ports"] = [{"id": pid, "network_id": "net1", "kind": "instance", "device": names.tap(pid), "ns_device": None,
                   "mac_address": "FA:16:3E:00:00:03", "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.3",
                   "prefixlen": 24, "cidr": "10.0.0.0/24", "gateway_ip": None}], "admin_state_up": True,
                   "device_owner": "compute:nova", "device_id": "vm", "port_security_enabled": security,
                   "security_groups": ["sg1"], "allowed_address_pairs": list(pairs), "mtu": 1500}]
    v["security_groups"] = {"sg1": {"id": "sg1", "stateful": stateful, "rules": rules}}
    v["remote_groups"] = {"sg1": {"IPv4": ["10.0.0.3", "10.0.0.4"], "IPv6": []}}
    return v


def spec(**kw) -> str:
    return R.rule_spec(norm_rule(_rule(**kw)))


def test_rule_specs_are_canonical():
    assert spec(protocol="tcp", lo=22, hi=22) == "-p tcp -m tcp --dport 22 -j RETURN"
    assert spec(protocol="udp", lo=1000, hi=2000) == "-p udp -m udp --dport 1000:2000 -j RETURN"
    assert spec(protocol="icmp") == "-p icmp -j RETURN"
    assert spec(protocol="icmp", lo=8, hi=0) == "-p icmp -m icmp --icmp-type 8/0 -j RETURN"
    assert spec(protocol="icmp", lo=8) == "-p icmp -m icmp --icmp-type 8 -j RETURN"
    assert spec(prefix="10.0.0.7", protocol="6", lo=80, hi=80) == "-s 10.0.0.7/32 -p tcp -m tcp --dport 80 -j RETURN"
    assert spec(direction="egress", prefix="10.1.2.3/16") == "-d 10.1.0.0/16 -j RETURN"
    assert spec(prefix="0.0.0.0/0") == "-j RETURN"
    assert spec(protocol="112") == "-p vrrp -j RETURN"
    assert spec(group="sg1") == f"-m set --match-set {names.ipset_name('sg1')} src -j RETURN"
    assert spec(eth="IPv6", protocol="icmp", lo=135) == "-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j RETURN"


def test_ingress_chain_order_follows_neutron():
    port = filtered_ports(_view([_rule(protocol="tcp", lo=22, hi=22), _rule(protocol="icmp")]))[0]
    assert R.ingress_chain(port, "IPv4", P) == [
        "-m state --state RELATED,ESTABLISHED -j RETURN", "-p tcp -m tcp --dport 22 -j RETURN", "-p icmp -j RETURN",
        "-p udp -m udp --sport 67 --dport 68 -j RETURN", "-m state --state INVALID -j DROP",
        f"-j {P}sg-fallback"]


def test_egress_dhcp_before_spoof_and_spoof_chain_with_pairs():
    pairs = [{"ip_address": "10.0.5.0/24"}, {"ip_address": "10.0.0.9", "mac_address": "fa:16:3e:aa:aa:aa"}]
    port = filtered_ports(_view([_rule("egress")], pairs=pairs))[0]
    eg = R.egress_chain(port, "IPv4", P)
    assert eg.index("-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN") < \
        eg.index(f"-j {names.sg_chain('s', PID)}") < eg.index("-p udp -m udp --sport 67 --dport 68 -j DROP") < \
        eg.index("-m state --state RELATED,ESTABLISHED -j RETURN") < eg.index("-j RETURN") < \
        eg.index("-m state --state INVALID -j DROP")
    assert R.spoof_chain(port, "IPv4") == [
        "-s 10.0.0.3/32 -m mac --mac-source fa:16:3e:00:00:03 -j RETURN",
        "-s 10.0.5.0/24 -m mac --mac-source fa:16:3e:00:00:03 -j RETURN",
        "-s 10.0.0.9/32 -m mac --mac-source fa:16:3e:aa:aa:aa -j RETURN", "-j DROP"]
    assert f"-s {link_local('fa:16:3e:00:00:03')}/128 -m mac --mac-source fa:16:3e:00:00:03 -j RETURN" in \
        R.spoof_chain(port, "IPv6")
    assert link_local("fa:16:3e:aa:bb:cc") == "fe80::f816:3eff:feaa:bbcc"
    assert nft_rules.spoof_chain(port)[:3] == ["ether saddr fa:16:3e:00:00:03 ip saddr 10.0.0.3 return",
                                               "ether saddr fa:16:3e:00:00:03 ip saddr 10.0.5.0/24 return",
                                               "ether saddr fa:16:3e:aa:aa:aa ip saddr 10.0.0.9 return"]
    assert nft_rules.spoof_chain(port)[-1] == "drop"


def test_seed_chain_names_and_hooks():
    t = R.filter_table(filtered_ports(_view([])), "IPv4", P)
    assert "neutron-openvswi-ib5e2060e-0" in t.chains and "neutron-openvswi-sb5e2060e-0" in t.chains
    assert t.chains[f"{P}sg-chain"] == [
        f"-m physdev --physdev-out tapb5e2060e-02 --physdev-is-bridged -j {P}ib5e2060e-0",
        f"-m physdev --physdev-in tapb5e2060e-02 --physdev-is-bridged -j {P}ob5e2060e-0", "-j ACCEPT"]
    assert t.chains[f"{P}sg-fallback"] == ["-j DROP"]
    assert t.jumps == {"FORWARD": [f"-j {P}FORWARD"], "INPUT": [f"-j {P}INPUT"]}


def test_stateless_and_no_port_security():
    port = filtered_ports(_view([_rule(protocol="tcp", lo=22, hi=22)], stateful=False))[0]
    assert not any("state" in r for r in R.ingress_chain(port, "IPv4", P) + R.egress_chain(port, "IPv4", P))
    raw = R.raw_table([port], {"net1": 7}, P).chains[f"{P}PREROUTING"]
    assert raw == ["-m physdev --physdev-in tapb5e2060e-02 -j CT --notrack", "-i brqnet1 -j CT --zone 7"]
    assert R.zones_in_raw(raw) == {"brqnet1": 7}
    assert filtered_ports(_view([], security=False)) == []
    assert R.filter_table([], "IPv4", P).chains[f"{P}sg-chain"] == ["-j ACCEPT"]


def test_allocate_keeps_existing_ids():
    assert allocate({"a": 2, "gone": 1}, ["a", "b", "c"]) == {"a": 2, "b": 1, "c": 3}


def test_changing_one_port_rewrites_only_its_chain():
    other = "c0ffee00-0000-4000-8000-000000000000"
    v = _view([_rule(protocol="tcp", lo=22, hi=22)])
    v["ports"].append(dict(v["ports"][0], id=other, device=names.tap(other), security_groups=["sg2"]))
    v["security_groups"]["sg2"] = {"id": "sg2", "stateful": True, "rules": []}
    before = R.filter_table(filtered_ports(v), "IPv4", P)
    v["security_groups"]["sg2"]["rules"].append(_rule(protocol="udp", lo=53, hi=53))
    after = R.filter_table(filtered_ports(v), "IPv4", P)
    lines = iptables.plan(before.chains | {"FORWARD": before.jumps["FORWARD"], "INPUT": before.jumps["INPUT"]},
                          after, P)
    assert lines and all(line.split()[1] == names.sg_chain("i", other) for line in lines)


def test_ipset_plan_creates_swaps_and_keeps():
    now = ipset.parse("create NIPv4sg1 hash:net family inet hashsize 1024\nadd NIPv4sg1 10.0.0.3\n"
                      "create other hash:ip family inet\n", "N")
    assert now == {"NIPv4sg1": ("inet", {"10.0.0.3/32"})}
    assert ipset.plan(now, {"NIPv4sg1": ("inet", {"10.0.0.3"})}) == []
    assert ipset.plan(now, {"NIPv4sg1": ("inet", {"10.0.0.3", "10.0.0.4"})}) == [
        "create NIPv4sg1-n hash:net family inet", "flush NIPv4sg1-n", "add NIPv4sg1-n 10.0.0.3/32",
        "add NIPv4sg1-n 10.0.0.4/32", "swap NIPv4sg1-n NIPv4sg1", "destroy NIPv4sg1-n"]
    assert ipset.plan({}, {"NIPv6x": ("inet6", set())}) == ["create NIPv6x hash:net family inet6", "flush NIPv6x"]
    v6 = ipset.parse("create NIPv6sg1 hash:net family inet6\nadd NIPv6sg1 fd00::3\nadd NIPv6sg1 fd01::/64\n"
                     "create NIPv4sg2 hash:net family inet\nadd NIPv4sg2 10.1.0.0/16\n", "N")
    assert v6 == {"NIPv6sg1": ("inet6", {"fd00::3/128", "fd01::/64"}), "NIPv4sg2": ("inet", {"10.1.0.0/16"})}


def test_remote_members_only_for_used_groups():
    v = _view([_rule(group="sg1")])
    assert remote_members(v, filtered_ports(v)) == {("sg1", "IPv4"): ["10.0.0.3/32", "10.0.0.4/32"]}


def test_nft_rule_expressions():
    r = SgRule("ingress", "IPv4", 6, 22, 22, "10.0.0.0/24", None)
    assert nft_rules.rule_expr(r) == "meta nfproto ipv4 ip saddr 10.0.0.0/24 meta l4proto 6 tcp dport 22 return"
    r = SgRule("egress", "IPv6", 58, 128, None, None, "sg1")
    assert nft_rules.rule_expr(r) == \
        f"meta nfproto ipv6 ip6 daddr @{names.ipset_name('sg1', 'IPv6')} meta l4proto 58 icmpv6 type 128 return"


def _as_kernel(tables: list[nft.Table]) -> list[nft.Current]:
    """What `nft -j list` would give back after applying the tables (elements and digests as written)."""
    out = []
    for t in tables:
        out.append(nft.Current({n: (len(c.rules), c.digest() if c.rules else None) for n, c in t.chains.items()},
                               {n: dict(s.elements) for n, s in t.sets.items()},
                               {n for n, s in t.sets.items() if ":" in s.decl.split(";")[0]}))
    return out


def test_nft_plan_is_a_delta():
    v = _view([_rule(group="sg1"), _rule(protocol="tcp", lo=22, hi=22)])
    ports = filtered_ports(v)
    tables = nft_rules.tables(ports, remote_members(v, ports), {ports[0].tap: 1}, {"net1": 1})
    first = nft.plan(None, tables[2])
    assert first[0] == "add table inet neutrino-0" and any(line.startswith("add chain") for line in first)
    now = _as_kernel(tables)
    assert [nft.plan(c, t) for c, t in zip(now, tables)] == [[], [], []]
    v["remote_groups"]["sg1"]["IPv4"].append("10.0.0.5")
    again = nft_rules.tables(ports, remote_members(v, ports), {ports[0].tap: 1}, {"net1": 1})
    sg1 = names.ipset_name("sg1")
    changes = [x for x in nft.plan(now[2], again[2]) if "elements" in x or not x.startswith(("add set", "add map"))]
    assert changes == [f"add set inet neutrino-0 {sg1} {{ type ipv4_addr; flags interval; elements = {{ 10.0.0.5/32 }}; }}"]
    v["security_groups"]["sg1"]["rules"].pop()
    ports = filtered_ports(v)
    third = nft.plan(now[2], nft_rules.tables(ports, remote_members(v, ports), {ports[0].tap: 1}, {"net1": 1})[2])
    changes = [x for x in third if "elements" in x or not x.startswith(("add set", "add map"))]
    assert changes[0] == f"flush chain inet neutrino-0 i{ports[0].dev}"
    assert changes[1].startswith(f"add chain inet neutrino-0 i{ports[0].dev} {{ ") and len(changes) == 3
    assert changes[2].startswith(f"add set inet neutrino-0 {sg1} ") and "elements = { 10.0.0.5/32 }" in changes[2]


def test_nft_plan_avoids_commands_that_list_every_chain():
    """`add rule` and `add element` make nft 1.0.6 list every chain of the namespace before it runs: an add is
    written as `add chain` blocks and set declarations with elements; a set a rewritten chain names is declared."""
    v = _view([_rule(group="sg1"), _rule(protocol="tcp", lo=22, hi=22)])
    ports = filtered_ports(v)
    tables = nft_rules.tables(ports, remote_members(v, ports), {ports[0].tap: 1}, {"net1": 1})
    now = _as_kernel(tables)[2]
    sg1 = f"add set inet neutrino-0 {names.ipset_name('sg1')} {{ type ipv4_addr; flags interval; }}"
    moved = nft.plan(now, nft_rules.tables(ports, {k: ["10.9.0.0/16"] for k in remote_members(v, ports)},
                                           {ports[0].tap: 1}, {"net1": 1})[2])
    assert any(x.startswith("delete element") for x in moved)       # a removal still lists every chain
    assert sg1 not in moved                                         # no chain written: nothing to declare
    v["security_groups"]["sg1"]["rules"].pop()
    ports = filtered_ports(v)
    rewritten = nft.plan(now, nft_rules.tables(ports, remote_members(v, ports), {ports[0].tap: 1}, {"net1": 1})[2])
    assert sg1 in rewritten and rewritten.index(sg1) < rewritten.index(f"flush chain inet neutrino-0 i{ports[0].dev}")
    assert not [x for x in nft.plan(None, tables[2]) + moved + rewritten if x.startswith(("add rule", "add element"))]


def test_nft_json_elements_are_normalised():
    cur = nft.parse([
        {"chain": {"name": "c"}},
        {"rule": {"chain": "c", "comment": "h:1"}},
        {"set": {"name": "s", "type": ["ether_addr", "ipv4_addr"], "elem": [
            {"concat": ["fa:16:3e:00:00:01", {"prefix": {"addr": "10.0.0.0", "len": 24}}]},
            {"concat": ["fa:16:3e:00:00:01", "10.1.0.5"]}]}},
        {"map": {"name": "m", "type": "ifname", "map": "verdict", "elem": [["tap1", {"goto": {"target": "m1"}}]]}},
        {"map": {"name": "z", "type": "ifname", "map": "integer", "elem": [["brq1", 5]]}},
    ])
    assert cur.chains == {"c": (1, "h:1")}
    assert cur.sets["s"] == {"fa:16:3e:00:00:01 . 10.0.0.0/24": None, "fa:16:3e:00:00:01 . 10.1.0.5/32": None}
    assert cur.sets["m"] == {'"tap1"': "goto m1"} and cur.sets["z"] == {'"brq1"': "5"}
    assert cur.maps == {"m", "z"}


def test_nft_chain_listing_is_parsed():
    text = """table inet neutrino {
	set NIPv4x {
		type ipv4_addr
		flags interval
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		meta mark & 0xffff0000 vmap @to_port
		meta mark & 0x0000ffff vmap @from_port comment "h:9554ab8362c33cf1"
	}

	chain empty {
	}

	chain iaa {
		icmpv6 type { nd-router-advert, nd-neighbor-solicit } return
		jump sg-fallback comment "h:a0"
	}
}
"""
    assert nft.parse_chains(text) == {"forward": (2, "h:9554ab8362c33cf1"), "empty": (0, None), "iaa": (2, "h:a0")}


def _restore(tables: dict[str, list[str]], lines: list[str]) -> dict[str, list[str]]:
    """What iptables-restore --noflush makes of lines (the subset plan writes), on a copy of chain -> rules."""
    t = {c: list(r) for c, r in tables.items()}
    for line in lines:
        if line.startswith(":"):
            t.setdefault(line[1:].split()[0], [])
            continue
        op, chain, *rest = line.split(" ", 2)
        arg = rest[0] if rest else ""
        if op == "-F":
            t[chain] = []
        elif op == "-X":
            del t[chain]
        elif op == "-A":
            t[chain].append(arg)
        elif op == "-I":
            num, _, rule = arg.partition(" ")
            if num.isdigit():
                t[chain].insert(int(num) - 1, rule)
            else:
                t[chain].insert(0, arg)
        elif op == "-D" and arg.isdigit():
            del t[chain][int(arg) - 1]
        elif op == "-D":
            t[chain].remove(arg)
    return t


def test_small_change_to_a_long_chain_is_edited_by_rule_number():
    jumps = [f"-m physdev --physdev-in tap{i:04d} --physdev-is-bridged -j {P}o{i:04d}" for i in range(0, 4000, 2)]
    cur = {f"{P}sg-chain": jumps + ["-j ACCEPT"]}
    cases = [jumps[:500] + ["-m physdev --physdev-in tap0999 -j X"] + jumps[500:],        # one added
             jumps[:10] + jumps[11:],                                                      # one removed
             ["new first"] + jumps[:700] + jumps[702:1500] + ["a", "b"] + jumps[1500:],    # several at once
             ["completely", "different"]]
    for want_rules in cases:
        want = iptables.TableState("filter", {f"{P}sg-chain": want_rules + ["-j ACCEPT"]})
        lines = iptables.plan(cur, want, P)
        assert _restore(cur, lines) == want.chains
        assert len(lines) <= 7 or lines[0] == f"-F {P}sg-chain"
    assert len(iptables.plan(cur, iptables.TableState("filter", {f"{P}sg-chain": cases[0] + ["-j ACCEPT"]}), P)) == 1


def test_order_free_chain_gets_new_rules_on_top_without_numbers():
    jumps = [f"-m physdev --physdev-in tap{i:04d} --physdev-is-bridged -j {P}o{i:04d}" for i in range(0, 4000, 2)]
    chain = f"{P}sg-chain"
    cur = {chain: jumps[::-1] + ["-j ACCEPT"]}                    # as a restarted agent finds it: any order
    new = "-m physdev --physdev-in tap0999 --physdev-is-bridged -j X"

    def plan(rules: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        want = iptables.TableState("filter", {chain: rules}, free={chain: 1})
        lines = iptables.plan(cur, want, P)
        left = _restore(cur, lines)
        assert iptables.after(cur, want, P) == left and iptables.plan(left, want, P) == []
        assert sorted(left[chain]) == sorted(rules) and left[chain][-1] == rules[-1]
        return lines, left

    assert plan(jumps + ["-j ACCEPT"])[0] == []                      # same rules, other order: nothing to do
    lines, left = plan(jumps[:500] + [new] + jumps[500:] + ["-j ACCEPT"])
    assert lines == [f"-I {chain} {new}"] and left[chain][0] == new
    lines, _ = plan(jumps[:10] + jumps[11:] + ["-j ACCEPT"])
    assert lines == [f"-D {chain} {len(jumps) - 10}"]
    lines, _ = plan(jumps[:10] + [new])                              # the fixed tail changed: written in order
    assert lines[0] == f"-F {chain}"
    lines, left = plan([jumps[0]] + jumps + ["-j ACCEPT"])          # a rule twice: written in order as well
    assert left[chain] == [jumps[0]] + jumps + ["-j ACCEPT"]


def test_after_is_what_the_plan_leaves():
    cur = {"FORWARD": ["-j other", f"-j {P}old"], "INPUT": [], f"{P}old": ["-j DROP"], f"{P}keep": ["-j RETURN"],
           "foreign": ["-j ACCEPT"]}
    want = iptables.TableState("filter", {f"{P}keep": ["-j RETURN", "-j DROP"], f"{P}new": ["-j ACCEPT"]},
                               {"FORWARD": [f"-j {P}new"]})
    lines = iptables.plan(cur, want, P)
    assert iptables.after(cur, want, P) == _restore(cur, lines)
    assert iptables.plan(iptables.after(cur, want, P), want, P) == []


def test_port_cache_matches_filtered_ports_and_reuses_unchanged_ports():
    other = "c0ffee00-0000-4000-8000-000000000000"
    v = _view([_rule(protocol="tcp", lo=22, hi=22), _rule(group="sg1")])
    v["ports"].append(dict(v["ports"][0], id=other, device=names.tap(other), security_groups=["sg2", "sg1"]))
    v["security_groups"]["sg2"] = {"id": "sg2", "stateful": True, "rules": [_rule("egress")]}
    cache = PortCache("network")
    first = cache.ports(v)
    assert first == filtered_ports(v) and cache.members(v, first) == remote_members(v, first)
    again = cache.ports(v)
    assert [a is b for a, b in zip(first, again)] == [True, True]
    v["security_groups"]["sg2"]["rules"].append(_rule(protocol="udp", lo=53, hi=53))
    v["remote_groups"]["sg1"]["IPv4"].append("10.0.0.9")
    third = cache.ports(v)
    assert third == filtered_ports(v) and cache.members(v, third) == remote_members(v, third)
    assert third[0] is first[0] and third[1] is not first[1]        # only the port whose group changed


def test_rendered_reuses_a_port_until_it_changes():
    calls = []
    rendered = Rendered(lambda p, eth: calls.append(p.id) or [p.id, eth])
    v = _view([_rule(protocol="tcp", lo=22, hi=22)])
    cache = PortCache("network")
    port = cache.ports(v)[0]
    assert rendered(port, "IPv4") == [PID, "IPv4"] and rendered(port, "IPv4") == [PID, "IPv4"]
    rendered.prune()
    rendered(cache.ports(v)[0], "IPv4")
    assert calls == [PID]
    v["ports"][0]["mac_address"] = "fa:16:3e:00:00:04"
    rendered(cache.ports(v)[0], "IPv4")
    assert calls == [PID, PID]


def test_memory_is_trusted_only_within_its_window():
    now = [100.0]
    m = KernelMemory(trust=10, clock=lambda: now[0])
    assert m.trusted(5) is None
    m.remember({"x": 1}, read_at=now[0], generation=5)
    now[0] = 109.9
    assert m.trusted(5) == {"x": 1}
    assert m.trusted(6) is None                          # someone else changed the ruleset
    now[0] = 110.0
    assert m.trusted(5) is None
    m.remember({"x": 2}, read_at=now[0], generation=5)
    m.forget()
    assert m.trusted(5) is None


def test_memory_window_stretches_after_a_read_slower_than_it():
    now = [100.0]
    m = KernelMemory(trust=10, clock=lambda: now[0])
    now[0] = 130.0                                       # read at 100, applied at 130: it took 30 s
    m.remember({"x": 1}, read_at=100.0, generation=5)
    now[0] = 189.0
    assert m.trusted(5) == {"x": 1}                      # a window of 3 x 30 s, not 10 s: no read loop
    now[0] = 195.0
    m.remember({"x": 2}, read_at=100.0, generation=5)   # built on the same read: the window stays 90 s
    now[0] = 189.5
    assert m.trusted(5) == {"x": 2}
    now[0] = 190.0
    assert m.trusted(5) is None
    now[0] = 200.0
    m.remember({"x": 3}, read_at=199.0, generation=5)   # a quick read: back to 10 s
    now[0] = 209.5
    assert m.trusted(5) is None


def test_a_long_plan_is_split_so_that_nothing_reaches_a_half_built_chain():
    cur = {f"{P}sg-chain": ["-j ACCEPT"], f"{P}iold": ["-j RETURN"], "FORWARD": [f"-j {P}sg-chain"]}
    ports = [f"{i:03d}" for i in range(40)]
    chains = {f"{P}sg-chain": [f"-m physdev --physdev-in t{p} -j {P}o{p}" for p in ports] + ["-j ACCEPT"]}
    for p in ports:
        chains[f"{P}o{p}"] = [f"-j {P}s{p}", "-p tcp -m tcp --dport 22 -j RETURN", f"-j {P}sg-fallback"]
        chains[f"{P}s{p}"] = [f"-s 10.0.0.{p}/32 -j RETURN", "-j DROP"]
    chains[f"{P}sg-fallback"] = ["-j DROP"]
    want = iptables.TableState("filter", chains)
    lines = iptables.plan(cur, want, P)
    txs = iptables.transactions(lines, limit=20)
    assert len(txs) > 3 and sorted(sum(txs, [])) == sorted(lines)
    declared, state = set(cur), cur
    for tx in txs:
        for line in tx:
            named = [w for w in line.split()[1:] if w.startswith(P)]
            assert all(c in declared or line.startswith(":") for c in named), line
            declared |= {line[1:].split()[0]} if line.startswith(":") else set()
        state = _restore(state, tx)
        if tx is not txs[-1]:    # what packets reach (from FORWARD down) is still the old ruleset
            assert state[f"{P}sg-chain"] == cur[f"{P}sg-chain"]
    assert txs[-1] and all(line.split()[1] in cur for line in txs[-1])       # the old chains, all at once
    assert {c: r for c, r in state.items() if c in chains} == chains and f"{P}iold" not in state
    assert iptables.transactions(lines[:5], limit=20) == [lines[:5]]
