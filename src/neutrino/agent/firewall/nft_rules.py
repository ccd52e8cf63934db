"""Security groups as nftables tables (pure; unit-tested): same semantics as rules.py, with sets and maps.

nft has no `physdev` match and, in the inet family, no bridge-port names (`meta ibrname` is refused with "Operation
not supported"; bridge-family conntrack is missing here). So the bridge family only labels packets, statelessly:
`table bridge neutrino` sets the packet mark (it owns the mark of bridged packets on the host) from the bridge
port it came in on (low 16 bits = that port's id) and,
at forward, from the port it leaves by (high 16 bits). br_netfilter then runs `table inet neutrino`, whose
forward/input hooks dispatch on the mark through verdict maps to per-port chains i<dev> (to the port), o<dev>
(from it) and s<dev> (anti-spoof), with conntrack as in iptables; remote groups are sets. Conntrack zones are
set per network by the bridge, which is the input device br_netfilter shows (`ct zone set iifname map @zones`).

The per-port chains are spread over shard tables `inet neutrino-<k>` of SHARD ports each (k from the port's mark:
stable while the port lives), each with its own forward/input base chains, dispatch maps and copies of the sets
its ports' rules name. Why: every commit that adds a rule or a jump makes the kernel check the whole table it
touches for loops (all chains reachable from its base chains: 59 ms for one table of 5000 ports here), and that
check is per table, so a one-port change now pays for its shard only. A packet meets every shard's base chains;
a shard without its port misses in its maps (one hash lookup) and accepts, and a drop in any shard drops it,
so the verdict is the one a single table gives. `table inet neutrino` keeps what is per packet, not per port:
notrack for stateless ports and the conntrack zone.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable

from neutrino import names
from neutrino.agent.firewall.ports import ICMP, PORT_PROTOS, FwPort, SgRule, proto_name
from neutrino.agent.firewall.rules import ICMPV6_EGRESS_UNSPEC, ICMPV6_IN
from neutrino.lib import nft
from neutrino.lib.nft import Chain, Set, Table

TABLE = "neutrino"
SHARD = 256           # ports per shard table: the loop check of a one-port commit is that table's (~3 ms)
IP = {"IPv4": "ip", "IPv6": "ip6"}
ADDR = {"IPv4": "ipv4_addr", "IPv6": "ipv6_addr"}
NFPROTO = {"IPv4": "meta nfproto ipv4", "IPv6": "meta nfproto ipv6"}
# ICMPv6 types as named sets of the table, by the names nft prints: an anonymous `{ ... }` in every port's chains
# made two sets per port, and the kernel binds each anonymous set by scanning the whole transaction (a cold sync of
# 5000 ports spent most of its 90 s there) and nft lists them all on every read.
ICMPV6_NAMES = {130: "mld-listener-query", 131: "mld-listener-report", 132: "mld-listener-done",
                134: "nd-router-advert", 135: "nd-neighbor-solicit", 136: "nd-neighbor-advert",
                143: "mld2-listener-report"}
ICMPV6_SETS = {"icmpv6-in": ICMPV6_IN, "icmpv6-unspec": ICMPV6_EGRESS_UNSPEC}
EST = "ct state established,related return"
INVALID = "ct state invalid drop"
FALLBACK = "jump sg-fallback"


def shard(mark: int) -> str:
    """The inet table of a port's chains, from its mark (1..65535)."""
    return nft.shard(TABLE, (mark - 1) // SHARD)


def is_shard(table: str) -> bool:
    return nft.is_shard(TABLE, table)


def chain(kind: str, port: FwPort) -> str:
    return f"{kind}{port.dev}"


def rule_expr(r: SgRule) -> str:
    """One group rule as an nft statement (always family-qualified)."""
    ip = IP[r.ethertype]
    side = "saddr" if r.direction == "ingress" else "daddr"
    parts = [NFPROTO[r.ethertype]]
    if r.remote_prefix:
        parts.append(f"{ip} {side} {r.remote_prefix}")
    if r.remote_group:
        parts.append(f"{ip} {side} @{names.ipset_name(r.remote_group, r.ethertype)}")
    if r.proto is not None:
        name = proto_name(r.proto)
        parts.append(f"meta l4proto {r.proto}")
        if name in PORT_PROTOS and r.port_min is not None:
            rng = str(r.port_min) if r.port_max in (None, r.port_min) else f"{r.port_min}-{r.port_max}"
            parts.append(f"{name} dport {rng}")
        elif name == ICMP[r.ethertype] and r.port_min is not None:
            kw = "icmp" if r.ethertype == "IPv4" else "icmpv6"
            parts.append(f"{kw} type {r.port_min}" + (f" {kw} code {r.port_max}" if r.port_max is not None else ""))
    return " ".join(parts + ["return"])


def _group(port: FwPort, direction: str) -> list[str]:
    out = []
    for r in port.rules:
        if r.direction == direction:
            e = rule_expr(r)
            if e not in out:
                out.append(e)
    return out


def ingress_chain(p: FwPort) -> list[str]:
    rules = [EST] if p.stateful else []
    rules.append("icmpv6 type @icmpv6-in return")
    rules += _group(p, "ingress")
    rules += ["meta nfproto ipv4 udp sport 67 udp dport 68 return",
              "meta nfproto ipv6 udp sport 547 udp dport 546 return"]
    return rules + ([INVALID] if p.stateful else []) + [FALLBACK]


def egress_chain(p: FwPort) -> list[str]:
    rules = ["ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return",
             "ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type @icmpv6-unspec return",
             f"jump {chain('s', p)}",
             "meta nfproto ipv4 udp sport 68 udp dport 67 return",
             "meta nfproto ipv4 udp sport 67 udp dport 68 drop",
             "icmpv6 type 134 drop", "meta l4proto ipv6-icmp return",
             "meta nfproto ipv6 udp sport 546 udp dport 547 return",
             "meta nfproto ipv6 udp sport 547 udp dport 546 drop"]
    rules += [EST] if p.stateful else []
    rules += _group(p, "egress")
    return rules + ([INVALID] if p.stateful else []) + [FALLBACK]


def spoof_chain(p: FwPort) -> list[str]:
    """Anti-spoof as plain rules: `ether saddr MAC ip saddr CIDR return` per fixed IP / allowed pair, then drop.
    (Not a set keyed by the port mark: nft 1.0.6 mis-handles host-endian `mark` in interval concatenations.)"""
    rules = []
    for eth, ip in (("IPv4", "ip"), ("IPv6", "ip6")):
        for cidr, mac in p.allowed[eth]:
            net = ipaddress.ip_network(cidr)
            addr = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
            rules.append(f"ether saddr {mac} {ip} saddr {addr} return")
    return rules + ["drop"]


def port_chains(p: FwPort, mark: int) -> tuple[dict[str, Chain], dict[str, Chain], tuple, tuple]:
    """One port's own chains: in the bridge table (its outbound mark) and in its shard table; its elements of the
    dispatch maps (inport, outport, to_port, from_port: key, value); and the remote groups its rules name (group,
    ethertype), rendered with them so that a sync of 5000 unchanged ports formats none of them again."""
    return ({chain("m", p): Chain([f"meta mark set meta mark & 0x0000ffff | {mark << 16:#010x}"])},
            {chain("i", p): Chain(ingress_chain(p)), chain("o", p): Chain(egress_chain(p)),
             chain("s", p): Chain(spoof_chain(p))},
            ((f'"{p.tap}"', str(mark)), (f'"{p.tap}"', f"goto {chain('m', p)}"),
             (str(mark << 16), f"jump {chain('i', p)}"), (str(mark), f"jump {chain('o', p)}")),
            tuple(dict.fromkeys((r.remote_group, r.ethertype) for r in p.rules if r.remote_group)))


def tables(ports: list[FwPort], members: dict[tuple[str, str], list[str]], marks: dict[str, int],
           zones: dict[str, int], render: Callable[[FwPort, int], tuple] = port_chains,
           groups: dict[tuple[str, str], tuple[list[str], Set]] | None = None) -> list[Table]:
    """The bridge labelling table, `table inet neutrino` (notrack, zones) and the shard tables that filter. marks:
    tap -> port id (1..65535); zones: network id -> conntrack zone; render: port_chains or a cache of it; groups:
    a cache of the remote group sets, kept by the caller between calls (a group whose member list is the same
    object keeps its Set, and every shard names that one Set: lib.nft.plan skips it by identity)."""
    rendered = [render(p, marks[p.tap]) for p in ports]
    br = Table("bridge", TABLE)
    br.sets["inport"] = Set("type ifname : mark;", dict(r[2][0] for r in rendered))
    br.sets["outport"] = Set("type ifname : verdict;", dict(r[2][1] for r in rendered))
    # Reset first: a mark set on one bridge must not follow the packet through a veth onto the next (hybrid plug).
    br.chains["prerouting"] = Chain(["meta mark set 0x00000000", "meta mark set iifname map @inport"],
                                    "type filter hook prerouting priority -200; policy accept;")
    br.chains["forward"] = Chain(["oifname vmap @outport"], "type filter hook forward priority -200; policy accept;")
    for r in rendered:
        br.chains.update(r[0])

    t = Table("inet", TABLE)
    bridges = {p.bridge: p.network_id for p in ports}
    t.sets["zones"] = Set("typeof iifname : ct zone;", {f'"{b}"': str(zones[n]) for b, n in bridges.items()})
    t.sets["stateless"] = Set("type mark;", {r[2][3][0]: None for p, r in zip(ports, rendered) if not p.stateful})
    # `accept` after notrack: a later `ct zone set` would replace the untracked mark with a zone template.
    t.chains["prerouting"] = Chain(["meta mark & 0x0000ffff @stateless notrack accept",
                                    "ct zone set iifname map @zones"],
                                   "type filter hook prerouting priority -300; policy accept;")
    shards: dict[str, Table] = {}
    cache = groups if groups is not None else {}
    made: dict[tuple[str, str], Set] = {}
    for p, r in zip(ports, rendered):
        name = shard(marks[p.tap])
        s = shards.get(name)
        if s is None:
            s = shards[name] = _shard(name)
        to_key, to_verdict = r[2][2]
        from_key, from_verdict = r[2][3]
        s.sets["to_port"].elements[to_key] = to_verdict
        s.sets["from_port"].elements[from_key] = from_verdict
        s.chains.update(r[1])
        for key in r[3]:
            g = made.get(key)
            if g is None:
                hit = cache.get(key)
                if hit is None or hit[0] is not members[key]:
                    hit = cache[key] = (members[key], Set(f"type {ADDR[key[1]]}; flags interval;",
                                                          dict.fromkeys(members[key])))
                g = made[key] = hit[1]
            s.sets[names.ipset_name(*key)] = g
    for key in set(cache) - set(made):
        del cache[key]
    return [br, t, *(shards[k] for k in sorted(shards))]


def _shard(name: str) -> Table:
    t = Table("inet", name)
    t.sets["to_port"] = Set("type mark : verdict;", {})
    t.sets["from_port"] = Set("type mark : verdict;", {})
    for set_name, types in ICMPV6_SETS.items():
        t.sets[set_name] = Set("type icmpv6_type;", {ICMPV6_NAMES[n]: None for n in types})
    t.chains["forward"] = Chain(["meta mark & 0xffff0000 vmap @to_port", "meta mark & 0x0000ffff vmap @from_port"],
                                "type filter hook forward priority 0; policy accept;")
    t.chains["input"] = Chain(["meta mark & 0x0000ffff vmap @from_port"],
                              "type filter hook input priority 0; policy accept;")
    t.chains["sg-fallback"] = Chain(["drop"])
    return t
