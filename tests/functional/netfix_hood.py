"""A small seed world on the real kernel for hood/trace tests, built by the real drivers from a hand-made view.

One throwaway host namespace with its own OVS daemons (br-int, br-ex carrying 172.24.4.1/24 as on DevStack), the
L3 driver's qrouter- namespace, the iptables firewall in the host namespace, and guests with static addresses:

    net1 10.0.0.0/24, DHCP at .2 in qdhcp-: A .5 [base, grp] (FIP 172.24.4.20), B .6 [base], C .7 [grp],
                      E .8 (port security off), F .9 [closed];   net2 10.0.1.0/24: D .5 [base];   router: qr .1 on both, qg 172.24.4.10
    base: egress any, ingress icmp, tcp/22, udp/53;  grp: egress any, ingress tcp/2222 from members of grp;
    closed: no rules at all

Every guest listens on tcp 22, 23, 2222 and udp 53, 54 (sockets held by the test process); the host namespace
listens on tcp 8080 at 172.24.4.1. `World.close` removes everything, also after a failure.
"""
from __future__ import annotations

import os
import socket
import subprocess
import uuid

from neutrino import names
from neutrino.agent.dhcp import DhcpDriver
from neutrino.agent.driver import HostConfig
from neutrino.agent.firewall.iptables import IptablesFirewallDriver
from neutrino.agent.l2.ovs import OvsL2Driver
from neutrino.agent.l3 import L3Driver
from neutrino.hood import backends
from neutrino.lib import inspect, ip, nsocket, ovs, proc
from neutrino.sync.schema import empty_view
from netfix_l2 import Namespaces

EXT_GW, ROUTER_GW, FIP = "172.24.4.1", "172.24.4.10", "172.24.4.20"
TCP_PORTS, UDP_PORTS = (22, 23, 2222), (53, 54)
SUBNETS = {"net1": ("10.0.0.0/24", "10.0.0.1"), "net2": ("10.0.1.0/24", "10.0.1.1"),
           "public": ("172.24.4.0/24", EXT_GW)}
GUESTS = {"A": ("net1", "10.0.0.5", ["base", "grp"]), "B": ("net1", "10.0.0.6", ["base"]),
          "C": ("net1", "10.0.0.7", ["grp"]), "E": ("net1", "10.0.0.8", None), "F": ("net1", "10.0.0.9", ["closed"]),
          "D": ("net2", "10.0.1.5", ["base"])}


def _id() -> str:
    return str(uuid.uuid4())


def _mac(pid: str) -> str:
    h = pid.replace("-", "")
    return "fa:16:3e:" + ":".join(h[i:i + 2] for i in (0, 2, 4))


def sg_rule(direction: str, protocol: str | None = None, port: int | None = None,
            remote_group_id: str | None = None) -> dict:
    return {"id": _id(), "direction": direction, "ethertype": "IPv4", "protocol": protocol, "port_range_min": port,
            "port_range_max": port, "remote_ip_prefix": None, "remote_group_id": remote_group_id}


