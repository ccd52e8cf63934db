"""The nftables firewall driver: `table bridge neutrino` labels packets by bridge port, `table inet neutrino`
filters them (see nft_rules.py for why), remote groups and allowed addresses as sets.

Each sync reads both tables (`nft -j list table`), keeps the port marks and conntrack zones the kernel already
has, and applies the difference in one atomic `nft -f`: only changed chains are flushed and refilled, sets and maps
change by element.
"""
from __future__ import annotations

from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.agent.firewall import nft_rules
from neutrino.agent.firewall.ports import allocate, filtered_ports, remote_members
from neutrino.lib import nft
from neutrino.sync.schema import View


def _ints(cur: nft.Current | None, set_name: str) -> dict[str, int]:
    """A map `"name" : n` of the kernel as name -> n."""
    elems = cur.sets.get(set_name, {}) if cur else {}
    return {k.strip('"'): int(v) for k, v in elems.items() if v is not None and v.isdigit()}


class NftablesFirewallDriver:
    name = "nftables"

    def __init__(self, config: HostConfig, ns: str | None = None, bridge: str = "network"):
        self.config = config
        self.ns = ns
        self.bridge = bridge
        self.last_script: list[str] = []     # what the last sync applied (for tests/benchmarks)

    def sync(self, view: View) -> SyncResult:
        ports = filtered_ports(view, self.bridge)
        now_br = nft.read("bridge", nft_rules.TABLE, self.ns)
        now_inet = nft.read("inet", nft_rules.TABLE, self.ns)
        marks = allocate(_ints(now_br, "inport"), [p.tap for p in ports])
        by_bridge = _ints(now_inet, "zones")
        zones = allocate({p.network_id: by_bridge[p.bridge] for p in ports if p.bridge in by_bridge},
                         sorted({p.network_id for p in ports}))
        br, inet = nft_rules.tables(ports, remote_members(view, ports), marks, zones)
        script = nft.plan(now_br, br) + nft.plan(now_inet, inet)
        nft.run(script, self.ns)
        self.last_script = script
        return SyncResult(ports={p.id: True for p in ports}, changed=bool(script))

    def cleanup(self) -> None:
        nft.delete_table("inet", nft_rules.TABLE, self.ns)
        nft.delete_table("bridge", nft_rules.TABLE, self.ns)
