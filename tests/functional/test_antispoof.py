"""A hostile tenant on the wire, on every L2 x firewall combination: forged ARP/ND, stolen MACs, a second IP, rogue
router advertisements and DHCP servers, the host's link-local. Each attack must fail while the victim's traffic
keeps flowing; an allowed address pair makes exactly that IP/MAC legal; port security off lifts it all.

World per combination (module-scoped, throwaway namespaces): attacker `a` (10.0.0.11), victim `v` (10.0.0.12) and
an observer `o` (10.0.0.1, port security off: it stands for the router / DHCP namespace whose neighbour table a
spoofer wants to poison), all on one network of a host namespace, wired by the real L2 and firewall drivers.
"""
from __future__ import annotations

import subprocess

import pytest

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.firewall.iptables import IptablesFirewallDriver
from neutrino.agent.firewall.nftables import NftablesFirewallDriver
from neutrino.agent.firewall.ports import link_local
from neutrino.agent.l2.linuxbridge import LinuxBridgeL2Driver
from neutrino.agent.l2.ovs import OvsL2Driver
from neutrino.lib import ip, ovs
from netfix_l2 import Namespaces, ViewBuilder, need_root
from netfix_wire import Wire, arp, dhcp4_offer, dhcp6_advertise, eth, na, ra, udp6

FAKE = "fa:16:3e:66:66:66"
COMBOS = [("ovs", "iptables"), ("ovs", "nftables"), ("linuxbridge", "iptables"), ("linuxbridge", "nftables")]


class World:
    def __init__(self, l2: str, fw: str, made: Namespaces):
        self.made = made
        if l2 == "ovs":
            self.ns, rundir = made.ovs_host()
            cfg = HostConfig(host="host1", state_dir=rundir, ovs_db=ovs.db_url(rundir))
            self.l2 = OvsL2Driver(cfg, netns=self.ns)
        else:
            self.ns = made.add()
            cfg = HostConfig(host="host1", state_dir="/nonexistent")
            self.l2 = LinuxBridgeL2Driver(cfg, netns=self.ns)
        bridge = "port" if l2 == "ovs" else "network"
        self.fw = (IptablesFirewallDriver(cfg, prefix=names.IPT_PREFIX if l2 == "ovs" else names.IPT_LB_PREFIX,
                                          ns=self.ns, bridge=bridge) if fw == "iptables"
                   else NftablesFirewallDriver(cfg, ns=self.ns, bridge=bridge))
        self.vb = ViewBuilder()
        net = self.vb.network()
        sg = "00000000-0000-4000-8000-000000000001"
        rules = [{"id": f"{d}{e}", "direction": d, "ethertype": e, "protocol": None, "port_range_min": None,
                  "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None}
                 for d in ("ingress", "egress") for e in ("IPv4", "IPv6")]
        self.vb.view["security_groups"] = {sg: {"id": sg, "stateful": True, "rules": rules}}
        self.port, self.guest = {}, {}
        for key, addr in (("o", "10.0.0.1"), ("a", "10.0.0.11"), ("v", "10.0.0.12")):
            p = self.port[key] = self.vb.port(net, addr)
            p["security_groups"] = [sg]
            p["port_security_enabled"] = key != "o"
            self.guest[key] = made.guest(self.ns, p, f"{addr}/24")
        self.sync()

    def sync(self) -> None:
        view = self.vb.bump()
        assert all(self.l2.sync(view).ports.values())
        self.fw.sync(view)

    def mac(self, key: str) -> str:
        return self.port[key]["mac_address"]

    def sh(self, key: str, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.guest[key], *argv], capture_output=True, text=True)

    def ping(self, src: str, dst_ip: str, *opts: str) -> bool:
        return self.sh(src, "ping", "-c1", "-W1", *opts, dst_ip).returncode == 0

    def neigh_of(self, key: str, addr: str) -> str:
        """The MAC `key` has for addr ('' when none)."""
        words = self.sh(key, "ip", "neigh", "show", addr).stdout.split()
        return words[words.index("lladdr") + 1] if "lladdr" in words else ""

    def close(self) -> None:
        self.fw.cleanup()
        self.l2.cleanup()


@pytest.fixture(scope="module", params=COMBOS, ids=["-".join(c) for c in COMBOS])
def world(request):
    need_root()
    made = Namespaces()
    try:
        w = World(*request.param, made)
        yield w
        w.close()
    finally:
        made.close()


def sees(w: World, frame: bytes) -> bool:
    """Whether a frame the attacker sends reaches the observer."""
    return Wire().sees(w.guest["a"], w.guest["o"], frame)


