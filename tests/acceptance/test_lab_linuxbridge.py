"""The lab on the other backends: `neutrino up --l2 linuxbridge --firewall nftables` in a throwaway state dir makes
vm1 answer on its floating IP (icmp, tcp/22 banner) through Linux bridges and one nftables table, the security group
still drops what it does not allow, hood and trace read these backends (and agree with real traffic), metering, QoS
and address groups work there, and `neutrino down` leaves nothing behind."""
from __future__ import annotations

import json
import os
import re
import time

import pytest

from neutrino import names
from neutrino.lib import ip
from neutrino.lab.clouds import connect
from labfix import (deleted_rule_is_drift, down_leaves_nothing, hood_and_trace_agree_with_traffic, need, neutrino,
                    running_lab)

pytestmark = pytest.mark.kernel
NEEDED = ("dnsmasq", "busybox", "dhclient", "nft", "iptables", "ping", "nsenter", "nc")

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


def test_hood_and_trace_agree_with_real_traffic(world):
    hood_and_trace_agree_with_traffic(world)


def test_security_group_drops_what_it_does_not_allow(world):
    # tcp/80 is not in the default group: dropped (a timeout), not refused by the guest's kernel
    res = world.run("nc", "-z", "-v", "-w", "1", world.fip, "80", check=False)
    assert res.returncode != 0
    assert "refused" not in res.stdout + res.stderr, res.stdout + res.stderr


def wait_for(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def test_metering_qos_and_address_groups_on_this_backend(world):
    """A shared metering label counts vm1's traffic and the counters reach `neutrino metering`; a QoS policy marks
    vm1's packets; an address group opens tcp/80 for exactly its addresses (here: the outside, 172.24.4.1)."""
    admin = connect(world.lab, "admin")
    label = admin.network.create_metering_label(name="all", is_shared=True)
    for direction in ("ingress", "egress"):
        admin.network.create_metering_label_rule(metering_label_id=label.id, direction=direction,
                                                 remote_ip_prefix="0.0.0.0/0")
    chain = f"neutron-meter-l-{label.id}"[:28]
    wait_for(lambda: chain in world.run("ip", "netns", "exec", names.qrouter(world.router.id), "iptables-save",
                                        check=False).stdout, "the label's chain")
    neutrino("instance", "exec", "vm1", "--", "ping", "-c", "3", "-s", "1000", "172.24.4.1", state_dir=world.state_dir)

    def counted() -> dict:
        rows = json.loads(neutrino("metering", "--json", state_dir=world.state_dir).stdout)
        return next((r for r in rows if r["label_id"] == label.id), {"packets": 0, "bytes": 0})
    wait_for(lambda: counted()["bytes"] >= 6 * 1028, "the counters in the agent's report")
    assert counted()["packets"] >= 6

    policy = admin.network.create_qos_policy(name="af31", is_shared=True)
    admin.network.create_qos_dscp_marking_rule(policy, dscp_mark=26)
    admin.network.update_port(world.vm_port.id, qos_policy_id=policy.id)
    wait_for(lambda: "--set-dscp 0x1a" in world.shell("iptables-save", "-t", "mangle"), "the DSCP rule")
    admin.network.update_port(world.vm_port.id, qos_policy_id=None)
    wait_for(lambda: "neutron-qos" not in world.shell("iptables-save", "-t", "mangle"), "the DSCP rule to go")

    group = world.demo.network.create_address_group(name="outside", addresses=["172.24.4.1/32"])
    sg = world.demo.network.find_security_group("default", project_id=world.vm_port.project_id)
    rule = world.demo.network.create_security_group_rule(
        security_group_id=sg.id, direction="ingress", protocol="tcp", port_range_min=80, port_range_max=80,
        remote_address_group_id=group.id)

    def refused() -> bool:        # reached the guest's kernel (no listener there), not dropped by the firewall
        res = world.run("nc", "-z", "-v", "-w", "1", world.fip, "80", check=False)
        return "refused" in res.stdout + res.stderr
    wait_for(refused, "tcp/80 to open for the address group")
    world.demo.network.remove_addresses_from_address_group(group, ["172.24.4.1/32"])
    wait_for(lambda: not refused(), "tcp/80 to close again")
    world.demo.network.delete_security_group_rule(rule)
    world.demo.network.delete_address_group(group)


def test_a_deleted_rule_is_drift(world):
    deleted_rule_is_drift(world)


def test_down_leaves_nothing_behind(world, before):
    down_leaves_nothing(world, before)
