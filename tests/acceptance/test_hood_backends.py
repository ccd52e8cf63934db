"""hood and trace on the two backend combinations no other acceptance module brings up, ovs + nftables and
linuxbridge + iptables (ovs + iptables: test_seed_page.py; linuxbridge + nftables: test_lab_linuxbridge.py run the
same checks): no drift on vm1, trace's verdicts for tcp/22 and tcp/2323 match real connections, a deleted rule is
drift (exit 1), and `neutrino down` leaves nothing behind. One lab per combination."""
from __future__ import annotations

import pytest

from labfix import deleted_rule_is_drift, down_leaves_nothing, hood_and_trace_agree_with_traffic, need, running_lab

pytestmark = pytest.mark.kernel
need(("ovsdb-server", "ovs-vswitchd", "dnsmasq", "busybox", "nft", "iptables", "ping", "nsenter", "nc"))


@pytest.fixture(scope="module", params=[("ovs", "nftables"), ("linuxbridge", "iptables")], ids="+".join)
def world(request, before):
    l2, firewall = request.param
    yield from running_lab("nl-hb-", "--l2", l2, "--firewall", firewall)


def test_lab_runs_these_backends(world):
    settings = world.lab.load()
    assert (settings.l2, settings.firewall) in (("ovs", "nftables"), ("linuxbridge", "iptables"))


def test_hood_and_trace_agree_with_real_traffic(world):
    hood_and_trace_agree_with_traffic(world)


def test_a_deleted_rule_is_drift(world):
    deleted_rule_is_drift(world)


def test_down_leaves_nothing_behind(world, before):
    down_leaves_nothing(world, before)
