"""Which L2 and firewall backends a host runs, and the hood snapshot read through those drivers' `held` answers.

hood and trace are pure functions of (view, snapshot); the snapshot says which backends made it
(`snap["backends"]`), and the parts of hood and trace that depend on the backend dispatch on that. A snapshot
without it (captured by older code or built by hand in a test) is the seed's ovs + iptables.
"""
from __future__ import annotations

import os

from neutrino.agent.driver import backend
from neutrino.errors import KernelError

DEFAULT_MAPPINGS = {"public": "br-ex"}      # the lab's (and DevStack's) physnet -> bridge


def read(host_ns: str | None, ovs_rundir: str | None, routers: list[str], networks: list[str], l2: str,
         firewall: str, bridge_mappings: dict[str, str] | None = None) -> dict:
    """The hood snapshot of one host: the common part (lib.inspect) and what the L2 and firewall drivers hold."""
    from neutrino.lib import inspect
    snap = inspect.snapshot(host_ns, routers, networks)
    for role, name in (("l2", l2), ("firewall", firewall)):
        for key, value in backend(role, name).held(host_ns, ovs_rundir).items():
            if isinstance(value, dict) and isinstance(snap.get(key), dict):
                snap[key] = {**snap[key], **value}
            else:
                snap[key] = value
    snap["backends"] = {"l2": l2, "firewall": firewall}
    snap["bridge_mappings"] = dict(bridge_mappings or DEFAULT_MAPPINGS)
    return snap


def detect(host_ns: str | None, ovs_rundir: str | None) -> tuple[str, str]:
    """(l2, firewall) of a host that is not a lab's: OVS when it has br-int or an OVS database, nftables when
    neutrino's inet table is there."""
    from neutrino.lib import inspect, ip
    ovsdb = bool(ovs_rundir) and os.path.exists(os.path.join(ovs_rundir, "db.sock"))
    l2 = "ovs" if ovsdb or "br-int" in ip.links(host_ns) else "linuxbridge"
    try:
        tables = {(o["table"]["family"], o["table"]["name"]) for o in inspect.nft_ruleset(host_ns) if "table" in o}
    except KernelError:
        tables = set()
    return l2, "nftables" if ("inet", "neutrino") in tables else "iptables"


def of(snap: dict) -> tuple[str, str]:
    """(l2, firewall) a snapshot was read from."""
    b = snap.get("backends") or {}
    return b.get("l2", "ovs"), b.get("firewall", "iptables")


def l2_expected(view: dict, snap: dict, port: dict) -> list[tuple[str, str]]:
    """(device, bridge) the port's L2 backend wants (agent/driver.py: L2Driver.expected)."""
    return backend("l2", of(snap)[0]).expected(view, port, snap.get("bridge_mappings") or DEFAULT_MAPPINGS)


def firewall_expected(view: dict, snap: dict, port: dict) -> dict[str, list[str]]:
    """The port's chains and rules its firewall backend wants (agent/driver.py: FirewallDriver.expected)."""
    l2, firewall = of(snap)
    return backend("firewall", firewall).expected(view, port, l2)
