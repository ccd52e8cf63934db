"""The QoS driver: a port's bandwidth limits and DSCP marking on its tap, the same on both L2 backends (the tap sits
in a Linux bridge either way: qbr<id> with OVS hybrid plug, brq<net> with linuxbridge), as Neutron's linuxbridge
QoS driver does it.

Directions are the instance's: `egress` (from the instance) is what the tap receives, shaped by a TBF on the
port's ifb<id> device that the tap's ingress redirects to (lib.tc); `ingress` (to the instance) is shaped by a TBF
on the tap's own egress. The burst is `max_burst_kbps`, or 80 % of `max_kbps` when that is 0 (Neutron's default).
DSCP marking is an iptables mangle rule on bridged packets the tap sends, `neutron-qos-o<dev>` (IPv4 and IPv6).
minimum_bandwidth rules are accepted by the API only: without placement there is nothing to guarantee against.
Each sync reads the host's qdiscs in one call and changes only ports whose state differs; ports without a policy
lose whatever neutrino had put on their tap.
"""
from __future__ import annotations

from dataclasses import dataclass

from neutrino import names
from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.lib import ip, iptables, sysctl, tc
from neutrino.sync.schema import View

PREFIX = "neutron-qos-"
BURST_RATIO = 0.8
IFB_LEN = 3 + names.ID_LEN
BRIDGE_NF = {"net.bridge.bridge-nf-call-iptables": 1, "net.bridge.bridge-nf-call-ip6tables": 1}


@dataclass(frozen=True)
class PortQos:
    port_id: str
    tap: str
    egress: tuple[int, int] | None       # (kbit/s, burst bytes): from the instance
    ingress: tuple[int, int] | None      # to the instance
    dscp: int | None


def _limit(rule: dict) -> tuple[int, int]:
    kbps = rule["max_kbps"]
    burst_kbit = rule.get("max_burst_kbps") or int(kbps * BURST_RATIO)
    return kbps, max(burst_kbit * 1000 // 8, 1600)       # a burst below one frame would pass nothing


def wanted(view: View) -> dict[str, PortQos]:
    """tap -> what QoS it needs, for the instance ports of the view that have rules."""
    out = {}
    for p in view.get("ports", []):
        rules = p.get("qos") or []
        if p.get("kind") != "instance" or not rules:
            continue
        limits = {r["direction"]: _limit(r) for r in rules if r["type"] == "bandwidth_limit"}
        dscp = next((r["dscp_mark"] for r in rules if r["type"] == "dscp_marking"), None)
        out[p["device"]] = PortQos(p["id"], p["device"], limits.get("egress"), limits.get("ingress"), dscp)
    return out


def mangle_table(ports: list[PortQos]) -> iptables.TableState:
    """The DSCP chains (one per marking port) and their jumps from POSTROUTING, as iptables-save prints them."""
    chains, jumps = {}, []
    for q in sorted(ports, key=lambda q: q.port_id):
        if q.dscp is None:
            continue
        chain = f"{PREFIX}o{names.sg_dev(q.port_id)}"
        chains[chain] = [f"-j DSCP --set-dscp {q.dscp:#x}"]
        jumps.append(f"-m physdev --physdev-in {q.tap} --physdev-is-bridged -j {chain}")
    if not chains:
        return iptables.TableState("mangle")
    return iptables.TableState("mangle", {f"{PREFIX}POSTROUTING": jumps, **chains},
                               {"POSTROUTING": [f"-j {PREFIX}POSTROUTING"]})


class QosDriver:
    name = "qos"

    def __init__(self, config: HostConfig, ns: str | None = None):
        self.config = config
        self.ns = ns
        self.bare = False       # the host was found without any of our QoS state and none is wanted since

    def sync(self, view: View) -> SyncResult:
        """Reads nothing while no port has QoS and the host was already found bare (a host of 1000 ports without
        QoS pays nothing for it on every view change)."""
        want = wanted(view)
        if not want and self.bare:
            return SyncResult()
        links = ip.links(self.ns)
        have = tc.qdiscs(self.ns)
        result, changed = SyncResult(), False
        present = [q for q in want.values() if q.tap in links]
        for q in present:
            changed |= self._shape(q, have.get(q.tap, {}), have.get(names.ifb(q.port_id), {}))
            result.ports[q.port_id] = True
        for q in want.values():
            result.ports.setdefault(q.port_id, False)
        changed |= self._unshape(present, links, have)
        table = mangle_table(present)
        if table.chains:      # marking happens on bridged packets: br_netfilter must hand them to iptables
            changed |= sysctl.ensure(BRIDGE_NF, self.ns)
        for version in (4, 6):
            changed |= bool(iptables.apply(table, PREFIX, netns=self.ns, ipv=version))
        result.changed = changed
        self.bare = not want
        return result

    def _shape(self, q: PortQos, tap: dict, ifb: dict) -> bool:
        changed = False
        if q.ingress and not tc.tbf_matches(tap.get("root"), *q.ingress):
            tc.ensure_tbf(q.tap, *q.ingress, self.ns)
            changed = True
        elif not q.ingress and tap.get("root", {}).get("kind") == "tbf":
            tc.delete_root(q.tap, self.ns)
            changed = True
        dev = names.ifb(q.port_id)
        if q.egress:
            if not tc.tbf_matches(ifb.get("root"), *q.egress):
                tc.ensure_ifb(dev, self.ns)
                tc.ensure_tbf(dev, *q.egress, self.ns)
                changed = True
            if not tap.get("ingress") or not tc.redirects_to(q.tap, dev, self.ns):
                tc.ensure_redirect(q.tap, dev, self.ns)
                changed = True
        elif tap.get("ingress"):
            tc.delete_ingress(q.tap, self.ns)
            changed = True
        return changed

    def _unshape(self, present: list[PortQos], links: dict, have: dict) -> bool:
        """Taps no longer limited lose our qdiscs; IFB devices of ports no longer limited at egress go."""
        changed = False
        keep = {q.tap for q in present}
        for dev, qs in sorted(have.items()):
            if dev.startswith("tap") and dev not in keep:
                if qs.get("root", {}).get("kind") == "tbf":
                    tc.delete_root(dev, self.ns)
                    changed = True
                if qs.get("ingress"):
                    tc.delete_ingress(dev, self.ns)
                    changed = True
        wanted_ifbs = {names.ifb(q.port_id) for q in present if q.egress}
        for name, link in sorted(links.items()):
            if link.get("kind") == "ifb" and len(name) == IFB_LEN and name.startswith("ifb") and \
                    name not in wanted_ifbs:
                ip.delete_link(name, self.ns)
                changed = True
        return changed

    def cleanup(self) -> None:
        """Remove every qdisc, IFB device and mangle chain this driver made."""
        if self.ns is not None and not ip.netns_exists(self.ns):
            return
        self.bare = False
        self._unshape([], ip.links(self.ns), tc.qdiscs(self.ns))
        for version in (4, 6):
            iptables.remove_all("mangle", PREFIX, netns=self.ns, ipv=version)