class World:
    def __init__(self, tmp: str):
        self.made = Namespaces()
        self.sockets: list[socket.socket] = []
        self.udp: dict[tuple[str, int], socket.socket] = {}
        self.drivers: list = []
        try:
            self._build(tmp)
        except BaseException:
            self.close()
            raise

    # --- the view -----------------------------------------------------------------------------------------------

    def _fixed(self, net: str, addr: str) -> dict:
        cidr, gw = SUBNETS[net]
        return {"subnet_id": f"{net}-v4", "ip_address": addr, "prefixlen": 24, "cidr": cidr, "gateway_ip": gw}

    def _view(self) -> dict:
        v = empty_view("host1", 1)
        segs = {"net1": ("vxlan", 1001, None), "net2": ("vxlan", 1002, None), "public": ("flat", None, "public")}
        for name, (kind, seg, phys) in segs.items():
            cidr, gw = SUBNETS[name]
            v["networks"][self.net[name]] = {
                "id": self.net[name], "name": name, "mtu": 1500, "external": name == "public",
                "segment": {"network_type": kind, "segmentation_id": seg, "physical_network": phys},
                "subnets": [{"id": f"{name}-v4", "network_id": self.net[name], "cidr": cidr, "ip_version": 4,
                             "gateway_ip": gw, "enable_dhcp": False, "dns_nameservers": [], "host_routes": [],
                             "allocation_pools": [], "ipv6_ra_mode": None, "ipv6_address_mode": None}]}
        for name, (net, addr, sgs) in GUESTS.items():
            pid = self.port_id[name]
            v["ports"].append({"id": pid, "network_id": self.net[net], "kind": "instance", "device": names.tap(pid),
                               "ns_device": None, "mac_address": _mac(pid), "fixed_ips": [self._fixed(net, addr)],
                               "admin_state_up": True, "device_owner": "compute:nova", "device_id": f"vm-{name}",
                               "port_security_enabled": sgs is not None,
                               "security_groups": [self.sg[g] for g in sgs or []], "allowed_address_pairs": [],
                               "mtu": 1500})
        rports = []
        for net, addr, gw in (("net1", "10.0.0.1", False), ("net2", "10.0.1.1", False),
                              ("public", ROUTER_GW, True)):
            pid = _id()
            rp = {"port_id": pid, "network_id": self.net[net], "mac_address": _mac(pid),
                  "ns_device": names.qg(pid) if gw else names.qr(pid), "device": names.ns_peer(pid),
                  "fixed_ips": [self._fixed(net, addr)], "mtu": 1500}
            rports.append(rp)
            v["ports"].append({"id": pid, "network_id": self.net[net],
                               "kind": "router_gateway" if gw else "router_interface", "device": rp["device"],
                               "ns_device": rp["ns_device"], "mac_address": rp["mac_address"],
                               "fixed_ips": rp["fixed_ips"], "admin_state_up": True,
                               "device_owner": "network:router_gateway" if gw else "network:router_interface",
                               "device_id": self.router_id, "port_security_enabled": False, "security_groups": [],
                               "allowed_address_pairs": [], "mtu": 1500})
        dhcp_id = _id()
        dhcp_fixed = [self._fixed("net1", "10.0.0.2")]
        v["ports"].append({"id": dhcp_id, "network_id": self.net["net1"], "kind": "dhcp",
                           "device": names.ns_peer(dhcp_id), "ns_device": names.tap(dhcp_id),
                           "mac_address": _mac(dhcp_id), "fixed_ips": dhcp_fixed, "admin_state_up": True,
                           "device_owner": "network:dhcp", "device_id": "dhcp", "port_security_enabled": False,
                           "security_groups": [], "allowed_address_pairs": [], "mtu": 1500})
        v["dhcp"] = [{"network_id": self.net["net1"], "port_id": dhcp_id, "ns_device": names.tap(dhcp_id),
                      "device": names.ns_peer(dhcp_id), "mac_address": _mac(dhcp_id), "fixed_ips": dhcp_fixed,
                      "mtu": 1500, "domain": "openstacklocal", "isolated_metadata": False,
                      "subnets": [dict(v["networks"][self.net["net1"]]["subnets"][0], enable_dhcp=True)],
                      "hosts": [{"port_id": self.port_id[n], "mac_address": _mac(self.port_id[n]),
                                 "ip_address": addr, "subnet_id": "net1-v4",
                                 "hostname": "host-" + addr.replace(".", "-"), "extra_dhcp_opts": []}
                                for n, (net, addr, _) in GUESTS.items() if net == "net1"]}]
        gw_port = dict(rports[2], enable_snat=True)
        v["routers"] = [{"id": self.router_id, "name": "router1", "admin_state_up": True, "interfaces": rports[:2],
                         "gateway": gw_port, "routes": [],
                         "floating_ips": [{"id": self.fip_id, "floating_ip_address": FIP,
                                           "fixed_ip_address": GUESTS["A"][1], "port_id": self.port_id["A"]}],
                         "port_forwardings": []}]
        v["security_groups"] = self.groups
        members: dict[str, list[str]] = {sg: [] for sg in self.groups}
        for name, (_, addr, sgs) in GUESTS.items():
            for g in sgs or []:
                members[self.sg[g]].append(addr)
        v["remote_groups"] = {sg: {"IPv4": ips, "IPv6": []} for sg, ips in members.items()}
        return v

    # --- the kernel ---------------------------------------------------------------------------------------------

    def _build(self, tmp: str) -> None:
        self.net = {n: _id() for n in SUBNETS}
        self.port_id = {n: _id() for n in GUESTS}
        self.router_id, self.fip_id = _id(), _id()
        self.sg = {n: _id() for n in ("base", "grp", "closed")}
        self.groups = {
            self.sg["base"]: {"id": self.sg["base"], "stateful": True, "rules": [
                sg_rule("egress"), sg_rule("ingress", "icmp"), sg_rule("ingress", "tcp", 22),
                sg_rule("ingress", "udp", 53)]},
            self.sg["grp"]: {"id": self.sg["grp"], "stateful": True, "rules": [
                sg_rule("egress"), sg_rule("ingress", "tcp", 2222, remote_group_id=self.sg["grp"])]},
            self.sg["closed"]: {"id": self.sg["closed"], "stateful": True, "rules": []}}
        self.host, self.rundir = self.made.ovs_host()
        config = HostConfig(host="host1", state_dir=tmp, ovs_db=ovs.db_url(self.rundir),
                            bridge_mappings={"public": "br-ex"}, userspace_ovs=True)
        self.dhcp = DhcpDriver(config, host_ns=self.host)
        self.l3 = L3Driver(config, host_ns=self.host)
        self.l2 = OvsL2Driver(config, netns=self.host)
        self.fw = IptablesFirewallDriver(config, ns=self.host)
        self.drivers = [self.dhcp, self.l3, self.l2, self.fw]
        self.view = self._view()
        self.guest: dict[str, str] = {}
        for port in self.view["ports"]:
            name = next((n for n, pid in self.port_id.items() if pid == port["id"]), None)
            if name is None:
                continue
            fixed = port["fixed_ips"][0]
            g = self.guest[name] = self.made.guest(self.host, port, f"{fixed['ip_address']}/24")
            proc.run(["ethtool", "-K", "eth0", "tx", "off"], netns=g)    # OVS userspace datapath: TCP needs it
            ip.ensure_route("default", g, gateway=fixed["gateway_ip"])
            for p in TCP_PORTS:
                self.sockets.append(nsocket.listen_tcp(g, "0.0.0.0", p))
            for p in UDP_PORTS:
                self.udp[(name, p)] = nsocket.in_netns(g, _udp, p)
        ip.ensure_addresses("eth0", ["10.0.0.99/24"], self.guest["A"], exclusive=False)   # for the spoof case
        self.sync()
        ip.ensure_addresses("br-ex", [f"{EXT_GW}/24"], self.host, exclusive=False)
        ip.set_up("br-ex", self.host)
        self.sockets.append(nsocket.listen_tcp(self.host, EXT_GW, 8080))

    def sync(self) -> None:
        for d in self.drivers:
            d.sync(self.view)

    def snapshot(self) -> dict:
        return backends.read(self.host, self.rundir, [self.router_id], [self.net["net1"]], "ovs", "iptables")

    def remove_rule(self, group: str, protocol: str, port: int) -> None:
        sg = self.groups[self.sg[group]]
        sg["rules"] = [r for r in sg["rules"] if not (r["protocol"] == protocol and r["port_range_min"] == port)]
        self.fw.sync(self.view)

    # --- reality ------------------------------------------------------------------------------------------------

    def ns_of(self, who: str) -> str:
        return self.host if who == "external" else self.guest[who]

    def ip_of(self, who: str) -> str:
        return EXT_GW if who == "external" else GUESTS[who][1]

    def reach(self, src: str, dst_ip: str, proto: str, port: int | None, src_ip: str | None = None,
              receiver: str | None = None) -> bool:
        """What the kernel really does: ping, nc -z, or a UDP datagram seen by the receiver's socket."""
        ns = self.ns_of(src)
        if proto == "icmp":
            argv = ["ping", "-c2", "-i0.2", "-W1"] + (["-I", src_ip] if src_ip else []) + [dst_ip]
        elif proto == "tcp":
            argv = ["nc", "-z", "-w1"] + (["-s", src_ip] if src_ip else []) + [dst_ip, str(port)]
        else:
            sock = self.udp[(receiver, port)]
            _drain(sock)
            token = os.urandom(6).hex()
            subprocess.run(["ip", "netns", "exec", ns, "nc", "-u", "-w1", dst_ip, str(port)], input=token.encode(),
                           capture_output=True, timeout=10)
            return _received(sock, token)
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, timeout=15).returncode == 0

    def close(self) -> None:
        for s in [*self.sockets, *self.udp.values()]:
            s.close()
        for d in reversed(self.drivers):
            try:
                d.cleanup()
            except Exception:  # noqa: BLE001 - the namespaces go anyway
                pass
        self.made.close()


