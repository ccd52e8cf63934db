"""What the firewall needs to know about each port, taken from the host view, shared by both drivers.

A port is filtered when it is an instance port with port security on (Neutron filters only compute ports). Its
rules are the union of its groups' rules (deduplicated, in group then rule order); it is stateful unless every one
of its groups is stateless (Neutron forbids mixing). Protocols are normalised here once: names as `iptables-save`
prints them (from /etc/protocols, `icmp` becomes `ipv6-icmp` for IPv6) and numbers for nft.
"""
from __future__ import annotations

import ipaddress
import marshal
from dataclasses import dataclass, field
from functools import lru_cache

from neutrino import names
from neutrino.sync.schema import Port, Rule, View


def _copy(obj):
    """A deep copy of plain JSON data (what a view holds), fast: the caller's later changes do not reach it."""
    return marshal.loads(marshal.dumps(obj, 2))

PORT_PROTOS = ("tcp", "udp", "sctp", "dccp")
ICMP = {"IPv4": "icmp", "IPv6": "ipv6-icmp"}


@lru_cache(maxsize=1)
def _protocols() -> tuple[dict[str, int], dict[int, str]]:
    by_name: dict[str, int] = {"icmpv6": 58}
    by_num: dict[int, str] = {}
    try:
        with open("/etc/protocols") as f:
            for line in f:
                words = line.split("#", 1)[0].split()
                if len(words) >= 2 and words[1].isdigit():
                    num = int(words[1])
                    by_num.setdefault(num, words[0])
                    for w in [words[0], *words[2:]]:
                        by_name.setdefault(w.lower(), num)
    except OSError:
        pass
    for name, num in (("icmp", 1), ("tcp", 6), ("udp", 17), ("ipv6-icmp", 58), ("sctp", 132)):
        by_name.setdefault(name, num)
        by_num.setdefault(num, name)
    return by_name, by_num


def proto_number(protocol: str | None, ethertype: str) -> int | None:
    """Neutron protocol (name, number string, None/'any') -> IP protocol number, None for any."""
    if protocol in (None, "", "any", "0"):
        return None
    p = str(protocol).lower()
    if p == "icmp" and ethertype == "IPv6":
        return 58
    if p.isdigit():
        return int(p)
    num = _protocols()[0].get(p)
    if num is None:
        raise ValueError(f"unknown protocol {protocol!r}")
    return num


def proto_name(num: int) -> str:
    """The name iptables-save prints for a protocol number (its number when /etc/protocols has none)."""
    return _protocols()[1].get(num, str(num))


@dataclass(frozen=True)
class SgRule:
    """One normalised group rule."""
    direction: str                 # ingress | egress
    ethertype: str                 # IPv4 | IPv6
    proto: int | None
    port_min: int | None
    port_max: int | None
    remote_prefix: str | None      # canonical CIDR, never /0
    remote_group: str | None       # a security group, or an address group (both are sets of remote addresses)


@dataclass
class FwPort:
    id: str
    dev: str                       # names.sg_dev(id): the chain suffix
    tap: str                       # host-side device on the bridge
    bridge: str                    # the bridge the tap sits on (conntrack zone is set by it)
    network_id: str
    mac: str
    stateful: bool
    rules: list[SgRule]
    allowed: dict[str, list[tuple[str, str]]] = field(default_factory=dict)   # IPv4/IPv6 -> [(cidr, mac)]


def norm_rule(r: Rule) -> SgRule | None:
    prefix = r.get("remote_ip_prefix")
    if prefix:
        net = ipaddress.ip_network(prefix, strict=False)
        if (net.version == 4) != (r["ethertype"] == "IPv4"):
            return None
        prefix = None if net.prefixlen == 0 else str(net)
    return SgRule(r["direction"], r["ethertype"], proto_number(r.get("protocol"), r["ethertype"]),
                  r.get("port_range_min"), r.get("port_range_max"), prefix,
                  r.get("remote_group_id") or r.get("remote_address_group_id"))


