"""ARP/ND anti-spoofing per port, for both L2 backends (pure; unit-tested).

The security groups filter IP packets (br_netfilter); ARP and the link layer pass them untouched, so without this a
guest rewrites its neighbours' ARP/ND caches with a gratuitous ARP or NA for another port's address, or steals a MAC
the switch learns. So, for each instance port with port security on, the L2 path lets through only:

- frames whose source MAC is the port's MAC or a MAC of one of its allowed address pairs;
- ARP whose (sender IP, sender MAC) is one of the port's (fixed IP or pair CIDR, its MAC), or an ARP probe
  (sender IP 0.0.0.0) from one of those MACs;
- neighbour advertisements whose target is one of the port's IPv6 addresses (fixed, pair, the EUI-64 link-local
  of each MAC) and whose target link-layer option, when present, is that address's MAC; neighbour solicitations
  whose source link-layer option, when present, is one of the port's MACs;
- no router advertisements, DHCPv4 (67→68) or DHCPv6 (547→546) server replies, and no 802.1Q-tagged frames.

OVS realizes this as flows on br-int matching the port's qvo (table 0 → 24 for ARP/ND → 25 for the MAC, as
Neutron's OVS agent does); the linuxbridge backend as nftables tables `bridge neutrino_l2-<k>` of SHARD taps each,
two chains per tap (works under either firewall driver). Ports without port security get nothing: Neutron lifts
all of it then. Shards, because the kernel checks a whole table for loops on every commit that adds a rule or a
jump to it (see firewall/nft_rules.py): a tap added pays for its shard only. A frame meets every shard's base
chain and misses in all but its tap's.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from neutrino.agent.firewall.ports import allowed_addresses
from neutrino.lib import nft
from neutrino.lib.nft import Chain, Set, Table
from neutrino.sync.schema import Port, View

NO_LLADDR = "00:00:00:00:00:00"     # OVS's nd_sll/nd_tll when the option is absent
ARP_TABLE, MAC_TABLE = 24, 25
NFT_TABLE = "neutrino_l2"          # the stem of the shard tables `bridge neutrino_l2-<k>` (a table of this very
SHARD = 256                         # name is an older host's, taken down); taps per shard
CACHE = 16384       # ports' renderings kept


@dataclass(frozen=True)
class Guard:
    """What one port may claim on the wire."""
    port_id: str
    device: str                       # the tap (linuxbridge) — the OVS driver matches the port's qvo instead
    macs: tuple[str, ...]             # source MACs it may use
    ipv4: tuple[tuple[str, str], ...]   # (CIDR, MAC) it may announce in ARP
    ipv6: tuple[tuple[str, str], ...]   # (CIDR, MAC) it may announce in NA (link-locals included)


def guard(port: Port) -> Guard:
    """The port's Guard (cached on what it depends on: a resync of 1000 unchanged ports renders nothing)."""
    pairs = tuple((p["ip_address"], p.get("mac_address")) for p in port.get("allowed_address_pairs") or [])
    return _guard(port["id"], port["device"], port["mac_address"],
                  tuple(f["ip_address"] for f in port["fixed_ips"]), pairs)


@lru_cache(maxsize=CACHE)
def _guard(port_id: str, device: str, mac: str, fixed: tuple[str, ...],
           pairs: tuple[tuple[str, str | None], ...]) -> Guard:
    allowed = allowed_addresses({"mac_address": mac, "fixed_ips": [{"ip_address": ip} for ip in fixed],
                                 "allowed_address_pairs": [{"ip_address": ip, "mac_address": m} for ip, m in pairs]})
    macs = [mac.lower()]
    for _, m in allowed["IPv4"] + allowed["IPv6"]:
        if m not in macs:
            macs.append(m)
    return Guard(port_id, device, tuple(macs), tuple(allowed["IPv4"]), tuple(allowed["IPv6"]))


def guarded_ports(view: View) -> list[Port]:
    """The ports that get anti-spoofing: instance ports with port security on (as the firewall filters)."""
    return [p for p in view["ports"] if p["kind"] == "instance" and p.get("port_security_enabled")]


# --- OVS: flows on br-int -----------------------------------------------------------------------------------------

@lru_cache(maxsize=CACHE)
def ovs_flows(g: Guard, ofport: int) -> tuple[str, ...]:
    """The br-int flows of one port whose qvo is OpenFlow port `ofport` (ovs-ofctl syntax)."""
    m = f"in_port={ofport}"
    out = [f"table=0,priority=10,{m},arp,actions=resubmit(,{ARP_TABLE})",
           f"table=0,priority=10,{m},icmp6,icmp_type=135,actions=resubmit(,{ARP_TABLE})",
           f"table=0,priority=10,{m},icmp6,icmp_type=136,actions=resubmit(,{ARP_TABLE})",
           f"table=0,priority=10,{m},icmp6,icmp_type=134,actions=drop",
           f"table=0,priority=10,{m},udp,tp_src=67,tp_dst=68,actions=drop",
           f"table=0,priority=10,{m},udp6,tp_src=547,tp_dst=546,actions=drop",
           f"table=0,priority=9,{m},actions=resubmit(,{MAC_TABLE})"]
    nd = f"table={ARP_TABLE},priority=2,{m},icmp6,icmp_code=0"
    to_mac = f"actions=resubmit(,{MAC_TABLE})"
    for cidr, mac in g.ipv4:
        out.append(f"table={ARP_TABLE},priority=2,{m},arp,arp_spa={_net(cidr)},arp_sha={mac},{to_mac}")
    for mac in g.macs:
        out.append(f"table={ARP_TABLE},priority=2,{m},arp,arp_spa=0.0.0.0,arp_sha={mac},{to_mac}")
    for cidr, mac in g.ipv6:
        for tll in (mac, NO_LLADDR):
            out.append(f"{nd},icmp_type=136,nd_target={_net(cidr)},nd_tll={tll},{to_mac}")
    for sll in (*g.macs, NO_LLADDR):
        out.append(f"{nd},icmp_type=135,nd_sll={sll},{to_mac}")
    out += [f"table={MAC_TABLE},priority=2,{m},dl_src={mac},actions=NORMAL" for mac in g.macs]
    return tuple(dict.fromkeys(out))


