"""The iptables firewall driver: the seed's `neutron-openvswi-*` chains, ipsets for remote groups.

Each sync reads iptables-save (filter and raw, IPv4 and IPv6) and `ipset save`, and changes only what differs:
changed member lists rewrite only their ipset (swap), changed rules rewrite only their chains (lib.iptables),
one `iptables-restore --noflush` per table that changed. Sets nobody references any more are destroyed last.
"""
from __future__ import annotations

from neutrino import names
from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.agent.firewall import rules as R
from neutrino.agent.firewall.ports import allocate, filtered_ports, remote_members
from neutrino.lib import ipset, iptables
from neutrino.sync.schema import View

FAMILIES = (("IPv4", 4), ("IPv6", 6))
SET_FAMILY = {"IPv4": "inet", "IPv6": "inet6"}


class IptablesFirewallDriver:
    name = "iptables"

    def __init__(self, config: HostConfig, prefix: str = names.IPT_PREFIX, ns: str | None = None,
                 bridge: str | None = None):
        self.config = config
        self.prefix = prefix
        self.ns = ns
        self.bridge = bridge or ("port" if prefix == names.IPT_PREFIX else "network")
        self.last_lines: dict[str, list[str]] = {}   # what the last sync applied, per table (for tests/benchmarks)

    def _zones(self, ports, raw_now: dict[str, list[str]]) -> dict[str, int]:
        by_bridge = R.zones_in_raw(raw_now.get(f"{self.prefix}PREROUTING", []))
        current = {p.network_id: by_bridge[p.bridge] for p in ports if p.bridge in by_bridge}
        return allocate(current, sorted({p.network_id for p in ports}))

    def sync(self, view: View) -> SyncResult:
        ports = filtered_ports(view, self.bridge)
        members = remote_members(view, ports)
        want_sets = {names.ipset_name(sg, eth): (SET_FAMILY[eth], set(cidrs)) for (sg, eth), cidrs in members.items()}
        now_sets = ipset.current("N", self.ns)
        set_lines = ipset.plan(now_sets, want_sets)
        ipset.restore(set_lines, self.ns)
        self.last_lines = {"ipset": set_lines}
        for ethertype, ipv in FAMILIES:
            raw_text = iptables.save("raw", self.ns, ipv)
            zones = self._zones(ports, iptables.parse(raw_text))
            self.last_lines[f"raw{ipv}"] = iptables.apply(R.raw_table(ports, zones, self.prefix), self.prefix,
                                                          ns=self.ns, ipv=ipv, current_text=raw_text)
            self.last_lines[f"filter{ipv}"] = iptables.apply(R.filter_table(ports, ethertype, self.prefix),
                                                             self.prefix, ns=self.ns, ipv=ipv)
        stale = sorted(n for n in now_sets if n.startswith(("NIPv4", "NIPv6")) and n not in want_sets)
        ipset.destroy(stale, self.ns)
        self.last_lines["ipset"] += [f"destroy {n}" for n in stale]
        changed = any(self.last_lines.values())
        return SyncResult(ports={p.id: True for p in ports}, changed=changed)

    def cleanup(self) -> None:
        for _, ipv in FAMILIES:
            for table in ("filter", "raw"):
                iptables.remove_all(table, self.prefix, ns=self.ns, ipv=ipv)
        ipset.destroy(sorted(n for n in ipset.current("N", self.ns) if n.startswith(("NIPv4", "NIPv6"))), self.ns)
