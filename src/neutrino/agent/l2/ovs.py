"""The seed's L2 wiring on Open vSwitch: tap → qbr → qvb/qvo → br-int (local VLAN per network) → br-tun / br-ex.

Each sync reads OVSDB and the host's links, computes the difference with the view and applies it: the flows of
guarded ports about to appear first, then kernel devices (one `ip -batch`), then ONE OVSDB transaction for every
port add/change/removal, then the rest of the flows, then the devices of removed ports. A second sync with the same
view writes nothing. The reads cost what changed, not what exists (a port added at 5000 ports): OVSDB rows are
converted as the IDL announces them (lib.ovs), links come from lib.ip's table kept current by the kernel's
announcements, and flows are sent as a difference against what this driver left. Every TRUST seconds (so at every
periodic resync of the agent) flow tables are read whole again and repaired: drift behind the agent's back lasts at
most one resync.

Why flows before devices: ovs-vswitchd (OVS 3.1) runs a whole bridge reconfiguration on every link announcement of
its namespace, whatever the link (if-notifier), and that costs O(its ports): two address dumps of the namespace
(getifaddrs) and netlink requests per port, 0.1-0.5 s at 1000 ports on 2 cores. An OpenFlow request or an OVSDB
commit sent after the batch waits that out; sent before, it does not.

Local VLANs (1..4094) are allocated here and written into each br-int Port's other_config (`net_uuid`, `tag`, as
Neutron does), so a new driver object (agent restart) recovers them from OVS and keeps every tag. A port whose
admin_state_up is false sits on the dead VLAN 4095.

Instance ports with port security get ARP/ND anti-spoofing flows on br-int at their qvo (antispoof.py). Flows name
OpenFlow port numbers: every port this driver adds asks for its number (Interface.ofport_request, one no port of
br-int has or asked for), so its flows are in before the port is, and it never forwards unguarded; should
ovs-vswitchd give another number (a port made behind the driver's back took it), the port sits on the dead VLAN
until the next sync's flows name the real one. Host-side devices of guests carry no IPv6 (no link-local to reach).

`restarted()` (the agent's watcher asks it ten times a second) notices a restart of ovs-vswitchd or ovsdb-server
by their pids: a new ovs-vswitchd starts with empty flow tables (a secure bridge drops everything meanwhile) and,
on the userspace datapath, new bridge devices without their addresses. The next sync then re-verifies every flow
table and gives the bridge devices back the addresses they had (the host's own, e.g. br-ex's gateway address).
"""
from __future__ import annotations

import logging
import os
import socket
import time

from neutrino import names
from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.agent.l2 import antispoof
from neutrino.agent.l2.hostside import NoIpv6
from neutrino.errors import KernelError
from neutrino.lib import ethtool, inspect, ip
from neutrino.lib import ovs as lib_ovs
from neutrino.sync.schema import Port, View

LOG = logging.getLogger(__name__)
TRUST = 10.0        # seconds flow tables and links read from the kernel are taken as still in place, changed only
                    # by this driver (flows) or as the kernel announced (links); the agent resyncs every 15 s
OFPORT_WAIT = 2.0   # seconds a sync waits for ovs-vswitchd to open new guarded ports

BR_INT = "br-int"
BR_TUN = "br-tun"
PATCH_TUN = "patch-tun"      # on br-int
PATCH_INT = "patch-int"      # on br-tun
MAX_VLAN = 4094
MAX_OFPORT = 0xfeff     # OpenFlow 1.0's last physical port number
HYBRID_PREFIXES = ("qbr", "qvb")
DEV_LEN = 3 + names.ID_LEN


def int_patch(bridge: str) -> str:
    """br-int side of the patch to a physnet bridge (Neutron's int-<bridge>)."""
    return f"int-{bridge}"[:15]


def phy_patch(bridge: str) -> str:
    """Physnet-bridge side of that patch (Neutron's phy-<bridge>)."""
    return f"phy-{bridge}"[:15]


def vxlan_port(remote_ip: str) -> str:
    """Tunnel port name per peer, Neutron style: vxlan-<remote ip in hex>."""
    return "vxlan-" + socket.inet_aton(remote_ip).hex()


