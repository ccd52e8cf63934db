"""`neutrino trace`: walk the first packet of a flow (conntrack NEW) hop by hop over what the kernel realizes.

The walk reads the kernel's state, not the API's intent: the host's firewall (iptables-save evaluated by
hood.ipt_eval, or the nftables ruleset evaluated by hood.nft_eval: anti-spoof, egress and ingress chains), the L2
segments (OVS: br-int local VLAN tags from OVSDB, same tag = same network, and its anti-spoof flows; linuxbridge:
the bridge a device is enslaved to, and the `bridge neutrino_l2-<k>` anti-spoof tables), the router namespaces' NAT tables
and the kernel's own routing decision (`ip route get DST from SRC iif qr-X`). The view is used only to name the
endpoints (which port has which address and subnet). Every hop records the rule that decided it; the trace ends
delivered, or dropped at a named place by a named rule.
"""
from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from neutrino import names
from neutrino.agent.l2.antispoof import ARP_TABLE, MAC_TABLE
from neutrino.agent.l2.ovs import BR_INT, BR_TUN, int_patch
from neutrino.agent.firewall import nft_rules
from neutrino.agent.l2 import antispoof
from neutrino.hood import backends, flow_eval, nft_eval
from neutrino.hood.ipt_eval import Packet, Result, Table, evaluate, marked, parse
from neutrino.lib.ovs import DEAD_VLAN

EPHEMERAL_PORT = 40000
IP_PROTO = {"icmp": 1, "tcp": 6, "udp": 17}
MAX_ROUTERS = 4
RouteGet = Callable[..., dict]


@dataclass
class Hop:
    where: str                    # kernel object: device, chain, namespace
    what: str                     # what happened there
    ok: bool = True
    rule: str | None = None       # the rule (or policy) that decided
    realizes: dict = field(default_factory=dict)   # API objects behind it: {"port": id, "router": id, ...}


@dataclass
class Trace:
    src: str
    dst: str
    proto: str
    port: int | None
    hops: list[Hop] = field(default_factory=list)
    verdict: str = "dropped"      # delivered | dropped | forwarded (left this host by VXLAN)
    at: str = ""                  # where it ended
    rule: str | None = None       # the rule that decided the end
    unknown: list[str] = field(default_factory=list)

    def add(self, hop: Hop) -> Hop:
        self.hops.append(hop)
        return hop

    def end(self, verdict: str, at: str, rule: str | None = None) -> "Trace":
        self.verdict, self.at, self.rule = verdict, at, rule
        return self

    def drop(self, where: str, what: str, rule: str | None = None, **realizes) -> "Trace":
        self.add(Hop(where, what, False, rule, realizes))
        return self.end("dropped", where, rule)

    def to_dict(self) -> dict:
        return asdict(self)


