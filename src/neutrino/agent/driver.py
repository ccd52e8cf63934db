"""The one narrow interface every agent driver sits behind.

The agent calls, in this order, on every new view and on every periodic resync: dhcp, l3 (they create their
namespaces and veth pairs), l2 (plugs host-side devices into bridges), firewall. A driver reads what the kernel has,
compares it with the view and changes only the difference; calling `sync` twice with the same view changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from neutrino.sync.schema import View


@dataclass
class HostConfig:
    """What an agent knows about its host; shared by all drivers."""
    host: str
    state_dir: str                                  # files of this agent: dnsmasq dirs, OVS run dir, ...
    bridge_mappings: dict[str, str] = field(default_factory=lambda: {"public": "br-ex"})  # physnet -> bridge
    tunnel_ip: str | None = None                    # local VXLAN endpoint
    ovs_db: str | None = None                       # OVSDB socket, e.g. unix:/state/ovs/db.sock
    metadata_port: int = 9697
    server: str | None = None                       # server URL or unix:PATH (metadata proxy forwards there)
    servers: list[str] = field(default_factory=list)  # all servers of the deployment, `server` first (fail-over)
    token: str | None = None
    # The L2 path is OVS's userspace (netdev) datapath: it forwards partial checksums unfixed, so a veth end that
    # sends into it (qvb, and the qr-/qg-/DHCP tap ends in namespaces) needs tx checksum offload off. On the kernel
    # paths this stays False, keeping offloads (and TSO) on.
    userspace_ovs: bool = False


@dataclass
class SyncResult:
    """What a driver realized: port id -> True when its part of the port is in place."""
    ports: dict[str, bool] = field(default_factory=dict)
    dhcp_ready: list[str] = field(default_factory=list)       # port ids whose DHCP host entry is live
    routers: dict[str, bool] = field(default_factory=dict)
    floatingips: dict[str, bool] = field(default_factory=dict)
    changed: bool = False                                     # anything written to the kernel
    started: list[str] = field(default_factory=list)          # daemons (re)started by this run (metrics)
    errors: int = 0                                           # failed kernel/daemon calls the driver survived


class Driver(Protocol):
    name: str

    def sync(self, view: View) -> SyncResult:
        """Make the kernel match the view for what this driver owns."""

    def cleanup(self) -> None:
        """Remove everything this driver made on the host (used by `neutrino down` and tests)."""
