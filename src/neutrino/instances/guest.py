"""The kernel side of an instance: a guest namespace whose `eth0` is the veth peer of `tap<port>` in its emulated
host (MAC = the port's, MTU = the network's), configured by real DHCP, running a banner on tcp/22.

Commands run in a guest see its own resolv.conf (what its DHCP lease said, bind-mounted by `ip netns exec`) and find
busybox's network tools the host lacks (`nslookup`) on their PATH, as a small cloud image would have them."""
from __future__ import annotations

import os
import shutil
import sys
import time

from neutrino import names
from neutrino.lab.paths import Lab
from neutrino.lab.processes import owned_pid, stop_pidfile
from neutrino.lib import guest, ip, proc

DEV = "eth0"
BUSYBOX_TOOLS = ("nslookup",)


def _banner_pidfile(lab: Lab, name: str) -> str:
    return os.path.join(lab.instance_dir(name), "banner.pid")


def plug(lab: Lab, name: str, host: str, port_id: str, mac: str, mtu: int | None) -> str:
    """Guest namespace and its veth (tap<id> in the host <-> eth0 in the guest), created in place; the guest ns."""
    ns, host_ns, tap = lab.guest_ns(name), lab.host_ns(host), names.tap(port_id)
    ip.ensure_netns(ns)
    guest.resolv_conf(ns)
    if ip.link_exists(tap, host_ns) and not ip.link_exists(DEV, ns):
        ip.delete_link(tap, host_ns)                 # a tap left from an earlier guest: its peer is gone
    ip.ensure_veth(tap, DEV, host_ns, ns, mtu=mtu, peer_mac=mac)
    return ns


def configure(lab: Lab, name: str, timeout: float = 30) -> bool:
    """Address, routes and DNS by DHCP: an ISC dhclient that stays and renews, as a guest OS's client does (pid file
    and lease database in the instance's directory); True once the guest holds a lease, within timeout."""
    deadline = time.monotonic() + timeout
    d = lab.instance_dir(name)

    def leased() -> bool:
        got = guest.configured_address(d, DEV)
        return got is not None and got == address(lab, name)

    with guest.lease_watch(d) as watch:      # woken by the event script's write, so no poll interval is added
        guest.start_dhcp_client(lab.guest_ns(name), d, DEV)
        while not leased():
            if not watch.wait(deadline - time.monotonic()):
                return leased()
    return True


def renew(lab: Lab, name: str, timeout: float = 10) -> str | None:
    """Have the guest's DHCP client ask anew now (what `dhclient -r; dhclient` or a reboot does in a real guest after
    its port's fixed IP changed: the old address is dropped and the new one leased); the guest's address afterwards."""
    before = address(lab, name)
    d = lab.instance_dir(name)
    deadline = time.monotonic() + timeout
    with guest.lease_watch(d) as watch:      # the script clears the lease file at the start, writes it once bound
        guest.renew(lab.guest_ns(name), d, DEV)
        while (now := address(lab, name)) in (None, before) and watch.wait(deadline - time.monotonic()):
            pass
    return now


def start_service(lab: Lab, name: str) -> int:
    """The tcp/22 banner inside the guest, detached, with a pid file in the instance's directory."""
    d = lab.instance_dir(name)
    pid = owned_pid(_banner_pidfile(lab, name), d)
    if pid is not None:
        return pid
    os.makedirs(d, exist_ok=True)
    return proc.spawn([sys.executable, "-m", "neutrino.instances.banner", d], netns=lab.guest_ns(name),
                      log=os.path.join(d, "banner.log"), pidfile=_banner_pidfile(lab, name))


def alive(lab: Lab, name: str) -> bool:
    return ip.netns_exists(lab.guest_ns(name)) and owned_pid(_banner_pidfile(lab, name), lab.instance_dir(name)) \
        is not None


def address(lab: Lab, name: str) -> str | None:
    """The guest's IPv4 address as DHCP configured it."""
    ns = lab.guest_ns(name)
    if not ip.netns_exists(ns):
        return None
    found = sorted(a for a in ip.addresses(DEV, ns) if ":" not in a)
    return found[0].split("/")[0] if found else None


def unplug(lab: Lab, name: str) -> None:
    """Stop the guest's processes, delete its veth (eth0 and the host's tap) and its namespace."""
    stop_pidfile(_banner_pidfile(lab, name), lab.instance_dir(name))
    guest.stop_dhcp_client(lab.instance_dir(name), DEV)
    ns = lab.guest_ns(name)
    if ip.netns_exists(ns):
        ip.delete_link(DEV, ns)      # now, with its tap: a namespace's devices go only when the kernel frees it
    ip.delete_netns(ns)
    guest.remove_netns_etc(ns)


def tools_dir(lab: Lab) -> str:
    """A directory of busybox applets for the tools in BUSYBOX_TOOLS that the host does not have, for guests' PATH."""
    d = lab.path("guest-bin")
    os.makedirs(d, exist_ok=True)
    busybox = shutil.which("busybox")
    for tool in BUSYBOX_TOOLS:
        link = os.path.join(d, tool)
        if busybox and not os.path.lexists(link) and shutil.which(tool) is None:
            os.symlink(busybox, link)
    return d


def exec_env(lab: Lab) -> dict[str, str]:
    """The environment of a command run in a guest: the host's, with the guest tools on PATH."""
    return {"PATH": f"{tools_dir(lab)}:{os.environ.get('PATH', os.defpath)}"}