def _udp(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    return s


def _drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while True:
            sock.recv(2048)
    except BlockingIOError:
        pass


def _received(sock: socket.socket, token: str, timeout: float = 1.0) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            if token.encode() in sock.recv(2048):
                return True
    except (TimeoutError, socket.timeout):
        return False


def capture(path: str) -> None:
    """Write tests/unit/test_hood_world.json: a world's view and snapshot, and the kernel's routing answers to the
    traces the unit tests replay (run as root: `python tests/functional/netfix_hood.py OUT.json`)."""
    import json
    import tempfile

    from neutrino.hood.trace import trace

    w = World(tempfile.mkdtemp(prefix="nt-hood-"))
    try:
        snap, calls = w.snapshot(), []

        def route_get(ns, dst, src=None, iif=None):
            answer = inspect.route_get(ns, dst, src, iif)
            calls.append({"ns": ns, "dst": dst, "src": src, "iif": iif, "answer": answer})
            return answer
        a, d = w.port_id["A"], w.port_id["D"]
        for args in [(a, d, "tcp", 22), ("external", FIP, "tcp", 23), (a, "external", "icmp", None),
                     (d, a, "tcp", 22), ("external", "10.0.1.5", "icmp", None)]:
            trace(w.view, snap, *args, route_get=route_get)
        names_ = {"port_id": w.port_id, "net": w.net, "sg": w.sg, "router_id": w.router_id}
        with open(path, "w") as f:
            json.dump({"names": names_, "view": w.view, "snapshot": snap, "route_get": calls}, f, indent=1,
                      sort_keys=True)
    finally:
        w.close()


if __name__ == "__main__":
    import sys
    capture(sys.argv[1])
