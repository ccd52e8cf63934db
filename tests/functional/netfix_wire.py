"""Hand-made frames for the anti-spoofing tests: what a hostile guest puts on its eth0 (forged ARP, NA, RA, DHCP
server replies), sent and watched through AF_PACKET sockets opened inside the guests' namespaces.

`Wire.sees(frame)` answers whether a frame sent by one guest reaches another: the watcher's socket is open before
the frame leaves, and it waits a bounded time for a frame carrying the sent frame's payload (everything after the
Ethernet header, unique per test frame).
"""
from __future__ import annotations

import socket
import struct
import time

from neutrino.lib.nsocket import in_netns

ETH_P_ALL = 0x0003
BCAST = "ff:ff:ff:ff:ff:ff"


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def eth(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype) + payload


def arp(src_mac: str, sender_mac: str, sender_ip: str, target_ip: str, op: int = 2, dst: str = BCAST) -> bytes:
    """An ARP request (op 1) or reply (op 2); gratuitous when sender_ip == target_ip."""
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac_bytes(sender_mac) + socket.inet_aton(sender_ip)
    body += (b"\0" * 6 if op == 1 else mac_bytes(dst if dst != BCAST else sender_mac)) + socket.inet_aton(target_ip)
    return eth(dst, src_mac, 0x0806, body)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip6(src_mac: str, src: str, dst: str, nxt: int, payload: bytes, dst_mac: str = "33:33:00:00:00:01",
        hops: int = 255) -> bytes:
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    if nxt in (58, 17):         # ICMPv6 / UDP checksum over the pseudo-header
        pseudo = s + d + struct.pack("!IxxxB", len(payload), nxt)
        off = 2 if nxt == 58 else 6
        payload = payload[:off] + struct.pack("!H", _csum(pseudo + payload)) + payload[off + 2:]
    hdr = struct.pack("!IHBB", 6 << 28, len(payload), nxt, hops) + s + d
    return eth(dst_mac, src_mac, 0x86DD, hdr + payload)


def na(src_mac: str, src: str, target: str, tll: str | None) -> bytes:
    """An unsolicited, overriding neighbour advertisement for `target` (with a target link-layer option)."""
    body = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + socket.inet_pton(socket.AF_INET6, target)
    if tll:
        body += b"\x02\x01" + mac_bytes(tll)
    return ip6(src_mac, src, "ff02::1", 58, body)


def ra(src_mac: str, src: str, prefix: str = "2001:db8:bad::") -> bytes:
    """A router advertisement announcing a default route and an autoconf prefix."""
    body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
    body += struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + socket.inet_pton(socket.AF_INET6, prefix)
    body += b"\x01\x01" + mac_bytes(src_mac)
    return ip6(src_mac, src, "ff02::1", 58, body)


def udp6(src_mac: str, src: str, dst: str, sport: int, dport: int, data: bytes) -> bytes:
    return ip6(src_mac, src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data,
               dst_mac="33:33:00:01:00:02", hops=64)


def dhcp4_offer(src_mac: str, src: str, xid: int) -> bytes:
    """A DHCPOFFER broadcast from a rogue server (UDP 67 -> 68)."""
    bootp = struct.pack("!BBBBIHH", 2, 1, 6, 0, xid, 0, 0x8000) + socket.inet_aton("0.0.0.0")
    bootp += socket.inet_aton("10.0.0.99") + socket.inet_aton(src) + b"\0" * 4 + b"\0" * 16 + b"\0" * 192
    bootp += b"\x63\x82\x53\x63" + b"\x35\x01\x02" + b"\x36\x04" + socket.inet_aton(src) + b"\xff"
    udp = struct.pack("!HHHH", 67, 68, 8 + len(bootp), 0) + bootp
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), xid & 0xFFFF, 0, 64, 17, 0, socket.inet_aton(src),
                      socket.inet_aton("255.255.255.255"))
    iph = iph[:10] + struct.pack("!H", _csum(iph)) + iph[12:]
    return eth(BCAST, src_mac, 0x0800, iph + udp)


def dhcp6_advertise(src_mac: str, src: str, xid: int) -> bytes:
    """A DHCPv6 ADVERTISE from a rogue server (UDP 547 -> 546)."""
    return udp6(src_mac, src, "ff02::1:2", 547, 546, struct.pack("!I", (2 << 24) | (xid & 0xFFFFFF)) + b"rogue")


class Wire:
    """Raw frames on guests' eth0: send from one namespace, watch for them in another."""

    def __init__(self, dev: str = "eth0"):
        self.dev = dev

    def _socket(self, ns: str) -> socket.socket:
        def make() -> socket.socket:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((self.dev, 0))
            return s
        return in_netns(ns, make)

    def send(self, ns: str, frame: bytes, count: int = 1) -> None:
        with self._socket(ns) as s:
            for _ in range(count):
                s.send(frame)

    def sees(self, sender: str, watcher: str, frame: bytes, timeout: float = 1.0) -> bool:
        """Whether `frame`, sent from `sender`, arrives at `watcher`'s eth0 within `timeout` seconds."""
        needle = frame[14:]
        with self._socket(watcher) as w:
            w.settimeout(0.1)
            self.send(sender, frame)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    got = w.recv(65535)
                except TimeoutError:
                    continue
                if needle in got[14:]:
                    return True
        return False
