"""Ports for real VMs, as nova plugs them: a persistent TAP device `tap<port id>` in an emulated host (the network's
MTU; its own MAC left alone, since the VM owns the port's) for qemu `-netdev tap,ifname=tap<id>,script=no,
downscript=no`, and the port bound to that host, so its agent hybrid-plugs the tap (qbr/qvb/qvo) as for any instance.
"""
from __future__ import annotations

import time

from neutrino import names
from neutrino.errors import NeutrinoError
from neutrino.lab.clouds import connect
from neutrino.lab.paths import Lab
from neutrino.lib import ip

TUN_KIND = "tun"            # what the kernel calls a TUN/TAP device (`ip -d link`: "tun type tap")


class TapError(NeutrinoError):
    """A port could not be plugged into (or unplugged from) a tap device."""
    code = 400


def _port(admin, ref: str):
    """A port by id or name (any project: the admin cloud sees them all)."""
    port = admin.network.find_port(ref)
    if port is None:
        raise TapError(f"no port {ref!r}")
    return port


def _lab_hosts(lab: Lab) -> list[str]:
    return [lab.host_name(i) for i in range(1, lab.load().hosts + 1)]


def _kind(dev: str, ns: str) -> str | None:
    """The kind of a link (None: no such link), so a guest's veth named tap<id> is never taken for ours."""
    link = ip.links(ns).get(dev) if ip.netns_exists(ns) else None
    return None if link is None else (link["kind"] or "")


def qemu_args(dev: str, mac: str) -> str:
    return f"-netdev tap,id=net0,ifname={dev},script=no,downscript=no -device virtio-net-pci,netdev=net0,mac={mac}"


def plug(lab: Lab, ref: str, host: str = "host1", wait: float = 30) -> dict:
    """Tap device in host + binding to host; waits (up to `wait` s) for the port to be ACTIVE. Its summary."""
    if host not in _lab_hosts(lab):
        raise TapError(f"no emulated host {host!r} in this lab")
    admin = connect(lab, "admin")
    port = _port(admin, ref)
    if port.binding_host_id and port.binding_host_id != host:
        raise TapError(f"port {port.id} is bound to {port.binding_host_id}; `neutrino port unplug` it first")
    dev, ns = names.tap(port.id), lab.host_ns(host)
    if _kind(dev, ns) not in (None, TUN_KIND):
        raise TapError(f"{dev} in {host} is not a tap device (an instance guest's veth?)")
    mtu = admin.network.get_network(port.network_id).mtu
    ip.ensure_tap(dev, ns, mtu=mtu)
    if port.binding_host_id != host:
        admin.network.update_port(port.id, binding_host_id=host)
    deadline = time.monotonic() + wait
    while (port := admin.network.get_port(port.id)).status != "ACTIVE" and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"port_id": port.id, "status": port.status, "host": host, "binding_vif_type": port.binding_vif_type,
            "device": dev, "netns": ns, "mtu": mtu, "mac_address": port.mac_address,
            "qemu": qemu_args(dev, port.mac_address)}


def unplug(lab: Lab, ref: str) -> dict:
    """Delete the port's tap device (wherever in the lab it is) and unbind the port; what was done."""
    admin = connect(lab, "admin")
    port = _port(admin, ref)
    dev = names.tap(port.id)
    kinds = {host: _kind(dev, lab.host_ns(host)) for host in _lab_hosts(lab)}
    if kinds.get(port.binding_host_id) not in (None, TUN_KIND):
        raise TapError(f"{dev} in {port.binding_host_id} is not a tap device (an instance's? `neutrino instance "
                       f"delete` it)")
    removed = [host for host, kind in kinds.items() if kind == TUN_KIND]
    for host in removed:
        ip.delete_link(dev, lab.host_ns(host))
    if port.binding_host_id:
        admin.network.update_port(port.id, binding_host_id="")
    return {"port_id": port.id, "device": dev, "removed_from": removed, "unbound_from": port.binding_host_id or None}