def rundir_of(config: HostConfig) -> str:
    """The OVS run directory: where db.sock and the bridges' .mgmt sockets live."""
    if config.ovs_db and config.ovs_db.startswith("unix:"):
        return os.path.dirname(config.ovs_db[len("unix:"):])
    return os.path.join(config.state_dir, "ovs")


class OvsL2Driver:
    """Hybrid-plug OVS L2 agent (the seed's design). `netns` is the host namespace (None: this process's)."""

    name = "ovs"

    def __init__(self, config: HostConfig, netns: str | None = None):
        self.config = config
        self.netns = netns
        self.rundir = rundir_of(config)
        self.db_url = config.ovs_db or lib_ovs.db_url(self.rundir)
        self.datapath = lib_ovs.datapath_type()
        self._db: lib_ovs.Ovsdb | None = None
        self._lvids: dict[str, int] = {}
        # bridge -> ({group: its flows}, when the table was last read); a group is a guarded port's flows by its
        # device, or the bridge's own ("")
        self._tables: dict[str, tuple[dict[str, tuple[str, ...]], float]] = {}
        self._pids: tuple[int | None, ...] | None = None     # (ovsdb-server, ovs-vswitchd) as of the last sync
        self._bridge_addrs: dict[str, set[str]] = {}         # bridge device -> its addresses, as of the last sync
        self._restore_addrs = False
        self._no_ipv6 = NoIpv6()
        self._links_read_at = float("-inf")
        self._tx_done: dict[str, int] = {}                   # qvb -> ifindex its tx checksum offload was turned off

    # --- plumbing -------------------------------------------------------------------------------------------------

    def _ovsdb(self) -> lib_ovs.Ovsdb:
        if self._db is None:
            self._db = lib_ovs.Ovsdb(self.db_url)
        return self._db

    def close(self) -> None:
        """Drop the OVSDB connection (the wiring stays); flow tables and links are read again on the next sync."""
        self._tables.clear()
        self._links_read_at = float("-inf")
        if self._db is not None:
            self._db.close()
            self._db = None

    def _daemon_pids(self) -> tuple[int | None, ...]:
        return tuple(lib_ovs.daemon_pid(self.rundir, d) for d in lib_ovs.DAEMONS)

    def restarted(self) -> bool:
        """Whether ovsdb-server or ovs-vswitchd died or came back since the last sync (cheap: two pidfiles)."""
        pids = self._daemon_pids()
        if self._pids is None or pids == self._pids:
            return False
        if pids[0] != self._pids[0]:
            self.close()                      # a new ovsdb-server: reconnect
        self._tables.clear()
        self._restore_addrs = True
        self._pids = pids
        return True

    def _links(self, full: bool) -> tuple[dict[str, dict], bool]:
        """The host's links, and whether this look counts as a whole read (when `full` or past TRUST: what is redone
        then, the tx offload of every qvb and the bridges' addresses). lib.ip keeps the table current from the
        kernel's link announcements (a dump again when they were lost): no process and no dump per look."""
        links = ip.links(self.netns)
        if full or time.monotonic() - self._links_read_at >= TRUST:
            self._links_read_at = time.monotonic()
            return links, True
        return links, False

    def _tx_off(self, qvbs: list[str], links: dict, full: bool) -> bool:
        """Tx checksum offload off on every qvb (see HostConfig.userspace_ovs): each device once per incarnation,
        all of them again on a full read (drift)."""
        todo = [d for d in qvbs if d in links and (full or self._tx_done.get(d) != links[d]["index"])]
        changed = bool(ethtool.tx_off(todo, self.netns))
        self._tx_done = {d: links[d]["index"] for d in qvbs if d in links}
        return changed

    def _bridge_devices(self, have: dict, links: dict, full: bool) -> None:
        """Remember the bridges' addresses (on a full read); after a restart, wait for the bridge devices and give
        them back."""
        if not self._restore_addrs:
            if not full:
                return
            self._bridge_addrs.update({b: ip.addresses(b, self.netns) for b in sorted(have) if b in links})
            return
        deadline = time.monotonic() + OFPORT_WAIT
        for bridge, addrs in sorted(self._bridge_addrs.items()):
            while not ip.link_exists(bridge, self.netns) and time.monotonic() < deadline:
                time.sleep(0.01)
            if addrs and ip.link_exists(bridge, self.netns):
                ip.ensure_addresses(bridge, addrs, self.netns, exclusive=False)
                ip.set_up(bridge, self.netns)
        self._restore_addrs = False

    # --- local VLANs ----------------------------------------------------------------------------------------------

    def local_vlans(self, view: View, br_int: lib_ovs.BridgeInfo | None) -> dict[str, int]:
        """network id -> local VLAN for every network with a port in the view; kept from OVS, else the lowest free."""
        in_ovs: dict[str, int] = {}
        for p in (br_int.ports.values() if br_int else ()):
            net, tag = p.other_config.get("net_uuid"), p.other_config.get("tag")
            if net and tag and tag.isdigit():
                in_ovs.setdefault(net, int(tag))
        needed = {p["network_id"] for p in view["ports"]}
        needed |= {n["id"] for n in view["networks"].values()
                   if n["segment"]["network_type"] == "flat" and n["segment"]["physical_network"]
                   in self.config.bridge_mappings}
        mapping = {n: in_ovs.get(n, self._lvids.get(n)) for n in needed}
        mapping = {n: v for n, v in mapping.items() if v}
        used = set(mapping.values()) | set(in_ovs.values())
        free = (v for v in range(1, MAX_VLAN + 1) if v not in used)
        for net in sorted(needed - set(mapping)):
            mapping[net] = next(free)
        self._lvids = mapping
        return mapping

    # --- kernel side ----------------------------------------------------------------------------------------------

    @staticmethod
    def _hybrid_plan(port: dict, links: dict) -> list[str]:
        """`ip` commands that give a port tap<id> in qbr<id> and the veth qvb<id> (in qbr) / qvo<id>; [] when all
        is in place. Commands of all ports run as one `ip -batch`: a cold sync of 1000 ports is one process, not
        20 000 netlink round trips."""
        pid, mtu = port["id"], port.get("mtu") or None
        tap, qbr, qvb, qvo = port["device"], names.qbr(pid), names.qvb(pid), names.qvo(pid)
        m = f" mtu {mtu}" if mtu else ""
        cmds = []
        if qbr not in links:      # no IPv6 link-local from the start: each address and route it brings is
            cmds += [f"link add {qbr}{m} type bridge", f"link set {qbr} addrgenmode none"]   # more vswitchd work
        if not _ok(links.get(qbr), mtu=mtu):
            cmds.append(f"link set {qbr}{m} up")
        if qvb not in links or qvo not in links:
            if qvb in links:
                cmds.append(f"link del {qvb}")
            elif qvo in links:
                cmds.append(f"link del {qvo}")
            cmds += [f"link add {qvb}{m} type veth peer name {qvo}{m}", f"link set {qvb} addrgenmode none",
                     f"link set {qvo} addrgenmode none"]
        qbr_idx = links[qbr]["index"] if qbr in links else None
        for dev in (tap, qvb):
            if cmds or not _ok(links.get(dev), master=qbr_idx, mtu=mtu):
                cmds.append(f"link set {dev} master {qbr}{m} up")
        if cmds or not _ok(links.get(qvo), mtu=mtu):   # promiscuous already: the userspace datapath sets it when it
            cmds.append(f"link set {qvo}{m} promisc on up")   # adds the port, a link change ovs-vswitchd then
                                                              # answers with another reconfiguration of every port
        return cmds

    def _reopen(self, br_int: lib_ovs.BridgeInfo | None, dev: str, links: dict) -> bool:
        """A device recreated behind OVS's back (OVSDB shows another ifindex, 0 once the old one vanished) is never
        reopened by ovs-vswitchd: drop its OVSDB port (own transaction) so that it is added again and opened afresh."""
        cur = br_int.ports.get(dev) if br_int else None
        if cur is None or cur.ifindex is None:     # None: ovs-vswitchd has not opened it yet
            return False
        if cur.ifindex == links[dev]["index"]:
            return False
        db = self._ovsdb()
        db.commit(db.del_ports([dev], BR_INT))
        del br_int.ports[dev]
        return True

    def _trusted(self, bridge: str) -> bool:
        """Whether the flows this driver left on the bridge are known to be all it holds: the table was read less
        than TRUST s ago and changed since only by this driver."""
        return bridge in self._tables and time.monotonic() - self._tables[bridge][1] < TRUST

    def _add_flows(self, bridge: str, groups: dict[str, tuple[str, ...]]) -> bool:
        """Before the OVSDB commit: the flows of ports about to appear (their OpenFlow numbers are requested), so
        that a port is guarded from its first frame. Nothing is read or deleted."""
        if self._trusted(bridge):
            known = self._tables[bridge][0]
            groups = {k: g for k, g in groups.items() if known.get(k) != g}
            # what the group held before stays known too, for _flows to delete (a port recreated on a new number)
            known.update({k: tuple(dict.fromkeys(known.get(k, ()) + g)) for k, g in groups.items()})
        return lib_ovs.change_flows(self.rundir, bridge, [f for g in groups.values() for f in g], [])

    def _flows(self, bridge: str, groups: dict[str, tuple[str, ...]]) -> bool:
        """Make the bridge's table the flows of `groups` (a port's flows, the bridge's own...). While the table is
        trusted only the groups that changed are compared and their difference sent (one bundle, nothing read:
        O(change)); otherwise the table is read and repaired (diff-flows), which every periodic resync does, so
        drift behind the agent's back lasts at most one resync."""
        if not self._trusted(bridge):
            changed = lib_ovs.ensure_flows(self.rundir, bridge, [f for g in groups.values() for f in g])
            self._tables[bridge] = (dict(groups), time.monotonic())
            return changed
        known = self._tables[bridge][0]
        add: list[str] = []
        delete: list[str] = []
        for key, flows in groups.items():
            old = known.get(key, ())
            if old is flows or old == flows:
                continue
            had, matches = set(old), {lib_ovs.match_of(f) for f in flows}
            add += [f for f in flows if f not in had]
            delete += [f for f in old if lib_ovs.match_of(f) not in matches]
        for key in known.keys() - groups.keys():
            delete += known[key]
        try:
            changed = lib_ovs.change_flows(self.rundir, bridge, add, delete)
        except KernelError:
            del self._tables[bridge]             # not what we thought: read and repair
            return self._flows(bridge, groups)
        self._tables[bridge] = (dict(groups), self._tables[bridge][1])
        return changed

    @staticmethod
    def _free_ofports(br_int: lib_ovs.BridgeInfo | None):
        """OpenFlow port numbers no port of br-int has or asked for, lowest first."""
        used = {n for p in (br_int.ports.values() if br_int else ()) for n in (p.ofport, p.ofport_request) if n}
        return (n for n in range(1, MAX_OFPORT + 1) if n not in used)

    def _unplug_stale_hybrid(self, keep: set[str], links: dict) -> bool:
        """Delete qvb (its qvo goes with it) and qbr of ports no longer here; the tap stays with its owner."""
        changed = False
        for name in sorted(links):
            if len(name) == DEV_LEN and name.startswith(HYBRID_PREFIXES) and name[3:] not in keep:
                ip.delete_link(name, self.netns)
                changed = True
        return changed

    # --- OVS side -------------------------------------------------------------------------------------------------

    def _bridges(self, db: lib_ovs.Ovsdb, have: dict, view: View, lvids: dict[str, int], free) -> list:
        """br-int, physnet bridges with their patch pair, br-tun with its patch pair and one vxlan port per peer.
        br-int's patch ports take their OpenFlow numbers from `free` too, so that none collides with a number asked
        for a guest port in the same transaction."""
        dp = self.datapath
        cmds = db.ensure_bridge(have, BR_INT, dp, "secure")
        br_int = have.get(BR_INT)

        def request(name: str) -> int | None:
            return None if br_int and name in br_int.ports else next(free)
        for physnet, bridge in sorted(self.config.bridge_mappings.items()):
            cmds += db.ensure_bridge(have, bridge, dp, "secure")
            cmds += db.ensure_port(br_int, BR_INT, int_patch(bridge), tag=self._flat_tag(view, physnet, lvids),
                                   type="patch", options={"peer": phy_patch(bridge)},
                                   ofport_request=request(int_patch(bridge)))
            cmds += db.ensure_port(have.get(bridge), bridge, phy_patch(bridge), type="patch",
                                   options={"peer": int_patch(bridge)})
        if self.config.tunnel_ip:
            cmds += db.ensure_bridge(have, BR_TUN, dp, "secure")
            cmds += db.ensure_port(br_int, BR_INT, PATCH_TUN, type="patch", options={"peer": PATCH_INT},
                                   ofport_request=request(PATCH_TUN))
            br_tun = have.get(BR_TUN)
            cmds += db.ensure_port(br_tun, BR_TUN, PATCH_INT, type="patch", options={"peer": PATCH_TUN})
            peers = {p["ip"] for p in view["tunnels"].get("peers", []) if p["ip"] != self.config.tunnel_ip}
            wanted = {vxlan_port(p): p for p in peers}
            for name, peer in sorted(wanted.items()):
                cmds += db.ensure_port(br_tun, BR_TUN, name, type="vxlan",
                                       options={"remote_ip": peer, "local_ip": self.config.tunnel_ip,
                                                "key": "flow", "dst_port": "4789"})
            stale = [n for n, p in (br_tun.ports.items() if br_tun else ()) if p.type == "vxlan" and n not in wanted]
            cmds += db.del_ports(stale, BR_TUN)
        return cmds

    @staticmethod
    def _flat_tag(view: View, physnet: str, lvids: dict[str, int]) -> int:
        """The access tag of int-<bridge>: the local VLAN of the flat network on that physnet (one per physnet)."""
        flats = sorted(n["id"] for n in view["networks"].values()
                       if n["segment"]["network_type"] == "flat" and n["segment"]["physical_network"] == physnet)
        return lvids[flats[0]] if flats else lib_ovs.DEAD_VLAN

    def _tun_flows(self, view: View, lvids: dict[str, int], br_tun: lib_ovs.BridgeInfo) -> list[str]:
        """br-tun: local VLAN -> VNI toward peers (unicast from view["fdb"], flood to peers of that VNI), back in.

        Ports are named by OpenFlow port number (ovs-ofctl cannot resolve names while diffing a flow file)."""
        ofport = {n: p.ofport for n, p in br_tun.ports.items() if p.ofport and p.ofport > 0}
        peers = {p["ip"] for p in view["tunnels"].get("peers", [])
                 if p["ip"] != self.config.tunnel_ip and vxlan_port(p["ip"]) in ofport}
        if PATCH_INT not in ofport:
            return ["priority=0,actions=drop"]
        flows = [f"table=0,priority=1,in_port={ofport[PATCH_INT]},actions=resubmit(,2)",
                 "table=0,priority=0,actions=drop",
                 "table=2,priority=1,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)",
                 "table=2,priority=1,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)",
                 "table=20,priority=0,actions=resubmit(,22)"]
        flows += [f"table=0,priority=1,in_port={ofport[vxlan_port(p)]},actions=resubmit(,4)" for p in sorted(peers)]
        nets = {n["segment"]["segmentation_id"]: n["id"] for n in view["networks"].values()
                if n["segment"]["network_type"] == "vxlan" and n["id"] in lvids}
        flood: dict[int, set[str]] = {}
        for e in view["fdb"]:
            if e["vni"] in nets and e["host_ip"] in peers:
                flood.setdefault(e["vni"], set()).add(e["host_ip"])
                out = ofport[vxlan_port(e["host_ip"])]
                flows.append(f"table=20,priority=2,dl_vlan={lvids[nets[e['vni']]]},dl_dst={e['mac_address']},"
                             f"actions=strip_vlan,load:{e['vni']:#x}->NXM_NX_TUN_ID[],output:{out}")
        for vni, net in sorted(nets.items()):
            flows.append(f"table=4,priority=1,tun_id={vni},actions=mod_vlan_vid:{lvids[net]},"
                         f"output:{ofport[PATCH_INT]}")
            outs = ",".join(f"output:{ofport[vxlan_port(p)]}" for p in sorted(flood.get(vni, ())))
            if outs:
                flows.append(f"table=22,priority=1,dl_vlan={lvids[net]},actions=strip_vlan,"
                             f"load:{vni:#x}->NXM_NX_TUN_ID[],{outs}")
        return flows

    # --- the Driver interface -------------------------------------------------------------------------------------

    def sync(self, view: View) -> SyncResult:
        self.restarted()                      # also here: a restart between two looks of the watcher
        self._pids = self._pids or self._daemon_pids()
        db = self._ovsdb()
        have = db.bridges()
        lvids = self.local_vlans(view, have.get(BR_INT))
        links, full = self._links(full=self._restore_addrs)
        result = SyncResult()
        changed = False
        br_int = have.get(BR_INT)
        free = self._free_ofports(br_int)
        cmds = self._bridges(db, have, view, lvids, free)
        guards = {p["id"]: antispoof.guard(p) for p in antispoof.guarded_ports(view)}
        normal = ("table=0,priority=0,actions=NORMAL",)
        int_flows = {"": normal + antispoof.OVS_DEFAULTS}     # br-int's flows: its own, each guarded port's
        new_flows: dict[str, tuple[str, ...]] = {}   # those of ports that appear in this sync
        fresh: dict[str, tuple[str, int]] = {}       # guarded qvo added now -> (port id, OpenFlow number asked)
        wanted_ovs: set[str] = set()
        keep_hybrid: set[str] = set()
        plan = [c for p in view["ports"] if p["kind"] == "instance" and p["device"] in links
                and p["network_id"] in view["networks"] for c in self._hybrid_plan(p, links)]
        asked: dict[str, int] = {}    # qvo of a guarded port new to br-int -> the OpenFlow number asked for it
        if plan and br_int is not None:
            # its flows go before the batch: every link the batch makes or changes has ovs-vswitchd reconfigure
            # all its ports (hundreds of ms at 1000 ports), which an OpenFlow request sent after it would wait out
            new = [p["id"] for p in view["ports"] if p["id"] in guards and p["device"] in links
                   and p["network_id"] in view["networks"] and names.qvo(p["id"]) not in br_int.ports]
            asked = {names.qvo(pid): next(free) for pid in new}
            changed |= self._add_flows(BR_INT, {names.qvo(pid): antispoof.ovs_flows(guards[pid], n)
                                                for pid, n in zip(new, asked.values())})
        sent = set(asked)
        if plan:
            try:
                ip.batch(plan, self.netns, force=True)
            except KernelError as e:        # one port's failure must not hold up the others: retried next sync
                LOG.warning("hybrid plug: %s", e)
            links = self._links(full=False)[0]
            changed = True
        for port in view["ports"]:
            pid, net = port["id"], view["networks"].get(port["network_id"])
            if port["device"] not in links or net is None:
                result.ports[pid] = False
                continue
            if port["kind"] == "instance":
                keep_hybrid.add(pid[:names.ID_LEN])
                ovs_dev = names.qvo(pid)
                if ovs_dev not in links:
                    result.ports[pid] = False
                    continue
            else:
                ovs_dev = port["device"]
                if port.get("mtu") and links[ovs_dev]["mtu"] != port["mtu"] or not links[ovs_dev]["up"]:
                    ip.set_link(ovs_dev, self.netns, mtu=port.get("mtu") or None, up=True)
                    changed = True
            lvid, seg = lvids[net["id"]], net["segment"]
            other = {"net_uuid": net["id"], "network_type": seg["network_type"], "tag": str(lvid),
                     "physical_network": seg["physical_network"] or "", "segmentation_id":
                     str(seg["segmentation_id"] or "")}
            ext = {"iface-id": pid, "attached-mac": port["mac_address"], "iface-status": "active"}
            if self._reopen(br_int, ovs_dev, links):
                changed = True
            tag = lvid if port["admin_state_up"] else lib_ovs.DEAD_VLAN
            cur = br_int.ports.get(ovs_dev) if br_int else None
            request = None
            if cur is None:                   # every port this driver adds gets its OpenFlow number from it
                request = asked.pop(ovs_dev, None) or next(free)
            if pid in guards:
                ofport = _ofport(br_int, ovs_dev) or (cur.ofport_request if cur else request)
                if ofport is None:            # an old port ovs-vswitchd has not opened: no flow can name it yet
                    tag = lib_ovs.DEAD_VLAN
                    result.ports[pid] = False
                else:
                    flows = int_flows[ovs_dev] = antispoof.ovs_flows(guards[pid], ofport)
                    if request:
                        fresh[ovs_dev] = (pid, request)
                        if ovs_dev not in sent:
                            new_flows[ovs_dev] = flows
            cmds += db.ensure_port(br_int, BR_INT, ovs_dev, tag=tag, other_config=other, external_ids=ext,
                                   ofport_request=request)
            wanted_ovs.add(ovs_dev)
            result.ports.setdefault(pid, True)
        if self.datapath == "netdev":
            changed |= self._tx_off([names.qvb(p) for p in sorted(keep_hybrid)], links, full)
        changed |= self._no_ipv6.ensure([d for p in view["ports"] if p["id"][:names.ID_LEN] in keep_hybrid
                                         for d in (p["device"], names.qbr(p["id"]), names.qvb(p["id"]),
                                                   names.qvo(p["id"]))], links, self.netns)
        stale = [n for n, p in (br_int.ports.items() if br_int else ())
                 if "iface-id" in p.external_ids and n not in wanted_ovs]
        cmds += db.del_ports(stale, BR_INT)
        for bridge in (BR_INT, BR_TUN, *self.config.bridge_mappings.values()):
            if bridge not in have:            # made in this commit: starts with an empty table (fail mode secure)
                self._tables.pop(bridge, None)
        if new_flows and br_int is not None:
            changed |= self._add_flows(BR_INT, new_flows)
        db.commit(cmds)                       # returns once ovs-vswitchd applied it (ports open, numbers given)
        changed |= bool(cmds)
        after = db.bridges() if cmds else have
        br_int = after.get(BR_INT)
        moved = {dev: pid for dev, (pid, want) in sorted(fresh.items()) if _ofport(br_int, dev) not in (None, want)}
        if moved:       # the number asked for was taken (by a port made behind our back): dead until flows name it
            db.commit([c for dev in moved for c in db.ensure_port(br_int, BR_INT, dev, tag=lib_ovs.DEAD_VLAN)])
            result.ports.update({pid: False for pid in moved.values()})
        changed |= self._flows(BR_INT, int_flows)
        for bridge in sorted(set(self.config.bridge_mappings.values())):
            changed |= self._flows(bridge, {"": normal})
        if self.config.tunnel_ip:
            changed |= self._flows(BR_TUN, {"": tuple(self._tun_flows(view, lvids, after[BR_TUN]))})
        changed |= self._unplug_stale_hybrid(keep_hybrid, links)
        self._bridge_devices(have, links, full)
        result.changed = changed
        return result

    def cleanup(self) -> None:
        """Remove br-int, br-tun, the mapped bridges and every qbr/qvb/qvo device (taps stay with their owner)."""
        db = self._ovsdb()
        have = db.bridges()
        bridges = [BR_INT, BR_TUN, *sorted(set(self.config.bridge_mappings.values()))]
        db.commit([c for b in bridges if b in have for c in db.del_bridge(b)])
        if self.netns is None or ip.netns_exists(self.netns):
            self._unplug_stale_hybrid(set(), ip.links(self.netns))
        self._lvids.clear()
        self.close()

    # --- the hood's questions ---------------------------------------------------------------------------------

    @staticmethod
    def expected(view: View, port: Port, bridge_mappings: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """Hybrid plug: tap and qvb in the port's qbr, qvo in br-int; a router or DHCP port's ns- end in br-int."""
        pid = port["id"]
        if port["kind"] != "instance":
            return [(port["device"], BR_INT)]
        return [(port["device"], names.qbr(pid)), (names.qvb(pid), names.qbr(pid)), (names.qvo(pid), BR_INT)]

    @staticmethod
    def held(host_ns: str | None, ovs_rundir: str | None) -> dict:
        """Every OVS bridge with its ports (tags, ids, OpenFlow numbers) and flows with counters."""
        return {"ovs": inspect.ovs_bridges(ovs_rundir)}



def _ok(link: dict | None, master: int | None = None, mtu: int | None = None) -> bool:
    """Whether a link exists, is up and already has the asked master and MTU."""
    if link is None or not link["up"]:
        return False
    if master is not None and link["master"] != master:
        return False
    return not (mtu and link["mtu"] != mtu)


def _ofport(br: lib_ovs.BridgeInfo | None, dev: str) -> int | None:
    """The OpenFlow port number ovs-vswitchd gave a port, None while it has not opened it."""
    p = br.ports.get(dev) if br else None
    return p.ofport if p and p.ofport and p.ofport > 0 else None
