"""DHCP driver: one `qdhcp-<network_id>` namespace with a dnsmasq per DHCP network of the view, as Neutron's agent.

Per network: a veth whose `tap<id>` end (the DHCP port: its MAC, fixed IPs, MTU, tx checksum offload off for the
OVS netdev datapath) sits in the namespace and whose `ns-<id>` end stays on the host for the L2 driver to plug;
dnsmasq answers only on the tap from static host entries (no dynamic pool) and serves DNS for the hosts' names.
Config files live in `<state_dir>/dhcp/<network_id>/`. Host changes rewrite the files and cost one SIGHUP per network
per sync; changed subnets change dnsmasq's command line and so restart it. Every sync also restarts a dnsmasq that
died, and releases (dhcp_release) each lease no host entry stands behind any more, so a freed address can go to the
next port at once. The directories under `<state_dir>/dhcp/` are this agent's record of what it made, so networks
leaving the view are removed even after an agent restart, and qdhcp- namespaces of other agents on the same machine
are left alone.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import shutil

from neutrino import names
from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.errors import NeutrinoError
from neutrino.lib import dnsmasq, ip
from neutrino.lib import ethtool
from neutrino.sync.schema import DhcpHost, DhcpNetwork, Subnet, View

LOG = logging.getLogger(__name__)

LEASE_SECONDS = 86400
LEASE_MAX_CAP = 2 ** 24
METADATA_IP = "169.254.169.254"
CONF_FILES = ("host", "addn_hosts", "opts")


def _tag(subnet_id: str) -> str:
    return f"subnet-{subnet_id}"


def _port_tag(port_id: str) -> str:
    return f"port-{port_id}"


def _dhcp_subnets(net: DhcpNetwork) -> list[Subnet]:
    return [s for s in net["subnets"] if s.get("enable_dhcp", True)]


def _v6_range_mode(subnet: Subnet) -> str | None:
    """dnsmasq range mode for an IPv6 subnet as its Neutron modes ask; None when dnsmasq has no part in it."""
    addr_mode, ra_mode = subnet.get("ipv6_address_mode"), subnet.get("ipv6_ra_mode")
    if addr_mode == "slaac" or (addr_mode is None and ra_mode):
        return "ra-only" if ra_mode else None
    if addr_mode == "dhcpv6-stateless":
        return "ra-stateless" if ra_mode else "static"
    return "static"     # dhcpv6-stateful, or no mode at all (Neutron's legacy default)


def _stateful(subnet: Subnet) -> bool:
    """Whether dnsmasq hands out this subnet's addresses: IPv4, IPv6 dhcpv6-stateful, or IPv6 without modes."""
    addr_mode, ra_mode = subnet.get("ipv6_address_mode"), subnet.get("ipv6_ra_mode")
    return subnet["ip_version"] == 4 or addr_mode == "dhcpv6-stateful" or not (addr_mode or ra_mode)


def dnsmasq_argv(net: DhcpNetwork, net_dir: str) -> list[str]:
    """The dnsmasq command line of one network, as Neutron's DHCP agent builds it."""
    f = lambda name: os.path.join(net_dir, name)  # noqa: E731
    argv = [
        "dnsmasq", "--no-hosts", "--no-resolv", "--conf-file=/dev/null",
        f"--pid-file={dnsmasq.pid_file(net_dir)}",
        f"--dhcp-hostsfile={f('host')}", f"--addn-hosts={f('addn_hosts')}", f"--dhcp-optsfile={f('opts')}",
        f"--dhcp-leasefile={f('leases')}", f"--log-facility={f('log')}",
        f"--interface={net['ns_device']}", "--except-interface=lo", "--bind-dynamic", "--port=53",
        "--user=root", "--group=root",
    ]
    possible, ra = 0, False
    for s in _dhcp_subnets(net):
        cidr = ipaddress.ip_network(s["cidr"], strict=False)
        if s["ip_version"] == 4:
            argv.append(f"--dhcp-range=set:{_tag(s['id'])},{cidr.network_address},static,{cidr.netmask},"
                        f"{LEASE_SECONDS}s")
        else:
            mode = _v6_range_mode(s)
            if mode is None or cidr.prefixlen < 64:
                continue
            ra = ra or bool(s.get("ipv6_ra_mode"))
            argv.append(f"--dhcp-range=set:{_tag(s['id'])},{cidr.network_address},{mode},{cidr.prefixlen},"
                        f"{LEASE_SECONDS}s")
        possible += cidr.num_addresses
    if ra:   # prefixes only, router lifetime 0: the subnet's router, not this namespace, is the default gateway
        argv += ["--enable-ra", f"--ra-param={net['ns_device']},0,0"]
    if net.get("mtu"):
        argv.append(f"--dhcp-option-force=option:mtu,{net['mtu']}")
    argv.append(f"--dhcp-lease-max={max(1, min(possible, LEASE_MAX_CAP))}")
    if net.get("domain"):
        domain = net["domain"].rstrip(".")
        argv += [f"--domain={domain}", f"--local=/{domain}/"]    # answer the domain itself, never forward it
    return argv


