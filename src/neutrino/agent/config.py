"""Agent settings: a YAML config file with the flags' names, then environment, then command-line flags (flags win).

    host: compute1                    # required
    server: unix:/var/lib/neutrino/server.sock   # or http://controller:9696, or a list of servers; required
    token: secret                     # agent token (or NEUTRINO_AGENT_TOKEN)
    l2: ovs                           # ovs | linuxbridge
    firewall: iptables                # iptables | nftables
    roles: [l2, dhcp, l3, metadata]   # or "l2,dhcp"
    state_dir: /var/lib/neutrino/hosts/compute1
    bridge_mappings: {public: br-ex}  # or ["public:br-ex"] or "public:br-ex,phys2:br-p2"
    tunnel_ip: 192.0.2.11
    ovs_rundir: /var/lib/neutrino/hosts/compute1/ovs   # lab: start our own OVS daemons there

The file may also hold these keys under a top-level `agent:` section (one file for server and agent).
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from neutrino.agent.driver import HostConfig
from neutrino.config import layered, state_dir_default
from neutrino.errors import NeutrinoError
from neutrino.lib import ovs as lib_ovs

L2_DRIVERS = ("ovs", "linuxbridge")
FIREWALL_DRIVERS = ("iptables", "nftables")
ROLES = ("l2", "dhcp", "l3", "metadata")
SYSTEM_OVS_DB = "unix:/var/run/openvswitch/db.sock"
ENV = {"token": "NEUTRINO_AGENT_TOKEN"}


class AgentConfigError(NeutrinoError):
    """The agent's configuration is invalid."""
    code = 400


@dataclass
class AgentConfig:
    host: str
    server: list[str]                         # servers sharing one database: the agent fails over in this order
    token: str | None = None
    l2: str = "ovs"
    firewall: str = "iptables"
    roles: list[str] = field(default_factory=lambda: list(ROLES))
    state_dir: str | None = None              # default: <NEUTRINO_STATE_DIR>/hosts/<host>
    bridge_mappings: dict[str, str] = field(default_factory=lambda: {"public": "br-ex"})
    tunnel_ip: str | None = None
    ovs_rundir: str | None = None             # lab mode: OVS daemons of this agent run from here
    ovs_db: str | None = None                 # default: the rundir's socket, else the system OVS
    metadata_port: int = 9697
    report_interval: float = 10.0             # heartbeat
    resync_interval: float = 15.0             # full re-sync even without a new view (repairs drift)
    poll_wait: float = 30.0                   # long-poll wait asked of the server

    def host_config(self) -> HostConfig:
        """What the drivers share."""
        db = self.ovs_db or (lib_ovs.db_url(self.ovs_rundir) if self.ovs_rundir else SYSTEM_OVS_DB)
        return HostConfig(host=self.host, state_dir=self.state_dir, bridge_mappings=dict(self.bridge_mappings),
                          tunnel_ip=self.tunnel_ip, ovs_db=db if self.l2 == "ovs" else None,
                          metadata_port=self.metadata_port, server=self.server[0], servers=list(self.server),
                          token=self.token,
                          userspace_ovs=self.l2 == "ovs" and lib_ovs.datapath_type() == "netdev")


def parse_list(value) -> list[str]:
    """A list given as YAML list or as a comma-separated string."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(i).strip() for i in items if str(i).strip()]


def parse_mappings(value) -> dict[str, str]:
    """physnet -> bridge from a dict, a list of 'physnet:bridge' or a comma-separated string of them."""
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = [item.partition(":")[::2] for item in parse_list(value)]
    for physnet, bridge in pairs:
        if not physnet or not bridge:
            raise AgentConfigError(f"bridge mapping {physnet}:{bridge} is not PHYSNET:BRIDGE")
        if len(bridge) > 15:
            raise AgentConfigError(f"bridge name {bridge!r} is longer than 15 characters")
    return dict(pairs)


def _validate(c: AgentConfig) -> None:
    if not c.host:
        raise AgentConfigError("--host is required")
    if not c.server:
        raise AgentConfigError("--server is required (http://HOST:PORT or unix:PATH)")
    for server in c.server:
        if not (server.startswith(("http://", "https://")) or server.startswith("unix:/")):
            raise AgentConfigError(f"server {server!r} is neither http(s)://HOST:PORT nor unix:/PATH")
    if c.l2 not in L2_DRIVERS:
        raise AgentConfigError(f"l2 {c.l2!r} is not one of {', '.join(L2_DRIVERS)}")
    if c.firewall not in FIREWALL_DRIVERS:
        raise AgentConfigError(f"firewall {c.firewall!r} is not one of {', '.join(FIREWALL_DRIVERS)}")
    unknown = set(c.roles) - set(ROLES)
    if unknown:
        raise AgentConfigError(f"unknown roles {', '.join(sorted(unknown))}; known: {', '.join(ROLES)}")
    if c.tunnel_ip:
        try:
            ipaddress.ip_address(c.tunnel_ip)
        except ValueError as e:
            raise AgentConfigError(f"tunnel_ip {c.tunnel_ip!r} is not an IP address") from e
    for name in ("report_interval", "resync_interval", "poll_wait"):
        if getattr(c, name) <= 0:
            raise AgentConfigError(f"{name} must be positive")


def load(config_file: str | None = None, **flags) -> AgentConfig:
    """File values (the `agent:` section or the whole file), then environment, then flags that are not None."""
    values = layered(AgentConfig, config_file, "agent", ENV, flags, AgentConfigError)
    values.setdefault("host", "")
    values.setdefault("server", "")
    values["server"] = parse_list(values["server"])
    if "roles" in values:
        values["roles"] = parse_list(values["roles"])
    if "bridge_mappings" in values:
        values["bridge_mappings"] = parse_mappings(values["bridge_mappings"])
    config = AgentConfig(**values)
    _validate(config)
    config.state_dir = config.state_dir or os.path.join(state_dir_default(), "hosts", config.host)
    return config
