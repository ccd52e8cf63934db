"""OVS hybrid wiring on the real kernel: a throwaway host namespace with its own OVS daemons, guests plugged through
tap → qbr → qvb/qvo → br-int, exactly as the seed page shows. What every L2 backend does is in test_l2.py."""
from __future__ import annotations

import subprocess

import pytest

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.l2.ovs import OvsL2Driver
from neutrino.lib import ip, ovs
from netfix_l2 import Namespaces, ViewBuilder, need_root, nets, ping, tcp_transfer  # noqa: F401 - nets is a fixture


@pytest.fixture(scope="module")
def host():
    """(netns, rundir) of one emulated host with OVS daemons, shared by the module's tests."""
    need_root()
    made = Namespaces()
    try:
        yield made.ovs_host()
    finally:
        made.close()


def make_driver(host, **kw) -> OvsL2Driver:
    ns, rundir = host
    cfg = HostConfig(host="host1", state_dir=rundir, ovs_db=ovs.db_url(rundir), **kw)
    return OvsL2Driver(cfg, netns=ns)


@pytest.fixture
def driver(host):
    drv = make_driver(host)
    try:
        yield drv
    finally:
        drv.cleanup()


def vsctl(host, *args) -> str:
    return subprocess.run(["ovs-vsctl", f"--db={ovs.db_url(host[1])}", *args], capture_output=True, text=True,
                          check=True).stdout


def two_guests(host, nets, vb, same_network=True):
    net_a = vb.network()
    net_b = net_a if same_network else vb.network()
    pa, pb = vb.port(net_a, "10.0.0.11"), vb.port(net_b, "10.0.0.12")
    ga = nets.guest(host[0], pa, "10.0.0.11/24")
    gb = nets.guest(host[0], pb, "10.0.0.12/24")
    return pa, pb, ga, gb


def test_seed_commands_show_the_wiring(host, nets, driver):
    vb = ViewBuilder()
    pa, _, _, _ = two_guests(host, nets, vb)
    driver.sync(vb.view)
    pid = pa["id"]
    assert names.qvo(pid) in vsctl(host, "list-ports", "br-int").split()
    ip_a = subprocess.run(["ip", "netns", "exec", host[0], "ip", "a"], capture_output=True, text=True).stdout
    for dev in (names.tap(pid), names.qbr(pid), names.qvb(pid), names.qvo(pid)):
        assert f" {dev}" in ip_a
    links = ip.links(host[0])
    assert links[names.tap(pid)]["master"] == links[names.qbr(pid)]["index"]
    assert links[names.qvb(pid)]["master"] == links[names.qbr(pid)]["index"]
    feats = subprocess.run(["ip", "netns", "exec", host[0], "ethtool", "-k", names.qvb(pid)],
                           capture_output=True, text=True).stdout
    assert "tx-checksumming: off" in feats           # TCP fails without it on the netdev datapath
    ext = vsctl(host, "get", "Interface", names.qvo(pid), "external_ids")
    assert f'iface-id="{pid}"' in ext and f'attached-mac="{pa["mac_address"]}"' in ext
    assert 'iface-status=active' in ext
    assert "br-ex" in vsctl(host, "list-br").split()
    assert "int-br-ex" in vsctl(host, "list-ports", "br-int").split()


def test_restart_keeps_tags_and_traffic(host, nets, driver):
    vb = ViewBuilder()
    pa, pb, ga, gb = two_guests(host, nets, vb)
    other = vb.network()
    pc = vb.port(other, "10.0.0.13")
    nets.guest(host[0], pc, "10.0.0.13/24")
    driver.sync(vb.view)
    tags = {p["id"]: vsctl(host, "get", "Port", names.qvo(p["id"]), "tag").strip() for p in (pa, pb, pc)}
    pinger = subprocess.Popen(["ip", "netns", "exec", ga, "ping", "-i", "0.05", "-c", "60", "10.0.0.12"],
                              stdout=subprocess.PIPE, text=True)
    try:
        driver.close()
        fresh = make_driver(host)
        # the new agent sees the networks in another order: allocation must still come from OVS
        vb.view["networks"] = dict(reversed(list(vb.view["networks"].items())))
        assert not fresh.sync(vb.view).changed
        out, _ = pinger.communicate(timeout=20)
    finally:
        if pinger.poll() is None:
            pinger.kill()
    assert " 0% packet loss" in out
    assert tags == {p["id"]: vsctl(host, "get", "Port", names.qvo(p["id"]), "tag").strip() for p in (pa, pb, pc)}
    fresh.close()


