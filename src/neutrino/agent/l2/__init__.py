"""L2 drivers: `ovs` (the seed's hybrid plug on Open vSwitch) and `linuxbridge` (bridge per network, kernel VXLAN)."""
from __future__ import annotations

from neutrino.agent.driver import HostConfig


def make_l2_driver(kind: str, config: HostConfig, netns: str | None = None):
    """The L2 driver an agent's `--l2 ovs|linuxbridge` names; netns is the host namespace (None: this process's)."""
    if kind == "ovs":
        from neutrino.agent.l2.ovs import OvsL2Driver
        return OvsL2Driver(config, netns=netns)
    if kind == "linuxbridge":
        from neutrino.agent.l2.linuxbridge import LinuxBridgeL2Driver
        return LinuxBridgeL2Driver(config, netns=netns)
    raise ValueError(f"unknown l2 driver {kind!r} (ovs or linuxbridge)")