OVS_DEFAULTS = (f"table={ARP_TABLE},priority=0,actions=drop", f"table={MAC_TABLE},priority=0,actions=drop")


def _net(cidr: str) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


# --- linuxbridge: nftables bridge table ---------------------------------------------------------------------------

def _hex(value: int, bits: int) -> str:
    return f"{value:#0{bits // 4 + 2}x}"


def _mac_int(mac: str) -> str:
    return _hex(int(mac.replace(":", ""), 16), 48)


def _nd_target(cidr: str) -> str:
    """An nft match of the ND target address (@th,64,128: this nft has no `icmpv6 taddr`) against a CIDR."""
    net = ipaddress.ip_network(cidr, strict=False)
    value = _hex(int(net.network_address), 128)
    if net.prefixlen == 128:
        return f"@th,64,128 {value}"
    return f"@th,64,128 & {_hex(int(net.netmask), 128)} == {value}"


def nft_chains(g: Guard) -> dict[str, list[str]]:
    """One tap's chains: s<tap> lets only the port's MACs on to a<tap>, which checks ARP/ND and drops router and
    DHCP server messages; `return` lets a frame on (to the bridge), `drop` ends it. No anonymous sets: nft lists
    every set of a family to read any of them, and thousands of small ones make every read slow."""
    first = ["ether type 8021q drop", "ether type 8021ad drop"]
    first += [f"ether saddr {mac} goto {nft_chain_name('a', g.device)}" for mac in g.macs]
    rules = ["icmpv6 type nd-router-advert drop", "udp sport 67 udp dport 68 drop", "udp sport 547 udp dport 546 drop"]
    rules += [f"arp saddr ether {mac} arp saddr ip {_net(cidr)} return" for cidr, mac in g.ipv4]
    rules += [f"arp saddr ether {mac} arp saddr ip 0.0.0.0 return" for mac in g.macs]
    rules.append("ether type arp drop")
    # a source link-layer option (type 1, right after the 16-byte target) must carry one of the port's MACs
    rules += [f"icmpv6 type nd-neighbor-solicit @th,192,8 1 @th,208,48 {_mac_int(mac)} return" for mac in g.macs]
    rules.append("icmpv6 type nd-neighbor-solicit @th,192,8 1 drop")
    for cidr, mac in g.ipv6:
        rules.append(f"icmpv6 type nd-neighbor-advert {_nd_target(cidr)} "
                     f"@th,192,8 2 @th,208,48 {_mac_int(mac)} return")
        rules.append(f"icmpv6 type nd-neighbor-advert {_nd_target(cidr)} ip6 length 24 return")   # no option
    rules.append("icmpv6 type nd-neighbor-advert drop")
    return {nft_chain_name("s", g.device): first + ["drop"], nft_chain_name("a", g.device): list(dict.fromkeys(rules))}


def nft_chain_name(kind: str, device: str) -> str:
    return f"{kind}{device}"


def nft_shard(k: int) -> str:
    return nft.shard(NFT_TABLE, k)


def is_nft_shard(table: str) -> bool:
    return nft.is_shard(NFT_TABLE, table)


def nft_placed(tables: dict[str, object]) -> dict[str, str]:
    """device -> the shard table that holds its chains, from Current-like objects (with .chains) by table name."""
    out = {}
    for name, cur in tables.items():
        if cur is not None and is_nft_shard(name):
            out.update((c[1:], name) for c in cur.chains if c.startswith("s"))
    return out


def nft_table_of(chains: Iterable[tuple[str, str, str]], device: str) -> str | None:
    """The shard table that holds a tap's chains, among (family, table, chain) names (None: none does)."""
    chain = nft_chain_name("s", device)
    return next((t for f, t, c in chains if f == "bridge" and c == chain and is_nft_shard(t)), None)


def nft_tables(guards: list[Guard], placed: dict[str, str] | None = None) -> list[Table]:
    """The shard tables: taps dispatch by name to their chain, before anything else bridges. A tap stays in the
    shard it is in (placed: device -> table); a new one goes to the lowest shard with room."""
    placed = placed or {}
    count: dict[str, int] = {}
    for g in guards:
        name = placed.get(g.device)
        if name is not None:
            count[name] = count.get(name, 0) + 1
    tables: dict[str, Table] = {}
    k = 0
    for g in guards:
        name = placed.get(g.device)
        if name is None:
            while count.get(nft_shard(k), 0) >= SHARD:
                k += 1
            name = nft_shard(k)
            count[name] = count.get(name, 0) + 1
        t = tables.get(name)
        if t is None:
            t = tables[name] = Table("bridge", name)
            t.sets["ports"] = Set("type ifname : verdict;", {})
            t.chains["prerouting"] = Chain(["iifname vmap @ports"],
                                           "type filter hook prerouting priority -300; policy accept;")
        t.sets["ports"].elements[f'"{g.device}"'] = f"jump {nft_chain_name('s', g.device)}"
        t.chains.update(_nft_chain_objs(g))
    return [tables[n] for n in sorted(tables, key=lambda n: int(n.rsplit("-", 1)[1]))]


@lru_cache(maxsize=CACHE)
def _nft_chain_objs(g: Guard) -> dict[str, Chain]:
    return {name: Chain(rules) for name, rules in nft_chains(g).items()}   # digests computed once per guard
