"""Security groups as iptables chains, rendered exactly as `iptables-save` prints them (pure; unit-tested).

The layout is Neutron's (iptables_firewall.py), so the seed page's `iptables -L neutron-openvswi-i<dev>` reads the
same: FORWARD -> <prefix>FORWARD -> <prefix>sg-chain -> i<dev> (to the port) / o<dev> (from it) -> ACCEPT;
INPUT -> <prefix>INPUT -> o<dev>; o<dev> -> s<dev> (anti-spoof); every port chain ends in <prefix>sg-fallback
(DROP). The raw table sets one conntrack zone per network (by the bridge the packet is bridged on, which is the
`-i` device that br_netfilter shows) and `CT --notrack` for stateless ports.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from neutrino import names
from neutrino.agent.firewall.ports import ICMP, PORT_PROTOS, FwPort, SgRule, proto_name
from neutrino.lib.iptables import TableState

STATE_EST = "-m state --state RELATED,ESTABLISHED -j RETURN"
STATE_INVALID = "-m state --state INVALID -j DROP"
ICMPV6_IN = (130, 131, 132, 134, 135, 136)      # MLD, RA, NS, NA: IPv6 does not work without them
ICMPV6_EGRESS_UNSPEC = (131, 135, 143)          # MLD reports and DAD sent from :: before the address is valid


def _ports_match(proto: str, lo: int | None, hi: int | None) -> str:
    if lo is None:
        return ""
    rng = str(lo) if hi is None or hi == lo else f"{lo}:{hi}"
    return f" -m {proto} --dport {rng}"


def _icmp_match(ethertype: str, t: int | None, code: int | None) -> str:
    if t is None:
        return ""
    val = str(t) if code is None else f"{t}/{code}"
    return f" -m icmp --icmp-type {val}" if ethertype == "IPv4" else f" -m icmp6 --icmpv6-type {val}"


def rule_spec(r: SgRule) -> str:
    """One group rule as iptables-save prints it (`-s/-d`, `-p`, protocol match, set match, `-j RETURN`)."""
    parts = []
    if r.remote_prefix:
        parts.append(f"{'-s' if r.direction == 'ingress' else '-d'} {r.remote_prefix}")
    if r.proto is not None:
        name = proto_name(r.proto)
        parts.append(f"-p {name}")
        if name in PORT_PROTOS:
            parts[-1] += _ports_match(name, r.port_min, r.port_max)
        elif name == ICMP[r.ethertype]:
            parts[-1] += _icmp_match(r.ethertype, r.port_min, r.port_max)
    if r.remote_group:
        side = "src" if r.direction == "ingress" else "dst"
        parts.append(f"-m set --match-set {names.ipset_name(r.remote_group, r.ethertype)} {side}")
    parts.append("-j RETURN")
    return " ".join(parts)


def _group_rules(port: FwPort, direction: str, ethertype: str) -> list[str]:
    out = []
    for r in port.rules:
        if r.direction == direction and r.ethertype == ethertype:
            spec = rule_spec(r)
            if spec not in out:
                out.append(spec)
    return out


def ingress_chain(port: FwPort, ethertype: str, prefix: str) -> list[str]:
    rules = [STATE_EST] if port.stateful else []
    if ethertype == "IPv6":
        rules += [f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in ICMPV6_IN]
    rules += _group_rules(port, "ingress", ethertype)
    rules.append("-p udp -m udp --sport 67 --dport 68 -j RETURN" if ethertype == "IPv4"
                 else "-p udp -m udp --sport 547 --dport 546 -j RETURN")
    if port.stateful:
        rules.append(STATE_INVALID)
    rules.append(f"-j {prefix}sg-fallback")
    return rules


def egress_chain(port: FwPort, ethertype: str, prefix: str) -> list[str]:
    spoof = f"-j {names.sg_chain('s', port.id, prefix)}"
    if ethertype == "IPv4":
        rules = ["-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN", spoof,
                 "-p udp -m udp --sport 68 --dport 67 -j RETURN",
                 "-p udp -m udp --sport 67 --dport 68 -j DROP"]
    else:
        rules = [f"-s ::/128 -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN"
                 for t in ICMPV6_EGRESS_UNSPEC]
        rules += [spoof, "-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j DROP", "-p ipv6-icmp -j RETURN",
                  "-p udp -m udp --sport 546 --dport 547 -j RETURN",
                  "-p udp -m udp --sport 547 --dport 546 -j DROP"]
    if port.stateful:
        rules.append(STATE_EST)
    rules += _group_rules(port, "egress", ethertype)
    if port.stateful:
        rules.append(STATE_INVALID)
    rules.append(f"-j {prefix}sg-fallback")
    return rules


def spoof_chain(port: FwPort, ethertype: str) -> list[str]:
    host = 32 if ethertype == "IPv4" else 128
    rules = []
    for cidr, mac in port.allowed[ethertype]:
        src = cidr if "/" in cidr else f"{cidr}/{host}"
        rules.append(f"-s {src} -m mac --mac-source {mac} -j RETURN")
    return rules + ["-j DROP"]


def _physdev(direction: str, tap: str) -> str:
    return f"-m physdev --physdev-{direction} {tap} --physdev-is-bridged"


@dataclass
class PortFilter:
    """One port's part of the filter table: its own chains and its jump rules in the shared chains."""
    chains: dict[str, list[str]]
    forward: list[str]
    input: list[str]
    sg: list[str]