def _fqdn(hostname: str, domain: str) -> str:
    domain = (domain or "").rstrip(".")
    return f"{hostname}.{domain}" if domain and not hostname.endswith("." + domain) else hostname


def _extra_opts(net: DhcpNetwork) -> dict[str, list[dict]]:
    """port id -> its extra_dhcp_opts, for ports that have some (a port's host entries all carry the same list)."""
    out: dict[str, list[dict]] = {}
    for h in net["hosts"]:
        if h.get("extra_dhcp_opts"):
            out.setdefault(h["port_id"], h["extra_dhcp_opts"])
    return out


def _leased_hosts(net: DhcpNetwork) -> list[tuple[DhcpHost, Subnet]]:
    """The host entries dnsmasq hands addresses to (stateful DHCP subnets), each with its subnet."""
    subnets = {s["id"]: s for s in _dhcp_subnets(net)}
    return [(h, subnets[h["subnet_id"]]) for h in net["hosts"]
            if h["subnet_id"] in subnets and _stateful(subnets[h["subnet_id"]])]


def stale_leases(net: DhcpNetwork, leases: list[dnsmasq.Lease]) -> list[dnsmasq.Lease]:
    """Leases no host entry stands behind any more (port gone, or its MAC or fixed IP changed): IPv4 by MAC and
    address, IPv6 by address (a DHCPv6 lease names its client by DUID, not MAC)."""
    v4 = {(h["mac_address"].lower(), h["ip_address"]) for h, s in _leased_hosts(net) if s["ip_version"] == 4}
    v6 = {ipaddress.ip_address(h["ip_address"]) for h, s in _leased_hosts(net) if s["ip_version"] == 6}
    return [lease for lease in leases
            if (lease.iaid and ipaddress.ip_address(lease.ip_address) not in v6)
            or (not lease.iaid and (lease.mac, lease.ip_address) not in v4)]


def dropped_hosts(before: str, after: str) -> list[dnsmasq.Lease]:
    """IPv4 host entries (MAC, address) of the hosts file `before` that `after` no longer has: their leases are
    released whether or not dnsmasq's leases file shows them, since dnsmasq truncates and rewrites that file on every
    lease change and a read at that moment finds it empty."""
    def v4(text: str) -> set[tuple[str, str]]:
        entries = (line.split(",") for line in text.splitlines())
        return {(f[0].lower(), f[2]) for f in entries if len(f) >= 3 and not f[2].startswith("[")}
    return [dnsmasq.Lease(ip_address=address, mac=mac) for mac, address in sorted(v4(before) - v4(after))]


def hosts_file(net: DhcpNetwork) -> str:
    """dhcp-hostsfile: `mac,fqdn,ip` (IPv6 in brackets), tagged `set:port-<id>` when the port has extra options."""
    tagged = _extra_opts(net)
    lines = []
    for h, s in _leased_hosts(net):
        addr = h["ip_address"] if s["ip_version"] == 4 else f"[{h['ip_address']}]"
        line = f"{h['mac_address']},{_fqdn(h['hostname'], net.get('domain', ''))},{addr}"
        if h["port_id"] in tagged:
            line += f",set:{_port_tag(h['port_id'])}"
        lines.append(line)
    return "".join(f"{line}\n" for line in lines)


def addn_hosts_file(net: DhcpNetwork) -> str:
    """addn-hosts: every host's name for dnsmasq's DNS, qualified and bare."""
    subnet_ids = {s["id"] for s in net["subnets"]}
    lines = []
    for h in net["hosts"]:
        if h["subnet_id"] in subnet_ids:
            fqdn = _fqdn(h["hostname"], net.get("domain", ""))
            short = h["hostname"].split(".")[0]
            lines.append(f"{h['ip_address']}\t{fqdn} {short}" if short != fqdn else f"{h['ip_address']}\t{fqdn}")
    return "".join(f"{line}\n" for line in lines)


