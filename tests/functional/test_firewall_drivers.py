"""Security groups on the real kernel, for both firewall drivers, in throwaway namespaces (see netfix_fw)."""
from __future__ import annotations

import os

import pytest

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.firewall.iptables import IptablesFirewallDriver
from neutrino.agent.firewall.nft_rules import shard
from neutrino.agent.firewall.nftables import NftablesFirewallDriver
from neutrino.lib import nft

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces)", allow_module_level=True)

from netfix_fw import Host, group, port, rid, rule, view  # noqa: E402

NET = rid()
SHARD0 = shard(1)          # the inet table of the first ports' chains


def make_driver(kind: str, ns: str):
    cfg = HostConfig("h1", "/tmp")
    if kind == "iptables":
        return IptablesFirewallDriver(cfg, ns=ns, bridge="network")
    return NftablesFirewallDriver(cfg, ns=ns)


def applied(drv) -> list[str]:
    """Every kernel change the last sync made (iptables lines, ipset lines or nft script)."""
    if isinstance(drv, IptablesFirewallDriver):
        return [line for lines in drv.last_lines.values() for line in lines]
    return drv.last_script


def owned(host: Host) -> str:
    """Everything a driver could have left in the host: its chains, sets and tables."""
    out = ""
    for argv in (["iptables-save"], ["ip6tables-save"], ["ipset", "list", "-n"], ["nft", "list", "ruleset"]):
        out += host.exec(host.ns, argv).stdout
    return out


@pytest.fixture(params=["iptables", "nftables"])
def world(request):
    """Ports a, b in `default` (members talk to members), c in `web` (tcp/22 + icmp in), u without port security."""
    h = Host()
    default, web = rid(), rid()
    ports = {
        "a": port(rid(), NET, "10.0.0.11", "fa:16:3e:00:00:11", [default]),
        "b": port(rid(), NET, "10.0.0.12", "fa:16:3e:00:00:12", [default]),
        "c": port(rid(), NET, "10.0.0.13", "fa:16:3e:00:00:13", [web]),
        "u": port(rid(), NET, "10.0.0.14", "fa:16:3e:00:00:14", [], security=False),
    }
    groups = {"default": group(default, [rule("ingress", remote_group_id=default), rule("egress"),
                                         rule("egress", ethertype="IPv6")]),
              "web": group(web, [rule("egress"), rule("ingress", "tcp", 22), rule("ingress", "icmp")])}
    try:
        for p in ports.values():
            h.plug(p)
        drv = make_driver(request.param, h.ns)
        yield h, drv, ports, groups
        drv.cleanup()
        left = owned(h)
        assert "neutron-" not in left and "NIPv" not in left and "neutrino" not in left, left
    finally:
        h.close()


def test_groups_rules_and_idempotence(world):
    h, drv, p, g = world
    v = view(list(p.values()), list(g.values()))
    assert drv.sync(v).ports == {p[k]["id"]: True for k in "abc"}
    assert h.ping(p["a"], "10.0.0.12") and h.ping(p["b"], "10.0.0.11")       # remote group: members talk
    assert not h.ping(p["c"], "10.0.0.11")                                       # non-members do not
    assert h.ping(p["a"], "10.0.0.13")                                           # web: icmp in
    h.listen(p["c"], 22)
    h.listen(p["c"], 23)
    assert h.tcp(p["a"], "10.0.0.13", 22) and not h.tcp(p["a"], "10.0.0.13", 23)
    second = drv.sync(v)
    assert not second.changed and applied(drv) == []
    g["web"]["rules"] = [r for r in g["web"]["rules"] if r["protocol"] != "tcp"]
    drv.sync(view(list(p.values()), list(g.values())))
    assert not h.tcp(p["a"], "10.0.0.13", 22)
    assert h.ping(p["a"], "10.0.0.13")


