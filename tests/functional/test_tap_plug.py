"""ensure_tap on the real kernel, in a throwaway namespace: a persistent TUN/TAP device in tap mode (what qemu's
`-netdev tap,ifname=...` attaches to) with the asked MTU, up, idempotent, and deletable. (Binding it through a lab
and the agent's hybrid plug are covered by hand and by the acceptance suite.)"""
from __future__ import annotations

import os
import secrets
import time

import pytest

from neutrino.lib import ip, proc

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces)", allow_module_level=True)
if not os.path.exists("/dev/net/tun"):
    pytest.skip("no /dev/net/tun", allow_module_level=True)

TAP = "tap0a1b2c3d-4e"


@pytest.fixture
def ns():
    name = f"nt-{secrets.token_hex(4)}"
    ip.ensure_netns(name)
    try:
        yield name
    finally:
        ip.delete_netns(name)


def _details(ns: str) -> str:
    return proc.output(["ip", "-n", ns, "-d", "link", "show", TAP])


def test_ensure_tap_makes_a_persistent_tap_with_mtu_up(ns):
    ip.ensure_tap(TAP, ns, mtu=1450)
    link = ip.links(ns)[TAP]
    assert link["kind"] == "tun" and link["up"] and link["mtu"] == 1450
    details = _details(ns)
    assert "tun type tap" in details and "persist on" in details and "pi off" in details


def test_ensure_tap_twice_changes_nothing_and_fixes_drift(ns):
    ip.ensure_tap(TAP, ns, mtu=1450)
    before = ip.links(ns)[TAP]
    ip.ensure_tap(TAP, ns, mtu=1450)
    assert ip.links(ns)[TAP] == before            # same device (index), same MAC, same state
    proc.run(["ip", "-n", ns, "link", "set", TAP, "down", "mtu", "1500"])
    ip.ensure_tap(TAP, ns, mtu=1450)
    assert ip.links(ns)[TAP] == before


def test_ensure_tap_leaves_its_mac_alone(ns):
    proc.run(["ip", "-n", ns, "tuntap", "add", TAP, "mode", "tap"])
    proc.run(["ip", "-n", ns, "link", "set", TAP, "address", "fe:16:3e:00:00:01"])
    ip.ensure_tap(TAP, ns, mtu=1400)
    link = ip.links(ns)[TAP]
    assert link["mac"] == "fe:16:3e:00:00:01" and link["mtu"] == 1400 and link["up"]


def test_tap_is_deleted_idempotently(ns):
    ip.ensure_tap(TAP, ns)
    ip.delete_link(TAP, ns)
    assert not ip.link_exists(TAP, ns)
    ip.delete_link(TAP, ns)
    assert TAP not in proc.output(["ip", "-n", ns, "link", "show"])


def test_deleting_the_namespace_frees_the_tap_instead_of_moving_it_to_the_root_namespace():
    name = f"nt-{secrets.token_hex(4)}"
    ip.ensure_netns(name)
    try:
        ip.ensure_tap(TAP, name)
    finally:
        ip.delete_netns(name)
    deadline = time.monotonic() + 0.5         # the kernel tears a namespace down asynchronously: watch a while
    while time.monotonic() < deadline:
        assert not ip.link_exists(TAP)
        time.sleep(0.05)
