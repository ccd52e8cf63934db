"""The seed page as an acceptance test: `neutrino up` in a throwaway state dir, every command of the page replayed
inside the emulated host with this lab's real names, vm1 reachable on its floating IP, metadata from vm1, a second
`up` that changes nothing, and a `neutrino down` that leaves nothing behind."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from neutrino import names
from neutrino.lib import ovs
from labfix import deleted_rule_is_drift, down_leaves_nothing, hood_and_trace_agree_with_traffic, need, neutrino

pytestmark = pytest.mark.kernel
NEEDED = ("ovsdb-server", "ovs-vswitchd", "dnsmasq", "busybox", "dhclient", "iptables", "ping", "nsenter", "curl", "nc")

need(NEEDED)
COUNT, INTERVAL = 100, 0.05      # pings during the vswitchd kill: 5 s at 20 a second


@pytest.fixture(scope="module")
def world(seed_world):
    return seed_world


def test_up_makes_vm1_reachable_and_says_how_long_it_took(world):
    m = re.search(r"vm1 reachable on its floating IP (\S+) after ([\d.]+) s", world.up_output)
    assert m, world.up_output
    assert m.group(1) == world.fip
    assert f"export OS_CLIENT_CONFIG_FILE={world.lab.clouds_yaml}" in world.up_output
    assert names.sg_chain("i", world.vm_port.id) in world.up_output


def test_ip_a_shows_the_hybrid_plug_and_br_ex(world):
    out = world.shell("ip", "a")
    for dev in (names.tap(world.vm_port.id), names.qbr(world.vm_port.id), names.qvb(world.vm_port.id),
                names.qvo(world.vm_port.id), "br-ex", "br-int"):
        assert dev in out, dev
    assert "inet 172.24.4.1/24" in out


def test_ip_netns_list_shows_qrouter_and_qdhcp(world):
    out = world.shell("ip", "netns", "list")
    assert names.qrouter(world.router.id) in out
    assert names.qdhcp(world.private.id) in out


def test_ovs_bridges_and_ports(world):
    assert {"br-int", "br-ex"} <= set(world.shell("ovs-vsctl", "list-br").split())
    int_ports = world.shell("ovs-vsctl", "list-ports", "br-int").split()
    assert names.qvo(world.vm_port.id) in int_ports
    assert names.ns_peer(world.dhcp_port.id) in int_ports
    assert world.shell("ovs-vsctl", "list-ports", "br-ex").split()     # patch (or qg-) toward the router


def test_security_group_chain_rules_in_order(world):
    chain = names.sg_chain("i", world.vm_port.id)
    lines = world.shell("iptables", "-L", chain).splitlines()
    assert lines[0].startswith(f"Chain {chain} ")
    wanted = [r"^RETURN\s+all .*state RELATED,ESTABLISHED", r"^RETURN\s+tcp .*tcp dpt:ssh", r"^RETURN\s+icmp",
              r"^RETURN\s+udp .*udp spt:bootps dpt:bootpc", r"^DROP\s+all .*state INVALID",
              r"^neutron-openvswi-sg-fallback\s+all"]
    positions = []
    for pattern in wanted:
        hits = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert hits, f"{pattern} not in\n" + "\n".join(lines)
        positions.append(hits[0])
    assert positions == sorted(positions), "\n".join(lines)


def test_dhcp_namespace_holds_its_tap_and_dnsmasq_listens_there(world):
    tap = names.tap(world.dhcp_port.id)
    assert tap in world.shell("ip", "netns", "exec", names.qdhcp(world.private.id), "ip", "a")
    assert f"--interface={tap}" in world.shell("sh", "-c", "ps ww $(pgrep dnsmasq)")


def test_router_routes(world):
    out = world.shell("ip", "netns", "exec", names.qrouter(world.router.id), "ip", "route", "show")
    assert re.search(r"^default via 172\.24\.4\.1 dev qg-", out, re.M), out
    assert re.search(r"^10\.0\.0\.0/24 dev qr-", out, re.M), out
    assert re.search(r"^172\.24\.4\.0/24 dev qg-", out, re.M), out


def test_router_nat_rules(world):
    out = world.shell("ip", "netns", "exec", names.qrouter(world.router.id), "iptables", "-t", "nat", "-S")
    fixed = world.vm_port.fixed_ips[0]["ip_address"]
    for rule in (f"-A neutron-l3-agent-OUTPUT -d {world.fip}/32 -j DNAT --to-destination {fixed}",
                 f"-A neutron-l3-agent-PREROUTING -d {world.fip}/32 -j DNAT --to-destination {fixed}",
                 f"-A neutron-l3-agent-float-snat -s {fixed}/32 -j SNAT --to-source {world.fip}"):
        assert rule in out, out
    assert re.search(r"-A neutron-l3-agent-PREROUTING -d 169\.254\.169\.254/32 .*-p tcp -m tcp --dport 80 "
                     r"-j REDIRECT --to-ports 9697", out), out


def test_vm1_answers_on_its_floating_ip(world):
    world.shell("ping", "-c", "1", "-W", "2", world.fip)
    assert world.shell("nc", "-w", "2", world.fip, "22").startswith("SSH-2.0-")


def test_metadata_from_vm1(world):
    out = neutrino("instance", "exec", "vm1", "--", "curl", "-s", "-m", "5",
                   "http://169.254.169.254/openstack/latest/meta_data.json", state_dir=world.state_dir).stdout
    doc = json.loads(out)
    assert doc["uuid"] == world.vm_port.device_id
    assert doc["hostname"] == "vm1"


def test_second_up_changes_nothing(world):
    ports = sorted(p.id for p in world.demo.network.ports())
    out = neutrino("up", state_dir=world.state_dir, timeout=60).stdout
    assert "already running" in out
    assert " created" not in out, out
    assert sorted(p.id for p in world.demo.network.ports()) == ports


def test_hood_shows_vm1_plumbing_without_drift(world):
    out = neutrino("hood", "vm1", state_dir=world.state_dir).stdout     # exit status 1 would mean drift
    pid = world.vm_port.id
    for thing in (names.tap(pid), names.qbr(pid), names.qvb(pid), names.qvo(pid), names.sg_chain("i", pid),
                  names.qrouter(world.router.id), names.qdhcp(world.private.id), world.fip, "9697"):
        assert thing in out, thing
    assert pid in neutrino("hood", "vm1", "--json", state_dir=world.state_dir).stdout


def test_trace_agrees_with_the_seed_group_and_real_traffic(world):
    hood_and_trace_agree_with_traffic(world)


def _pinger(enter: list[str], dst: str, state_dir: str) -> subprocess.Popen:
    """`ping -c COUNT -i INTERVAL dst` inside a namespace (enter: the command that gets there), running once its
    first reply is in."""
    p = subprocess.Popen([*enter, "ping", "-n", "-c", str(COUNT), "-i", str(INTERVAL), "-W", "1", dst],
                         stdout=subprocess.PIPE, text=True, env={**os.environ, "NEUTRINO_STATE_DIR": state_dir})
    for line in p.stdout:                  # a line per reply: wait for the first one (bounded by -c)
        if "bytes from" in line:
            return p
    raise AssertionError(f"no reply from {dst} before the kill")


def _lost(p: subprocess.Popen) -> int:
    out, _ = p.communicate(timeout=COUNT * INTERVAL + 30)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    return int(m.group(1)) - int(m.group(2))


def test_tenant_cannot_take_another_ports_address(world):
    """The issue's attack: vm1 claims vm2's IP with gratuitous ARP; the router keeps vm2's MAC and reaches vm2."""
    out = neutrino("instance", "create", "vm2", "--network", "private", state_dir=world.state_dir).stdout
    vm2 = next(iter(world.demo.network.ports(name="vm2", device_owner="compute:nova")))
    ip2, router_ns = vm2.fixed_ips[0]["ip_address"], names.qrouter(world.router.id)
    assert ip2 in out
    world.run("ip", "netns", "exec", router_ns, "ping", "-c1", "-W2", ip2)
    vm1 = ("instance", "exec", "vm1", "--")
    neutrino(*vm1, "ip", "addr", "add", f"{ip2}/32", "dev", "eth0", state_dir=world.state_dir)
    neutrino(*vm1, "busybox", "arping", "-U", "-c", "5", "-w", "1", "-I", "eth0", "-s", ip2, ip2,
             state_dir=world.state_dir, check=False)
    neutrino(*vm1, "ip", "addr", "del", f"{ip2}/32", "dev", "eth0", state_dir=world.state_dir)
    world.run("ip", "netns", "exec", router_ns, "ping", "-c1", "-W2", ip2)
    assert f"lladdr {vm2.mac_address}" in world.shell("ip", "netns", "exec", router_ns, "ip", "neigh", "show", ip2)
    traced = neutrino("trace", "vm1", ip2, "--proto", "arp", "--src-ip", ip2, state_dir=world.state_dir, check=False)
    assert traced.returncode == 2 and "DROPPED at br-int table 24 by table=24,priority=0 actions=drop" in \
        traced.stdout, traced.stdout