def test_one_port_change_touches_only_its_chains(world):
    h, drv, p, g = world
    drv.sync(view(list(p.values()), list(g.values())))
    g["web"]["rules"].append(rule("ingress", "udp", 53))
    drv.sync(view(list(p.values()), list(g.values())))
    lines = [x for x in applied(drv) if "elements" in x or not x.startswith(("add set", "add map"))]   # not
    assert lines                                                                # the sets nft is told of
    dev_c, others = names.sg_dev(p["c"]["id"]), [names.sg_dev(p[k]["id"]) for k in "ab"]
    assert all(dev_c in line for line in lines), lines
    assert not any(d in line for d in others for line in lines)


def test_remote_group_follows_membership_without_rule_changes(world):
    h, drv, p, g = world
    x = port(rid(), NET, "10.0.0.20", "fa:16:3e:00:00:20", [])       # a port of another host: not in this view
    h.plug(x)
    v = view(list(p.values()), list(g.values()))
    drv.sync(v)
    assert not h.ping(x, "10.0.0.11")
    v["remote_groups"][g["default"]["id"]]["IPv4"].append("10.0.0.20")
    drv.sync(v)
    assert h.ping(x, "10.0.0.11")
    lines = applied(drv)
    if isinstance(drv, IptablesFirewallDriver):
        assert drv.last_lines["ipset"] and not any(drv.last_lines[t] for t in ("filter4", "raw4", "filter6", "raw6"))
    else:
        assert lines and not any(line.startswith(("add chain", "flush chain")) for line in lines), lines
    v["remote_groups"][g["default"]["id"]]["IPv4"].remove("10.0.0.20")
    drv.sync(v)
    assert not h.ping(x, "10.0.0.11")
    assert names.ipset_name(g["default"]["id"]) in owned(h)
    g["default"]["rules"] = [r for r in g["default"]["rules"] if not r["remote_group_id"]]
    drv.sync(view(list(p.values()), list(g.values())))
    assert names.ipset_name(g["default"]["id"]) not in owned(h)          # unused set destroyed


def test_ipv6_members_talk_others_do_not(world):
    h, drv, p, g = world
    for k, addr in (("a", "fd00::11"), ("b", "fd00::12"), ("c", "fd00::13")):
        p[k]["fixed_ips"].append({"subnet_id": "s6", "ip_address": addr, "prefixlen": 64, "cidr": "fd00::/64",
                                  "gateway_ip": None})
        h.exec(h.guests[p[k]["id"]], ["ip", "-6", "addr", "add", f"{addr}/64", "dev", "eth0", "nodad"])
    g["default"]["rules"].append(rule("ingress", remote_group_id=g["default"]["id"], ethertype="IPv6"))
    g["web"]["rules"].append(rule("egress", ethertype="IPv6"))
    drv.sync(view(list(p.values()), list(g.values())))
    ping6 = lambda src, dst: h.exec(h.guests[p[src]["id"]], ["ping", "-6", "-c1", "-W1", dst]).returncode == 0
    assert ping6("a", "fd00::12") and not ping6("c", "fd00::11")
    assert not drv.sync(view(list(p.values()), list(g.values()))).changed


def test_spoofing_fails_and_address_pairs_work(world):
    h, drv, p, g = world
    g["web"]["rules"].append(rule("ingress"))                       # c accepts anything: only spoofing can block
    p["a"]["allowed_address_pairs"] = [{"ip_address": "10.0.0.128/25"}]
    drv.sync(view(list(p.values()), list(g.values())))
    ga = h.guests[p["a"]["id"]]
    assert h.exec(ga, ["ping", "-c1", "-W1", "10.0.0.13"]).returncode == 0
    h.exec(ga, ["ip", "addr", "add", "10.0.0.51/24", "dev", "eth0"])
    h.exec(ga, ["ip", "addr", "add", "10.0.0.130/24", "dev", "eth0"])
    assert h.exec(ga, ["ping", "-c1", "-W1", "-I", "10.0.0.51", "10.0.0.13"]).returncode != 0     # other IP
    assert h.exec(ga, ["ping", "-c1", "-W1", "-I", "10.0.0.130", "10.0.0.13"]).returncode == 0    # pair
    h.exec(ga, ["ip", "link", "set", "eth0", "address", "fa:16:3e:00:00:99"])
    h.exec(ga, ["ip", "neigh", "flush", "all"])
    assert h.exec(ga, ["ping", "-c1", "-W1", "10.0.0.13"]).returncode != 0                        # other MAC


