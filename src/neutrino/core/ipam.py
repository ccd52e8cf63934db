"""IPAM: subnet validation (gateway, allocation pools, overlaps) and address choice, as pure functions.

The database makes allocation safe under concurrency: an address is a primary key within its subnet, so two
writers racing for the same address cannot both commit (the loser retries and gets the next one).
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

from neutrino.errors import bad_request, conflict

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def network(cidr: str) -> Net:
    return ipaddress.ip_network(cidr, strict=False)


def first_last(net: Net) -> tuple[int, int]:
    """The usable host range: IPv4 excludes network and broadcast addresses (except /31, /32); IPv6 the subnet-router
    anycast address."""
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.prefixlen < 31:
        return lo + 1, hi - 1
    if net.version == 6 and net.prefixlen < 127:
        return lo + 1, hi
    return lo, hi


def default_gateway(net: Net) -> str:
    return str(ipaddress.ip_address(first_last(net)[0]))


def default_pools(net: Net, gateway: str | None) -> list[dict]:
    lo, hi = first_last(net)
    gw = int(ipaddress.ip_address(gateway)) if gateway else None
    ranges = [(lo, hi)]
    if gw is not None and lo <= gw <= hi:
        ranges = [(a, b) for a, b in ((lo, gw - 1), (gw + 1, hi)) if a <= b]
    return [{"start": str(ipaddress.ip_address(a)), "end": str(ipaddress.ip_address(b))} for a, b in ranges]


def validate_gateway(net: Net, gateway: str | None) -> None:
    if gateway is None:
        return
    ip = ipaddress.ip_address(gateway)
    if ip.version != net.version:
        raise bad_request(f"Invalid input for operation: gateway_ip {gateway} does not match the ip_version.",
                          "InvalidInput")
    if ip in net and net.prefixlen < 31 and (ip == net.network_address or
                                             (net.version == 4 and ip == net.broadcast_address)):
        raise bad_request(f"Gateway is not valid on subnet: Gateway ip {gateway} conflicts with the subnet "
                          f"{net} network or broadcast address.", "InvalidInput")


def validate_pools(net: Net, pools: list[dict], gateway: str | None) -> list[dict]:
    """Pools inside the subnet's host range, each start <= end, not overlapping, not holding the gateway."""
    lo, hi = first_last(net)
    spans = []
    for p in pools:
        try:
            a, b = ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"])
        except (KeyError, ValueError, TypeError):
            raise bad_request(f"Invalid input for allocation_pools. Reason: '{p}' is not a valid pool.",
                              "InvalidInput") from None
        if a.version != net.version or b.version != net.version or int(a) > int(b):
            raise bad_request(f"The allocation pool {p['start']}-{p['end']} is not valid.", "InvalidAllocationPool")
        if not (lo <= int(a) and int(b) <= hi):
            raise bad_request(f"The allocation pool {p['start']}-{p['end']} spans beyond the subnet cidr {net}.",
                              "OutOfBoundsAllocationPool")
        spans.append((int(a), int(b), p))
    spans.sort()
    for (a1, b1, p1), (a2, _b2, p2) in zip(spans, spans[1:]):
        if a2 <= b1:
            raise bad_request(f"Found overlapping allocation pools: {p1['start']}-{p1['end']} and "
                              f"{p2['start']}-{p2['end']} for subnet {net}.", "OverlappingAllocationPools")
    if gateway:
        g = int(ipaddress.ip_address(gateway))
        for a, b, p in spans:
            if a <= g <= b:
                raise conflict("GatewayConflictWithAllocationPools",
                               f"Gateway ip {gateway} conflicts with allocation pool {p['start']}-{p['end']}.")
    return [{"start": str(ipaddress.ip_address(a)), "end": str(ipaddress.ip_address(b))} for a, b, _ in spans]


def check_overlap(net: Net, others: Iterable[str], network_id: str) -> None:
    for other in others:
        o = network(other)
        if o.version == net.version and o.overlaps(net):
            raise bad_request(f"Invalid input for operation: Requested subnet with cidr: {net} for network: "
                              f"{network_id} overlaps with another subnet.", "InvalidInput")


def _v4(i: int) -> str:
    return f"{i >> 24 & 255}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def next_free(pools: list[dict], used: set[str], low: int = 0) -> str | None:
    """The lowest free address of the pools, in pool order, from `low` on (every address below it is known to be
    used); `used` holds addresses as strings (no parsing)."""
    for p in pools:
        start = ipaddress.ip_address(p["start"])
        a, b = int(start), int(ipaddress.ip_address(p["end"]))
        text = _v4 if start.version == 4 else (lambda i: str(ipaddress.IPv6Address(i)))
        for cand in range(max(a, low), b + 1):
            ip = text(cand)
            if ip not in used:
                return ip
    return None


def eui64(prefix: str, mac: str) -> str:
    """SLAAC address of a MAC in a /64 (used for ipv6_address_mode slaac/dhcpv6-stateless)."""
    net = network(prefix)
    b = bytearray(int(x, 16) for x in mac.split(":"))
    b[0] ^= 0x02
    iid = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    return str(ipaddress.ip_address(int(net.network_address) | int.from_bytes(iid, "big")))


def first_free_subnet(prefix: Net, plen: int, taken: Iterable[Net]) -> Net | None:
    """The lowest /plen inside prefix that overlaps nothing taken: one pass over the taken blocks in address order
    (never an enumeration of candidates, which is exponential in plen - prefix length)."""
    if plen < prefix.prefixlen or plen > prefix.max_prefixlen:
        return None
    size = 1 << (prefix.max_prefixlen - plen)
    cur, end = int(prefix.network_address), int(prefix.broadcast_address)
    blocks = sorted((int(t.network_address), int(t.broadcast_address)) for t in taken
                    if t.version == prefix.version and t.overlaps(prefix))
    for first, last in blocks:
        if cur + size - 1 < first:
            break
        if last >= cur:
            cur = (last + size) // size * size
    if cur + size - 1 > end:
        return None
    return ipaddress.ip_network((cur, plen))
