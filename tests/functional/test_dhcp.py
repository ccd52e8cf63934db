"""DHCP driver against the real kernel: qdhcp- namespaces, dnsmasq and ISC dhclient guests wired by an L2 driver
(linuxbridge; the tests of what guests receive run on ovs too)."""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import signal
import time

import pytest

from neutrino import names
from neutrino.lib import dnsmasq, guest, ip, proc

from netfix_dhcp import (  # noqa: F401  (lab and l2_hosts are fixtures)
    dhcp_network, guest_addresses, guest_sh, host, l2_hosts, lab, subnet, view_of,
)
from netfix_l2 import BACKENDS

every_l2 = pytest.mark.parametrize("lab", BACKENDS, indirect=True)

pytestmark = pytest.mark.kernel


def _net_dir(lab, net) -> str:
    return lab.driver._dir(net["network_id"])


def _pid(lab, net) -> int:
    pid = dnsmasq.running(_net_dir(lab, net))
    assert pid, "dnsmasq is not running"
    return pid


def _reads_of_hostsfile(lab, net) -> int:
    """How many times dnsmasq has (re)read its hosts file: once at start, once per SIGHUP."""
    path = os.path.join(_net_dir(lab, net), "host")
    with open(os.path.join(_net_dir(lab, net), "log")) as f:
        return sum(1 for line in f if line.rstrip().endswith(f"read {path}"))


def _wait_reads(lab, net, n: int) -> int:
    deadline = time.monotonic() + 3
    while _reads_of_hostsfile(lab, net) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return _reads_of_hostsfile(lab, net)


def _ours(lab, net) -> list[int]:
    """Live dnsmasq processes serving this network's directory."""
    marker = f"--pid-file={dnsmasq.pid_file(_net_dir(lab, net))}"
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and marker in proc.cmdline(int(p))]


@pytest.fixture
def one_net():
    s = subnet("10.0.0.0/24")
    hosts = [host(s, "10.0.0.10"), host(s, "10.0.0.11", hostname="vm-b")]
    return dhcp_network([s], ["10.0.0.2"], hosts, mtu=1450)


