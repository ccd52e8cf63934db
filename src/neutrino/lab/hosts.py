"""Emulated hosts: one network namespace per host (lo up, no uplink), an underlay for VXLAN when there are several,
and br-ex given the external gateway address as a DevStack machine has it. Everything here is idempotent."""
from __future__ import annotations

import socket
import time

from neutrino.lab.paths import EXTERNAL_CIDR, EXTERNAL_GATEWAY, UNDERLAY_MTU, Lab, underlay_ip
from neutrino.lab.processes import LabError
from neutrino.lib import ip, nsocket, proc
from neutrino.lib import ovs as lib_ovs

UNDERLAY_BRIDGE = "br-underlay"
UNDERLAY_DEV = "underlay0"          # the host's end of its underlay veth
BR_EX = "br-ex"
BR_PHY = "br-phy"                   # OVS labs: the underlay bridge inside each host


def underlay_port(index: int) -> str:
    """The underlay namespace's end of host index's veth."""
    return f"ul-host{index}"


def ensure_hosts(lab: Lab, count: int, l2: str = "ovs") -> list[str]:
    """Namespaces host1..hostN; with N > 1 the underlay bridge and one veth per host (10.255.0.N/24, MTU 1600).

    With OVS (userspace datapath) the tunnel endpoint address must sit on an OVS bridge for OVS to route VXLAN
    (reference row 9), so each host's underlay veth goes into its own `br-phy` carrying the address."""
    hosts = [lab.host_name(i) for i in range(1, count + 1)]
    for host in hosts:
        ip.ensure_netns(lab.host_ns(host))
    if count > 1:
        ul = lab.underlay_ns
        ip.ensure_netns(ul)
        ip.ensure_bridge(UNDERLAY_BRIDGE, ul, mtu=UNDERLAY_MTU)
        for i, host in enumerate(hosts, start=1):
            ns = lab.host_ns(host)
            ip.ensure_veth(underlay_port(i), UNDERLAY_DEV, ul, ns, mtu=UNDERLAY_MTU)
            ip.set_link(underlay_port(i), ul, master=UNDERLAY_BRIDGE, up=True)
            address = [f"{underlay_ip(i)}/24"]
            if l2 == "ovs":
                _ovs_underlay(lab, host)
                ip.ensure_addresses(UNDERLAY_DEV, [], ns)
                _wait_link(BR_PHY, ns, lab, host)
                ip.set_link(BR_PHY, ns, mtu=UNDERLAY_MTU, up=True)
                ip.ensure_addresses(BR_PHY, address, ns)
            else:
                ip.ensure_addresses(UNDERLAY_DEV, address, ns)
    return hosts


def _ovs_underlay(lab: Lab, host: str) -> None:
    """The host's OVS daemons (started here, inside the host) and br-phy holding the underlay veth."""
    rundir = lab.ovs_rundir(host)
    lib_ovs.start_daemons(rundir, netns=lab.host_ns(host))
    db = lib_ovs.Ovsdb(lib_ovs.db_url(rundir))
    try:
        have = db.bridges()
        cmds = db.ensure_bridge(have, BR_PHY, lib_ovs.datapath_type())
        db.commit(cmds)
        have = db.bridges() if cmds else have
        db.commit(db.ensure_port(have.get(BR_PHY), BR_PHY, UNDERLAY_DEV))
    finally:
        db.close()


def _wait_link(dev: str, ns: str, lab: Lab, host: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ip.link_exists(dev, ns):
        if time.monotonic() > deadline:
            raise LabError(f"{dev} did not appear in {ns} within {timeout:.0f} s "
                           f"(agent log: {lab.host_dir(host)}/agent.log)")
        time.sleep(0.05)


def wait_br_ex(lab: Lab, host: str, timeout: float = 30) -> None:
    """Once the agent's L2 driver has made br-ex, give it 172.24.4.1/24 and bring it up."""
    ns = lab.host_ns(host)
    _wait_link(BR_EX, ns, lab, host, timeout)
    prefix = EXTERNAL_CIDR.split("/")[1]
    ip.ensure_addresses(BR_EX, [f"{EXTERNAL_GATEWAY}/{prefix}"], ns, exclusive=False)
    ip.set_up(BR_EX, ns)


def lab_namespaces(lab: Lab) -> list[str]:
    """Every namespace carrying this lab's prefix (hosts, guests, underlay)."""
    return [ns for ns in ip.list_netns() if lab.owns_ns(ns)]


def _banner(ns: str, address: str, port: int, timeout: float) -> str:
    """The first line a TCP service at address:port sends, connecting from inside ns ('' when none)."""
    def grab() -> str:
        try:
            with socket.create_connection((address, port), timeout=timeout) as s:
                s.settimeout(timeout)
                return s.recv(256).decode(errors="replace").strip()
        except OSError:
            return ""
    return nsocket.in_netns(ns, grab)


def ping(ns: str, address: str, timeout: float = 1) -> bool:
    res = proc.run(["ping", "-c", "1", "-W", f"{timeout:g}", address], netns=ns, check=False)
    return res.returncode == 0


def reachable(lab: Lab, host: str, address: str, timeout: float = 1) -> tuple[bool, bool]:
    """(answers icmp, answers ssh on tcp/22) for address, seen from inside the emulated host."""
    ns = lab.host_ns(host)
    return ping(ns, address, timeout), _banner(ns, address, 22, timeout).startswith("SSH-")
