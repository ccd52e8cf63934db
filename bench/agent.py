"""Agent benchmark, all inside throwaway namespaces (never the root namespace).

    python bench/agent.py [--ports 1000] [--rules 10] [--ovs-ports 1000[,5000]] [--skip-scale] [--skip-lab]
                          [--boots 50]
                          [--backends ovs+iptables,linuxbridge+nftables]
    python bench/agent.py --iptables 1000,5000 [--rules 10]

Scale (drivers on one emulated host, hand-built views): cold sync of N instance ports with R rules each and one
N-member remote group, idle resync (same view, kernel re-read), one port added at N, for ovs+iptables (at
--ovs-ports), linuxbridge+iptables and linuxbridge+nftables. End to end (a temporary `neutrino up` lab): up → vm1
reachable, port create → ACTIVE (p50/p99 over --boots ports), port create → guest has a DHCP lease, the same during
churn (delete an instance, boot one on the address it freed), 500 DHCP host entries in one reload, floating IP
associate → reachable, and TCP throughput guest → external through the router's NAT as a ratio of the same hops
built by hand without neutrino's rules (plain forwarding, one MASQUERADE) and of a bare veth pair, in the same run.
--iptables: only the iptables firewall driver (the ovs backend's chains, no L2, no taps: `-m physdev` does not need
them) at each count: cold sync, one port added, and the restore processes' share of each.
"""
from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.lib import ethtool, ip, ovs, proc


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def line(name: str, value: str) -> None:
    print(f"  {name:<46} {value}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


# --- scale: hand-built views on one emulated host ------------------------------------------------------------------

def scale_view(n: int, rules: int, nets: int = 4) -> dict:
    """N instance ports over a few networks, each port in its own group of R rules; every group also admits the
    members of one shared group (N members) — the remote-group case of the issue."""
    networks, ports, groups = {}, [], {}
    shared = str(uuid.uuid4())
    for k in range(nets):
        nid = str(uuid.uuid4())
        cidr = f"10.{100 + k}.0.0/16"
        networks[nid] = {"id": nid, "name": f"n{k}", "mtu": 1450, "external": False,
                         "segment": {"network_type": "vxlan", "segmentation_id": 100 + k, "physical_network": None},
                         "subnets": [{"id": nid, "network_id": nid, "cidr": cidr, "ip_version": 4,
                                      "gateway_ip": f"10.{100 + k}.0.1", "enable_dhcp": True, "dns_nameservers": [],
                                      "host_routes": [], "allocation_pools": [], "ipv6_ra_mode": None,
                                      "ipv6_address_mode": None}]}
    net_ids = list(networks)
    members = []
    for i in range(n):
        pid, gid = str(uuid.uuid4()), str(uuid.uuid4())
        nid = net_ids[i % nets]
        addr = str(ipaddress.ip_address(f"10.{100 + i % nets}.0.0") + 10 + i // nets)
        members.append(addr)
        ports.append({"id": pid, "network_id": nid, "kind": "instance", "device": names.tap(pid), "ns_device": None,
                      "mac_address": "fa:16:3e:%02x:%02x:%02x" % (i >> 16 & 255, i >> 8 & 255, i & 255),
                      "fixed_ips": [{"subnet_id": nid, "ip_address": addr, "prefixlen": 16,
                                     "cidr": networks[nid]["subnets"][0]["cidr"], "gateway_ip": None}],
                      "admin_state_up": True, "device_owner": "compute:nova", "device_id": pid,
                      "port_security_enabled": True, "security_groups": [gid, shared], "allowed_address_pairs": [],
                      "mtu": 1450})
        groups[gid] = {"id": gid, "stateful": True, "rules": [
            {"id": str(uuid.uuid4()), "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
             "port_range_min": 1000 + r, "port_range_max": 1000 + r, "remote_ip_prefix": None,
             "remote_group_id": None} for r in range(rules)]}
    groups[shared] = {"id": shared, "stateful": True, "rules": [
        {"id": str(uuid.uuid4()), "direction": "ingress", "ethertype": "IPv4", "protocol": None,
         "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": shared}]}
    return {"schema": 1, "revision": 1, "host": "bench", "networks": networks, "ports": ports,
            "security_groups": groups, "remote_groups": {shared: {"IPv4": sorted(members), "IPv6": []}},
            "tunnels": {"local_ip": None, "peers": []}, "fdb": [], "routers": [], "dhcp": [],
            "metadata": {"port": 9697}}


def make_taps(host_ns: str, peer_ns: str, ports: list[dict]) -> None:
    """The instances' taps (what a hypervisor makes), in bulk: one `ip -batch` per namespace pair."""
    ip.batch([f"link add {p['device']} type veth peer name g{p['id'][:11]} netns {peer_ns}" for p in ports], host_ns)
    ip.batch([f"link set {p['device']} up" for p in ports], host_ns)


def drivers(kind: str, host_ns: str, rundir: str):
    from neutrino.agent.firewall.iptables import IptablesFirewallDriver
    from neutrino.agent.firewall.nftables import NftablesFirewallDriver
    from neutrino.agent.l2.linuxbridge import LinuxBridgeL2Driver
    from neutrino.agent.l2.ovs import OvsL2Driver
    from neutrino.names import IPT_LB_PREFIX
    cfg = HostConfig(host="bench", state_dir=rundir, ovs_db=ovs.db_url(rundir))
    l2_kind, fw_kind = kind.split("+")
    l2 = OvsL2Driver(cfg, netns=host_ns) if l2_kind == "ovs" else LinuxBridgeL2Driver(cfg, netns=host_ns)
    if fw_kind == "nftables":
        return [l2, NftablesFirewallDriver(cfg, ns=host_ns)]
    if l2_kind == "ovs":
        return [l2, IptablesFirewallDriver(cfg, ns=host_ns)]
    return [l2, IptablesFirewallDriver(cfg, ns=host_ns, prefix=IPT_LB_PREFIX)]


def timed_sync(drvs, view) -> tuple[float, list[float]]:
    parts = []
    for d in drvs:
        t = time.perf_counter()
        d.sync(view)
        parts.append(time.perf_counter() - t)
    return sum(parts), parts


@contextlib.contextmanager
def emulated_host():
    """(host_ns, peer_ns, rundir) of a throwaway emulated host: its namespace, one for the instances' ends of their
    taps, and a run directory; all removed afterwards (OVS daemons started there are stopped by pid)."""
    tag = uuid.uuid4().hex[:6]
    host_ns, peer_ns = f"nb{tag}-host", f"nb{tag}-peers"
    rundir = tempfile.mkdtemp(prefix="neutrino-bench-")
    try:
        ip.ensure_netns(host_ns)
        ip.ensure_netns(peer_ns)
        yield host_ns, peer_ns, rundir
    finally:   # the kernel frees the namespaces' devices and rules at once; the daemons go by pid
        ovs.stop_daemons(rundir)
        ip.delete_netns(peer_ns)
        ip.delete_netns(host_ns)
        shutil.rmtree(rundir, ignore_errors=True)


def extra_port(view: dict, rules: int) -> dict:
    """One more instance port for a scale view: on its first port's network and groups, at an address of its own."""
    extra = scale_view(1, rules)["ports"][0]
    extra.update(network_id=view["ports"][0]["network_id"], security_groups=view["ports"][0]["security_groups"])
    extra["fixed_ips"][0]["ip_address"] = "10.100.250.250"
    return extra


@contextlib.contextmanager
def scale_host(kind: str, count: int, rules: int):
    """An emulated host with count tapped instance ports under kind's drivers, cold-synced and resynced once (both
    printed); yields (add, view, drivers), add() making one more port's tap and adding it to the view."""
    print(f"\nscale [{kind}]: {count} instance ports x {rules} rules, one {count}-member remote group")
    with emulated_host() as (host_ns, peer_ns, rundir):
        if kind.startswith("ovs"):
            ovs.start_daemons(rundir, host_ns)
        view = scale_view(count, rules)
        t = time.perf_counter()
        make_taps(host_ns, peer_ns, view["ports"])
        line(f"{count} taps made by the 'hypervisor'", ms(time.perf_counter() - t))
        drvs = drivers(kind, host_ns, rundir)
        cold, parts = timed_sync(drvs, view)
        line("cold sync", f"{ms(cold)}  (l2 {parts[0]:.2f} s, firewall {parts[1]:.2f} s)")
        idle, parts = timed_sync(drvs, view)
        line("idle resync (kernel re-read, no change)", f"{ms(idle)}  (l2 {parts[0]:.2f} s, "
                                                        f"firewall {parts[1]:.2f} s)")

        def add() -> dict:
            extra = extra_port(view, rules)
            view["ports"].append(extra)
            make_taps(host_ns, peer_ns, [extra])
            return extra
        yield add, view, drvs


def scale(n: int, rules: int) -> None:
    """The linuxbridge backend with either firewall (ovs: scale_ovs)."""
    for kind in ("linuxbridge+iptables", "linuxbridge+nftables"):
        with scale_host(kind, n, rules) as (add, view, drvs):
            add()
            one, parts = timed_sync(drvs, view)
            line(f"one port added at {n}", f"{ms(one)}  (l2 {parts[0]:.2f} s, firewall {parts[1]:.2f} s)")


# --- linuxbridge + nftables hot paths (issue 19) ---------------------------------------------------------------

def lb_scale(n: int, rules: int, at: tuple[int, ...] = (10, 1000, 5000)) -> None:
    """linuxbridge + nftables: cold sync and idle resync of n ports, then one port added (and removed again) at each
    size in `at`: the incremental path should cost what it costs at 10. Sizes below n get a host of their own;
    from n on, the host is grown to each size. Each add/remove line also gives this process's CPU time (nft's
    commits run in its threads), which load distorts less than wall time."""
    print(f"\nlinuxbridge+nftables: {n} instance ports x {rules} rules, one remote group of all of them")
    for small in sorted(s for s in at if s < n):
        with emulated_host() as (host_ns, peer_ns, rundir):
            view = scale_view(small, rules)
            make_taps(host_ns, peer_ns, view["ports"])
            drvs = drivers("linuxbridge+nftables", host_ns, rundir)
            timed_sync(drvs, view)
            _lb_one_port(drvs, view, host_ns, peer_ns, rules, small)
    sizes = sorted({n, *(s for s in at if s > n)})
    with emulated_host() as (host_ns, peer_ns, rundir):
        full = scale_view(max(sizes), rules, nets=max(4, -(-max(sizes) // 1000)))   # a bridge takes 1024 ports
        drvs = drivers("linuxbridge+nftables", host_ns, rundir)
        made = 0
        for size in sizes:
            view = _lb_prefix(full, size)
            make_taps(host_ns, peer_ns, view["ports"][made:])
            made = size
            cold, parts = timed_sync(drvs, view)
            if size == n:
                line(f"cold sync of {size} ports", f"{ms(cold)}  (l2 {parts[0]:.2f} s, firewall {parts[1]:.2f} s)")
                idle, parts = timed_sync(drvs, view)
                line(f"idle resync at {size} (no change)", f"{ms(idle)}  (l2 {parts[0]:.3f} s, "
                                                           f"firewall {parts[1]:.3f} s)")
            if size in at:
                _lb_one_port(drvs, view, host_ns, peer_ns, rules, size)


def _lb_one_port(drvs, view: dict, host_ns: str, peer_ns: str, rules: int, size: int) -> None:
    """One port added to the view (joining the shared group) and removed again, five times: the median lines."""
    adds, removes = [], []
    for k in range(5):
        extra = _lb_extra(view, rules, k)
        make_taps(host_ns, peer_ns, [extra])
        members = view["remote_groups"]
        view["ports"].append(extra)     # the new port joins the shared group: one set element more
        view["remote_groups"] = {g: {"IPv4": sorted([*m["IPv4"], extra["fixed_ips"][0]["ip_address"]]),
                                     "IPv6": []} for g, m in members.items()}
        adds.append(_cpu_timed_sync(drvs, view))
        view["ports"].pop()
        view["remote_groups"] = members
        removes.append(_cpu_timed_sync(drvs, view))
        ip.delete_link(extra["device"], host_ns)
    for what, runs in (("added", adds), ("removed", removes)):
        wall, parts, cpu = sorted(runs)[len(runs) // 2]
        line(f"one port {what} at {size} (median of 5)", f"{ms(wall)}  (l2 {ms(parts[0]).strip()}, "
                                                         f"firewall {ms(parts[1]).strip()}; CPU {ms(cpu).strip()})")


def _cpu_timed_sync(drvs, view) -> tuple[float, list[float], float]:
    cpu = time.process_time()
    wall, parts = timed_sync(drvs, view)
    return wall, parts, time.process_time() - cpu


def _lb_prefix(full: dict, size: int) -> dict:
    """The first `size` ports of a scale view, the shared remote group holding just their addresses."""
    view = dict(full, ports=full["ports"][:size])
    shared = next(iter(full["remote_groups"]))
    view["remote_groups"] = {shared: {"IPv4": sorted(p["fixed_ips"][0]["ip_address"] for p in view["ports"]),
                                      "IPv6": []}}
    return view


def _lb_extra(view: dict, rules: int, k: int) -> dict:
    extra = scale_view(1, rules)["ports"][0]
    extra["network_id"] = view["ports"][0]["network_id"]
    extra["fixed_ips"][0]["ip_address"] = f"10.100.250.{250 - k}"
    extra["security_groups"] = view["ports"][0]["security_groups"]
    return extra


def lb_e2e(boots: int) -> None:
    """A temporary linuxbridge + nftables lab: port create -> ACTIVE and -> guest has its lease (p50/p99), with where
    the time goes: the API calls, the tap plug (lib.ip, as instances/guest.plug does it), the agent and report, and
    the guest's DHCP exchange after ACTIVE (dhclient started, lease applied by its event script)."""
    from neutrino.instances import guest, manager
    from neutrino.seed import lifecycle
    from neutrino.lab.paths import Lab

    state = tempfile.mkdtemp(prefix="neutrino-bench-lab-")
    lab = Lab(state)
    print(f"\nlinuxbridge+nftables end to end: a temporary lab in {state}")
    try:
        lifecycle.up(lab, l2="linuxbridge", firewall="nftables", port=0, identity_port=0, say=lambda _m: None)
        clouds = manager.Clouds.of(lab)
        net = clouds.user.network.find_network("private", ignore_missing=False)
        host = lab.host_name(1)
        rows = []
        for i in range(boots):
            t = time.perf_counter()
            port = clouds.user.network.create_port(network_id=net.id, name=f"l{i}", device_owner="compute:nova",
                                                   device_id=str(uuid.uuid4()))
            clouds.admin.network.update_port(port, binding_host_id=host)
            api = time.perf_counter()
            guest.plug(lab, f"l{i}", host, port.id, port.mac_address, net.mtu)
            plugged = time.perf_counter()
            active = wait_active(clouds, port.id, t)
            got = guest.configure(lab, f"l{i}", timeout=10)
            rows.append((active, time.perf_counter() - t if got else float("inf"), api - t, plugged - api,
                         t + active - plugged))
        active, leases, api, plug, agent = zip(*rows)
        line(f"port create -> ACTIVE ({boots} ports)", f"p50 {ms(pct(active, 50))}  p99 {ms(pct(active, 99))}")
        line(f"port create -> guest has a DHCP lease ({boots})",
             f"p50 {ms(pct(leases, 50))}  p99 {ms(pct(leases, 99))}")
        line("... of ACTIVE: create + bind (API)", f"p50 {ms(pct(api, 50))}")
        line("... of ACTIVE: tap plug (lib.ip)", f"p50 {ms(pct(plug, 50))}")
        line("... of ACTIVE: plugged -> ACTIVE (agent, report)", f"p50 {ms(pct(agent, 50))}")
        exchange = [lease - act for act, lease in zip(active, leases)]
        line("... of lease: ACTIVE -> guest configured (DHCP)", f"p50 {ms(pct(exchange, 50))}  p99 {ms(pct(exchange, 99))}")
    finally:
        lifecycle.down(lab, say=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)


def scale_ovs(counts: list[int], rules: int) -> None:
    """ovs+iptables at each count: cold sync, idle resync (a full read: the agent's periodic resync), then one port
    added and one removed while the driver trusts what it last read (a view change between two resyncs: OVSDB rows
    converted as announced, links re-read as announced, flows and chains sent as a difference), each with the
    number of processes it ran, and ovs-vswitchd's answer time idle and right after one link change (it reconfigures
    all its ports on every link announcement of its namespace: the floor under the incremental path). Userspace OVS
    (no openvswitch module here) runs on the same 2 cores: what it costs shows in the cold sync and in those answer
    times, not in our work."""
    for count in counts:
        with scale_host("ovs+iptables", count, rules) as (add, view, drvs):
            extra = add()
            with counting_processes() as runs:
                one, parts = timed_sync(drvs, view)
            line(f"one port added at {count}", f"{ms(one)}  (l2 {parts[0]:.3f} s, firewall {parts[1]:.3f} s; "
                                               f"{len(runs)} processes: {', '.join(runs)})")
            view["ports"].remove(extra)
            with counting_processes() as runs:
                one, parts = timed_sync(drvs, view)
            line(f"one port removed at {count}", f"{ms(one)}  (l2 {parts[0]:.3f} s, firewall {parts[1]:.3f} s; "
                                                 f"{len(runs)} processes)")
            idle, after = vswitchd_answer(drvs[0].rundir, drvs[0].netns)
            line(f"ovs-vswitchd answer at {count}: idle / after a link", f"{ms(idle)} / {ms(after)}  (best / median of 3)")


def scale_iptables(counts: list[int], rules: int) -> None:
    """The iptables firewall alone at each count (what a cold sync and a one-port add cost in it, without the L2
    driver's share): the restores' time is summed from the processes run."""
    from neutrino.agent.firewall.iptables import IptablesFirewallDriver
    for count in counts:
        print(f"\nscale [iptables firewall alone]: {count} ports x {rules} rules, one {count}-member remote group")
        with emulated_host() as (host_ns, _peers, rundir):
            view = scale_view(count, rules)
            drv = IptablesFirewallDriver(HostConfig(host="bench", state_dir=rundir), ns=host_ns)
            for what in ("cold sync", f"one port added at {count}"):
                if what != "cold sync":
                    view["ports"].append(extra_port(view, rules))
                with counting_processes() as runs:
                    t = time.perf_counter()
                    drv.sync(view)
                    took = time.perf_counter() - t
                line(what, f"{ms(took)}  ({len(runs)} processes: {', '.join(runs)}; load "
                           f"{os.getloadavg()[0]:.2f})")


def vswitchd_answer(rundir: str, host_ns: str, rounds: int = 3) -> tuple[float, float]:
    """How long ovs-vswitchd takes to answer a request (`ovs-appctl version`) when idle, and right after a veth
    pair appeared in its namespace: OVS 3.1 reconfigures every port it has on any link announcement (if-notifier),
    so this is the floor under anything the L2 driver changes in the kernel and then waits for."""
    pid = ovs.daemon_pid(rundir, "ovs-vswitchd")
    ctl = ["ovs-appctl", "-t", os.path.join(rundir, f"ovs-vswitchd.{pid}.ctl"), "version"]

    def answer() -> float:
        t = time.perf_counter()
        proc.run(ctl)
        return time.perf_counter() - t
    idle = min(answer() for _ in range(rounds))     # the best of a few: nothing pending
    after = []
    for _ in range(rounds):
        ip.batch(["link add nbprobe0 type veth peer name nbprobe1"], host_ns)
        after.append(answer())
        ip.batch(["link del nbprobe0"], host_ns)
        deadline = time.monotonic() + 10
        while answer() > 2 * idle + 0.01 and time.monotonic() < deadline:   # the removal's reconfigurations
            pass
    return idle, statistics.median(after)


@contextlib.contextmanager
def counting_processes():
    """The programs proc.run ran meanwhile, each with how long it took."""
    runs: list[str] = []
    real = proc.run

    def run(argv, *a, **kw):
        t = time.perf_counter()
        try:
            return real(argv, *a, **kw)
        finally:
            runs.append(f"{argv[0]} {(time.perf_counter() - t) * 1000:.0f} ms")
    proc.run = run
    try:
        yield runs
    finally:
        proc.run = real


def _subnet(nid: str, cidr: str, gw: str, dhcp: bool = True) -> dict:
    return {"id": nid, "network_id": nid, "cidr": cidr, "ip_version": 4, "gateway_ip": gw, "enable_dhcp": dhcp,
            "dns_nameservers": [], "host_routes": [], "allocation_pools": [], "ipv6_ra_mode": None,
            "ipv6_address_mode": None}


def _fixed(nid: str, addr: str, cidr: str, gw: str | None) -> list[dict]:
    return [{"subnet_id": nid, "ip_address": addr, "prefixlen": int(cidr.split("/")[1]), "cidr": cidr,
             "gateway_ip": gw}]


def dhcp_and_l3(hosts: int, fips: int) -> None:
    """500 DHCP host entries applied in one reload; 1000 floating IPs applied on one router."""
    from neutrino.agent.dhcp import DhcpDriver
    from neutrino.agent.l3 import L3Driver
    print("\nDHCP and L3 on one emulated host")
    tag = uuid.uuid4().hex[:6]
    host_ns = f"nb{tag}-host"
    state = tempfile.mkdtemp(prefix="neutrino-bench-")
    cfg = HostConfig(host="bench", state_dir=state)
    nid, pid = str(uuid.uuid4()), str(uuid.uuid4())
    cidr = "10.50.0.0/16"
    entry = {"network_id": nid, "port_id": pid, "ns_device": names.tap(pid), "device": names.ns_peer(pid),
             "mac_address": "fa:16:3e:00:00:02", "fixed_ips": _fixed(nid, "10.50.0.2", cidr, "10.50.0.1"),
             "mtu": 1450, "domain": "openstacklocal", "subnets": [_subnet(nid, cidr, "10.50.0.1")], "hosts": [],
             "isolated_metadata": False}
    view = scale_view(0, 0, nets=0)
    view["dhcp"] = [entry]
    dhcp = DhcpDriver(cfg, host_ns=host_ns)
    l3 = L3Driver(cfg, host_ns=host_ns)
    try:
        ip.ensure_netns(host_ns)
        dhcp.sync(view)
        entry["hosts"] = [{"port_id": str(uuid.uuid4()), "mac_address": "fa:16:3e:01:%02x:%02x" % (i >> 8, i & 255),
                           "ip_address": str(ipaddress.ip_address("10.50.1.0") + i), "subnet_id": nid,
                           "hostname": f"host-{i}", "extra_dhcp_opts": []} for i in range(hosts)]
        t = time.perf_counter()
        dhcp.sync(view)
        line(f"{hosts} DHCP host entries, one reload", ms(time.perf_counter() - t))
        ext, gw_pid, if_pid, rid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        router = {"id": rid, "name": "r", "admin_state_up": True, "routes": [], "port_forwardings": [],
                  "interfaces": [{"port_id": if_pid, "network_id": nid, "mac_address": "fa:16:3e:00:00:01",
                                  "ns_device": names.qr(if_pid), "device": names.ns_peer(if_pid),
                                  "fixed_ips": _fixed(nid, "10.50.0.1", cidr, "10.50.0.1"), "mtu": 1450}],
                  "gateway": {"port_id": gw_pid, "network_id": ext, "mac_address": "fa:16:3e:00:00:03",
                              "ns_device": names.qg(gw_pid), "device": names.ns_peer(gw_pid), "enable_snat": True,
                              "fixed_ips": _fixed(ext, "172.30.0.2", "172.30.0.0/16", "172.30.0.1"), "mtu": 1500},
                  "floating_ips": []}
        view["routers"] = [router]
        l3.sync(view)
        router["floating_ips"] = [{"id": str(uuid.uuid4()), "port_id": str(uuid.uuid4()),
                                   "floating_ip_address": str(ipaddress.ip_address("172.30.10.0") + i),
                                   "fixed_ip_address": str(ipaddress.ip_address("10.50.1.0") + i)}
                                  for i in range(fips)]
        t = time.perf_counter()
        l3.sync(view)
        line(f"{fips} floating IPs applied on one router", ms(time.perf_counter() - t))
        t = time.perf_counter()
        l3.sync(view)
        line(f"router resync with {fips} floating IPs (no change)", ms(time.perf_counter() - t))
    finally:
        l3.cleanup()
        dhcp.cleanup()
        ip.delete_netns(host_ns)
        shutil.rmtree(state, ignore_errors=True)


# --- end to end: a temporary lab ------------------------------------------------------------------------------------

def e2e(l2: str, firewall: str, boots: int = 50) -> None:
    from neutrino.instances import guest, manager
    from neutrino.lab import hosts
    from neutrino.seed import lifecycle
    from neutrino.lab.paths import Lab

    state = tempfile.mkdtemp(prefix="neutrino-bench-lab-")
    lab = Lab(state)
    print(f"\nend to end [{l2}+{firewall}]: a temporary lab in {state}")
    try:
        res = lifecycle.up(lab, l2=l2, firewall=firewall, port=0, identity_port=0, say=lambda _m: None)
        line("neutrino up -> vm1 reachable (icmp + tcp/22)", f"{res.seconds:8.2f} s   reachable={res.reachable}")
        clouds = manager.Clouds.of(lab)
        net = clouds.user.network.find_network("private", ignore_missing=False)
        host = lab.host_name(1)
        host_ns = lab.host_ns(host)
        # first, while the switch holds what the bare path has (vm1, DHCP, router): userspace OVS polls every port
        # it holds, so 60 booted guests would slow the lab's path for reasons that are not neutrino's rules
        nat_path(l2, host_ns, lab.guest_ns("vm1"), net.mtu)

        def boot(name: str) -> tuple[float, float]:
            """As nova does it: port, bind it to the host, plug the tap, wait for ACTIVE, boot; (active, lease) s."""
            t = time.perf_counter()
            port = clouds.user.network.create_port(network_id=net.id, name=name, device_owner="compute:nova",
                                                   device_id=str(uuid.uuid4()))
            clouds.admin.network.update_port(port, binding_host_id=host)
            guest.plug(lab, name, host, port.id, port.mac_address, net.mtu)
            active = wait_active(clouds, port.id, t)
            got = guest.configure(lab, name, timeout=10)
            return active, time.perf_counter() - t if got else float("inf")

        active, leases = zip(*(boot(f"b{i}") for i in range(boots)))
        line(f"port create -> ACTIVE ({boots} ports)", f"p50 {ms(pct(active, 50))}  p99 {ms(pct(active, 99))}")
        line(f"port create -> guest has a DHCP lease ({boots})",
             f"p50 {ms(pct(leases, 50))}  p99 {ms(pct(leases, 99))}")
        churn, reused = [], 0
        for i in range(boots // 5, boots):     # churn: delete an instance, boot one that gets the freed address
            old = manager.find_port(clouds, f"b{i}")
            clouds.user.network.delete_port(old)
            guest.unplug(lab, f"b{i}")
            churn.append(boot(f"c{i}")[1])
            reused += manager.find_port(clouds, f"c{i}").fixed_ips == old.fixed_ips
        line(f"... during churn, {reused}/{len(churn)} on a freed address",
             f"p50 {ms(pct(churn, 50))}  p99 {ms(pct(churn, 99))}")

        public = clouds.user.network.find_network("public", ignore_missing=False)
        reach = []
        for i in range(boots // 5):         # the ports the churn left in place
            port = manager.find_port(clouds, f"b{i}")
            t = time.perf_counter()
            fip = clouds.user.network.create_ip(floating_network_id=public.id, port_id=port.id)
            deadline = t + 30
            while time.perf_counter() < deadline and not hosts.ping(host_ns, fip.floating_ip_address, timeout=0.2):
                pass
            reach.append(time.perf_counter() - t)
        line(f"floating IP associate -> ping from outside ({boots // 5})", f"p50 {ms(statistics.median(reach))}")
    finally:
        lifecycle.down(lab, say=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)


def nat_path(l2: str, host_ns: str, guest_ns: str, mtu: int, rounds: int = 3) -> None:
    """TCP guest -> external through the lab router's NAT against the same hops built by hand without neutrino's
    rules (bare_nat_ovs on ovs, bare_nat on linuxbridge), alternated `rounds` times: the machine is shared, so
    each ratio compares runs seconds apart, and the median ratio is the figure."""
    bare_path = bare_nat_ovs if l2 == "ovs" else bare_nat
    nats, plains, ratios = [], [], []
    for _ in range(rounds):
        nats.append(iperf(host_ns, "172.24.4.1", guest_ns))
        plains.append(bare_path(mtu))
        ratios.append(nats[-1] / plains[-1] if plains[-1] else 0.0)
    bare = bare_veth()
    line("TCP guest -> external through the router's NAT", f"{statistics.median(nats):8.2f} Gbit/s (median of "
                                                           f"{rounds}: {', '.join(f'{x:.2f}' for x in nats)})")
    line("TCP same path, no neutrino rules (1 MASQUERADE)", f"{statistics.median(plains):8.2f} Gbit/s "
                                                            f"({', '.join(f'{x:.2f}' for x in plains)})")
    line("TCP bare veth pair (same run)", f"{bare:8.2f} Gbit/s")
    line("ratio NAT / same path without neutrino's rules", f"{statistics.median(ratios):8.2f} (median of "
                                                           f"{', '.join(f'{x:.2f}' for x in ratios)})")
    line("ratio NAT / bare veth", f"{statistics.median(nats) / bare:8.2f}")


def wait_active(clouds, port_id: str, start: float, timeout: float = 30) -> float:
    """Seconds from start until the port is ACTIVE, polling every 20 ms (the measurement's resolution)."""
    while time.perf_counter() - start < timeout:
        if clouds.user.network.get_port(port_id).status == "ACTIVE":
            return time.perf_counter() - start
        time.sleep(0.02)
    return float("inf")


def iperf(server_ns: str, server_ip: str, client_ns: str, seconds: int = 3) -> float:
    """iperf3 between two of our namespaces; Gbit/s received."""
    srv = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", server_ip],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = subprocess.run(["ip", "netns", "exec", client_ns, "iperf3", "-c", server_ip, "-t", str(seconds), "-J"],
                             capture_output=True, text=True, timeout=seconds + 20)
        return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        srv.kill()
        srv.wait()


def bare_veth() -> float:
    tag = uuid.uuid4().hex[:6]
    a, b = f"nb{tag}-a", f"nb{tag}-b"
    try:
        ip.ensure_netns(a)
        ip.ensure_netns(b)
        ip.ensure_veth("va", "vb", a, b)
        ip.ensure_addresses("va", ["10.99.0.1/24"], a)
        ip.ensure_addresses("vb", ["10.99.0.2/24"], b)
        return iperf(b, "10.99.0.2", a)
    finally:
        ip.delete_netns(a)
        ip.delete_netns(b)


def _plain_router_iperf(host: str, guest_ns: str, router: str) -> float:
    """Address the guest (eth0) and the router (qr inside, qg outside), let the router forward with one MASQUERADE
    and nothing else, and measure TCP guest -> the server on 172.31.4.1 in the host namespace."""
    ip.batch(["addr add 10.31.0.5/24 dev eth0", "link set eth0 up", "route add default via 10.31.0.1"], guest_ns)
    ip.batch(["addr add 10.31.0.1/24 dev qr", "link set qr up", "addr add 172.31.4.10/24 dev qg",
              "link set qg up"], router)
    proc.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], netns=router)
    proc.run(["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "qg", "-j", "MASQUERADE"], netns=router)
    return iperf(host, "172.31.4.1", guest_ns)


def bare_nat(mtu: int) -> float:
    """The lab's NAT path without neutrino's rules: guest -veth- bridge -veth- router namespace (plain forwarding and
    one MASQUERADE) -veth- external bridge holding the server's address; same hops, bridges and namespaces."""
    tag = uuid.uuid4().hex[:6]
    host, guest_ns, router = f"nb{tag}-h", f"nb{tag}-g", f"nb{tag}-r"
    try:
        for ns in (host, guest_ns, router):
            ip.ensure_netns(ns)
        ip.batch(["link add brp type bridge", f"link set brp mtu {mtu} up", "link add brx type bridge",
                  "link set brx up", "addr add 172.31.4.1/24 dev brx",
                  f"link add tapg mtu {mtu} type veth peer name eth0 mtu {mtu} netns {guest_ns}",
                  f"link add rqr mtu {mtu} type veth peer name qr mtu {mtu} netns {router}",
                  "link add rqg type veth peer name qg netns " + router,
                  *(f"link set {d} master {b} up" for d, b in (("tapg", "brp"), ("rqr", "brp"), ("rqg", "brx")))],
                 host)
        return _plain_router_iperf(host, guest_ns, router)
    finally:
        for ns in (guest_ns, router, host):
            ip.delete_netns(ns)


def bare_nat_ovs(mtu: int) -> float:
    """The ovs lab's NAT path without neutrino's rules: guest -veth- tap in qbr -veth qvb/qvo- br-int (userspace
    OVS, NORMAL) -veth- router namespace (plain forwarding and one MASQUERADE) -veth- br-int -patch- br-ex holding
    the server's address on its internal port; the same hops, bridges and tx offload settings as the lab, with no
    security group chains, no anti-spoofing flows and none of the router's chains."""
    tag = uuid.uuid4().hex[:6]
    host, guest_ns, router = f"nb{tag}-h", f"nb{tag}-g", f"nb{tag}-r"
    rundir = tempfile.mkdtemp(prefix="neutrino-bench-ovs-")
    db = None
    try:
        for ns in (host, guest_ns, router):
            ip.ensure_netns(ns)
        ovs.start_daemons(rundir, host)
        ip.batch(["link add qbrg type bridge", f"link set qbrg mtu {mtu} up",
                  f"link add tapg mtu {mtu} type veth peer name eth0 mtu {mtu} netns {guest_ns}",
                  f"link add qvbg mtu {mtu} type veth peer name qvog mtu {mtu}",
                  "link set tapg master qbrg up", "link set qvbg master qbrg up", "link set qvog up",
                  f"link add rqr mtu {mtu} type veth peer name qr mtu {mtu} netns {router}", "link set rqr up",
                  "link add rqg type veth peer name qg netns " + router, "link set rqg up"], host)
        ethtool.tx_off(["qvbg"], host)
        ethtool.tx_off(["qr", "qg"], router)
        db = ovs.Ovsdb(ovs.db_url(rundir))
        dp = ovs.datapath_type()
        db.commit(db.ensure_bridge({}, "br-int", dp) + db.ensure_bridge({}, "br-ex", dp))
        have = db.bridges()
        db.commit(db.ensure_port(have["br-int"], "br-int", "qvog", tag=1)
                  + db.ensure_port(have["br-int"], "br-int", "rqr", tag=1)
                  + db.ensure_port(have["br-int"], "br-int", "rqg", tag=2)
                  + db.ensure_port(have["br-int"], "br-int", "int-br-ex", tag=2, type="patch",
                                   options={"peer": "phy-br-ex"})
                  + db.ensure_port(have["br-ex"], "br-ex", "phy-br-ex", type="patch", options={"peer": "int-br-ex"}))
        deadline = time.monotonic() + 10
        while not ip.link_exists("br-ex", host) and time.monotonic() < deadline:
            time.sleep(0.05)
        ip.batch(["addr add 172.31.4.1/24 dev br-ex", "link set br-ex up"], host)
        return _plain_router_iperf(host, guest_ns, router)
    finally:
        if db is not None:
            db.close()
        ovs.stop_daemons(rundir)
        for ns in (guest_ns, router, host):
            ip.delete_netns(ns)
        shutil.rmtree(rundir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", type=int, default=1000)
    ap.add_argument("--rules", type=int, default=10)
    ap.add_argument("--ovs-ports", default="1000", help="comma-separated port counts for the ovs scale run")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-lab", action="store_true")
    ap.add_argument("--boots", type=int, default=50, help="ports booted per lab for ACTIVE/lease percentiles")
    ap.add_argument("--backends", default="ovs+iptables,linuxbridge+nftables")
    ap.add_argument("--linuxbridge", action="store_true",
                    help="only the linuxbridge+nftables hot paths (scale at 10, 1000, --ports and 5000, lab ACTIVE/lease)")
    ap.add_argument("--iptables", default="", help="comma-separated port counts: only the iptables firewall")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/agent.py needs root (it makes network namespaces)")
    if args.iptables:
        scale_iptables([int(c) for c in args.iptables.split(",")], args.rules)
        return
    if args.linuxbridge:
        if not args.skip_scale:
            lb_scale(args.ports, args.rules)
        if not args.skip_lab:
            lb_e2e(args.boots)
        return
    if not args.skip_scale:
        scale_ovs([int(c) for c in args.ovs_ports.split(",") if c], args.rules)
        if args.ports:
            scale(args.ports, args.rules)
            lb_scale(args.ports, args.rules)
        dhcp_and_l3(500, 1000)
    if not args.skip_lab:
        for backend in args.backends.split(","):
            e2e(*backend.split("+"), boots=args.boots)


if __name__ == "__main__":
    main()
