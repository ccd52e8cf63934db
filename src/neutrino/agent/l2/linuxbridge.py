"""The fast kernel L2 path: one Linux bridge per network, tap/ns- devices enslaved to it, kernel VXLAN between hosts.

Per network: `brq<net_id[:11]>` (vxlan/local networks) or, for a flat network on physnet P, the bridge named
`bridge_mappings[P]` (created when missing). On a host with a tunnel IP, a vxlan network gets `vxlan-<vni>` in its
bridge (without one, the network stays local to this host): no multicast, no learning; where floods go (`00:00:00:00:00:00 dst <peer>`) and unicast MACs come from the view's FDB (l2population).
No VLAN networks: this kernel has no 8021q. Each sync reads the link table (lib.ip.links: dumped once, then kept
from the kernel's link announcements, so a one-port change does not re-read 5000 links) and the FDBs, and changes
only the difference, one netlink request per tap; a second sync with the same view writes nothing.

Instance ports with port security get ARP/ND anti-spoofing in the nftables tables `bridge neutrino_l2-<k>`
(antispoof.py), applied before their tap is enslaved. Like the firewall drivers, it diffs against what it last
left in the kernel while nobody else changed the ruleset (firewall/memory.py), and reads the table back otherwise.
Host-side devices carry no IPv6.
"""
from __future__ import annotations

from neutrino import names
from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.agent.firewall.memory import KernelMemory
from neutrino.agent.l2 import antispoof
from neutrino.agent.l2.hostside import NoIpv6
from neutrino.lib import inspect, ip, nft
from neutrino.sync.schema import Port, View

FLOOD = "00:00:00:00:00:00"


