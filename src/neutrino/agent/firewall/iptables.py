"""The iptables firewall driver: the seed's `neutron-openvswi-*` chains, ipsets for remote groups.

Each sync compares the wanted chains and sets with what the kernel holds and changes only what differs: changed
member lists rewrite only their ipset (swap), changed rules touch only their chains (lib.iptables; one added port
is a few jump rules put on top of the shared chains, not a rewrite of them), one `iptables-restore --noflush` per IP
version that changed. Sets nobody references any more are destroyed last. Sets are read (`ipset save`) every time;
the chains (iptables-save of filter and raw for IPv4 and IPv6) only when someone else changed the ruleset or
`trust` seconds went by: in between the driver diffs against what it left there itself (see memory.py). Only ports
whose inputs changed are rendered again.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from neutrino import names
from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.agent.firewall import rules as R
from neutrino.agent.firewall.memory import TRUST, KernelMemory, Rendered
from neutrino.agent.firewall.ports import FwPort, PortCache, allocate, filtered_ports
from neutrino.lib import inspect, ipset, iptables, nft
from neutrino.sync.schema import Port, View

FAMILIES = (("IPv4", 4), ("IPv6", 6))
SET_FAMILY = {"IPv4": "inet", "IPv6": "inet6"}
TABLES = [(t, ipv) for _, ipv in FAMILIES for t in ("raw", "filter")]


class IptablesFirewallDriver:
    name = "iptables"

    def __init__(self, config: HostConfig, prefix: str = names.IPT_PREFIX, ns: str | None = None,
                 bridge: str | None = None, trust: float = TRUST, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.prefix = prefix
        self.ns = ns
        self.bridge = bridge or ("port" if prefix == names.IPT_PREFIX else "network")
        self.last_lines: dict[str, list[str]] = {}   # what the last sync applied, per table (for tests/benchmarks)
        self.memory = KernelMemory(trust, clock)     # {(table, ipv): chains} as last left
        self.cache = PortCache(self.bridge)
        self.render = Rendered(R.port_filter)

    def _read(self) -> dict:
        texts = iptables.save_all(TABLES, self.ns)
        return {key: iptables.parse(text) for key, text in zip(TABLES, texts)}

    def _zones(self, ports: list[FwPort], raw_now: dict[str, list[str]]) -> dict[str, int]:
        by_bridge = R.zones_in_raw(raw_now.get(f"{self.prefix}PREROUTING", []))
        current = {p.network_id: by_bridge[p.bridge] for p in ports if p.bridge in by_bridge}
        return allocate(current, sorted({p.network_id for p in ports}))

    def sync(self, view: View) -> SyncResult:
        ports = self.cache.ports(view)
        members = self.cache.members(view, ports)
        want_sets = {names.ipset_name(sg, eth): (SET_FAMILY[eth], set(cidrs)) for (sg, eth), cidrs in members.items()}
        self.memory.apply(nft.generation(self.ns), lambda now: self._apply(ports, want_sets, now))
        self.render.prune()
        return SyncResult(ports={p.id: True for p in ports}, changed=any(self.last_lines.values()))

    def _apply(self, ports: list[FwPort], want_sets: dict, now: dict | None) -> None:
        read_at = self.memory.read_at
        if now is None:
            read_at = self.memory.clock()
            now = self._read()
        self.memory.forget()                   # until this apply is through, the kernel is unknown
        self.last_lines = {}
        now_sets = ipset.current("N", self.ns)           # always read: ~3 ms, and no generation tells its changes
        set_lines = ipset.plan(now_sets, want_sets)
        ipset.restore(set_lines, self.ns)
        after, batches = {}, []
        for ethertype, ipv in FAMILIES:
            for table, want in (("raw", R.raw_table(ports, self._zones(ports, now[("raw", ipv)]), self.prefix)),
                                ("filter", R.filter_table(ports, ethertype, self.prefix, self.render))):
                lines = iptables.plan(now[(table, ipv)], want, self.prefix)
                batches.append((table, ipv, lines))
                self.last_lines[f"{table}{ipv}"] = lines
                after[(table, ipv)] = iptables.after(now[(table, ipv)], want, self.prefix)
        iptables.restore_all(batches, self.ns)
        stale = sorted(n for n in now_sets if n.startswith(("NIPv4", "NIPv6")) and n not in want_sets)
        ipset.destroy(stale, self.ns)
        self.last_lines["ipset"] = set_lines + [f"destroy {n}" for n in stale]
        self.memory.remember(after, read_at, nft.generation(self.ns))

    def cleanup(self) -> None:
        self.memory.forget()
        for _, ipv in FAMILIES:
            for table in ("filter", "raw"):
                iptables.remove_all(table, self.prefix, netns=self.ns, ipv=ipv)
        ipset.destroy(sorted(n for n in ipset.current("N", self.ns) if n.startswith(("NIPv4", "NIPv6"))), self.ns)

    # --- the hood's questions ---------------------------------------------------------------------------------

    @classmethod
    def for_l2(cls, config: HostConfig, l2: str) -> "IptablesFirewallDriver":
        """The firewall of ports this L2 backend wires: the seed's chains on qbr (ovs), Neutron's on brq."""
        return cls(config, prefix=names.IPT_PREFIX if l2 == "ovs" else names.IPT_LB_PREFIX)

    @staticmethod
    def expected(view: View, port: Port, l2: str) -> dict[str, list[str]]:
        """The port's IPv4 chains i/o/s and their rules (iptables-save syntax without `-A chain`)."""
        prefix, bridge = (names.IPT_PREFIX, "port") if l2 == "ovs" else (names.IPT_LB_PREFIX, "network")
        fw = next((p for p in filtered_ports(view, bridge) if p.id == port["id"]), None)
        chains = R.filter_table([fw], "IPv4", prefix).chains if fw else {}
        own = [names.sg_chain(d, port["id"], prefix) for d in "ios"]
        return {c: list(chains[c]) for c in own if c in chains}

    @staticmethod
    def held(host_ns: str | None, ovs_rundir: str | None = None) -> dict:
        """The host's filter and raw tables with counters, and its ipsets."""
        return {"iptables": inspect.iptables(host_ns, ("filter", "raw")), "ipsets": inspect.ipsets(host_ns)}
