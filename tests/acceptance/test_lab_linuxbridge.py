"""The lab on the other backends: `neutrino up --l2 linuxbridge --firewall nftables` in a throwaway state dir makes
vm1 answer on its floating IP (icmp, tcp/22 banner) through Linux bridges and one nftables table, the security group
still drops what it does not allow, and `neutrino down` leaves nothing behind."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from neutrino import names
from neutrino.lab.clouds import connect
from neutrino.lab.paths import Lab
from neutrino.lib import ip
from labfix import free_port, need, neutrino, our_pids

pytestmark = pytest.mark.kernel
NEEDED = ("dnsmasq", "busybox", "nft", "iptables", "ping", "nsenter", "nc")

need(NEEDED)


class World:
    """The running lab and the ids the checks need."""

    def __init__(self, state_dir: str, up_output: str):
        self.state_dir = state_dir
        self.lab = Lab(state_dir)
        self.up_output = up_output
        demo = connect(self.lab, "demo")
        self.router = demo.network.find_router("router1", ignore_missing=False)
        self.private = demo.network.find_network("private", ignore_missing=False)
        self.vm_port = next(iter(demo.network.ports(name="vm1", device_owner="compute:nova")))
        self.fip = next(iter(demo.network.ips(port_id=self.vm_port.id))).floating_ip_address

    def shell(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return neutrino("shell", "--", *cmd, state_dir=self.state_dir, check=check)


@pytest.fixture(scope="module")
def before():
    """Root-namespace devices before the lab (nothing may be added there)."""
    return set(ip.links())


@pytest.fixture(scope="module")
def world(before):
    state_dir = tempfile.mkdtemp(prefix="nl-lb-")
    try:
        up = neutrino("up", "--l2", "linuxbridge", "--firewall", "nftables", "--port", str(free_port()),
                      "--identity-port", str(free_port()), state_dir=state_dir, timeout=120)
        yield World(state_dir, up.stdout)
    finally:
        neutrino("down", state_dir=state_dir, check=False)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_up_makes_vm1_reachable(world):
    m = re.search(r"vm1 reachable on its floating IP (\S+) after ([\d.]+) s", world.up_output)
    assert m, world.up_output
    assert m.group(1) == world.fip
    settings = world.lab.load()
    assert (settings.l2, settings.firewall) == ("linuxbridge", "nftables")


def test_host_has_linux_bridges_nftables_and_no_ovs(world):
    links = ip.links(world.lab.host_ns("host1"))
    brq, tap = names.brq(world.private.id), names.tap(world.vm_port.id)
    assert links["br-ex"]["kind"] == "bridge" and links[brq]["kind"] == "bridge"
    assert links[tap]["master"] == links[brq]["index"]
    assert not any(n.startswith(("br-int", "qbr", "qvo")) for n in links)
    assert "inet 172.24.4.1/24" in world.shell("ip", "a", "show", "br-ex").stdout
    assert "table inet neutrino" in world.shell("nft", "list", "tables").stdout
    assert not os.path.exists(world.lab.ovs_rundir("host1"))


def test_vm1_answers_on_its_floating_ip(world):
    world.shell("ping", "-c", "1", "-W", "2", world.fip)
    assert world.shell("nc", "-w", "2", world.fip, "22").stdout.startswith("SSH-2.0-")


def test_security_group_drops_what_it_does_not_allow(world):
    # tcp/80 is not in the default group: dropped (a timeout), not refused by the guest's kernel
    res = world.shell("nc", "-z", "-v", "-w", "1", world.fip, "80", check=False)
    assert res.returncode != 0
    assert "refused" not in res.stdout + res.stderr, res.stdout + res.stderr


def test_down_leaves_nothing_behind(world, before):
    lab_ns = {world.lab.host_ns("host1"), world.lab.guest_ns("vm1"), names.qrouter(world.router.id),
              names.qdhcp(world.private.id)}
    assert lab_ns <= set(ip.list_netns())
    neutrino("down", state_dir=world.state_dir)
    assert not lab_ns & set(ip.list_netns())
    assert not [ns for ns in ip.list_netns() if world.lab.owns_ns(ns)]
    assert set(ip.links()) - before == set()
    assert our_pids(world.state_dir) == set()
    assert not os.path.exists(world.state_dir)
