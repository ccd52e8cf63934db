"""The linuxbridge + nftables hot path on the real kernel: what a one-port change leaves behind (from the drivers'
memory of the kernel and the event-kept link table) is exactly what a driver starting afresh, reading everything
back, wants; and the link table kept from netlink announcements stays equal to a dump."""
from __future__ import annotations

import os

import pytest

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.firewall.nftables import NftablesFirewallDriver
from neutrino.agent.l2.linuxbridge import LinuxBridgeL2Driver
from neutrino.lib import ip, nft

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces)", allow_module_level=True)

from netfix_fw import group, nsname, port, rid, rule, view  # noqa: E402


def drivers(ns: str) -> list:
    cfg = HostConfig("h1", "/tmp")
    return [LinuxBridgeL2Driver(cfg, netns=ns), NftablesFirewallDriver(cfg, ns=ns)]


def ruleset(ns: str) -> str:
    return nft._in_ns(ns, nft._cli, "list ruleset")[1]


@pytest.fixture
def host():
    ns, peers = nsname(), nsname()
    ip.ensure_netns(ns)
    ip.ensure_netns(peers)
    yield ns, peers
    ip.delete_netns(peers)
    ip.delete_netns(ns)


def test_one_port_added_and_removed_leaves_what_a_fresh_full_sync_wants(host):
    ns, peers = host
    net, sg, shared = rid(), rid(), rid()
    groups = [group(sg, [rule("ingress", "tcp", 22), rule("egress")]),
              group(shared, [rule("ingress", remote_group_id=shared)])]
    # more than ip.BATCH_FROM: the cold sync wires them by `ip -batch`, the one port added by a netlink request
    ports = [port(rid(), net, f"10.0.0.{10 + i}", f"fa:16:3e:00:00:{i:02x}", [sg, shared]) for i in range(20)]
    extra = port(rid(), net, "10.0.0.99", "fa:16:3e:00:00:99", [sg, shared])
    ip.batch([f"link add {p['device']} type veth peer name g{i} netns {peers}" for i, p in enumerate(ports + [extra])],
             ns)

    running = drivers(ns)
    for ps in (ports, ports + [extra], ports):          # cold, one port added, the same port removed again
        v = view(ps, groups)             # the shared group's members follow the ports
        v["networks"] = {net: {"id": net, "name": "n", "mtu": 1450, "external": False, "subnets": [],
                               "segment": {"network_type": "local", "segmentation_id": None,
                                           "physical_network": None}}}
        for d in running:
            d.sync(v)
        before = ruleset(ns)
        links = ip.links(ns)
        assert all(links[p["device"]]["master"] == links[names.brq(net)]["index"] for p in ps)
        assert extra in ps or links[extra["device"]]["master"] is None
        fresh = drivers(ns)           # no memory: reads the tables and links back and diffs against the full view
        assert not fresh[0].sync(v).changed
        fresh[1].sync(v)
        assert fresh[1].last_script == []
        assert ruleset(ns) == before


def test_link_table_follows_the_kernel(host):
    ns, peers = host
    assert ip.links(ns) == ip._dump(ns)
    ip.batch(["link add t1 type veth peer name p1 netns " + peers, "link add t2 type veth peer name p2 netns " + peers,
              "link add br1 type bridge", "link set br1 up mtu 1400", "link set t1 master br1", "link set t1 up"], ns)
    ip.set_link("t2", ns, mtu=1300, mac="fa:16:3e:00:00:01", master="br1", up=True)
    assert ip.links(ns) == ip._dump(ns)
    ip.batch(["link set t1 nomaster", "link set t2 name t2x", "link del br1"], ns)
    links = ip.links(ns)
    assert links == ip._dump(ns) and "t2" not in links and links["t1"]["master"] is None
    ip.delete_netns(ns)                 # the same name, a new namespace: a new table
    ip.ensure_netns(ns)
    assert set(ip.links(ns)) == {"lo"}