def test_kill_9_of_ovs_vswitchd_costs_at_most_a_second_of_pings(world):
    """vm1 -> vm2 and host -> vm1's floating IP at 20 pings a second while ovs-vswitchd dies by SIGKILL: the agent
    notices, starts it again and puts the flows (and br-ex's address) back; at most 1 s of pings is lost."""
    vm2 = next(iter(world.demo.network.ports(name="vm2", device_owner="compute:nova")))
    rundir = world.lab.ovs_rundir("host1")
    old = ovs.daemon_pid(rundir, "ovs-vswitchd")
    east = _pinger([sys.executable, "-m", "neutrino.cli.main", "instance", "exec", "vm1", "--"],
                   vm2.fixed_ips[0]["ip_address"], world.state_dir)
    north = _pinger(["ip", "netns", "exec", world.lab.host_ns("host1")], world.fip, world.state_dir)
    try:
        os.kill(old, signal.SIGKILL)
        lost = {"vm1 -> vm2": _lost(east), "host -> floating IP": _lost(north)}
    finally:
        for p in (east, north):
            if p.poll() is None:
                p.kill()
                p.wait()
    new = ovs.daemon_pid(rundir, "ovs-vswitchd")
    assert new and new != old
    assert all(n * INTERVAL <= 1.0 for n in lost.values()), lost
    with open(os.path.join(world.lab.host_dir("host1"), "agent.log")) as f:
        assert "watch: l2" in f.read()
    neutrino("instance", "delete", "vm2", state_dir=world.state_dir)


def test_a_deleted_rule_is_drift(world):
    deleted_rule_is_drift(world)


def test_down_leaves_nothing_behind(world, before):
    down_leaves_nothing(world, before)