def test_forged_arp_nd_and_mac_fail_while_the_victim_keeps_its_traffic(world):
    w = world
    a, v = w.mac("a"), w.mac("v")
    assert w.ping("o", "10.0.0.12")
    # the attacker's own gratuitous ARP and NA pass (the watcher works, the guard is no wall)
    assert sees(w, arp(a, a, "10.0.0.11", "10.0.0.11"))
    assert sees(w, na(a, link_local(a), link_local(a), a))
    # gratuitous ARP for the victim's IP; ARP reply with a forged sender MAC; a second IP; a stolen source MAC
    assert not sees(w, arp(a, a, "10.0.0.12", "10.0.0.12"))
    assert not sees(w, arp(a, FAKE, "10.0.0.11", "10.0.0.1", dst=w.mac("o")))
    assert not sees(w, arp(a, a, "10.0.0.51", "10.0.0.1"))
    assert not sees(w, eth(w.mac("o"), v, 0x0800, b"stolen-mac" * 5))
    # IPv6: NA for the victim's link-local, NA for its own address announcing a foreign MAC
    assert not sees(w, na(a, link_local(a), link_local(v), a))
    assert not sees(w, na(a, link_local(a), link_local(a), FAKE))
    # the attack as a tenant types it: take the victim's IP and announce it
    w.sh("a", "ip", "addr", "add", "10.0.0.12/32", "dev", "eth0")
    try:
        w.sh("a", "busybox", "arping", "-U", "-c", "3", "-w", "1", "-I", "eth0", "-s", "10.0.0.12", "10.0.0.12")
        assert w.ping("o", "10.0.0.12") and w.neigh_of("o", "10.0.0.12") == v
    finally:
        w.sh("a", "ip", "addr", "del", "10.0.0.12/32", "dev", "eth0")
    # a second IP gets nowhere; a changed MAC neither (and poisons nobody)
    w.sh("a", "ip", "addr", "add", "10.0.0.51/24", "dev", "eth0")
    try:
        assert not w.ping("a", "10.0.0.1", "-I", "10.0.0.51")
    finally:
        w.sh("a", "ip", "addr", "del", "10.0.0.51/24", "dev", "eth0")
    w.sh("a", "ip", "link", "set", "eth0", "address", FAKE)
    try:
        w.sh("a", "ip", "neigh", "flush", "all")
        assert not w.ping("a", "10.0.0.1")
        assert w.neigh_of("o", "10.0.0.11") != FAKE
    finally:
        w.sh("a", "ip", "link", "set", "eth0", "address", a)
    assert w.ping("o", "10.0.0.12") and w.neigh_of("o", "10.0.0.12") == v and w.ping("a", "10.0.0.1")


def test_guest_is_no_router_and_no_dhcp_server(world):
    w = world
    a = w.mac("a")
    assert sees(w, udp6(a, link_local(a), "ff02::1:2", 546, 547, b"a client asks"))     # control: DHCPv6 client
    assert not sees(w, ra(a, link_local(a)))
    assert not sees(w, dhcp4_offer(a, "10.0.0.11", 0x1234))
    assert not sees(w, dhcp6_advertise(a, link_local(a), 0x4321))


def test_host_side_devices_have_no_ipv6(world):
    w = world
    pid = w.port["a"]["id"]
    devs = [w.port["a"]["device"]]
    devs += ([names.qbr(pid), names.qvb(pid), names.qvo(pid)] if isinstance(w.l2, OvsL2Driver)
             else [names.brq(w.port["a"]["network_id"])])
    links = ip.links(w.ns)
    for dev in devs:
        assert dev in links
        out = subprocess.run(["ip", "netns", "exec", w.ns, "ip", "-6", "addr", "show", "dev", dev],
                             capture_output=True, text=True).stdout
        assert "inet6" not in out, (dev, out)
    # the guest asks everyone on its link: only other guests answer, never the host
    out = w.sh("a", "ping", "-6", "-c2", "-i", "0.3", "-W1", "ff02::1%eth0").stdout
    host_ll = {link_local(links[d]["mac"]) for d in devs if links[d].get("mac")}
    assert not [line for line in out.splitlines() if any(h in line for h in host_ll)], out


def test_address_pair_makes_exactly_that_legal(world):
    w = world
    a, pair_mac = w.mac("a"), "fa:16:3e:00:01:30"
    w.port["a"]["allowed_address_pairs"] = [{"ip_address": "10.0.0.130", "mac_address": pair_mac},
                                            {"ip_address": "10.0.0.140"}]
    w.sync()
    try:
        assert sees(w, arp(pair_mac, pair_mac, "10.0.0.130", "10.0.0.130"))
        assert sees(w, arp(a, a, "10.0.0.140", "10.0.0.140"))
        assert not sees(w, arp(a, a, "10.0.0.130", "10.0.0.130"))              # that IP only with that MAC
        assert not sees(w, arp(pair_mac, pair_mac, "10.0.0.131", "10.0.0.131"))
        assert not sees(w, arp(a, a, "10.0.0.12", "10.0.0.12"))
    finally:
        w.port["a"]["allowed_address_pairs"] = []
        w.sync()
    assert not sees(w, arp(pair_mac, pair_mac, "10.0.0.130", "10.0.0.130"))


def test_port_security_off_lifts_it(world):
    w = world
    a = w.mac("a")
    w.port["a"]["port_security_enabled"] = False
    w.sync()
    try:
        assert sees(w, arp(a, a, "10.0.0.12", "10.0.0.12"))
        assert sees(w, ra(a, link_local(a)))
    finally:
        w.port["a"]["port_security_enabled"] = True
        w.sync()
    assert not sees(w, arp(a, a, "10.0.0.12", "10.0.0.12"))
