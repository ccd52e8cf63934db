"""One narrow interface per concern of the agent, and the registry that finds a backend by its name.

The agent calls, in this order, on every new view and on every periodic resync: dhcp, l3 (they create their
namespaces and veth pairs), l2 (plugs host-side devices into bridges), firewall, qos, metadata. A driver reads what
the kernel has, compares it with the view and changes only the difference; calling `sync` twice with the same view
changes nothing.

The L2 and firewall backends also answer, without an instance, the two questions `neutrino hood` and `neutrino
trace` ask: `expected` — what the kernel should hold for a port of the view (from the same pure builders `sync`
writes with, so hood and the drivers cannot disagree) — and `held` — what the kernel holds (a part of the
hood snapshot, plain data). A new backend is one entry in BACKENDS and a class with these methods.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol

from neutrino.errors import BadRequest
from neutrino.sync.schema import Port, View


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
    """What the agent loop needs of every driver, whatever its concern."""
    name: str

    def sync(self, view: View) -> SyncResult:
        """Make the kernel match the view for what this driver owns."""

    def cleanup(self) -> None:
        """Remove everything this driver made on the host (used by `neutrino down` and tests)."""


class L2Driver(Driver, Protocol):
    """Wires host-side devices (taps, the ns- ends of router and DHCP ports) into per-network L2 segments, between
    hosts by VXLAN, and keeps guests from claiming others' addresses (ARP/ND anti-spoofing)."""

    @staticmethod
    def expected(view: View, port: Port) -> list[tuple[str, str]]:
        """(device, bridge it must sit in) for the port, host side first."""

    @staticmethod
    def held(host_ns: str | None, ovs_rundir: str | None) -> dict:
        """This backend's part of the hood snapshot, read from the kernel."""


class FirewallDriver(Driver, Protocol):
    """Filters instance ports by their security groups (per-port chains, remote groups as sets)."""

    @staticmethod
    def expected(view: View, port: Port, l2: str) -> dict[str, list[str]]:
        """The port's own chains (ingress, egress, anti-spoof) and their rules, as this backend writes them."""

    @staticmethod
    def held(host_ns: str | None, ovs_rundir: str | None) -> dict:
        """This backend's part of the hood snapshot, read from the kernel."""


class DhcpDriver(Driver, Protocol):
    """A qdhcp- namespace and dnsmasq per network with DHCP on this host; reports host entries live (dhcp_ready)."""


class L3Driver(Driver, Protocol):
    """qrouter- namespaces: router ports, routes, SNAT/DNAT, floating IPs, port forwardings, address scopes."""


class QosDriver(Driver, Protocol):
    """Bandwidth limits (tc) and DSCP marks of ports."""


class MetadataDriver(Driver, Protocol):
    """The metadata listener inside each router (or DHCP) namespace; `restarted()` when one died."""

    def restarted(self) -> bool:
        """Whether a listener it keeps died or came back since last asked (the agent reruns every driver then)."""


# role -> backend name -> "module:Class" (imported when asked for: a compute host never loads the L3 code)
BACKENDS: dict[str, dict[str, str]] = {
    "l2": {"ovs": "neutrino.agent.l2.ovs:OvsL2Driver",
           "linuxbridge": "neutrino.agent.l2.linuxbridge:LinuxBridgeL2Driver"},
    "firewall": {"iptables": "neutrino.agent.firewall.iptables:IptablesFirewallDriver",
                 "nftables": "neutrino.agent.firewall.nftables:NftablesFirewallDriver"},
    "dhcp": {"dnsmasq": "neutrino.agent.dhcp:DhcpDriver"},
    "l3": {"namespaces": "neutrino.agent.l3:L3Driver"},
    "qos": {"tc": "neutrino.agent.qos:QosDriver"},
    "metadata": {"proxy": "neutrino.agent.metadata:MetadataProxy"},
}
DEFAULT = {role: next(iter(names)) for role, names in BACKENDS.items()}


def backend(role: str, name: str | None = None) -> type:
    """The driver class of a role's backend (its default when name is None); BadRequest for an unknown name."""
    name = name or DEFAULT[role]
    path = BACKENDS.get(role, {}).get(name)
    if path is None:
        raise BadRequest(f"no {role} backend {name!r} (known: {', '.join(BACKENDS.get(role, {}))})")
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)