class LinuxBridgeL2Driver:
    """Linux bridge L2 agent. `netns` is the host namespace (None: this process's)."""

    name = "linuxbridge"

    def __init__(self, config: HostConfig, netns: str | None = None):
        self.config = config
        self.netns = netns
        self._guards: tuple[antispoof.Guard, ...] | None = None     # as last applied
        # the anti-spoof table as last left (see firewall/memory.py), trusted while nobody else changed the ruleset:
        # lib.nft.own sees any other commit, and reading 1000 ports' chains back costs seconds
        self._memory = KernelMemory(trust=float("inf"))
        self._no_ipv6 = NoIpv6()

    def _guard(self, view: View, links: dict) -> bool:
        """The anti-spoof table for the guarded ports whose tap exists; True when the kernel was changed."""
        guards = tuple(antispoof.guard(p) for p in antispoof.guarded_ports(view) if p["device"] in links)
        generation = nft.generation(self.netns)
        if guards == self._guards and self._memory.trusted(generation) is not None:
            return False
        script: list[str] = []

        def apply(now: dict[str, nft.Current | None] | None) -> None:
            read_at = self._memory.read_at
            if now is None:
                read_at = self._memory.clock()
                now = nft.read_tables("bridge", self._tables(), self.netns)
            self._memory.forget()
            want = antispoof.nft_tables(list(guards), antispoof.nft_placed(now))
            names = {t.name for t in want}
            script[:] = [line for t in want for line in nft.plan(now.get(t.name), t)]
            script.extend(f"delete table bridge {n}" for n, cur in sorted(now.items()) if cur and n not in names)
            self._memory.remember({t.name: nft.state(t, now.get(t.name)) for t in want}, read_at,
                                  nft.run(script, self.netns))
        self._memory.apply(generation, apply)
        self._guards = guards
        return bool(script)

    def _tables(self) -> list[str]:
        """The anti-spoof tables the kernel has (an older host's single `neutrino_l2` among them)."""
        return [n for n in nft.table_names("bridge", self.netns)
                if n == antispoof.NFT_TABLE or antispoof.is_nft_shard(n)]

    def bridge_of(self, net: dict) -> str | None:
        """The bridge of a network on this host, None when it cannot be realized here (e.g. VLAN)."""
        seg = net["segment"]
        if seg["network_type"] == "flat":
            return self.config.bridge_mappings.get(seg["physical_network"])
        return names.brq(net["id"]) if seg["network_type"] in ("vxlan", "local") else None

    def _fdb(self, view: View, vni: int) -> set[tuple[str, str]]:
        peers = {p["ip"] for p in view["tunnels"].get("peers", []) if p["ip"] != self.config.tunnel_ip}
        out = set()
        for e in view["fdb"]:
            if e["vni"] == vni and e["host_ip"] in peers:
                out |= {(FLOOD, e["host_ip"]), (e["mac_address"].lower(), e["host_ip"])}
        return out

    def _ensure_network(self, view: View, net: dict, bridge: str, links: dict) -> bool:
        ns, mtu, changed = self.netns, net.get("mtu") or None, False
        cur = links.get(bridge)
        if cur is None or not cur["up"] or (mtu and bridge.startswith("brq") and cur["mtu"] != mtu):
            ip.ensure_bridge(bridge, ns, mtu=mtu if bridge.startswith("brq") else None)
            changed = True
        seg = net["segment"]
        if seg["network_type"] != "vxlan" or not self.config.tunnel_ip:   # no tunnel IP: this host only
            return changed
        vx = names.vxlan(seg["segmentation_id"])
        br_idx = links[bridge]["index"] if bridge in links else ip.link_index(bridge, ns)
        if vx not in links:
            ip.ensure_vxlan(vx, seg["segmentation_id"], self.config.tunnel_ip, ns, mtu=mtu)
            changed = True
        if not _ok(links.get(vx), br_idx, mtu):
            ip.set_link(vx, ns, mtu=mtu, master=bridge, up=True)
            changed = True
        want, have = self._fdb(view, seg["segmentation_id"]), ip.fdb_entries(vx, ns)
        for mac, dst in sorted(want - have):
            ip.fdb_append(vx, mac, dst, ns)
        for mac, dst in sorted(have - want):
            ip.fdb_delete(vx, mac, dst, ns)
        return changed or want != have

    def sync(self, view: View) -> SyncResult:
        ns = self.netns
        links = ip.links(ns)
        result, changed = SyncResult(), False
        bridges: dict[str, str] = {}          # network id -> bridge
        used = {p["network_id"] for p in view["ports"]}
        for net in view["networks"].values():
            bridge = self.bridge_of(net)
            if bridge and net["id"] in used:
                bridges[net["id"]] = bridge
                changed |= self._ensure_network(view, net, bridge, links)
        if changed:
            links = ip.links(ns)
        changed |= self._guard(view, links)
        host_side = {b for b in bridges.values() if b.startswith("brq")}       # a mapped bridge is the host's own
        host_side |= {p["device"] for p in view["ports"] if p["kind"] == "instance"}
        changed |= self._no_ipv6.ensure(sorted(host_side), links, ns)
        plugged: set[str] = set()
        wire: list[tuple[str, str, int | None]] = []
        for port in view["ports"]:
            dev, bridge = port["device"], bridges.get(port["network_id"])
            if dev not in links or bridge is None:
                result.ports[port["id"]] = False
                continue
            mtu = port.get("mtu") or None
            if port["admin_state_up"]:
                plugged.add(dev)
                if not _ok(links[dev], links[bridge]["index"], mtu):
                    wire.append((dev, bridge, mtu))
            elif links[dev]["master"] is not None:
                ip.detach(dev, ns)
                changed = True
            result.ports[port["id"]] = True
        ip.enslave(wire, links, ns)
        changed |= bool(wire)
        changed |= self._remove_stale(set(bridges.values()), {names.vxlan(n["segment"]["segmentation_id"])
                                                               for n in view["networks"].values()
                                                               if n["id"] in bridges and self.config.tunnel_ip
                                                               and n["segment"]["network_type"] == "vxlan"},
                                      plugged, links)
        result.changed = changed
        return result

    def _remove_stale(self, bridges: set[str], vxlans: set[str], plugged: set[str], links: dict) -> bool:
        """Detach tap/ns- devices of ports gone from our bridges; delete unused brq*/vxlan-* devices."""
        ours = {links[b]["index"] for b in set(self.config.bridge_mappings.values()) | bridges if b in links}
        ours |= {v["index"] for k, v in links.items() if k.startswith("brq")}
        detach = sorted(name for name, link in links.items()
                        if link["master"] in ours and name.startswith(("tap", "ns-")) and name not in plugged)
        delete = sorted(name for name in links if (name.startswith("brq") and name not in bridges)
                        or (name.startswith("vxlan-") and name not in vxlans))
        for name in detach:
            ip.detach(name, self.netns)
        for name in delete:
            ip.delete_link(name, self.netns)
        return bool(detach or delete)

    def cleanup(self) -> None:
        """Delete every brq*/vxlan-* device and detach our devices from the mapped bridges (taps stay)."""
        if self.netns is not None and not ip.netns_exists(self.netns):
            return
        self._remove_stale(set(), set(), set(), ip.links(self.netns))
        for name in self._tables():
            nft.delete_table("bridge", name, self.netns)
        self._guards = None
        self._memory.forget()


    # --- the hood's questions ---------------------------------------------------------------------------------

    @staticmethod
    def expected(view: View, port: Port, bridge_mappings: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """The port's device (tap, or the ns- end of a router or DHCP port) in its network's bridge: brq<net>
        for vxlan and local networks, the mapped bridge for a flat one; none for what this host cannot realize."""
        net = view["networks"].get(port["network_id"])
        if net is None:
            return []
        seg = net["segment"]
        if seg["network_type"] == "flat":
            bridge = (bridge_mappings or {}).get(seg["physical_network"])
        else:
            bridge = names.brq(net["id"]) if seg["network_type"] in ("vxlan", "local") else None
        return [(port["device"], bridge)] if bridge else []

    @staticmethod
    def held(host_ns: str | None, ovs_rundir: str | None = None) -> dict:
        """The nftables ruleset (the `bridge neutrino_l2-<k>` anti-spoof tables among it) and the VXLAN FDBs."""
        return {"nft": inspect.nft_ruleset(host_ns), "fdb": inspect.vxlan_fdb(host_ns)}


def _ok(link: dict | None, master: int | None, mtu: int | None) -> bool:
    if link is None or not link["up"] or link["master"] != master:
        return False
    return not (mtu and link["mtu"] != mtu)
