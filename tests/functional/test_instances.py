"""The kernel side of instances on the real kernel: a guest namespace plugged into an emulated host (tap <-> eth0
with the port's MAC and the network's MTU), idempotent plugging, the tcp/22 banner, and an unplug that leaves
nothing. (DHCP, the API side and reachability through a router run in tests/acceptance/test_seed_page.py.)"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from neutrino import names
from neutrino.instances import guest
from neutrino.lab import hosts
from neutrino.lab.paths import Lab
from neutrino.lib import ip

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces)", allow_module_level=True)

PORT_ID = "0a1b2c3d-4e5f-4061-8263-a4b5c6d7e8f9"
MAC = "fa:16:3e:12:34:56"


@pytest.fixture
def lab():
    state_dir = tempfile.mkdtemp(prefix="nt-inst-")
    lab = Lab(state_dir)
    hosts.ensure_hosts(lab, 1)
    try:
        yield lab
    finally:
        guest.unplug(lab, "vm1")
        for ns in hosts.lab_namespaces(lab):
            ip.delete_netns(ns)
        shutil.rmtree(state_dir, ignore_errors=True)


def _wait_banner(lab: Lab, address: str) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if hosts.reachable(lab, "host1", address)[1]:
            return True
        time.sleep(0.05)
    return False


def test_plug_makes_tap_and_eth0_with_mac_and_mtu(lab):
    ns = guest.plug(lab, "vm1", "host1", PORT_ID, MAC, 1450)
    assert ns == lab.guest_ns("vm1")
    tap = ip.links(lab.host_ns("host1"))[names.tap(PORT_ID)]
    eth0 = ip.links(ns)["eth0"]
    assert tap["kind"] == "veth" and tap["up"] and tap["mtu"] == 1450
    assert eth0["mac"] == MAC and eth0["mtu"] == 1450 and eth0["up"]


def test_plug_twice_changes_nothing(lab):
    def devices():
        """What a second plug could change: both ends' identity and settings. Not the operational state, which the
        kernel moves from UNKNOWN to UP on its own once the pair's carrier is seen."""
        tap = ip.links(lab.host_ns("host1"))[names.tap(PORT_ID)]
        return ip.links(lab.guest_ns("vm1"))["eth0"]["index"], {k: v for k, v in tap.items() if k != "state"}
    guest.plug(lab, "vm1", "host1", PORT_ID, MAC, 1450)
    first = devices()
    guest.plug(lab, "vm1", "host1", PORT_ID, MAC, 1450)
    assert devices() == first


def test_replug_after_guest_loss_replaces_stale_tap(lab):
    guest.plug(lab, "vm1", "host1", PORT_ID, MAC, 1450)
    ip.delete_netns(lab.guest_ns("vm1"))                # the guest dies; its tap goes with it in the kernel
    guest.plug(lab, "vm1", "host1", PORT_ID, MAC, 1450)
    assert "eth0" in ip.links(lab.guest_ns("vm1"))
    assert names.tap(PORT_ID) in ip.links(lab.host_ns("host1"))


def test_banner_answers_ssh_probe_and_unplug_removes_all(lab):
    host_ns = lab.host_ns("host1")
    ns = guest.plug(lab, "vm1", "host1", PORT_ID, MAC, 1500)
    ip.ensure_addresses(names.tap(PORT_ID), ["192.0.2.1/24"], host_ns)
    ip.ensure_addresses("eth0", ["192.0.2.10/24"], ns)
    pid = guest.start_service(lab, "vm1")
    assert guest.start_service(lab, "vm1") == pid            # one service per guest
    assert _wait_banner(lab, "192.0.2.10")
    assert guest.alive(lab, "vm1") and guest.address(lab, "vm1") == "192.0.2.10"
    guest.unplug(lab, "vm1")
    assert not ip.netns_exists(ns)
    assert names.tap(PORT_ID) not in ip.links(host_ns)
    assert not os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(f"/etc/netns/{ns}")
