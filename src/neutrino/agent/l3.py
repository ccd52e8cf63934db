"""The L3 driver: one qrouter-<id> namespace per router, with qr-/qg- ports, routes, NAT and floating IPs.

It realizes `view["routers"]` the way Neutron's legacy L3 agent does, so the seed page's commands read true:
`ip netns exec qrouter-X ip route` shows connected + default, `iptables -t nat -S` shows the neutron-l3-agent-*
chains with the metadata REDIRECT, FIP DNAT/SNAT and default SNAT. Every sync reads the kernel, compares and
changes only the difference. The routers this agent made are remembered in a state file, because namespace
names are global on a machine that emulates several hosts.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os

from neutrino import names
from neutrino.agent import l3_scopes, metering
from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.errors import NeutrinoError
from neutrino.lib import arp, ip, iptables, sysctl
from neutrino.lib import ethtool
from neutrino.sync.schema import Router, RouterPort, View

LOG = logging.getLogger(__name__)

PREFIX = names.L3_PREFIX
METADATA_IP = "169.254.169.254"
KERNEL_PROTO = 2          # routes the kernel adds for connected subnets


def forwarding(router: Router) -> dict[str, int]:
    """An admin-down router keeps its namespace and ports (they are plugged and up, as in Neutron: tools wait for
    a router interface to go ACTIVE whatever the router's state) but forwards nothing."""
    on = 1 if router.get("admin_state_up", True) else 0
    return {"net.ipv4.ip_forward": on, "net.ipv6.conf.all.forwarding": on}


def _chain(suffix: str) -> str:
    return PREFIX + suffix


def _v4(port: RouterPort | None) -> list[dict]:
    return [f for f in (port or {}).get("fixed_ips", []) if ipaddress.ip_address(f["ip_address"]).version == 4]


def gateway_ip(router: Router) -> str | None:
    """The router's own IPv4 address on the external network (the default SNAT source)."""
    fixed = _v4(router.get("gateway"))
    return fixed[0]["ip_address"] if fixed else None


def fip_addresses(router: Router) -> list[str]:
    """Every floating IP the router answers for: associated FIPs and FIPs carrying port forwardings."""
    out = [f["floating_ip_address"] for f in router.get("floating_ips", [])]
    out += [pf["floating_ip_address"] for pf in router.get("port_forwardings", [])]
    return list(dict.fromkeys(out))


def nat_table(router: Router, metadata_port: int) -> iptables.TableState:
    """The nat table of a router namespace, rules written as iptables-save prints them."""
    pre = [f"-d {METADATA_IP}/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports {metadata_port}"]
    out: list[str] = []
    for pf in router.get("port_forwardings", []):
        proto = pf["protocol"]
        rule = (f"-d {pf['floating_ip_address']}/32 -p {proto} -m {proto} --dport {pf['external_port']} "
                f"-j DNAT --to-destination {pf['internal_ip_address']}:{pf['internal_port']}")
        pre.append(rule)
        out.append(rule)
    float_snat = []
    for fip in router.get("floating_ips", []):
        dnat = f"-d {fip['floating_ip_address']}/32 -j DNAT --to-destination {fip['fixed_ip_address']}"
        pre.append(dnat)
        out.append(dnat)
        float_snat.append(f"-s {fip['fixed_ip_address']}/32 -j SNAT --to-source {fip['floating_ip_address']}")
    post: list[str] = []
    snat = [f"-j {_chain('float-snat')}"]
    gw = router.get("gateway")
    if gw:
        qg = gw["ns_device"]
        post.append(f"! -o {qg} -m conntrack ! --ctstate DNAT -j ACCEPT")
        gw_ip = gateway_ip(router)
        if gw.get("enable_snat", True) and gw_ip:
            snat += l3_scopes.no_snat(router)
            snat.append(f"-o {qg} -j SNAT --to-source {gw_ip}")
    chains = {_chain("PREROUTING"): pre, _chain("OUTPUT"): out, _chain("POSTROUTING"): post,
              _chain("snat"): snat, _chain("float-snat"): float_snat}
    jumps = {"PREROUTING": [f"-j {_chain('PREROUTING')}"], "OUTPUT": [f"-j {_chain('OUTPUT')}"],
             "POSTROUTING": [f"-j {_chain('POSTROUTING')}", f"-j {_chain('snat')}"]}
    return iptables.TableState("nat", chains, jumps)


def filter_table(metadata_port: int, router: Router | None = None) -> iptables.TableState:
    """Only connections the metadata REDIRECT sent there may reach the proxy port; routed packets stay in their
    address scope (l3_scopes)."""
    rules = [f"-p tcp -m tcp --dport {metadata_port} -m conntrack --ctstate DNAT -j ACCEPT",
             f"-p tcp -m tcp --dport {metadata_port} -j DROP"]
    chains, jumps = l3_scopes.filter_chains(router) if router else ({}, {})
    return iptables.TableState("filter", {_chain("INPUT"): rules, **chains},
                               {"INPUT": [f"-j {_chain('INPUT')}"], **jumps})


def wanted_routes(router: Router) -> dict[str, str]:
    """Non-connected routes of the namespace: destination CIDR -> next hop (default via the external gateway)."""
    out: dict[str, str] = {}
    for f in (router.get("gateway") or {}).get("fixed_ips", []):
        gw = f.get("gateway_ip")
        if gw:
            default = "0.0.0.0/0" if ipaddress.ip_address(gw).version == 4 else "::/0"
            out.setdefault(default, gw)
    for r in router.get("routes", []):
        out[str(ipaddress.ip_network(r["destination"], strict=False))] = r["nexthop"]
    return out


class L3Driver:
    """Routers as qrouter- namespaces; `host_ns` is where the ns- ends go (None: the agent's own namespace)."""

    name = "l3"

    def __init__(self, config: HostConfig, host_ns: str | None = None):
        self.config = config
        self.host_ns = host_ns
        self.state_file = os.path.join(config.state_dir, "l3", "routers.json")
        self.metered: dict[str, Router] = {}     # routers with metering labels, as last synced
        self.unmetered: set[str] = set()         # routers known to have no metering chains

    # --- owned routers ------------------------------------------------------------------------------------------

    def _owned(self) -> set[str]:
        try:
            with open(self.state_file) as f:
                return set(json.load(f))
        except (FileNotFoundError, ValueError):
            return set()

    def _remember(self, ids: set[str]) -> None:
        if ids == self._owned():
            return
        os.makedirs(os.path.dirname(self.state_file), exist_ok=True)
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(sorted(ids), f)
        os.replace(tmp, self.state_file)

    # --- driver interface ---------------------------------------------------------------------------------------

    def sync(self, view: View) -> SyncResult:
        result = SyncResult()
        port = view.get("metadata", {}).get("port", self.config.metadata_port)
        wanted = {r["id"]: r for r in view.get("routers", [])}
        owned = self._owned()
        self._remember(owned | set(wanted))
        for rid in sorted(owned - set(wanted)):
            if ip.netns_exists(names.qrouter(rid)):
                ip.delete_netns(names.qrouter(rid))
                result.changed = True
        for rid, router in wanted.items():
            try:
                result.changed |= self._sync_router(router, port, result)
                result.routers[rid] = True
            except (NeutrinoError, OSError) as e:
                LOG.error("router %s: %s", rid, e)
                result.routers[rid] = False
        self._remember(set(wanted))
        self.metered = {rid: r for rid, r in wanted.items() if r.get("gateway") and r.get("metering_labels")}
        return result

    def metering_counters(self) -> dict[str, dict[str, dict[str, int]]]:
        """router id -> label id -> {"packets", "bytes"}, read now from the routers' namespaces (for the report)."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for rid, router in self.metered.items():
            per_label: dict[str, dict[str, int]] = {}
            for version in (4, 6):
                try:
                    text = iptables.save("filter", names.qrouter(rid), version, counters=True)
                except NeutrinoError as e:
                    LOG.warning("metering counters of router %s: %s", rid, e)
                    continue
                for label, c in metering.counters(text, router).items():
                    have = per_label.setdefault(label, {"packets": 0, "bytes": 0})
                    have["packets"] += c["packets"]
                    have["bytes"] += c["bytes"]
            out[rid] = per_label
        return out

    def cleanup(self) -> None:
        for rid in self._owned():
            ip.delete_netns(names.qrouter(rid))
        self._remember(set())

    # --- one router ---------------------------------------------------------------------------------------------

    def _sync_router(self, router: Router, metadata_port: int, result: SyncResult) -> bool:
        ns = names.qrouter(router["id"])
        changed = not ip.netns_exists(ns)
        ip.ensure_netns(ns)
        changed |= sysctl.ensure(forwarding(router), ns)
        ports = list(router.get("interfaces", []))
        gw = router.get("gateway")
        if gw:
            ports.append(gw)
        changed |= self._remove_stale_ports(ns, {p["ns_device"] for p in ports})
        for p in ports:
            extra = [f"{a}/32" for a in fip_addresses(router)] if p is gw else []
            changed |= self._sync_port(ns, p, extra)
            result.ports[p["port_id"]] = True
        changed |= self._sync_routes(ns, router)
        changed |= bool(iptables.apply(nat_table(router, metadata_port), PREFIX, netns=ns))
        changed |= bool(iptables.apply(filter_table(metadata_port, router), PREFIX, netns=ns))
        changed |= bool(iptables.apply(l3_scopes.mangle_table(router), PREFIX, netns=ns))
        changed |= self._sync_metering(ns, router)
        for fip in router.get("floating_ips", []):
            result.floatingips[fip["id"]] = gw is not None and router.get("admin_state_up", True)
        return changed

    def _sync_metering(self, ns: str, router: Router) -> bool:
        """The metering chains; a router without labels is checked once (then known bare), not on every sync."""
        bare = not (router.get("gateway") and router.get("metering_labels"))
        if bare and router["id"] in self.unmetered:
            return False
        changed = False
        for version, table in metering.tables(router).items():
            changed |= bool(iptables.apply(table, metering.PREFIX, netns=ns, ipv=version))
        if bare:
            self.unmetered.add(router["id"])
        else:
            self.unmetered.discard(router["id"])
        return changed

    def _remove_stale_ports(self, ns: str, wanted: set[str]) -> bool:
        stale = [n for n in ip.links(ns) if n.startswith(("qr-", "qg-")) and n not in wanted]
        for name in stale:
            ip.delete_link(name, ns)
        return bool(stale)

    def _sync_port(self, ns: str, port: RouterPort, extra: list[str]) -> bool:
        """The veth of one router port, its MAC/MTU/addresses; new addresses are announced by gratuitous ARP."""
        dev, host_dev = port["ns_device"], port["device"]
        created = not ip.link_exists(dev, ns)
        if created and ip.link_exists(host_dev, self.host_ns):
            ip.delete_link(host_dev, self.host_ns)      # a leftover end whose peer is gone
        ip.ensure_veth(host_dev, dev, netns=self.host_ns, peer_netns=ns, mtu=port.get("mtu"),
                       peer_mac=port["mac_address"])
        if created and self.config.userspace_ovs:
            ethtool.tx_off(dev, ns)
        want = {str(ipaddress.ip_interface(f"{f['ip_address']}/{f['prefixlen']}")) for f in port["fixed_ips"]}
        want.update(extra)
        have = ip.addresses(dev, ns)
        if want == have:          # one dump, no writes: the common case on a resync
            return created
        ip.ensure_addresses(dev, want, ns)
        arp.gratuitous_arp(dev, sorted(a.split("/")[0] for a in want - have), ns)
        return True

    def _sync_routes(self, ns: str, router: Router) -> bool:
        want = wanted_routes(router)
        changed = False
        for family in (4, 6):
            have = {}
            for r in ip.routes(ns, family):
                if r["proto"] == KERNEL_PROTO or r["dst"].startswith("fe80:"):
                    continue
                dst = r["dst"] if r["dst"] != "default" else ("0.0.0.0/0" if family == 4 else "::/0")
                have[dst] = r["gateway"]
            mine = {d: g for d, g in want.items() if ipaddress.ip_network(d).version == family}
            for dst in sorted(set(have) - set(mine)):
                ip.delete_route(dst, ns, gateway=have[dst])
                changed = True
            for dst, gw in mine.items():
                if have.get(dst) != gw:
                    ip.ensure_route(dst, ns, gateway=gw)
                    changed = True
        return changed