def flow_table(host, bridge: str = "br-int") -> list[str]:
    out = subprocess.run(["ovs-ofctl", "--no-stats", "dump-flows", f"unix:{host[1]}/{bridge}.mgmt"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(line.strip() for line in out.splitlines())


def test_one_port_added_then_removed_incrementally_leaves_what_a_cold_sync_does(host, nets, driver):
    """The incremental path (flows sent as a difference, links re-read as the kernel announces them, OVSDB rows
    converted as they change) leaves exactly what a fresh agent's cold sync would: that one finds nothing to do."""
    vb = ViewBuilder()
    pa, pb, ga, gb = two_guests(host, nets, vb)
    driver.sync(vb.view)
    pc = vb.port(pa["network_id"], "10.0.0.13")
    gc = nets.guest(host[0], pc, "10.0.0.13/24")
    assert driver._trusted("br-int")      # so the next sync takes the incremental path
    assert driver.sync(vb.bump()).ports[pc["id"]]
    qvo = names.qvo(pc["id"])
    ofport = vsctl(host, "get", "Interface", qvo, "ofport").strip()
    assert vsctl(host, "get", "Interface", qvo, "ofport_request").strip() == ofport   # flows named it beforehand
    table = flow_table(host)
    assert any(f"in_port={ofport}," in f for f in table)
    assert ping(gc, "10.0.0.11")
    fresh = make_driver(host)
    assert not fresh.sync(vb.view).changed
    fresh.close()
    assert flow_table(host) == table
    gone = vsctl(host, "get", "Interface", names.qvo(pb["id"]), "ofport").strip()
    vb.remove_port(pb["id"])
    assert driver._trusted("br-int")
    assert driver.sync(vb.bump()).changed
    assert not any(f"in_port={gone}," in f for f in flow_table(host))
    fresh = make_driver(host)
    assert not fresh.sync(vb.view).changed
    fresh.close()


def test_ovsdb_changed_behind_the_agent_is_seen_and_repaired(host, nets, driver):
    """The OVSDB read converts only the rows the IDL announced as changed: a change by another client is one."""
    vb = ViewBuilder()
    pa, pb, ga, gb = two_guests(host, nets, vb)
    driver.sync(vb.view)
    qvo = names.qvo(pb["id"])
    tag = vsctl(host, "get", "Port", qvo, "tag").strip()
    vsctl(host, "set", "Port", qvo, "tag=99")
    vsctl(host, "remove", "Interface", qvo, "external_ids", "iface-id")
    assert driver.sync(vb.view).changed
    assert vsctl(host, "get", "Port", qvo, "tag").strip() == tag
    assert vsctl(host, "get", "Interface", qvo, "external_ids:iface-id").strip().strip('"') == pb["id"]
    assert ping(ga, "10.0.0.12")


def test_admin_down_is_dead_vlan_and_back(host, nets, driver):
    vb = ViewBuilder()
    pa, pb, ga, gb = two_guests(host, nets, vb)
    driver.sync(vb.view)
    live = vsctl(host, "get", "Port", names.qvo(pb["id"]), "tag").strip()
    pb["admin_state_up"] = False
    driver.sync(vb.bump())
    assert vsctl(host, "get", "Port", names.qvo(pb["id"]), "tag").strip() == "4095"
    assert not ping(ga, "10.0.0.12", count=1, wait=1)
    pb["admin_state_up"] = True
    driver.sync(vb.bump())
    assert vsctl(host, "get", "Port", names.qvo(pb["id"]), "tag").strip() == live
    assert ping(ga, "10.0.0.12")


def test_vxlan_between_two_hosts(nets):
    """Two emulated hosts, each with its own OVS; underlay veth whose IP sits on an OVS bridge (netdev tunnels need
    it there), br-tun flows from the views' tunnels and FDB."""
    need_root()
    hosts = [nets.ovs_host(), nets.ovs_host()]
    ip.ensure_veth("upl", "upl", hosts[0][0], hosts[1][0], mtu=1600)
    vbs, drivers, gs = [], [], []
    net = "5d0c7a1e-0000-4000-8000-00000000vx01"
    ports = []
    for i, h in enumerate(hosts):
        db = ovs.Ovsdb(ovs.db_url(h[1]))
        have = db.bridges()
        db.commit(db.ensure_bridge(have, "br-phy", ovs.datapath_type()))
        db.commit(db.ensure_port(db.bridges()["br-phy"], "br-phy", "upl"))
        db.close()
        ip.set_link("br-phy", h[0], mtu=1600, up=True)
        ip.ensure_addresses("br-phy", [f"10.255.0.{i + 1}/24"], h[0])
        vb = ViewBuilder(f"host{i}")
        vb.network("vxlan", 1000, net_id=net)
        ports.append(vb.port(net, f"10.0.0.{11 + i}"))
        vbs.append(vb)
        drivers.append(make_driver(h, tunnel_ip=f"10.255.0.{i + 1}", bridge_mappings={}))
    try:
        for i, h in enumerate(hosts):
            other = 1 - i
            vbs[i].view["tunnels"] = {"local_ip": f"10.255.0.{i + 1}",
                                      "peers": [{"host": f"host{other}", "ip": f"10.255.0.{other + 1}"}]}
            vbs[i].view["fdb"] = [{"network_id": net, "vni": 1000, "mac_address": ports[other]["mac_address"],
                                   "ip_address": f"10.0.0.{11 + other}", "host_ip": f"10.255.0.{other + 1}"}]
            gs.append(nets.guest(h[0], ports[i], f"10.0.0.{11 + i}/24"))
            assert drivers[i].sync(vbs[i].view).ports == {ports[i]["id"]: True}
        assert ping(gs[0], "10.0.0.12", count=3)
        assert tcp_transfer(gs[1], "10.0.0.12", gs[0]) == 300_000
        assert not drivers[0].sync(vbs[0].view).changed
        assert "vxlan-0aff0002" in vsctl(hosts[0], "list-ports", "br-tun").split()
        vbs[0].view["tunnels"]["peers"] = []
        vbs[0].view["fdb"] = []
        drivers[0].sync(vbs[0].bump())
        assert "vxlan-0aff0002" not in vsctl(hosts[0], "list-ports", "br-tun").split()
        assert not ping(gs[0], "10.0.0.12", count=1, wait=1)
    finally:
        for d in drivers:
            d.cleanup()
