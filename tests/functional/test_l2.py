"""What every L2 backend promises, on the real kernel, run on each (ovs: tap → qbr → qvb/qvo → br-int with its own
OVS daemons; linuxbridge: tap → brq<net>): guests on one network talk, networks are isolated, a second sync
changes nothing, removed or admin-down ports stop forwarding, what is deleted behind the agent comes back.
Backend-only wiring (the seed's `ovs-vsctl` view, VLAN tags, VXLAN between hosts) is in test_l2_ovs.py and
test_l2_linuxbridge.py."""
from __future__ import annotations

import pytest

from neutrino import names
from neutrino.lib import ethtool, ip
from netfix_l2 import BACKENDS, Host, Namespaces, ViewBuilder, need_root, nets, ping, tcp_transfer  # noqa: F401 - nets is a fixture

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module", params=BACKENDS)
def host(request):
    """One emulated host per backend, shared by the module's tests of that backend."""
    need_root()
    made = Namespaces()
    try:
        yield made.l2_host(request.param)
    finally:
        made.close()


@pytest.fixture
def driver(host):
    drv = host.driver()
    try:
        yield drv
    finally:
        drv.cleanup()


def two_guests(host: Host, nets: Namespaces, vb: ViewBuilder, same_network: bool = True):
    net_a = vb.network()
    net_b = net_a if same_network else vb.network()
    pa, pb = vb.port(net_a, "10.0.0.11"), vb.port(net_b, "10.0.0.12")
    return pa, pb, nets.guest(host.ns, pa, "10.0.0.11/24"), nets.guest(host.ns, pb, "10.0.0.12/24")


def test_same_network_ping_tcp_and_second_sync_is_noop(host, nets, driver):
    vb = ViewBuilder()
    pa, pb, ga, gb = two_guests(host, nets, vb)
    res = driver.sync(vb.view)
    assert res.ports == {pa["id"]: True, pb["id"]: True} and res.changed
    assert host.plugged(pa) and host.plugged(pb)
    assert ping(ga, "10.0.0.12")
    assert tcp_transfer(gb, "10.0.0.12", ga) == 300_000
    links = {k: v["index"] for k, v in ip.links(host.ns).items()}
    assert not driver.sync(vb.view).changed
    assert not host.driver().sync(vb.view).changed          # nor does a restarted agent's first one
    assert {k: v["index"] for k, v in ip.links(host.ns).items()} == links


def test_different_networks_isolated(host, nets, driver):
    vb = ViewBuilder()
    pa, pb, ga, gb = two_guests(host, nets, vb, same_network=False)
    assert driver.sync(vb.view).ports == {pa["id"]: True, pb["id"]: True}
    assert not ping(ga, "10.0.0.12", count=2, wait=1)


def test_port_removed_unplugs(host, nets, driver):
    vb = ViewBuilder()
    pa, pb, ga, gb = two_guests(host, nets, vb)
    driver.sync(vb.view)
    vb.remove_port(pb["id"])
    res = driver.sync(vb.bump())
    assert res.changed and pb["id"] not in res.ports
    assert ip.links(host.ns)[pb["device"]]["master"] is None     # the tap stays with the instance launcher
    assert host.plugged(pa) and not host.plugged(pb)
    assert not set(host.made(pb)) & set(ip.links(host.ns))
    assert not ping(ga, "10.0.0.12", count=1, wait=1)


def test_devices_deleted_behind_the_agent_are_rewired(host, nets, driver):
    vb = ViewBuilder()
    pa, pb, ga, gb = two_guests(host, nets, vb)
    driver.sync(vb.view)
    assert ping(ga, "10.0.0.12")
    ip.delete_link(host.made_for(pb), host.ns)
    assert not ping(ga, "10.0.0.12", count=1, wait=1)
    assert driver.sync(vb.view).changed
    assert ping(ga, "10.0.0.12")
    assert tcp_transfer(gb, "10.0.0.12", ga) == 300_000
    assert not host.driver().sync(vb.view).changed


def test_admin_down_stops_forwarding_and_back(host, nets, driver):
    vb = ViewBuilder()
    pa, pb, ga, gb = two_guests(host, nets, vb)
    driver.sync(vb.view)
    pb["admin_state_up"] = False
    assert driver.sync(vb.bump()).changed
    assert not ping(ga, "10.0.0.12", count=1, wait=1)
    pb["admin_state_up"] = True
    assert driver.sync(vb.bump()).changed
    assert ping(ga, "10.0.0.12")


def test_missing_tap_is_not_wired(host, nets, driver):
    vb = ViewBuilder()
    p = vb.port(vb.network(), "10.0.0.20")
    assert driver.sync(vb.view).ports == {p["id"]: False}
    assert not set(host.made(p)) & set(ip.links(host.ns))
    nets.guest(host.ns, p, "10.0.0.20/24")
    assert driver.sync(vb.bump()).ports == {p["id"]: True}
    assert host.plugged(p)


@pytest.mark.parametrize("kind", ["dhcp", "router_interface"])
def test_namespace_port_plugged_straight_in(host, nets, driver, kind):
    """A dhcp or router port: its ns-<id> goes straight into the network (no qbr); the namespace side needs tx off
    on userspace OVS (the DHCP or L3 driver's job, done here by hand)."""
    vb = ViewBuilder()
    net = vb.network()
    pa, pd = vb.port(net, "10.0.0.11"), vb.port(net, "10.0.0.2", kind=kind)
    ga = nets.guest(host.ns, pa, "10.0.0.11/24")
    gd = nets.add()
    ip.ensure_veth(pd["device"], pd["ns_device"], host.ns, gd, peer_mac=pd["mac_address"])
    ip.ensure_addresses(pd["ns_device"], ["10.0.0.2/24"], gd)
    ethtool.tx_off(pd["ns_device"], gd)
    assert driver.sync(vb.view).ports == {pa["id"]: True, pd["id"]: True}
    assert host.plugged(pd) and names.qbr(pd["id"]) not in ip.links(host.ns)
    assert ping(ga, "10.0.0.2")
    assert tcp_transfer(gd, "10.0.0.2", ga) == 300_000
    vb.remove_port(pd["id"])
    driver.sync(vb.bump())
    assert not host.plugged(pd)
    assert pd["device"] in ip.links(host.ns)      # the device itself is the DHCP or L3 driver's


def test_flat_network_reaches_the_mapped_bridge(host, nets, driver):
    """A gateway port on the flat physnet 'public' reaches br-ex (where 172.24.4.1 lives, as on DevStack)."""
    vb = ViewBuilder()
    pg = vb.port(vb.network("flat", physical_network="public"), "172.24.4.10", kind="router_gateway")
    gr = nets.add()
    ip.ensure_veth(pg["device"], "qg-x", host.ns, gr, peer_mac=pg["mac_address"])
    ip.ensure_addresses("qg-x", ["172.24.4.10/24"], gr)
    ethtool.tx_off("qg-x", gr)
    assert driver.sync(vb.view).ports == {pg["id"]: True}
    ip.ensure_addresses("br-ex", ["172.24.4.1/24"], host.ns)
    ip.set_up("br-ex", host.ns)
    try:
        assert ping(gr, "172.24.4.1")
        assert not [n for n in ip.links(host.ns) if n.startswith("brq")]
    finally:
        ip.ensure_addresses("br-ex", [], host.ns)