class Walker:
    """One trace over one (view, snapshot); `route_get(ns, dst, src, iif)` asks the kernel for routing decisions."""

    def __init__(self, view: dict, snap: dict, route_get: RouteGet):
        self.view, self.snap, self.route_get = view, snap, route_get
        self.l2_backend, self.fw_backend = backends.of(snap)
        self.links = snap.get("links", {})
        self.nft = nft_eval.parse(snap.get("nft") or [])
        host = snap.get("iptables", {})
        self.filter = _table(host.get("filter", ""), "filter")
        self.raw = _table(host.get("raw", ""), "raw")
        self.ipsets = snap.get("ipsets", {})
        self.br_int = snap.get("ovs", {}).get(BR_INT, {}).get("ports", {})
        self.flows = flow_eval.parse(snap.get("ovs", {}).get(BR_INT, {}).get("flows", ""))
        self.ports = {p["id"]: p for p in view.get("ports", []) if p.get("kind") == "instance"}

    # --- endpoints --------------------------------------------------------------------------------------------------

    def port(self, ref: str) -> dict | None:
        """A port of the view by id or id prefix."""
        found = [p for pid, p in self.ports.items() if pid.startswith(ref)]
        return found[0] if len(found) == 1 else None

    def external_ip(self) -> str | None:
        """The external network's gateway address (on the lab: 172.24.4.1 on br-ex of the host)."""
        for net in self.view.get("networks", {}).values():
            if net.get("external"):
                for s in net.get("subnets", []):
                    if s.get("gateway_ip") and s.get("ip_version", 4) == 4:
                        return s["gateway_ip"]
        for r in self.view.get("routers", []):
            for f in (r.get("gateway") or {}).get("fixed_ips", []):
                if f.get("gateway_ip"):
                    return f["gateway_ip"]
        return None

    def _host_addr(self, addr: str) -> str | None:
        """The host-namespace device that carries addr (the external side, e.g. br-ex)."""
        for name, link in self.snap.get("links", {}).items():
            if any(a.split("/")[0] == addr for a in link.get("addresses", [])):
                return name
        return None

    # --- firewall on a port's qbr -----------------------------------------------------------------------------------

    def bridge_fw(self, t: Trace, pkt: Packet, port: dict, egress: bool, peer: str | None = None) -> bool:
        """The host's firewall as the port's bridge sees the packet (br_netfilter): `peer` is the other bridge port
        (OVS: the port's qvb; linuxbridge: the device the packet comes from or goes to, when known)."""
        pid, tap = port["id"], port["device"]
        if self.l2_backend == "ovs":
            bridge, peer = names.qbr(pid), names.qvb(pid)
        else:
            bridge, peer = (self.links.get(tap) or {}).get("master") or "?", peer or "(bridge)"
        pin, pout = (tap, peer) if egress else (peer, tap)
        p = replace(pkt, iif=bridge, oif=bridge, physdev_in=pin, physdev_out=pout)
        if self.fw_backend == "nftables":
            verdict, decided, took, spoofed, unknown = self._nft_fw(p)
            chain = f"{'o' if egress else 'i'}{names.sg_dev(pid)}"
            spoof = f"s{names.sg_dev(pid)}"
        else:
            prefix = names.IPT_PREFIX if self.l2_backend == "ovs" else names.IPT_LB_PREFIX
            verdict, decided, took, spoofed, unknown = self._ipt_fw(p, names.sg_chain("s", pid, prefix))
            chain, spoof = names.sg_chain("o" if egress else "i", pid, prefix), names.sg_chain("s", pid, prefix)
        t.unknown += unknown
        where = chain if chain in [c for c, _ in took] else f"FORWARD ({bridge})"
        if verdict not in ("ACCEPT", "accept"):
            what = ("source address/MAC not allowed (anti-spoof)" if spoofed
                    else f"{'egress' if egress else 'ingress'} firewall {verdict.upper()}")
            t.drop(spoof if spoofed else where, what, decided, port=pid, security_groups=port.get("security_groups", []))
            return False
        what = (f"{'egress' if egress else 'ingress'} allowed" if chain in [c for c, _ in took]
                else "not filtered (no chain for this port: port security off?)")
        allowed_by = [line for c, line in took if c == chain]
        rule = f"{allowed_by[-1]}  →  {decided}" if allowed_by else decided
        t.add(Hop(where, what, True, rule, {"port": pid, "security_groups": port.get("security_groups", [])}))
        return True

    def _ipt_fw(self, p: Packet, spoof: str):
        """iptables: raw PREROUTING (notrack), then filter FORWARD."""
        raw = evaluate(self.raw, "PREROUTING", p, self.ipsets)
        if any(r.target == "CT" and "--notrack" in r.target_opts for r in raw.effects):
            p = replace(p, ctstate=frozenset({"UNTRACKED"}))
        res = evaluate(self.filter, "FORWARD", p, self.ipsets)
        return (res.verdict, _decided(res), [(r.chain, r.line) for r in res.path],
                bool(res.rule and res.rule.chain == spoof), raw.unknown + res.unknown)

    def _nft_fw(self, p: Packet):
        """nftables: `bridge neutrino` labels the packet by bridge port (mark), `inet neutrino` sets notrack and
        the zone, and every shard table's forward chain filters on the mark (one drop drops the packet)."""
        unknown: list[str] = []
        p = replace(p, mark=0)
        for family, chain in (("bridge", "prerouting"), ("bridge", "forward"), ("inet", "prerouting")):
            r = nft_eval.evaluate(self.nft, family, nft_rules.TABLE, chain, p)
            unknown += r.unknown
            p = r.packet
        res = nft_eval.Result("accept", p)
        for table in sorted({t for f, t, _ in self.nft.chains if f == "inet" and nft_rules.is_shard(t)},
                            key=lambda t: int(t.rsplit("-", 1)[1])):
            r = nft_eval.evaluate(self.nft, "inet", table, "forward", p)
            res = replace(r, path=res.path + r.path, unknown=res.unknown + r.unknown,
                          rule=r.rule if r.path or r.verdict != "accept" else res.rule)
            if r.verdict != "accept":
                break
        decided = res.decided_by
        if res.rule and res.rule.chain == "sg-fallback" and len(res.path) >= 2:
            decided = f"{res.path[-2].line}  →  {res.rule.line}"
        spoofed = bool(res.rule and res.rule.chain.startswith("s") and res.rule.chain != "sg-fallback")
        return res.verdict, decided, [(r.chain, r.line) for r in res.path], spoofed, unknown + res.unknown

    # --- br-int's flows at a port (ARP/ND anti-spoofing) ---------------------------------------------------------------

    def guard(self, t: Trace, port: dict, fields: dict, pkt: Packet) -> bool:
        """The L2 anti-spoofing for a frame the port sends (OVS: br-int's flow tables at its qvo; linuxbridge:
        its `bridge neutrino_l2-<k>`); False (and the trace dropped) on drop."""
        if self.l2_backend == "linuxbridge":
            return self._nft_guard(t, port, pkt)
        pid, qvo = port["id"], names.qvo(port["id"])
        ofport = (self.br_int.get(qvo) or {}).get("ofport")
        if ofport is None or not self.flows:
            t.unknown.append(f"{BR_INT} flows at {qvo}: no OpenFlow port number or flow table in the snapshot")
            return True
        v = flow_eval.evaluate(self.flows, {"in_port": ofport, **fields})
        t.unknown += v.unknown
        rule = "  →  ".join(f.line for f in v.path) or "table miss"
        table = v.path[-1].table if v.path else 0
        if v.action == "NORMAL":
            what = "anti-spoof flows passed it on (NORMAL)" if len(v.path) > 1 else "switched (NORMAL)"
            t.add(Hop(f"{BR_INT} in_port={ofport} ({qvo})", what, True, rule, {"port": pid}))
            return True
        what = {ARP_TABLE: "ARP/ND anti-spoof: the sender is not one of the port's fixed IPs and allowed address "
                           "pairs with its MAC",
                MAC_TABLE: "anti-spoof: the source MAC is not the port's (nor an allowed address pair's)"}.get(
            table, "guests may not send this (router advertisement / DHCP server reply)")
        where = f"{BR_INT} table {table}"
        t.add(Hop(where, what, False, rule, {"port": pid, "fixed_ips": [f["ip_address"] for f in port["fixed_ips"]],
                                             "allowed_address_pairs": [p["ip_address"] for p in
                                                                       port.get("allowed_address_pairs") or []]}))
        t.end("dropped", where, v.path[-1].line if v.path else "table miss")
        return False

    def _nft_guard(self, t: Trace, port: dict, pkt: Packet) -> bool:
        tap = port["device"]
        p = replace(pkt, physdev_in=tap, physdev_out=None, iif=None, oif=None)
        table = antispoof.nft_table_of(self.nft.chains, tap)   # the other shards' dispatch misses: it goes on
        res = (nft_eval.evaluate(self.nft, "bridge", table, "prerouting", p) if table
               else nft_eval.Result("accept", p))
        t.unknown += res.unknown
        rule = "  →  ".join(r.line for r in res.path) or res.decided_by
        if res.verdict == "accept":
            t.add(Hop(f"{table or antispoof.NFT_TABLE} ({tap})", "anti-spoof chains passed it on" if res.path
                      else "not guarded (port security off?)", True, rule, {"port": port["id"]}))
            return True
        chain = res.rule.chain if res.rule else "prerouting"
        what = ("anti-spoof: the source MAC is not the port's (nor an allowed address pair's)"
                if chain.startswith("s") else
                "ARP/ND anti-spoof: the sender is not one of the port's fixed IPs and allowed address pairs with its "
                "MAC" if pkt.proto == "arp" else "guests may not send this (router advertisement / DHCP server reply)")
        where = f"{table} {chain}"
        t.add(Hop(where, what, False, rule, {"port": port["id"],
                                             "fixed_ips": [f["ip_address"] for f in port["fixed_ips"]],
                                             "allowed_address_pairs": [p["ip_address"] for p in
                                                                       port.get("allowed_address_pairs") or []]}))
        t.end("dropped", where, res.decided_by)
        return False

    # --- L2 -----------------------------------------------------------------------------------------------------------

    def tag_of(self, ovs_port: str) -> int | None:
        p = self.br_int.get(ovs_port)
        return p.get("tag") if p else None

    def segment(self, dev: str):
        """The L2 segment a host-side device is on: its br-int VLAN tag (OVS) or its bridge (linuxbridge; a
        bridge is its own segment)."""
        if self.l2_backend == "ovs":
            return self.tag_of(dev)
        link = self.links.get(dev)
        if link is None:
            return None
        return dev if link.get("kind") == "bridge" else link.get("master")

    def port_segment(self, port: dict):
        return self.segment(names.qvo(port["id"]) if self.l2_backend == "ovs" else port["device"])

    def external_segment(self, dev: str):
        """The segment of the host's external device (OVS: br-ex's patch into br-int)."""
        return self.segment(int_patch(dev) if self.l2_backend == "ovs" else dev)

    def seg_name(self, seg) -> str:
        return f"{BR_INT} VLAN {seg}" if self.l2_backend == "ovs" else f"bridge {seg}"

    def port_dev(self, port: dict) -> str:
        return names.qvo(port["id"]) if self.l2_backend == "ovs" else port["device"]

    def owner(self, tag, addr: str) -> tuple[str, object] | None:
        """Who answers ARP for addr on segment tag: ('port', port), ('router', (rid, qr-dev)), ('remote', fdb entry:
        a port on another host) or ('external', bridge)."""
        for p in self.ports.values():
            if any(f["ip_address"] == addr for f in p["fixed_ips"]) and self.port_segment(p) == tag:
                return "port", p
        for rid, rs in self.snap.get("routers", {}).items():
            for dev, link in (rs.get("links") or {}).items():
                if dev.startswith(("qr-", "qg-")) and any(a.split("/")[0] == addr for a in link["addresses"]):
                    if self.segment("ns-" + dev[3:]) == tag:
                        return "router", (rid, dev)
        for e in self.view.get("fdb", []):
            if e.get("ip_address") != addr:
                continue
            if self.l2_backend == "linuxbridge":
                if self.segment(names.vxlan(e["vni"])) == tag:
                    return "remote", e
            elif any(p.get("tag") == tag and (p.get("other_config") or {}).get("net_uuid") == e["network_id"]
                     for p in self.br_int.values()):
                return "remote", e
        if self.l2_backend == "linuxbridge":
            return ("external", tag) if self._host_addr(addr) == tag else None
        for bridge in self.snap.get("ovs", {}):
            if bridge in (BR_INT, BR_TUN) or self.tag_of(int_patch(bridge)) != tag:
                continue
            dev = self._host_addr(addr)
            if dev == bridge:
                return "external", dev
        return None

    def l2(self, t: Trace, pkt: Packet, tag, next_hop: str, depth: int, came_from: str | None = None) -> Trace:
        """Switch the packet on segment tag to whoever owns next_hop; came_from: the bridge port it entered by."""
        seg = self.seg_name(tag)
        if self.l2_backend == "ovs" and tag == DEAD_VLAN:
            return t.drop(seg, "port is on the dead VLAN (admin_state_up false)", None)
        found = self.owner(tag, next_hop)
        if found is None:
            return t.drop(seg, f"nobody on this {'local VLAN' if self.l2_backend == 'ovs' else 'bridge'} answers ARP "
                          f"for {next_hop}")
        kind, who = found
        if kind == "port":
            t.add(Hop(f"{seg} → {self.port_dev(who)}", f"switched to the port owning {next_hop}",
                      True, None, {"port": who["id"], "network": who["network_id"]}))
            if not self.bridge_fw(t, pkt, who, egress=False, peer=came_from):
                return t
            return t.end("delivered", f"{who['device']} (port {who['id']})", t.hops[-1].rule)
        if kind == "router":
            rid, dev = who
            t.add(Hop(f"{seg} → ns-{dev[3:]}", f"switched to router port {dev}", True, None,
                      {"router": rid}))
            return self.router(t, pkt, rid, dev, depth + 1)
        if kind == "remote":
            via = BR_TUN if self.l2_backend == "ovs" else names.vxlan(who["vni"])
            t.add(Hop(f"{seg} → {via}", f"{next_hop} is on host {who['host_ip']}: VXLAN "
                      f"{who['vni']}", True, None, {"network": who["network_id"]}))
            return t.end("forwarded", f"{via} → {who['host_ip']} (trace it again on that host)")
        if self.l2_backend == "ovs":
            t.add(Hop(f"{seg} → {int_patch(who)} → {who}", f"switched to the external network ({who})",
                      True, None, {}))
        else:
            t.add(Hop(seg, f"switched to the external network ({who})", True, None, {}))
        return t.end("delivered", f"external ({who} {pkt.dst})")

    # --- routers ------------------------------------------------------------------------------------------------------

    @staticmethod
    def scope_mark(t: Trace, mangle: Table, chain: str, p: Packet, rid: str, ns: str) -> Packet:
        """The address scope mark a router's mangle chain gives the packet (and its connection)."""
        res = evaluate(mangle, chain, p)
        t.unknown += res.unknown
        after = marked(p, res.effects)
        if after.mark != p.mark:
            t.add(Hop(f"{ns} mangle {chain}", f"address scope mark {hex(after.mark)}", True, res.effects[-1].line,
                      {"router": rid}))
        return after

    def router(self, t: Trace, pkt: Packet, rid: str, iif: str, depth: int) -> Trace:
        rs = self.snap["routers"][rid]
        ns = rs["ns"]
        if depth > MAX_ROUTERS:
            return t.drop(ns, "routing loop", None, router=rid)
        nat = _table(rs["iptables"].get("nat", ""), "nat")
        filt = _table(rs["iptables"].get("filter", ""), "filter")
        mangle = _table(rs["iptables"].get("mangle", ""), "mangle")
        p = replace(pkt, iif=iif, oif=None, physdev_in=None, physdev_out=None, mac_src=None, mark=0, connmark=0)
        p = self.scope_mark(t, mangle, "PREROUTING", p, rid, ns)
        pre = evaluate(nat, "PREROUTING", p)
        t.unknown += pre.unknown
        if pre.verdict == "DNAT":
            to = pre.nat["--to-destination"].split(":")[0]
            t.add(Hop(f"{ns} nat PREROUTING", f"DNAT {p.dst} → {to}", True, pre.decided_by, {"router": rid}))
            p = replace(p, dst=to, ctstate=p.ctstate | {"DNAT"})
        elif pre.verdict == "REDIRECT":
            t.add(Hop(f"{ns} nat PREROUTING", f"REDIRECT to local port {pre.nat.get('--to-ports')}", True,
                      pre.decided_by, {"router": rid}))
            return t.end("delivered", f"{ns} port {pre.nat.get('--to-ports')} (metadata proxy)", pre.decided_by)
        route = self.route_get(ns, p.dst, p.src, iif)
        if "error" in route:
            return t.drop(f"{ns} routing", f"ip route get {p.dst} from {p.src} iif {iif}: {route['error']}", None,
                          router=rid)
        if route.get("type") == "local":
            t.add(Hop(f"{ns} routing", f"{p.dst} is the router's own address", True, None, {"router": rid}))
            inp = evaluate(filt, "INPUT", replace(p, oif=None))
            if inp.verdict != "ACCEPT":
                return t.drop(f"{ns} filter INPUT", f"{inp.verdict}", inp.decided_by, router=rid)
            return t.end("delivered", f"{ns} ({p.dst})", inp.decided_by)
        out = route["dev"]
        via = route.get("gateway") or p.dst
        t.add(Hop(f"{ns} routing", f"ip route get {p.dst} from {p.src} iif {iif} → dev {out}"
                  + (f" via {route['gateway']}" if route.get("gateway") else ""), True, None, {"router": rid}))
        p = replace(p, oif=out)
        fwd = evaluate(filt, "FORWARD", p)
        t.unknown += fwd.unknown
        if fwd.verdict != "ACCEPT":
            why = fwd.verdict
            if fwd.rule and fwd.rule.chain == names.L3_PREFIX + "scope":
                why += f": address scope mark {hex(p.mark)} is not that of {out} (scopes meet only through NAT)"
            return t.drop(f"{ns} filter FORWARD", why, fwd.decided_by, router=rid)
        p = self.scope_mark(t, mangle, "POSTROUTING", p, rid, ns)
        post = evaluate(nat, "POSTROUTING", p)
        t.unknown += post.unknown
        if post.verdict == "ACCEPT" and post.rule is not None and "--connmark" in {m[1] for m in post.rule.matches}:
            t.add(Hop(f"{ns} nat POSTROUTING", f"no SNAT: {p.src} is in the external network's address scope",
                      True, post.decided_by, {"router": rid}))
        if post.verdict in ("SNAT", "MASQUERADE"):
            to = post.nat.get("--to-source", "").split(":")[0] or p.src
            t.add(Hop(f"{ns} nat POSTROUTING", f"SNAT {p.src} → {to}", True, post.decided_by, {"router": rid}))
            p = replace(p, src=to)
        tag = self.segment("ns-" + out[3:]) if out.startswith(("qr-", "qg-")) else None
        if tag is None:
            return t.drop(f"{ns} {out}", f"{out} has no ns- end on "
                          f"{BR_INT if self.l2_backend == 'ovs' else 'a bridge'}", None, router=rid)
        return self.l2(t, replace(p, iif=None, oif=None, ctstate=frozenset({"NEW"})), tag, via, depth,
                       came_from="ns-" + out[3:])