@every_l2
def test_guest_gets_address_route_mtu_and_names(lab, one_net):
    with open("/etc/resolv.conf", "rb") as f:
        host_resolv = hashlib.sha256(f.read()).hexdigest()
    res = lab.sync(view_of(one_net))
    assert res.ports == {one_net["port_id"]: True}
    assert sorted(res.dhcp_ready) == sorted(h["port_id"] for h in one_net["hosts"])
    ns = names.qdhcp(one_net["network_id"])
    assert ip.addresses(one_net["ns_device"], ns) == {"10.0.0.2/24"}
    assert ip.links(ns)[one_net["ns_device"]]["mac"] == one_net["mac_address"]
    offloads = proc.output(["ethtool", "-k", one_net["ns_device"]], netns=ns)
    assert f"tx-checksumming: {'off' if lab.l2host.userspace_ovs else 'on'}" in offloads   # on: the kernel paths

    g = lab.guest(one_net["hosts"][0]["mac_address"])
    assert guest.dhcp_client(g)
    assert guest_addresses(g) == {"10.0.0.10/24"}
    assert {"dst": "default", "gateway": "10.0.0.1", "dev": "eth0"}.items() <= \
        next(r for r in ip.routes(g) if r["dst"] == "default").items()
    assert ip.links(g)["eth0"]["mtu"] == 1450
    assert "nameserver 10.0.0.2" in guest_sh(g, "cat /etc/resolv.conf")
    out = guest_sh(g, "busybox nslookup vm-b")
    assert "10.0.0.11" in out.split("Name:", 1)[1]
    with open("/etc/resolv.conf", "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == host_resolv      # the host's file was never touched

    ps = proc.output(["ps", "ww", str(_pid(lab, one_net))])
    assert f"--interface={names.tap(one_net['port_id'])}" in ps


def test_second_sync_changes_nothing(lab, one_net):
    lab.sync(view_of(one_net))
    pid, reads = _pid(lab, one_net), _wait_reads(lab, one_net, 1)
    mtimes = {f: os.stat(os.path.join(_net_dir(lab, one_net), f)).st_mtime_ns for f in ("host", "opts")}
    res = lab.driver.sync(view_of(one_net))
    assert not res.changed and res.ports == {one_net["port_id"]: True}
    assert _pid(lab, one_net) == pid
    time.sleep(0.1)
    assert _reads_of_hostsfile(lab, one_net) == reads == 1
    assert mtimes == {f: os.stat(os.path.join(_net_dir(lab, one_net), f)).st_mtime_ns for f in ("host", "opts")}


@every_l2
def test_second_subnet_and_unknown_mac(lab):
    s1, s2 = subnet("10.0.0.0/24"), subnet("10.1.0.0/24")
    h2 = host(s2, "10.1.0.20")
    net = dhcp_network([s1, s2], ["10.0.0.2", "10.1.0.2"], [host(s1, "10.0.0.10"), h2])
    lab.sync(view_of(net))
    g2 = lab.guest(h2["mac_address"])
    assert guest.dhcp_client(g2)
    assert guest_addresses(g2) == {"10.1.0.20/24"}
    by_dst = {r["dst"]: r for r in ip.routes(g2)}
    assert by_dst["default"]["gateway"] == "10.1.0.1"
    assert by_dst["10.0.0.0/24"]["gateway"] is None        # the sibling subnet is on-link (option 121)

    stranger = lab.guest("fa:16:3e:00:00:99")
    assert not guest.dhcp_client(stranger, timeout=2)
    assert guest_addresses(stranger) == set()


@every_l2
def test_changed_ip_is_renewed_with_one_reload(lab, one_net):
    lab.sync(view_of(one_net))
    h = one_net["hosts"][0]
    g = lab.guest(h["mac_address"])
    guest.start_dhcp_client(g, lab.guest_run_dir(g))
    deadline = time.monotonic() + 10                                    # the client runs detached: wait for it
    while guest.configured_address(lab.guest_run_dir(g)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert guest_addresses(g) == {"10.0.0.10/24"}
    pid, reads = _pid(lab, one_net), _wait_reads(lab, one_net, 1)

    h["ip_address"], h["hostname"] = "10.0.0.50", "host-10-0-0-50"
    one_net["hosts"].append(host(one_net["subnets"][0], "10.0.0.51"))     # two host changes in one sync
    res = lab.sync(view_of(one_net))
    assert res.changed and _pid(lab, one_net) == pid                   # reloaded, not restarted
    assert _wait_reads(lab, one_net, reads + 1) == reads + 1           # one SIGHUP for both changes
    guest.renew(g, lab.guest_run_dir(g))
    assert _wait_addresses(g, {"10.0.0.50/24"}) == {"10.0.0.50/24"}
    renewed = guest.client_pid(lab.guest_run_dir(g))          # the restarted client is still ours to stop
    assert renewed is not None
    guest.stop_dhcp_client(lab.guest_run_dir(g))
    assert not proc.pid_alive(renewed)


def _wait_addresses(g: str, want: set[str], timeout: float = 10) -> set[str]:
    """The guest's addresses once they are want (its client runs in the background), or as they are at timeout."""
    deadline = time.monotonic() + timeout
    while guest_addresses(g) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    return guest_addresses(g)


def _leased(lab, net) -> set[tuple[str, str]]:
    return {(lease.mac or lease.iaid, lease.ip_address) for lease in dnsmasq.leases(_net_dir(lab, net))[0]}


def _wait_leased(lab, net, want: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The leases file once it holds exactly want (dnsmasq rewrites it on each release), or as it is at 5 s."""
    deadline = time.monotonic() + 5
    while _leased(lab, net) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    return _leased(lab, net)


def test_freed_address_goes_to_the_next_port(lab, one_net):
    """Delete a port, give its address to a new port (new MAC): the new guest gets it at once, and the leases file
    never keeps the deleted port (what dnsmasq says otherwise: "not using configured address ... leased to")."""
    lab.sync(view_of(one_net))
    old, keep = one_net["hosts"]
    g_old, g_keep = lab.guest(old["mac_address"]), lab.guest(keep["mac_address"])
    assert guest.dhcp_client(g_old) and guest.dhcp_client(g_keep)
    assert _leased(lab, one_net) == {(old["mac_address"], "10.0.0.10"), (keep["mac_address"], "10.0.0.11")}

    one_net["hosts"] = [keep]                               # the port is deleted ...
    lab.sync(view_of(one_net))
    assert _wait_leased(lab, one_net, {(keep["mac_address"], "10.0.0.11")}) == {(keep["mac_address"], "10.0.0.11")}
    new = host(one_net["subnets"][0], "10.0.0.10")          # ... and its address goes to the next one
    one_net["hosts"].append(new)
    lab.sync(view_of(one_net))
    g_new = lab.guest(new["mac_address"])
    assert guest.dhcp_client(g_new, timeout=3)
    assert guest_addresses(g_new) == {"10.0.0.10/24"}


def test_changed_ip_releases_the_old_lease_even_after_an_agent_restart(lab, one_net):
    lab.sync(view_of(one_net))
    h = one_net["hosts"][0]
    assert guest.dhcp_client(lab.guest(h["mac_address"]))
    lab.driver = lab.new_driver()                           # the agent restarts while the address changes
    h["ip_address"] = "10.0.0.60"
    lab.sync(view_of(one_net))
    assert _wait_leased(lab, one_net, set()) == set()
    assert not lab.sync(view_of(one_net)).changed           # nothing left to release: a quiet sync again


def test_dead_dnsmasq_is_restarted(lab, one_net):
    lab.sync(view_of(one_net))
    old = _pid(lab, one_net)
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 3
    while dnsmasq.running(_net_dir(lab, one_net)) and time.monotonic() < deadline:
        time.sleep(0.02)
    res = lab.sync(view_of(one_net))
    assert res.changed and res.ports[one_net["port_id"]]
    assert _pid(lab, one_net) != old
    g = lab.guest(one_net["hosts"][1]["mac_address"])
    assert guest.dhcp_client(g)
    assert guest_addresses(g) == {"10.0.0.11/24"}


def test_agent_restart_keeps_the_one_dnsmasq(lab, one_net):
    lab.sync(view_of(one_net))
    pid = _pid(lab, one_net)
    lab.driver = lab.new_driver()
    res = lab.sync(view_of(one_net))
    assert res.ports[one_net["port_id"]] and sorted(res.dhcp_ready) == sorted(h["port_id"] for h in one_net["hosts"])
    assert _ours(lab, one_net) == [pid]
    assert not lab.driver.sync(view_of(one_net)).changed


def test_subnet_change_restarts_dnsmasq(lab, one_net):
    lab.sync(view_of(one_net))
    pid = _pid(lab, one_net)
    s2 = subnet("10.2.0.0/24")
    s2["network_id"] = one_net["network_id"]
    one_net["subnets"].append(s2)
    one_net["fixed_ips"].append({"subnet_id": s2["id"], "ip_address": "10.2.0.2", "prefixlen": 24,
                                 "cidr": s2["cidr"], "gateway_ip": s2["gateway_ip"]})
    h = host(s2, "10.2.0.7")
    one_net["hosts"].append(h)
    lab.sync(view_of(one_net))
    assert _pid(lab, one_net) != pid and _ours(lab, one_net) == [_pid(lab, one_net)]
    g = lab.guest(h["mac_address"])
    assert guest.dhcp_client(g)
    assert guest_addresses(g) == {"10.2.0.7/24"}


@every_l2
def test_isolated_metadata_route_and_extra_opts(lab):
    s = subnet("10.0.0.0/24")
    h = host(s, "10.0.0.10", extra=[{"opt_name": "ntp-server", "opt_value": "10.0.0.5", "ip_version": 4},
                                    {"opt_name": "150", "opt_value": "10.0.0.6", "ip_version": 4}])
    net = dhcp_network([s], ["10.0.0.2"], [h], isolated_metadata=True)
    lab.sync(view_of(net))
    with open(os.path.join(_net_dir(lab, net), "log")) as f:
        # dnsmasq took every line (whole words: the paths it prints carry random ids, "…-2f01ed45bade")
        assert not [line for line in f if re.search(r"\b(bad|error)\b", line, re.IGNORECASE)]
    assert ip.addresses(net["ns_device"], names.qdhcp(net["network_id"])) == {"10.0.0.2/24", "169.254.169.254/32"}
    g = lab.guest(h["mac_address"])
    assert guest.dhcp_client(g)
    by_dst = {r["dst"]: r for r in ip.routes(g)}
    assert by_dst["169.254.169.254/32"]["gateway"] == "10.0.0.2"
    assert by_dst["default"]["gateway"] == "10.0.0.1"


def test_500_hosts_apply_in_one_reload(lab, one_net):
    lab.sync(view_of(one_net))
    reads = _wait_reads(lab, one_net, 1)
    s = one_net["subnets"][0]
    many = [host(s, f"10.0.{1 + i // 250}.{1 + i % 250}") for i in range(500)]
    s["cidr"] = "10.0.0.0/16"      # room for 500: a range change, so this sync restarts dnsmasq ...
    for f in one_net["fixed_ips"]:
        f["prefixlen"], f["cidr"] = 16, "10.0.0.0/16"
    lab.sync(view_of(one_net))
    s_reads = _wait_reads(lab, one_net, reads + 1)
    pid = _pid(lab, one_net)

    one_net["hosts"].extend(many)  # ... and adding the 500 hosts is a pure host change: one SIGHUP
    t0 = time.perf_counter()
    res = lab.sync(view_of(one_net))
    elapsed = time.perf_counter() - t0
    print(f"\n500 host entries: sync {elapsed * 1000:.1f} ms")
    assert _pid(lab, one_net) == pid and len(res.dhcp_ready) == 502
    assert _wait_reads(lab, one_net, s_reads + 1) == s_reads + 1
    with open(os.path.join(_net_dir(lab, one_net), "host")) as f:
        assert sum(1 for _ in f) == 502
    g = lab.guest(many[-1]["mac_address"])
    assert guest.dhcp_client(g)
    assert guest_addresses(g) == {f"{many[-1]['ip_address']}/16"}


def test_network_leaving_the_view_leaves_nothing(lab, one_net):
    lab.sync(view_of(one_net))
    pid = _pid(lab, one_net)
    net_dir = _net_dir(lab, one_net)
    res = lab.sync(view_of())
    assert res.changed
    assert not ip.netns_exists(names.qdhcp(one_net["network_id"]))
    assert not ip.link_exists(one_net["device"], lab.host_ns)
    assert not os.path.exists(net_dir)
    assert not proc.cmdline(pid) and _ours(lab, one_net) == []
    assert not lab.sync(view_of()).changed


def test_ipv6_slaac_prefix_by_router_advertisement(lab):
    s4 = subnet("10.0.0.0/24")
    s6 = subnet("fd00:2::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    h = host(s4, "10.0.0.10")
    net = dhcp_network([s4, s6], ["10.0.0.2", "fd00:2::2"], [h])
    lab.sync(view_of(net))
    g = lab.guest(h["mac_address"])
    proc.run(["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=2"], netns=g)
    assert guest.dhcp_client(g)
    deadline = time.monotonic() + 10
    while not any(a.startswith("fd00:2:") for a in guest_addresses(g)) and time.monotonic() < deadline:
        time.sleep(0.1)
    b = [int(x, 16) for x in h["mac_address"].split(":")]
    eui64 = bytes([b[0] ^ 2, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    slaac = ipaddress.IPv6Address(ipaddress.IPv6Address("fd00:2::").packed[:8] + eui64)
    assert f"{slaac}/64" in guest_addresses(g)
    assert not any(r["dst"] == "default" for r in ip.routes(g, family=6))   # qdhcp- is nobody's gateway
