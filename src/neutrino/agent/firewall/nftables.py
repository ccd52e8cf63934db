"""The nftables firewall driver: `table bridge neutrino` labels packets by bridge port, `table inet neutrino`
filters them (see nft_rules.py for why), remote groups and allowed addresses as sets.

Each sync compares both tables with what the kernel holds, keeps the port marks and conntrack zones the kernel
already has, and applies the difference in one atomic `nft -f`: only changed chains are flushed and refilled (or
added), sets and maps change by element. What the kernel holds is read (`nft list`) only when someone else changed
the ruleset or `trust` seconds went by: in between the driver diffs against what it left there itself (see
memory.py). Only ports whose inputs changed are rendered again.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.agent.firewall import nft_rules
from neutrino.agent.firewall.memory import TRUST, KernelMemory, Rendered
from neutrino.agent.firewall.ports import FwPort, PortCache, allocate, filtered_ports
from neutrino.lib import inspect, nft
from neutrino.sync.schema import Port, View


def _ints(cur: nft.Current | None, set_name: str) -> dict[str, int]:
    """A map `"name" : n` of the kernel as name -> n."""
    elems = cur.sets.get(set_name, {}) if cur else {}
    return {k.strip('"'): int(v) for k, v in elems.items() if v is not None and v.isdigit()}


class NftablesFirewallDriver:
    name = "nftables"

    def __init__(self, config: HostConfig, ns: str | None = None, bridge: str = "network", trust: float = TRUST,
                 clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.ns = ns
        self.bridge = bridge
        self.last_script: list[str] = []     # what the last sync applied (for tests/benchmarks)
        self.memory = KernelMemory(trust, clock)     # (bridge table, inet table) as last left, None = absent
        self.cache = PortCache(bridge)
        self.render = Rendered(nft_rules.port_chains)

    def sync(self, view: View) -> SyncResult:
        ports = self.cache.ports(view)
        members = self.cache.members(view, ports)
        self.memory.apply(nft.generation(self.ns), lambda now: self._apply(ports, members, now))
        self.render.prune()
        return SyncResult(ports={p.id: True for p in ports}, changed=bool(self.last_script))

    def _apply(self, ports: list[FwPort], members: dict, now: tuple | None) -> None:
        read_at = self.memory.read_at
        if now is None:
            read_at = self.memory.clock()
            now = (nft.read("bridge", nft_rules.TABLE, self.ns), nft.read("inet", nft_rules.TABLE, self.ns))
        self.memory.forget()                   # until this apply is through, the kernel is unknown
        now_br, now_inet = now
        marks = allocate(_ints(now_br, "inport"), [p.tap for p in ports])
        by_bridge = _ints(now_inet, "zones")
        zones = allocate({p.network_id: by_bridge[p.bridge] for p in ports if p.bridge in by_bridge},
                         sorted({p.network_id for p in ports}))
        br, inet = nft_rules.tables(ports, members, marks, zones, self.render)
        script = nft.plan(now_br, br) + nft.plan(now_inet, inet)
        self.last_script = []
        generation = nft.run(script, self.ns)
        self.last_script = script
        self.memory.remember((nft.state(br), nft.state(inet)), read_at, generation)

    def cleanup(self) -> None:
        self.memory.forget()
        nft.delete_table("inet", nft_rules.TABLE, self.ns)
        nft.delete_table("bridge", nft_rules.TABLE, self.ns)

    # --- the hood's questions ---------------------------------------------------------------------------------

    @classmethod
    def for_l2(cls, config: HostConfig, l2: str) -> "NftablesFirewallDriver":
        """The firewall of ports this L2 backend wires: labelled on their qbr (ovs) or their network's brq."""
        return cls(config, bridge="port" if l2 == "ovs" else "network")

    @staticmethod
    def expected(view: View, port: Port, l2: str) -> dict[str, list[str]]:
        """The port's chains i/o/s of `table inet neutrino` and their rules (nft syntax as written)."""
        fw = next((p for p in filtered_ports(view, "port" if l2 == "ovs" else "network") if p.id == port["id"]), None)
        return {name: list(c.rules) for name, c in nft_rules.port_chains(fw, 0)[1].items()} if fw else {}

    @staticmethod
    def held(host_ns: str | None, ovs_rundir: str | None = None) -> dict:
        """The host's nftables ruleset (`nft -j list ruleset`)."""
        return {"nft": inspect.nft_ruleset(host_ns)}
