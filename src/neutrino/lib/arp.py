"""Gratuitous ARP, so neighbours learn at once that an address (a floating IP) now lives behind our MAC.

Frames go out of a raw AF_PACKET socket opened inside the namespace: no arping process per address, and a
thousand announcements cost one socket.
"""
from __future__ import annotations

import ipaddress
import struct

from neutrino.lib.nsocket import packet_socket

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6


def frame(mac: bytes, ip: str) -> bytes:
    """An unsolicited ARP request: sender and target are both `ip` (what `arping -U` sends)."""
    addr = ipaddress.IPv4Address(ip).packed
    eth = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + addr + b"\x00" * 6 + addr
    return eth + arp


def gratuitous_arp(dev: str, ips: list[str], netns: str | None = None, count: int = 1) -> int:
    """Announce each IPv4 address of `ips` on dev `count` times; returns the number of frames sent."""
    v4 = [ip for ip in ips if ipaddress.ip_address(ip).version == 4]
    if not v4:
        return 0
    s = packet_socket(netns, dev, ETH_P_ARP)
    sent = 0
    try:
        mac = s.getsockname()[4]
        for _ in range(count):
            for ip in v4:
                try:
                    s.send(frame(mac, ip))
                    sent += 1
                except OSError:   # a full queue or a link going down only loses an announcement
                    pass
    finally:
        s.close()
    return sent
