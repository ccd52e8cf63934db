"""No IPv6 on the host's side of guest devices (tap, qbr, qvb, qvo, brq): a guest cannot reach the host by their
link-local addresses. Shared by both L2 drivers.

Each device is done once per incarnation (remembered by ifindex): a resync of 1000 ports reads nothing, a device
made again gets its sysctl again.
"""
from __future__ import annotations

from neutrino.lib import sysctl


class NoIpv6:
    def __init__(self):
        self._done: dict[str, int] = {}      # device -> ifindex it was done for

    def ensure(self, devices: list[str], links: dict, ns: str | None) -> bool:
        """IPv6 off on those of `devices` that exist; True when a sysctl was written."""
        here = {d: links[d]["index"] for d in devices if d in links}
        changed = sysctl.no_ipv6(sorted(d for d, idx in here.items() if self._done.get(d) != idx), ns)
        self._done = here
        return changed