def test_port_security_disabled_is_open(world):
    h, drv, p, g = world
    drv.sync(view(list(p.values()), list(g.values())))
    h.listen(p["u"], 23)
    assert h.ping(p["c"], "10.0.0.14") and h.tcp(p["a"], "10.0.0.14", 23)
    assert p["u"]["id"][:10] not in owned(h)


def test_stateless_group_needs_both_directions(world):
    h, drv, p, g = world
    g["web"]["stateful"] = False
    drv.sync(view(list(p.values()), list(g.values())))
    assert not h.ping(p["a"], "10.0.0.13")   # c's untracked reply is not ESTABLISHED for a, which allows no icmp
    g["default"]["rules"].append(rule("ingress", "icmp", remote_ip_prefix="10.0.0.13/32"))
    drv.sync(view(list(p.values()), list(g.values())))
    assert h.ping(p["c"], "10.0.0.11")


SEED_LINES = ["RETURN     all  --  anywhere             anywhere             state RELATED,ESTABLISHED",
              "RETURN     tcp  --  anywhere             anywhere             tcp dpt:ssh",
              "RETURN     icmp --  anywhere             anywhere",
              "RETURN     udp  --  anywhere             anywhere             udp spt:bootps dpt:bootpc",
              "DROP       all  --  anywhere             anywhere             state INVALID",
              "neutron-openvswi-sg-fallback  all  --  anywhere             anywhere"]


def test_seed_chain_listing_and_conntrack_zone():
    """`iptables -L neutron-openvswi-i<dev>` reads like the seed page; connections land in the network's zone."""
    h = Host()
    try:
        sg = rid()
        vm = port(rid(), NET, "10.0.0.3", "fa:16:3e:00:00:03", [sg])
        peer = port(rid(), NET, "10.0.0.4", "fa:16:3e:00:00:04", [], security=False)
        h.plug(vm)
        h.plug(peer)
        drv = IptablesFirewallDriver(HostConfig("h1", "/tmp"), ns=h.ns, bridge="network")
        drv.sync(view([vm, peer], [group(sg, [rule("ingress", "tcp", 22), rule("ingress", "icmp"),
                                              rule("egress")])]))
        chain = names.sg_chain("i", vm["id"])
        listing = h.exec(h.ns, ["iptables", "-L", chain]).stdout.splitlines()
        assert listing[0] == f"Chain {chain} (1 references)"
        assert [line.rstrip() for line in listing[2:]] == SEED_LINES
        assert h.ping(peer, "10.0.0.3")
        assert "zone=1" in h.exec(h.ns, ["conntrack", "-L"]).stdout
        drv.cleanup()
    finally:
        h.close()


@pytest.mark.parametrize("kind", ["iptables", "nftables"])
def test_hybrid_plug_per_port_bridges(kind):
    """The ovs backend's wiring (tap -> qbr -> qvb/qvo -> br-int): filtering and zones keyed by qbr<id>."""
    h = Host()
    try:
        sg = rid()
        a = port(rid(), NET, "10.0.0.21", "fa:16:3e:00:00:21", [sg])
        b = port(rid(), NET, "10.0.0.22", "fa:16:3e:00:00:22", [sg])
        x = port(rid(), NET, "10.0.0.23", "fa:16:3e:00:00:23", [], security=False)
        for p in (a, b, x):
            h.plug_hybrid(p)
        cfg = HostConfig("h1", "/tmp")
        drv = (IptablesFirewallDriver(cfg, ns=h.ns) if kind == "iptables"
               else NftablesFirewallDriver(cfg, ns=h.ns, bridge="port"))
        v = view([a, b, x], [group(sg, [rule("ingress", remote_group_id=sg), rule("egress")])])
        drv.sync(v)
        assert h.ping(a, "10.0.0.22") and h.ping(b, "10.0.0.21")
        assert not h.ping(x, "10.0.0.21")
        assert "zone=1" in h.exec(h.ns, ["conntrack", "-L"]).stdout
        assert not drv.sync(v).changed
        drv.cleanup()
    finally:
        h.close()


