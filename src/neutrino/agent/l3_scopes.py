"""Address scopes in a router namespace, realized as Neutron's L3 agent does it (IPv4).

Every router port is marked with its subnet's address scope as packets come in (mangle `-i DEV -j MARK`, one mark
per scope in the upper 16 bits; subnets without a scope share one mark). A packet may leave by an internal port
only with that port's mark (filter `-o qr-X -m mark ! --mark M -j DROP`): routing stays inside a scope, and
crossing scopes needs NAT. Connections leaving by the gateway remember their mark (CONNMARK) so replies are
restored to it, and traffic from a subnet in the external network's own scope is routed out without SNAT.
A router none of whose ports is in a scope gets none of these rules (behaviour is the same: one shared mark).
"""
from __future__ import annotations

import ipaddress

from neutrino.lib import iptables
from neutrino.names import L3_PREFIX
from neutrino.sync.schema import Router, RouterPort

MASK = "0xffff0000"
FIRST_MARK_ID = 1024          # Neutron's first address scope mark id: 1024 << 16 = 0x4000000
SCOPE = L3_PREFIX + "scope"
FLOATING = L3_PREFIX + "floatingip"
POST = L3_PREFIX + "POSTROUTING"


def _has_v4(port: RouterPort) -> bool:
    return any(ipaddress.ip_address(f["ip_address"]).version == 4 for f in port.get("fixed_ips", []))


def port_scope(port: RouterPort) -> str | None:
    return (port.get("address_scopes") or {}).get("4")


def _ports(router: Router) -> list[RouterPort]:
    ports = list(router.get("interfaces", []))
    if router.get("gateway"):
        ports.append(router["gateway"])
    return [p for p in ports if _has_v4(p)]


def scoped(router: Router) -> bool:
    return any(port_scope(p) for p in _ports(router))


def marks(router: Router) -> dict[str, str]:
    """Device -> its scope's mark/mask; ids are given in scope order (no scope first), so they are stable."""
    scopes = sorted({port_scope(p) or "" for p in _ports(router)})
    ids = {s: FIRST_MARK_ID + i for i, s in enumerate(scopes)}
    return {p["ns_device"]: f"{hex(ids[port_scope(p) or ''] << 16)}/{MASK}" for p in _ports(router)}


def _snat(router: Router) -> bool:
    gw = router.get("gateway")
    return bool(gw) and gw.get("enable_snat", True)


def mangle_table(router: Router) -> iptables.TableState:
    """Marks on the way in (ports, then packets to a floating IP take their fixed port's mark); the connection keeps
    the mark it had when it first left by the gateway."""
    if not scoped(router):
        return iptables.TableState("mangle")
    mk = marks(router)
    scope = [f"-i {dev} -j MARK --set-xmark {m}" for dev, m in mk.items()]
    scope.append(f"-m connmark ! --mark 0x0/{MASK} -j CONNMARK --restore-mark --nfmask {MASK} --ctmask {MASK}")
    chains = {SCOPE: scope, FLOATING: [], POST: []}
    gw = router.get("gateway")
    if gw and gw["ns_device"] in mk:
        subnets = [(ipaddress.ip_network(f["cidr"]), p["ns_device"]) for p in router.get("interfaces", [])
                   for f in p["fixed_ips"]]
        for fip in router.get("floating_ips", []):
            fixed = ipaddress.ip_address(fip["fixed_ip_address"])
            dev = next((d for net, d in subnets if fixed in net), None)
            if dev in mk:
                chains[FLOATING].append(f"-d {fip['floating_ip_address']}/32 -i {gw['ns_device']} "
                                        f"-j MARK --set-xmark {mk[dev]}")
        if _snat(router):
            chains[POST].append(f"-o {gw['ns_device']} -m connmark --mark 0x0/{MASK} "
                                f"-j CONNMARK --save-mark --nfmask {MASK} --ctmask {MASK}")
    jumps = {"PREROUTING": [f"-j {SCOPE}", f"-j {FLOATING}"], "POSTROUTING": [f"-j {POST}"]}
    return iptables.TableState("mangle", chains, jumps)


def filter_chains(router: Router) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(chains, jumps) of the filter table: a packet leaves by a port only carrying that port's scope mark; the
    gateway is exempt while it SNATs (NAT is how scopes are crossed)."""
    if not scoped(router):
        return {}, {}
    gw = (router.get("gateway") or {}).get("ns_device")
    rules = [f"-o {dev} -m mark ! --mark {m} -j DROP" for dev, m in marks(router).items()
             if not (dev == gw and _snat(router))]
    return {SCOPE: rules}, {"FORWARD": [f"-j {SCOPE}"]}


def no_snat(router: Router) -> list[str]:
    """nat `snat` rules ahead of the default SNAT: connections from the external network's own scope go out
    routed, with their own source address."""
    gw = router.get("gateway")
    if not (gw and _snat(router) and port_scope(gw) and gw["ns_device"] in marks(router)):
        return []
    return [f"-o {gw['ns_device']} -m connmark --mark {marks(router)[gw['ns_device']]} -j ACCEPT"]