def _v4_routes(net: DhcpNetwork, s: Subnet) -> list[tuple[str, str]]:
    """Classless static routes (option 121) of one IPv4 subnet: host routes, metadata, sibling subnets, default."""
    routes = [(r["destination"], r["nexthop"]) for r in s.get("host_routes") or []]
    if net.get("isolated_metadata"):
        own = [f["ip_address"] for f in net["fixed_ips"] if f["subnet_id"] == s["id"]]
        if own:
            routes.append((f"{METADATA_IP}/32", own[0]))
    for other in _dhcp_subnets(net):
        if other["ip_version"] == 4 and other["id"] != s["id"]:
            routes.append((str(ipaddress.ip_network(other["cidr"], strict=False)), "0.0.0.0"))
    if s.get("gateway_ip") and not any(d == "0.0.0.0/0" for d, _ in routes):
        routes.append(("0.0.0.0/0", s["gateway_ip"]))
    return routes


def opts_file(net: DhcpNetwork) -> str:
    """dhcp-optsfile: per-subnet router, DNS servers and classless routes; per-port extra_dhcp_opts."""
    lines = []
    for s in _dhcp_subnets(net):
        tag = f"tag:{_tag(s['id'])}"
        if s["ip_version"] == 4:
            if s.get("dns_nameservers"):
                lines.append(f"{tag},option:dns-server,{','.join(s['dns_nameservers'])}")
            routes = _v4_routes(net, s)
            if routes:
                flat = ",".join(f"{d},{n}" for d, n in routes)
                lines.append(f"{tag},option:classless-static-route,{flat}")
                lines.append(f"{tag},249,{flat}")
            lines.append(f"{tag},option:router,{s['gateway_ip']}" if s.get("gateway_ip") else f"{tag},option:router")
        elif s.get("dns_nameservers"):
            lines.append(f"{tag},option6:dns-server,{','.join(f'[{a}]' for a in s['dns_nameservers'])}")
    for port_id, extra in _extra_opts(net).items():
        for o in extra:
            name = str(o["opt_name"])
            family = "option6" if int(o.get("ip_version") or 4) == 6 else "option"
            key = name if name.isdigit() else f"{family}:{name}"
            lines.append(f"tag:{_port_tag(port_id)},{key},{o['opt_value']}")
    return "".join(f"{line}\n" for line in lines)


def _tap_addresses(net: DhcpNetwork) -> set[str]:
    want = {f"{f['ip_address']}/{f['prefixlen']}" for f in net["fixed_ips"]}
    if net.get("isolated_metadata"):
        want.add(f"{METADATA_IP}/32")
    return want