def _clocked(kind: str, ns: str, now: list[float]):
    """A driver on a hand-driven clock, trusting what it applied for 10 s."""
    cfg = HostConfig("h1", "/tmp")
    if kind == "iptables":
        return IptablesFirewallDriver(cfg, ns=ns, bridge="network", trust=10, clock=lambda: now[0])
    return NftablesFirewallDriver(cfg, ns=ns, trust=10, clock=lambda: now[0])


@pytest.mark.parametrize("kind", ["iptables", "nftables"])
def test_drift_is_repaired_at_once_or_when_the_trust_window_expires(kind):
    """A change behind the driver's back bumps the ruleset generation: the next sync reads the kernel and repairs
    it. One the generation cannot reveal (made while the driver applied: simulated by letting the driver believe
    the new generation is its own) goes unseen while the driver trusts its memory, and is repaired once that
    window expires."""
    h = Host()
    try:
        sg = rid()
        a = port(rid(), NET, "10.0.0.31", "fa:16:3e:00:00:31", [sg])
        b = port(rid(), NET, "10.0.0.32", "fa:16:3e:00:00:32", [], security=False)
        for p in (a, b):
            h.plug(p)
        now = [1000.0]
        drv = _clocked(kind, h.ns, now)
        v = view([a, b], [group(sg, [rule("ingress", "icmp"), rule("egress")])])
        drv.sync(v)
        assert h.ping(b, "10.0.0.31")

        def drift():
            if kind == "iptables":
                chain = names.sg_chain("i", a["id"])
                h.exec(h.ns, ["iptables", "-F", chain])
                h.exec(h.ns, ["iptables", "-A", chain, "-j", "DROP"])
            else:
                dev = names.sg_dev(a["id"])
                h.exec(h.ns, ["nft", "flush", "chain", "inet", SHARD0, f"i{dev}"])
                h.exec(h.ns, ["nft", "add", "rule", "inet", SHARD0, f"i{dev}", "drop"])
            assert not h.ping(b, "10.0.0.31")

        drift()
        now[0] += 1
        assert drv.sync(v).changed and h.ping(b, "10.0.0.31")          # generation changed: read and repaired
        drift()
        drv.memory.generation = nft.generation(h.ns)
        now[0] += 8
        assert not drv.sync(v).changed and applied(drv) == []          # trusted: drift not seen yet
        now[0] += 2
        assert drv.sync(v).changed and applied(drv)                    # window over: read again, repaired
        assert h.ping(b, "10.0.0.31")
        assert not drv.sync(v).changed
        drv.cleanup()
    finally:
        h.close()


@pytest.mark.parametrize("kind", ["iptables", "nftables"])
def test_apply_from_memory_refused_by_the_kernel_falls_back_to_a_read(kind):
    """A port chain deleted behind the driver's back: the delta made from memory fails, the driver reads the
    kernel and applies again within the same sync."""
    h = Host()
    try:
        sg = rid()
        a = port(rid(), NET, "10.0.0.41", "fa:16:3e:00:00:41", [sg])
        b = port(rid(), NET, "10.0.0.42", "fa:16:3e:00:00:42", [], security=False)
        for p in (a, b):
            h.plug(p)
        now = [1000.0]
        drv = _clocked(kind, h.ns, now)
        g = group(sg, [rule("egress")])
        drv.sync(view([a, b], [g]))
        assert not h.ping(b, "10.0.0.41")
        dev = names.sg_dev(a["id"])
        if kind == "iptables":
            chain = names.sg_chain("i", a["id"])
            sg_chain = f"{names.IPT_PREFIX}sg-chain"
            jump = next(line for line in h.exec(h.ns, ["iptables", "-S", sg_chain]).stdout.splitlines()
                        if line.endswith(chain))
            h.exec(h.ns, ["iptables", "-D", *jump.split()[1:]])
            h.exec(h.ns, ["iptables", "-F", chain])
            h.exec(h.ns, ["iptables", "-X", chain])
        else:
            mark = h.exec(h.ns, ["nft", "list", "map", "inet", SHARD0, "to_port"]).stdout
            key = next(w.split(":")[0].strip() for w in mark.replace("{", ",").replace("}", ",").split(",")
                       if f"i{dev}" in w)
            h.exec(h.ns, ["nft", "delete", "element", "inet", SHARD0, "to_port", "{", key, "}"])
            h.exec(h.ns, ["nft", "flush", "chain", "inet", SHARD0, f"i{dev}"])
            h.exec(h.ns, ["nft", "delete", "chain", "inet", SHARD0, f"i{dev}"])
        g["rules"].append(rule("ingress", "icmp"))
        now[0] += 1
        assert drv.sync(view([a, b], [g])).changed                      # within the window, yet repaired
        assert h.ping(b, "10.0.0.41")
        assert not drv.sync(view([a, b], [g])).changed
        drv.cleanup()
    finally:
        h.close()


