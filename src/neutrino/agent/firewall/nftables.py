"""The nftables firewall driver: `table bridge neutrino` labels packets by bridge port, the shard tables
`inet neutrino-<k>` filter them and `table inet neutrino` sets notrack and conntrack zones (see nft_rules.py for
why), remote groups and allowed addresses as sets.

Each sync compares its tables with what the kernel holds, keeps the port marks and conntrack zones the kernel
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
        self.groups: dict = {}               # remote group sets, kept while their member lists are (nft_rules.tables)

    def sync(self, view: View) -> SyncResult:
        ports = self.cache.ports(view)
        members = self.cache.members(view, ports)
        self.memory.apply(nft.generation(self.ns), lambda now: self._apply(ports, members, now))
        self.render.prune()
        return SyncResult(ports={p.id: True for p in ports}, changed=bool(self.last_script))

    def _apply(self, ports: list[FwPort], members: dict, now: dict | None) -> None:
        read_at = self.memory.read_at
        if now is None:
            read_at = self.memory.clock()
            now = self._read()
        self.memory.forget()                   # until this apply is through, the kernel is unknown
        inet = now.get(("inet", nft_rules.TABLE))
        marks = allocate(_ints(now.get(("bridge", nft_rules.TABLE)), "inport"), [p.tap for p in ports])
        by_bridge = _ints(inet, "zones")
        zones = allocate({p.network_id: by_bridge[p.bridge] for p in ports if p.bridge in by_bridge},
                         sorted({p.network_id for p in ports}))
        want = nft_rules.tables(ports, members, marks, zones, self.render, self.groups)
        keys = {(t.family, t.name) for t in want}
        diffs: dict = {}
        script = [line for t in want for line in nft.plan(now.get((t.family, t.name)), t, diffs)]
        script += [f"delete table {f} {n}" for (f, n), cur in sorted(now.items()) if cur is not None and (f, n) not in keys]
        self.last_script = []
        generation = nft.run(script, self.ns)
        self.last_script = script
        self.memory.remember({(t.family, t.name): nft.state(t, now.get((t.family, t.name))) for t in want},
                             read_at, generation)

    def _read(self) -> dict[tuple[str, str], nft.Current | None]:
        """Our tables as the kernel has them: (family, name) -> Current (None: absent)."""
        inet = [nft_rules.TABLE, *sorted(n for n in nft.table_names("inet", self.ns) if nft_rules.is_shard(n))]
        got = {("inet", n): cur for n, cur in nft.read_tables("inet", inet, self.ns).items()}
        got[("bridge", nft_rules.TABLE)] = nft.read("bridge", nft_rules.TABLE, self.ns)
        return got

    def cleanup(self) -> None:
        self.memory.forget()
        for name in sorted(n for n in nft.table_names("inet", self.ns) if nft_rules.is_shard(n)):
            nft.delete_table("inet", name, self.ns)
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
