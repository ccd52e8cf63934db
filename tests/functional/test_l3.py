"""The L3 driver on the real kernel: routing, NAT and floating IPs between throwaway namespaces."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from netfix_l2 import BACKENDS
from netfix_l3 import GW_IP, fip, l2_hosts, lab, router  # noqa: F401 - lab and l2_hosts are fixtures
from neutrino import names
from neutrino.errors import KernelError
from neutrino.lib import arp, ip, iptables, nsocket, proc

pytestmark = pytest.mark.kernel
every_l2 = pytest.mark.parametrize("lab", BACKENDS, indirect=True)    # tests of traffic through the router


def peer_seen(server_ns: str, listen_ip: str, port: int, client_ns: str, dst: str, dport: int | None = None) -> str:
    """Connect from client_ns to dst:dport; return the source address the listener in server_ns saw."""
    srv = nsocket.listen_tcp(server_ns, listen_ip, port)
    srv.settimeout(5)
    try:
        proc.run(["nc", "-z", "-w", "3", dst, str(dport or port)], netns=client_ns)
        conn, addr = srv.accept()
        conn.close()
        return addr[0]
    finally:
        srv.close()


def nat_rules(ns: str) -> list[str]:
    return [line for line in proc.output(["iptables", "-t", "nat", "-S"], netns=ns).splitlines()
            if line.startswith("-A ")]


def test_router_namespace_routes_and_seed_rules(lab):
    r = router()
    result = lab.sync(r)
    ns = names.qrouter(r["id"])
    assert result.routers == {r["id"]: True}
    assert set(result.ports) == {p["port_id"] for p in r["interfaces"]} | {r["gateway"]["port_id"]}
    qg = r["gateway"]["ns_device"]
    route_lines = sorted(line.split(" proto")[0] for line in proc.output(["ip", "route"], netns=ns).splitlines())
    assert route_lines == sorted([f"default via 172.24.4.1 dev {qg}",
                                  f"10.0.0.0/24 dev {r['interfaces'][0]['ns_device']}",
                                  f"10.0.1.0/24 dev {r['interfaces'][1]['ns_device']}",
                                  f"172.24.4.0/24 dev {qg}"])
    assert ip.links(ns)[qg]["mac"] == r["gateway"]["mac_address"]
    assert proc.output(["sysctl", "-n", "net.ipv4.ip_forward"], netns=ns).strip() == "1"
    assert "tx-checksumming: on" in proc.output(["ethtool", "-k", qg], netns=ns)   # off only for userspace OVS
    r["floating_ips"] = [fip("172.24.4.227", "10.0.0.3")]
    lab.sync(r)
    assert nat_rules(ns) == [
        "-A PREROUTING -j neutron-l3-agent-PREROUTING",
        "-A OUTPUT -j neutron-l3-agent-OUTPUT",
        "-A POSTROUTING -j neutron-l3-agent-POSTROUTING",
        "-A POSTROUTING -j neutron-l3-agent-snat",
        "-A neutron-l3-agent-OUTPUT -d 172.24.4.227/32 -j DNAT --to-destination 10.0.0.3",
        f"-A neutron-l3-agent-POSTROUTING ! -o {qg} -m conntrack ! --ctstate DNAT -j ACCEPT",
        "-A neutron-l3-agent-PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 "
        "-j REDIRECT --to-ports 9697",
        "-A neutron-l3-agent-PREROUTING -d 172.24.4.227/32 -j DNAT --to-destination 10.0.0.3",
        "-A neutron-l3-agent-float-snat -s 10.0.0.3/32 -j SNAT --to-source 172.24.4.227",
        "-A neutron-l3-agent-snat -j neutron-l3-agent-float-snat",
        f"-A neutron-l3-agent-snat -o {qg} -j SNAT --to-source {GW_IP}",
    ]
    assert "172.24.4.227/32" in ip.addresses(qg, ns)


def test_second_sync_changes_nothing(lab):
    r = router()
    r["floating_ips"] = [fip("172.24.4.20", "10.0.0.3")]
    r["port_forwardings"] = [{"id": "pf1", "floating_ip_address": "172.24.4.30", "protocol": "udp",
                              "internal_ip_address": "10.0.1.3", "internal_port": 53, "external_port": 5353}]
    r["routes"] = [{"destination": "192.168.7.0/24", "nexthop": "10.0.0.254"}]
    assert lab.sync(r).changed
    ns = names.qrouter(r["id"])
    before = {t: iptables.parse(iptables.save(t, ns)) for t in ("nat", "filter")}    # rules, not the timestamp
    result = lab.sync(r)
    assert not result.changed
    assert result.floatingips == {r["floating_ips"][0]["id"]: True}
    assert {t: iptables.parse(iptables.save(t, ns)) for t in ("nat", "filter")} == before


@every_l2
def test_east_west_without_nat(lab):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    g2 = lab.guest("g2", "private2", "10.0.1.3")
    r = router()
    r["floating_ips"] = [fip("172.24.4.20", "10.0.0.3")]    # a FIP must not change east-west sources either
    lab.sync(r)
    assert peer_seen(g2, "10.0.1.3", 5001, g1, "10.0.1.3") == "10.0.0.3"
    assert peer_seen(g1, "10.0.0.3", 5002, g2, "10.0.0.3") == "10.0.1.3"


def test_admin_down_router_plugs_its_ports_but_forwards_nothing(lab):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    lab.guest("g2", "private2", "10.0.1.3")
    r = router()
    r["admin_state_up"] = False
    result = lab.sync(r)
    ns = names.qrouter(r["id"])
    assert all(result.ports.values()) and set(result.ports) >= {p["port_id"] for p in r["interfaces"]}
    assert proc.output(["sysctl", "-n", "net.ipv4.ip_forward"], netns=ns).strip() == "0"
    assert proc.run(["ping", "-c1", "-W1", "10.0.1.3"], netns=g1, check=False).returncode != 0


@every_l2
def test_default_snat_uses_gateway_ip(lab):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    lab.sync(router())
    assert peer_seen(lab.host, "172.24.4.1", 5003, g1, "172.24.4.1") == GW_IP


@every_l2
def test_floating_ip_in_and_out_then_removed(lab):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    r = router()
    r["floating_ips"] = [fip("172.24.4.20", "10.0.0.3")]
    result = lab.sync(r)
    assert result.floatingips == {r["floating_ips"][0]["id"]: True}
    assert peer_seen(g1, "0.0.0.0", 22, lab.host, "172.24.4.20") == "172.24.4.1"
    assert peer_seen(lab.host, "172.24.4.1", 5004, g1, "172.24.4.1") == "172.24.4.20"
    ns = names.qrouter(r["id"])
    r["floating_ips"] = []
    assert lab.sync(r).changed
    assert not [rule for rule in nat_rules(ns) if "172.24.4.20" in rule or "10.0.0.3" in rule]
    assert "172.24.4.20/32" not in ip.addresses(r["gateway"]["ns_device"], ns)
    assert peer_seen(lab.host, "172.24.4.1", 5005, g1, "172.24.4.1") == GW_IP


@every_l2
def test_port_forwarding(lab):
    g2 = lab.guest("g2", "private2", "10.0.1.3")
    r = router()
    r["port_forwardings"] = [{"id": "pf1", "floating_ip_address": "172.24.4.30", "protocol": "tcp",
                              "internal_ip_address": "10.0.1.3", "internal_port": 22, "external_port": 2222}]
    lab.sync(r)
    assert peer_seen(g2, "10.0.1.3", 22, lab.host, "172.24.4.30", 2222) == "172.24.4.1"
    with pytest.raises(KernelError):      # only the forwarded port is open on that address
        peer_seen(g2, "10.0.1.3", 23, lab.host, "172.24.4.30", 23)


@every_l2
def test_metadata_port_only_through_redirect(lab):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    r = router()
    lab.sync(r)
    srv = nsocket.listen_tcp(names.qrouter(r["id"]), "0.0.0.0", 9697)
    try:
        direct = proc.run(["nc", "-z", "-w", "1", "10.0.0.1", "9697"], netns=g1, check=False)
        redirected = proc.run(["nc", "-z", "-w", "2", "169.254.169.254", "80"], netns=g1, check=False)
    finally:
        srv.close()
    assert direct.returncode != 0
    assert redirected.returncode == 0


@every_l2
def test_new_floating_ip_is_announced_by_gratuitous_arp(lab):
    r = router()
    lab.sync(r)
    cap = nsocket.packet_socket(lab.host, "br-ex", arp.ETH_P_ARP)
    cap.settimeout(2)
    try:
        r["floating_ips"] = [fip("172.24.4.21", "10.0.0.3")]
        lab.sync(r)
        frame = cap.recv(128)
        while frame[28:32] != bytes([172, 24, 4, 21]):
            frame = cap.recv(128)
    finally:
        cap.close()
    assert frame[6:12] == bytes.fromhex(r["gateway"]["mac_address"].replace(":", ""))
    assert frame[38:42] == frame[28:32]


def test_extra_routes_and_gateway_removal(lab):
    r = router()
    r["routes"] = [{"destination": "192.168.7.0/24", "nexthop": "10.0.0.254"}]
    lab.sync(r)
    ns = names.qrouter(r["id"])
    assert {(x["dst"], x["gateway"]) for x in ip.routes(ns) if x["gateway"]} == {
        ("default", "172.24.4.1"), ("192.168.7.0/24", "10.0.0.254")}
    gone = r["interfaces"].pop()["ns_device"]
    r["routes"], r["gateway"] = [], None
    lab.sync(r)
    assert gone not in ip.links(ns)
    assert not [x for x in ip.routes(ns) if x["gateway"]]
    assert not [n for n in ip.links(ns) if n.startswith("qg-")]
    assert not [rule for rule in nat_rules(ns) if "SNAT" in rule or "qg-" in rule]


def test_router_leaving_view_is_deleted(lab):
    r1, r2 = router(), router(interfaces=("private",), gateway=False)
    lab.sync(r1, r2)
    assert ip.netns_exists(names.qrouter(r2["id"]))
    r1["admin_state_up"] = False
    lab.sync(r2)
    assert not ip.netns_exists(names.qrouter(r1["id"]))
    deadline = time.monotonic() + 3     # the kernel frees a deleted namespace's devices asynchronously
    while ip.link_exists(r1["gateway"]["device"], lab.host) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ip.link_exists(r1["gateway"]["device"], lab.host)
    assert ip.netns_exists(names.qrouter(r2["id"]))
    with open(lab.driver.state_file) as f:
        assert json.load(f) == [r2["id"]]


def test_thousand_floating_ips_in_one_sync(lab):
    r = router()
    lab.sync(r)
    r["floating_ips"] = [fip(f"172.25.{i // 250}.{i % 250 + 1}", f"10.0.{i // 250 + 2}.{i % 250 + 1}")
                         for i in range(1000)]
    t0 = time.perf_counter()
    result = lab.sync(r)
    elapsed = time.perf_counter() - t0
    ns = names.qrouter(r["id"])
    print(f"\n1000 FIPs applied in {elapsed:.3f} s")
    assert len(result.floatingips) == 1000 and all(result.floatingips.values())
    assert len(ip.addresses(r["gateway"]["ns_device"], ns)) == 1001
    assert len([x for x in nat_rules(ns) if "-j DNAT" in x]) == 2000
    t0 = time.perf_counter()
    r["floating_ips"] = []
    lab.sync(r)
    print(f"1000 FIPs removed in {time.perf_counter() - t0:.3f} s")
    assert len(ip.addresses(r["gateway"]["ns_device"], ns)) == 1


def iperf(server_ns: str, server_ip: str, client_ns: str, dst: str) -> float:
    """Gbit/s of one 3 s iperf3 TCP run; the server is ours and stopped by pid."""
    srv = subprocess.Popen(proc.netns_argv(["iperf3", "-s", "-1", "-B", server_ip, "-p", "5201"], server_ns),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not proc.output(["ss", "-Hltn", "sport = :5201"], netns=server_ns).strip():
            assert time.monotonic() < deadline, "the iperf3 server did not listen"
            time.sleep(0.02)
        out = proc.output(["iperf3", "-c", dst, "-p", "5201", "-t", "3", "-J"], netns=client_ns, timeout=20)
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        proc.terminate(srv.pid)
        srv.wait(timeout=5)


def test_nat_throughput_against_bare_veth(lab):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    lab.sync(router())
    a, b = f"{lab.host}-a", f"{lab.host}-b"
    lab.namespaces += [a, b]
    ip.ensure_netns(a)
    ip.ensure_netns(b)
    ip.ensure_veth("eth0", "eth0", netns=a, peer_netns=b)
    ip.ensure_addresses("eth0", ["192.0.2.1/24"], a)
    ip.ensure_addresses("eth0", ["192.0.2.2/24"], b)
    bare = iperf(b, "192.0.2.2", a, "192.0.2.2")
    nat = iperf(lab.host, "172.24.4.1", g1, "172.24.4.1")
    print(f"\nbare veth {bare:.1f} Gbit/s, guest -> external through SNAT {nat:.1f} Gbit/s, ratio {nat / bare:.2f}")
    assert nat > 0.2 * bare
