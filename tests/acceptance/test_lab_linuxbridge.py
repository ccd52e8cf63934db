"""The lab on the other backends: `neutrino up --l2 linuxbridge --firewall nftables` in a throwaway state dir makes
vm1 answer on its floating IP (icmp, tcp/22 banner) through Linux bridges and one nftables table, the security group
still drops what it does not allow, and `neutrino down` leaves nothing behind."""
from __future__ import annotations

import os
import re

import pytest

from neutrino import names
from neutrino.lib import ip
from labfix import down_leaves_nothing, need, running_lab

pytestmark = pytest.mark.kernel
NEEDED = ("dnsmasq", "busybox", "nft", "iptables", "ping", "nsenter", "nc")

need(NEEDED)


@pytest.fixture(scope="module")
def world(before):
    yield from running_lab("nl-lb-", "--l2", "linuxbridge", "--firewall", "nftables")


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
    assert "inet 172.24.4.1/24" in world.shell("ip", "a", "show", "br-ex")
    assert "table inet neutrino" in world.shell("nft", "list", "tables")
    assert not os.path.exists(world.lab.ovs_rundir("host1"))


def test_vm1_answers_on_its_floating_ip(world):
    world.shell("ping", "-c", "1", "-W", "2", world.fip)
    assert world.shell("nc", "-w", "2", world.fip, "22").startswith("SSH-2.0-")


def test_security_group_drops_what_it_does_not_allow(world):
    # tcp/80 is not in the default group: dropped (a timeout), not refused by the guest's kernel
    res = world.run("nc", "-z", "-v", "-w", "1", world.fip, "80", check=False)
    assert res.returncode != 0
    assert "refused" not in res.stdout + res.stderr, res.stdout + res.stderr


def test_down_leaves_nothing_behind(world, before):
    down_leaves_nothing(world, before)