def link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address of a MAC (the guest's own fe80:: address)."""
    b = bytearray(int(x, 16) for x in mac.split(":"))
    b[0] ^= 2
    eui = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\x00" * 6 + eui))


def allowed_addresses(port: Port) -> dict[str, list[tuple[str, str]]]:
    """IPv4/IPv6 -> [(CIDR, MAC)] a port may send from: fixed IPs, allowed address pairs, the link-local of each
    MAC. The firewall's anti-spoof chains and the L2 ARP/ND guard (agent/l2/antispoof.py) both use it."""
    mac = port["mac_address"].lower()
    out: dict[str, list[tuple[str, str]]] = {"IPv4": [], "IPv6": [(link_local(mac) + "/128", mac)]}
    pairs = [(f["ip_address"], mac) for f in port["fixed_ips"]]
    for p in port.get("allowed_address_pairs") or []:
        pmac = (p.get("mac_address") or mac).lower()
        pairs.append((p["ip_address"], pmac))
        if pmac != mac:
            out["IPv6"].append((link_local(pmac) + "/128", pmac))
    for ip, m in pairs:
        net = ipaddress.ip_network(ip, strict=False)
        key = "IPv4" if net.version == 4 else "IPv6"
        if (str(net), m) not in out[key]:
            out[key].append((str(net), m))
    return out


def filtered_ports(view: View, bridge: str = "network") -> list[FwPort]:
    """The ports this host must filter, sorted by id; bridge 'port' = qbr<id> (hybrid), 'network' = brq<net>."""
    groups = view.get("security_groups", {})
    out = []
    for port in sorted(view.get("ports", []), key=lambda p: p["id"]):
        if port.get("kind") != "instance" or not port.get("port_security_enabled"):
            continue
        sgs = [groups[g] for g in port.get("security_groups", []) if g in groups]
        rules: list[SgRule] = []
        for sg in sorted(sgs, key=lambda g: g["id"]):
            for r in sg["rules"]:
                nr = norm_rule(r)
                if nr is not None and nr not in rules:
                    rules.append(nr)
        br = names.qbr(port["id"]) if bridge == "port" else names.brq(port["network_id"])
        out.append(FwPort(port["id"], names.sg_dev(port["id"]), port["device"], br, port["network_id"],
                          port["mac_address"].lower(), all(sg.get("stateful", True) for sg in sgs), rules,
                          allowed_addresses(port)))
    return out


def remote_members(view: View, ports: list[FwPort]) -> dict[tuple[str, str], list[str]]:
    """(group id, ethertype) -> member CIDRs, for every group that a filtered port's rule names as remote."""
    used = {(r.remote_group, r.ethertype) for p in ports for r in p.rules if r.remote_group}
    out = {}
    for sg, eth in sorted(used):
        ips = view.get("remote_groups", {}).get(sg, {}).get(eth, [])
        nets = {ipaddress.ip_network(ip, strict=False) for ip in ips}
        out[(sg, eth)] = [str(n) for n in sorted(nets, key=lambda n: (n.network_address, n.prefixlen))]
    return out


def allocate(current: dict[str, int], wanted: list[str], limit: int = 65535) -> dict[str, int]:
    """Stable small ids (conntrack zones, port marks): keep the ids the kernel already has, give new keys the
    lowest free ones."""
    keys = set(wanted)
    out = {k: v for k, v in current.items() if k in keys and 0 < v <= limit}
    used = set(out.values())
    nxt = 1
    for key in wanted:
        if key in out:
            continue
        while nxt in used:
            nxt += 1
        if nxt > limit:
            raise ValueError("out of ids")
        out[key] = nxt
        used.add(nxt)
    return out


def _by_id(port: dict) -> str:
    return port["id"]


class PortCache:
    """filtered_ports and remote_members for a driver that syncs again and again: a port whose inputs (its own
    entry in the view, its groups) are unchanged is the same FwPort object as last time, so renderings keyed by
    that object (see Rendered) are reused, and a port or group is normalised only when it changed. A port is
    unchanged when it equals a private copy of what it was (a dict comparison runs in C: 5000 ports cost a few
    ms, where serialising each of them to compare cost 5x more); a group, when its rule ids are (see _group)."""

    def __init__(self, bridge: str):
        self.bridge = bridge
        self._groups: dict[str, tuple[dict, tuple[bool, list[SgRule]]]] = {}   # id -> (copy, (stateful, rules))
        self._ports: dict[str, tuple[FwPort, dict, tuple]] = {}     # id -> (port, copy, its groups' normalisations)
        self._members: dict[tuple[str, str], tuple[tuple[str, ...], list[str]]] = {}
        self._nets: dict[str, tuple[tuple[int, int], str]] = {}     # member address -> (sort key, CIDR)

    def _group(self, sg: dict) -> tuple[bool, list[SgRule]]:
        """(stateful, rules) of a group: the same object while the group is unchanged. A group is known by its
        stateful flag and its rule ids: a rule cannot be updated (Neutron's API, and ours, refuse it), only
        created or deleted, so comparing ids is comparing rules (5000 groups of 10 rules: 8 ms, where comparing
        the rules field by field cost 40)."""
        key = (sg.get("stateful", True), [r["id"] for r in sg["rules"]])
        hit = self._groups.get(sg["id"])
        if hit is None or hit[0] != key:
            rules = [nr for nr in map(norm_rule, sg["rules"]) if nr is not None]
            hit = self._groups[sg["id"]] = (key, (key[0], rules))
        return hit[1]

    def ports(self, view: View) -> list[FwPort]:
        groups = view.get("security_groups", {})
        norm: dict[str, tuple[bool, list[SgRule]]] = {}
        out, seen = [], {}
        for port in sorted(view.get("ports", []), key=_by_id):
            if port.get("kind") != "instance" or not port.get("port_security_enabled"):
                continue
            deps_l = []
            for g in sorted([g for g in port.get("security_groups", ()) if g in groups]):
                dep = norm.get(g)
                if dep is None:
                    dep = norm[g] = self._group(groups[g])
                deps_l.append(dep)
            deps = tuple(deps_l)
            hit = self._ports.get(port["id"])
            if hit is None or hit[1] != port or hit[2] != deps:      # deps: the same objects while unchanged
                rules: list[SgRule] = []
                for dep in deps:
                    for nr in dep[1]:
                        if nr not in rules:
                            rules.append(nr)
                br = names.qbr(port["id"]) if self.bridge == "port" else names.brq(port["network_id"])
                hit = (FwPort(port["id"], names.sg_dev(port["id"]), port["device"], br, port["network_id"],
                              port["mac_address"].lower(), all(dep[0] for dep in deps), rules,
                              allowed_addresses(port)), _copy(port), deps)
            seen[port["id"]] = hit
            out.append(hit[0])
        self._ports = seen
        self._groups = {g: v for g, v in self._groups.items() if g in norm}
        return out

    def members(self, view: View, ports: list[FwPort]) -> dict[tuple[str, str], list[str]]:
        """remote_members, reusing the normalised list of a group whose member list did not change."""
        used = sorted({(r.remote_group, r.ethertype) for p in ports for r in p.rules if r.remote_group})
        out, kept = {}, {}
        for sg, eth in used:
            ips = tuple(view.get("remote_groups", {}).get(sg, {}).get(eth, []))
            hit = self._members.get((sg, eth))
            if hit is None or hit[0] != ips:
                hit = (ips, [cidr for _, cidr in sorted({self._net(ip) for ip in ips})])
            kept[(sg, eth)] = hit
            out[(sg, eth)] = hit[1]
        self._members = kept
        if len(self._nets) > 2 * sum(len(v[0]) for v in kept.values()) + 1024:
            self._nets = {}
        return out

    def _net(self, ip: str) -> tuple[tuple[int, int], str]:
        """A member address as (sort key, canonical CIDR), parsed once: one member joining a group of 5000 does
        not parse the other 4999 again."""
        hit = self._nets.get(ip)
        if hit is None:
            net = ipaddress.ip_network(ip, strict=False)
            hit = self._nets[ip] = ((int(net.network_address), net.prefixlen), str(net))
        return hit
