"""Firewall test wiring: a throwaway "host" namespace with one Linux bridge per network (brq<net>, as the
linuxbridge backend makes it) and guests whose eth0 is the veth peer of tap<port> on that bridge, plus view
builders and reachability probes (ping, nc). Everything lives in namespaces named nt-<8 hex>; `Host.close`
removes them all and stops the listeners it started, by pid."""
from __future__ import annotations

import os
import subprocess
import time
import uuid

from neutrino import names
from neutrino.lib import ip
from neutrino.sync.schema import empty_view


def rid() -> str:
    return str(uuid.uuid4())


def rule(direction="ingress", protocol=None, port=None, remote_ip_prefix=None, remote_group_id=None,
         ethertype="IPv4", port_max=None) -> dict:
    return {"id": rid(), "direction": direction, "ethertype": ethertype, "protocol": protocol,
            "port_range_min": port, "port_range_max": port_max if port_max is not None else port,
            "remote_ip_prefix": remote_ip_prefix, "remote_group_id": remote_group_id}


def group(sg_id: str, rules: list[dict], stateful: bool = True) -> dict:
    return {"id": sg_id, "stateful": stateful, "rules": rules}


def port(pid: str, net: str, ipaddr: str, mac: str, sgs: list[str], security: bool = True,
         pairs: list[dict] | None = None) -> dict:
    return {"id": pid, "network_id": net, "kind": "instance", "device": names.tap(pid), "ns_device": None,
            "mac_address": mac, "fixed_ips": [{"subnet_id": "s", "ip_address": ipaddr, "prefixlen": 24,
                                               "cidr": "10.0.0.0/24", "gateway_ip": None}],
            "admin_state_up": True, "device_owner": "compute:nova", "device_id": "vm",
            "port_security_enabled": security, "security_groups": sgs, "allowed_address_pairs": pairs or [],
            "mtu": 1500}


def view(ports: list[dict], groups: list[dict], revision: int = 1) -> dict:
    """A host view; remote_groups = members of every group, computed from the ports (as the server does)."""
    v = empty_view("h1", revision)
    v["ports"] = ports
    v["security_groups"] = {g["id"]: g for g in groups}
    rg: dict[str, dict[str, list[str]]] = {g["id"]: {"IPv4": [], "IPv6": []} for g in groups}
    for p in ports:
        for sg in p["security_groups"]:
            for f in p["fixed_ips"]:
                rg.setdefault(sg, {"IPv4": [], "IPv6": []})["IPv6" if ":" in f["ip_address"] else "IPv4"].append(
                    f["ip_address"])
    v["remote_groups"] = rg
    return v


def nsname() -> str:
    return f"nt-{os.urandom(4).hex()}"


class Host:
    """The emulated host namespace and its guests."""

    def __init__(self):
        self.ns = nsname()
        self.guests: dict[str, str] = {}      # port id -> guest namespace
        self.pids: list[int] = []
        try:
            ip.ensure_netns(self.ns)
        except Exception:
            ip.delete_netns(self.ns)
            raise

    def plug(self, p: dict, prefixlen: int = 24) -> str:
        """A guest for port p: eth0 (port MAC and IP) <-> tap<id> on brq<net> in the host."""
        g = self.guests[p["id"]] = nsname()     # registered first: close() removes it even if setup fails
        ip.ensure_netns(g)
        br = names.brq(p["network_id"])
        ip.ensure_bridge(br, self.ns)
        ip.ensure_veth(p["device"], "eth0", netns=self.ns, peer_netns=g, peer_mac=p["mac_address"])
        ip.set_link(p["device"], self.ns, master=br)
        ip.ensure_addresses("eth0", [f"{p['fixed_ips'][0]['ip_address']}/{prefixlen}"], netns=g)
        return g

    def plug_hybrid(self, p: dict, prefixlen: int = 24) -> str:
        """The hybrid plug (ovs backend) without OVS: tap<id> on qbr<id>, qvb<id> <-> qvo<id> on a Linux bridge
        `br-int` standing in for the OVS integration bridge."""
        g = self.guests[p["id"]] = nsname()
        ip.ensure_netns(g)
        qbr = names.qbr(p["id"])
        ip.ensure_bridge(qbr, self.ns)
        ip.ensure_bridge("br-int", self.ns)
        ip.ensure_veth(p["device"], "eth0", netns=self.ns, peer_netns=g, peer_mac=p["mac_address"])
        ip.set_link(p["device"], self.ns, master=qbr)
        ip.ensure_veth(names.qvb(p["id"]), names.qvo(p["id"]), netns=self.ns, peer_netns=self.ns)
        ip.set_link(names.qvb(p["id"]), self.ns, master=qbr)
        ip.set_link(names.qvo(p["id"]), self.ns, master="br-int")
        ip.ensure_addresses("eth0", [f"{p['fixed_ips'][0]['ip_address']}/{prefixlen}"], netns=g)
        return g

    def exec(self, g: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", g, *argv], capture_output=True, text=True, **kw)

    def ping(self, src: dict, dst_ip: str) -> bool:
        return self.exec(self.guests[src["id"]], ["ping", "-c1", "-W1", dst_ip]).returncode == 0

    def listen(self, p: dict, tcp_port: int) -> None:
        """A TCP listener in p's guest that keeps accepting (nc -k)."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.guests[p["id"]], "nc", "-k", "-l", "-p",
                                 str(tcp_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pids.append(proc.pid)
        time.sleep(0.2)

    def tcp(self, src: dict, dst_ip: str, tcp_port: int) -> bool:
        return self.exec(self.guests[src["id"]], ["nc", "-z", "-w1", dst_ip, str(tcp_port)]).returncode == 0

    def close(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, 15)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for g in self.guests.values():
            ip.delete_netns(g)
        ip.delete_netns(self.ns)