class DhcpDriver:
    """Realizes `view["dhcp"]`. `host_ns` names the namespace holding the host-side `ns-` devices (None: the
    agent's own, as in production and in the lab, where the agent runs inside its emulated host)."""

    name = "dhcp"

    def __init__(self, config: HostConfig, host_ns: str | None = None):
        self.config = config
        self.host_ns = host_ns
        self.root = os.path.join(config.state_dir, "dhcp")
        self._loaded: dict[str, tuple[int, str]] = {}   # network id -> (dnsmasq pid, digest of files it has read)

    def _dir(self, network_id: str) -> str:
        return os.path.join(self.root, network_id)

    def _known(self) -> set[str]:
        try:
            return {d for d in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, d))}
        except FileNotFoundError:
            return set()

    def sync(self, view: View) -> SyncResult:
        result = SyncResult()
        wanted = {n["network_id"]: n for n in view.get("dhcp") or []}
        for network_id in sorted(self._known() - wanted.keys()):
            try:
                self._remove(network_id)
            except NeutrinoError as e:
                LOG.error("removing dhcp for network %s failed (retried next sync): %s", network_id, e)
                result.errors += 1
            result.changed = True
        for network_id, net in wanted.items():
            try:
                changed, ready, started = self._sync_network(net)
            except NeutrinoError as e:
                LOG.error("dhcp for network %s failed: %s", network_id, e)
                result.ports[net["port_id"]] = False
                result.errors += 1
                continue
            result.started.extend(["dnsmasq"] if started else [])
            result.changed |= changed
            result.ports[net["port_id"]] = True
            result.dhcp_ready.extend(ready)
        return result

    def _sync_network(self, net: DhcpNetwork) -> tuple[bool, list[str], bool]:
        """(changed, port ids with a live DHCP entry, whether dnsmasq was (re)started)."""
        ns = names.qdhcp(net["network_id"])
        net_dir = self._dir(net["network_id"])
        os.makedirs(net_dir, exist_ok=True)      # first: the directory is the record that this namespace is ours
        changed = self._wire(net, ns)
        contents = {"host": hosts_file(net), "addn_hosts": addn_hosts_file(net), "opts": opts_file(net)}
        dropped = dropped_hosts(_read(os.path.join(net_dir, "host")), contents["host"])
        for fname, text in contents.items():
            changed |= _write_if_changed(os.path.join(net_dir, fname), text)
        digest = hashlib.sha256("\0".join(contents[f] for f in CONF_FILES).encode()).hexdigest()
        pid, started = dnsmasq.ensure_running(net_dir, dnsmasq_argv(net, net_dir), netns=ns)
        if not started and self._loaded.get(net["network_id"]) != (pid, digest):
            dnsmasq.reload(net_dir)
            changed = True
        changed |= started
        self._loaded[net["network_id"]] = (pid, digest)
        changed |= self._release_stale(net, ns, net_dir, dropped)
        subnet_ids = {s["id"] for s in _dhcp_subnets(net)}
        return changed, sorted({h["port_id"] for h in net["hosts"] if h["subnet_id"] in subnet_ids}), started

    def _release_stale(self, net: DhcpNetwork, ns: str, net_dir: str, dropped: list[dnsmasq.Lease]) -> bool:
        """Release every lease of a host entry that is gone or changed (the entries this sync dropped, and any stale
        lease the leases file shows), so its address can go to the next port (dnsmasq refuses a configured address
        while another MAC holds its lease); True when any was released."""
        leases, duid = dnsmasq.leases(net_dir)
        stale = stale_leases(net, leases)
        seen = {(lease.mac, lease.ip_address) for lease in stale}
        stale += [lease for lease in dropped if (lease.mac, lease.ip_address) not in seen]
        for lease in stale:
            try:
                dnsmasq.release(lease, net["ns_device"], duid, netns=ns)
            except NeutrinoError as e:
                LOG.warning("releasing lease %s on network %s failed (retried next sync): %s", lease.ip_address,
                            net["network_id"], e)
        return bool(stale)

    def _wire(self, net: DhcpNetwork, ns: str) -> bool:
        """The namespace and the DHCP port's veth, as the view has them; True when anything changed."""
        changed = not ip.netns_exists(ns)
        ip.ensure_netns(ns)
        tap, dev = net["ns_device"], net["device"]
        inside = ip.links(ns)
        for stale in set(inside) - {"lo", tap}:
            ip.delete_link(stale, ns)
            changed = True
        have_tap, have_dev = tap in inside, ip.link_exists(dev, self.host_ns)
        if have_tap != have_dev:            # half a pair left from an interrupted run: start over
            ip.delete_link(tap, ns)
            ip.delete_link(dev, self.host_ns)
        if not (have_tap and have_dev):
            changed = True
        cur = inside.get(tap) or {}
        if cur.get("mtu") != net["mtu"] or (cur.get("mac") or "").lower() != net["mac_address"].lower():
            changed = True
        ip.ensure_veth(dev, tap, ns=self.host_ns, peer_ns=ns, mtu=net["mtu"], peer_mac=net["mac_address"])
        if self.config.userspace_ovs:
            changed |= bool(ethtool.tx_off(tap, ns))
        changed |= ip.ensure_addresses(tap, _tap_addresses(net), ns)
        return changed

    def _remove(self, network_id: str) -> None:
        """Stop dnsmasq, delete the veth (synchronously, not left to namespace teardown), the namespace and files."""
        net_dir = self._dir(network_id)
        dnsmasq.stop(net_dir)
        ns = names.qdhcp(network_id)
        if ip.netns_exists(ns):
            for dev in set(ip.links(ns)) - {"lo"}:
                ip.delete_link(dev, ns)
        ip.delete_netns(ns)
        shutil.rmtree(net_dir, ignore_errors=True)
        self._loaded.pop(network_id, None)

    def cleanup(self) -> None:
        for network_id in sorted(self._known()):
            self._remove(network_id)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _write_if_changed(path: str, text: str) -> bool:
    if os.path.exists(path) and _read(path) == text:
        return False
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return True