def test_ports_in_several_shard_tables_filter_as_one_table_and_hood_reads_them(monkeypatch):
    """One port per shard table (SHARD = 1): every shard's base chains see every packet; a port's own shard
    decides, the others pass it; a shard emptied by a removal goes; hood's trace and items follow the shards."""
    from neutrino.agent.firewall import nft_rules
    from neutrino.hood.ipt_eval import Packet
    from neutrino.hood.items import OK
    from neutrino.hood.nft_items import sg_items
    from neutrino.hood.trace import Trace, Walker
    from neutrino.lib import inspect
    monkeypatch.setattr(nft_rules, "SHARD", 1)
    h = Host()
    try:
        default, web = rid(), rid()
        a = port(rid(), NET, "10.0.0.51", "fa:16:3e:00:00:51", [default])
        b = port(rid(), NET, "10.0.0.52", "fa:16:3e:00:00:52", [default])
        c = port(rid(), NET, "10.0.0.53", "fa:16:3e:00:00:53", [web])
        for p in (a, b, c):
            h.plug(p)
        groups = [group(default, [rule("ingress", remote_group_id=default), rule("egress")]),
                  group(web, [rule("egress"), rule("ingress", "icmp")])]
        drv = make_driver("nftables", h.ns)
        v = view([a, b, c], groups)
        drv.sync(v)
        shards = sorted(t for t in nft.table_names("inet", h.ns) if nft_rules.is_shard(t))
        assert shards == ["neutrino-0", "neutrino-1", "neutrino-2"]
        assert h.ping(a, "10.0.0.52") and h.ping(a, "10.0.0.53")      # a member; icmp into web
        assert not h.ping(c, "10.0.0.51")                              # c is not in a's group

        snap = {"backends": {"l2": "linuxbridge", "firewall": "nftables"}, "nft": inspect.nft_ruleset(h.ns),
                "links": {p["device"]: {"master": names.brq(NET)} for p in (a, b, c)}}
        walker = Walker(v, snap, lambda *args: None)
        for src, dst, ok in ((a, b, True), (c, a, False)):
            pkt = Packet(src["fixed_ips"][0]["ip_address"], dst["fixed_ips"][0]["ip_address"],
                         mac_src=src["mac_address"])
            t = Trace(pkt.src, pkt.dst, "icmp", None)
            assert walker.bridge_fw(t, pkt, dst, False, src["device"]) is ok, t.hops[-1]
            assert ok or f"i{names.sg_dev(dst['id'])}: jump sg-fallback" in t.rule, t.rule
        for p in (a, c):
            items = sg_items(v, snap, p, drv.expected(v, p, "linuxbridge"), "linuxbridge")
            assert items and all(i["state"] == OK for i in items), items

        [b_shard] = [t for _, t, c in walker.nft.chains if c == f"i{names.sg_dev(b['id'])}"]
        drv.sync(view([a, c], groups))                              # b's shard goes with it
        assert sorted(t for t in nft.table_names("inet", h.ns) if nft_rules.is_shard(t)) == \
            sorted(set(shards) - {b_shard})
        assert drv.last_script[-1] == f"delete table inet {b_shard}"
        assert h.ping(a, "10.0.0.53") and not h.ping(c, "10.0.0.51")
        drv.cleanup()
        left = owned(h)
        assert "neutrino" not in left, left
    finally:
        h.close()