def _table(text: str, name: str) -> Table:
    return parse(text).get(name) or Table(name)


def _decided(res: Result) -> str:
    """The deciding rule; when it is the shared fallback, the port-chain rule that jumped there too."""
    if res.rule and res.rule.chain.endswith("sg-fallback") and len(res.path) >= 2:
        return f"{res.path[-2].line}  →  {res.rule.line}"
    return res.decided_by


def _subnet(port: dict, addr: str) -> dict | None:
    for f in port["fixed_ips"]:
        if f.get("cidr") and ipaddress.ip_address(addr) in ipaddress.ip_network(f["cidr"], strict=False):
            return f
    return None


def trace(view: dict, snap: dict, src: str, dst: str, proto: str = "icmp", port: int | None = None,
          src_ip: str | None = None, route_get: RouteGet | None = None, src_mac: str | None = None) -> Trace:
    """Walk one packet from src (a port id or 'external') to dst (a port id, an IPv4 address or 'external');
    proto 'arp': the ARP request (gratuitous when dst is its own sender address) a guest sends for dst."""
    if route_get is None:
        from neutrino.lib.inspect import route_get
    w = Walker(view, snap, route_get)
    t = Trace(src, dst, proto, port)
    dport = port if proto in ("tcp", "udp") else None
    icmp_type = port if proto == "icmp" and port is not None else 8
    dst_port = w.port(dst) if dst != "external" else None
    dst_ip = (w.external_ip() if dst == "external" else
              dst_port["fixed_ips"][0]["ip_address"] if dst_port else dst)
    if not dst_ip:
        return t.drop("(input)", f"cannot resolve destination {dst!r}")
    if src == "external":
        src_ip = src_ip or w.external_ip()
        pkt = Packet(src_ip, dst_ip, proto, EPHEMERAL_PORT if dport else None, dport, icmp_type)
        ns = snap.get("host_ns")
        route = route_get(ns, dst_ip, None, None)
        if "error" in route:
            return t.drop(f"external ({ns or 'host'}) routing", f"ip route get {dst_ip}: {route['error']}")
        out = route["dev"]
        tag = w.external_segment(out)
        t.add(Hop(f"external {out}", f"{src_ip} → {dst_ip} leaves by {out}", True, None, {}))
        if tag is None:
            return t.drop(f"external {out}", f"{out} is not patched into {BR_INT}" if w.l2_backend == "ovs" else
                          f"{out} is not a bridge")
        return w.l2(t, pkt, tag, route.get("gateway") or dst_ip, 0)
    sp = w.port(src)
    if sp is None:
        return t.drop("(input)", f"no instance port {src!r} on this host")
    own = sp["fixed_ips"][0]
    mac = (src_mac or sp["mac_address"]).lower()
    pkt = Packet(src_ip or own["ip_address"], dst_ip, proto, EPHEMERAL_PORT if dport else None, dport, icmp_type,
                 mac_src=mac)
    tap = snap.get("links", {}).get(sp["device"])
    if tap is None:
        return t.drop(sp["device"], "the port's tap device does not exist", None, port=sp["id"])
    if not tap.get("up"):
        return t.drop(sp["device"], "the port's tap device is down", None, port=sp["id"])
    sent = (f"ARP who-has {dst_ip} tell {pkt.src} ({mac})" if proto == "arp" else
            f"{pkt.src} → {dst_ip} {proto}" + (f"/{port}" if port is not None else ""))
    t.add(Hop(f"{sp['device']} → {tap.get('master')}", sent, True, None, {"port": sp["id"]}))
    if proto == "arp":
        return _arp(w, t, sp, pkt)
    flows = {"dl_src": mac, "dl_type": "ip", "nw_proto": IP_PROTO[proto], "nw_src": pkt.src, "nw_dst": dst_ip,
             "tp_src": pkt.sport, "tp_dst": dport, "icmp_type": icmp_type}
    # in the order the frame meets them: OVS's flows sit behind the qbr that filters it, linuxbridge's anti-spoof
    # table hooks the bridge's prerouting (priority -300) before br_netfilter runs the firewall
    checks = [lambda: w.bridge_fw(t, pkt, sp, egress=True), lambda: w.guard(t, sp, flows, pkt)]
    for check in checks if w.l2_backend == "ovs" else reversed(checks):
        if not check():
            return t
    tag = w.port_segment(sp)
    if tag is None:
        return t.drop(w.port_dev(sp), f"not a port of {BR_INT}" if w.l2_backend == "ovs" else "not in a bridge",
                      None, port=sp["id"])
    if w.l2_backend == "ovs":
        t.add(Hop(f"{names.qvb(sp['id'])} → {names.qvo(sp['id'])} → {BR_INT}", f"local VLAN {tag}", True, None,
                  {"network": sp["network_id"]}))
    subnet = _subnet(sp, dst_ip)
    if subnet is None and not own.get("gateway_ip"):
        return t.drop(f"guest of {sp['id']}", f"{dst_ip} is off-link and the subnet has no gateway")
    return w.l2(t, pkt, tag, dst_ip if subnet else own["gateway_ip"], 0, came_from=sp["device"])