def port_filter(p: FwPort, ethertype: str, prefix: str) -> PortFilter:
    i_chain, o_chain = names.sg_chain("i", p.id, prefix), names.sg_chain("o", p.id, prefix)
    return PortFilter({i_chain: ingress_chain(p, ethertype, prefix), o_chain: egress_chain(p, ethertype, prefix),
                       names.sg_chain("s", p.id, prefix): spoof_chain(p, ethertype)},
                      [f"{_physdev('out', p.tap)} -j {prefix}sg-chain", f"{_physdev('in', p.tap)} -j {prefix}sg-chain"],
                      [f"{_physdev('in', p.tap)} -j {o_chain}"],
                      [f"{_physdev('out', p.tap)} -j {i_chain}", f"{_physdev('in', p.tap)} -j {o_chain}"])


def filter_table(ports: list[FwPort], ethertype: str, prefix: str,
                 render: Callable[[FwPort, str, str], PortFilter] = port_filter) -> TableState:
    """The whole owned part of the filter table (ip6tables for IPv6) for these ports (render: port_filter, or a
    cache of it). The shared chains' per-port jumps each match one tap, so their order is free (a new port's go on
    top); sg-chain's final ACCEPT stays last."""
    fwd, inp, sg = [], [], []
    chains: dict[str, list[str]] = {}
    for p in ports:
        pf = render(p, ethertype, prefix)
        fwd += pf.forward
        inp += pf.input
        sg += pf.sg
        chains.update(pf.chains)
    base = {f"{prefix}FORWARD": fwd, f"{prefix}INPUT": inp, f"{prefix}sg-chain": sg + ["-j ACCEPT"],
            f"{prefix}sg-fallback": ["-j DROP"]}
    return TableState("filter", {**base, **chains},
                      {"FORWARD": [f"-j {prefix}FORWARD"], "INPUT": [f"-j {prefix}INPUT"]},
                      {f"{prefix}FORWARD": 0, f"{prefix}INPUT": 0, f"{prefix}sg-chain": 1})


def raw_table(ports: list[FwPort], zones: dict[str, int], prefix: str) -> TableState:
    """Conntrack zones (network id -> zone) by bridge, after `--notrack` for ports of stateless groups."""
    rules = [f"-m physdev --physdev-in {p.tap} -j CT --notrack" for p in ports if not p.stateful]
    seen = set()
    for p in ports:
        if p.bridge not in seen:
            seen.add(p.bridge)
            rules.append(f"-i {p.bridge} -j CT --zone {zones[p.network_id]}")
    return TableState("raw", {f"{prefix}PREROUTING": rules}, {"PREROUTING": [f"-j {prefix}PREROUTING"]})


def zones_in_raw(rules: list[str]) -> dict[str, int]:
    """bridge -> zone from the current raw chain (so zones survive restarts and are never renumbered)."""
    out = {}
    for r in rules:
        w = r.split()
        if len(w) == 6 and w[0] == "-i" and w[2:5] == ["-j", "CT", "--zone"] and w[5].isdigit():
            out[w[1]] = int(w[5])
    return out