def _arp(w: Walker, t: Trace, sp: dict, pkt: Packet) -> Trace:
    """An ARP request from a guest: not IP, so the security groups never see it; br-int's flows decide."""
    bridge = names.qbr(sp["id"]) if w.l2_backend == "ovs" else (w.links.get(sp["device"]) or {}).get("master")
    t.add(Hop(str(bridge), "not IP: the security group chains do not see ARP", True, None, {"port": sp["id"]}))
    if not w.guard(t, sp, {"dl_src": pkt.mac_src, "dl_type": "arp", "arp_spa": pkt.src, "arp_sha": pkt.mac_src,
                           "arp_tpa": pkt.dst}, replace(pkt, proto="arp")):
        return t
    tag = w.port_segment(sp)
    found = w.owner(tag, pkt.dst) if tag is not None else None
    who = (f"port {found[1]['id']}" if found and found[0] == "port" else
           f"router {found[1][0]}" if found and found[0] == "router" else "nobody here")
    return t.end("delivered", f"{w.seg_name(tag)}: flooded to the network ({pkt.dst} is {who}), "
                 f"whose neighbour tables learn {pkt.src} is-at {pkt.mac_src}")


def render(t: Trace) -> list[str]:
    """The trace as text lines (rich markup) for the terminal."""
    head = f"trace {t.src} → {t.dst} {t.proto}" + (f"/{t.port}" if t.port is not None else "")
    lines = [f"[bold]{head}[/bold]"]
    for i, h in enumerate(t.hops, 1):
        mark = "[green]✓[/green]" if h.ok else "[red]✗[/red]"
        links = " ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in h.realizes.items() if v)
        lines.append(f" {i:2d} {mark} {h.where}: {h.what}" + (f"  [dim]({links})[/dim]" if links else ""))
        if h.rule:
            lines.append(f"      [dim]rule:[/dim] {h.rule}")
    color = "green" if t.verdict == "delivered" else "red"
    lines.append(f"[{color}]{t.verdict.upper()}[/{color}] at {t.at}" + (f" by {t.rule}" if t.rule else ""))
    for u in t.unknown:
        lines.append(f"[yellow]not evaluated:[/yellow] {u}")
    return lines
