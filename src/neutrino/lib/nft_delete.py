"""nftables deletions sent as one raw netfilter netlink batch, without nft.

nft 1.0.6 lists every table, chain, rule, set and element of the namespace before any `delete` (30,000 chains and
their sets at 5000 ports: 40-60 ms, more than the change), while the kernel deletes a chain, a set, a table or an
element by name or key. So lib.nft sends the delete lines of a script here: `delete table|chain|set|map F T N`
and `delete element F T S { e1, e2 }` with the element forms lib.nft writes (quoted interface names, integers,
IPv4/IPv6 prefixes and ranges of interval sets). `split` leaves any other line (and any element it cannot encode)
to nft. The batch is one transaction: all of it applies or none (the first error is raised).
"""
from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
import struct

from neutrino.errors import KernelError

NFNL_SUBSYS_NFTABLES = 10
BATCH_BEGIN, BATCH_END = 0x10, 0x11
MSG = {"table": 2, "chain": 5, "flush": 8, "set": 11, "map": 11, "element": 14}   # NFT_MSG_DEL* (8: DELRULE)
NLM_F_REQUEST, NLM_F_ACK = 1, 4
FAMILY = {"ip": 2, "inet": 1, "bridge": 7, "ip6": 10, "arp": 3, "netdev": 5}
IFNAMSIZ = 16
_LINE = re.compile(r"(?:delete|(flush)) (table|chain|set|map|element) (\S+) (\S+)(?: (\S+))?(?: \{ (.*) \})?$")


def _attr(typ: int, payload: bytes) -> bytes:
    head = struct.pack("=HH", 4 + len(payload), typ)
    return head + payload + b"\0" * (-len(payload) % 4)


def _name(typ: int, text: str) -> bytes:
    return _attr(typ, text.encode() + b"\0")


def _nest(typ: int, *parts: bytes) -> bytes:
    return _attr(typ | 0x8000, b"".join(parts))             # NLA_F_NESTED


def _key(value: bytes, end: bool = False) -> bytes:
    """One NFTA_LIST_ELEM: NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE }, NFTA_SET_ELEM_FLAGS INTERVAL_END for an end."""
    parts = [_nest(1, _attr(1, value))]
    if end:
        parts.append(_attr(3, struct.pack(">L", 1)))
    return _nest(1, *parts)


def _element(text: str) -> list[bytes] | None:
    """The kernel keys of one element as lib.nft writes it; None when it is not one of those forms."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        name = text[1:-1].encode()
        return [_key(name + b"\0" * (IFNAMSIZ - len(name)))] if len(name) < IFNAMSIZ else None
    if text.isdigit():
        return [_key(struct.pack("=L", int(text)))] if int(text) < 1 << 32 else None
    try:
        if "-" in text:                                  # a range a-b of an interval set
            lo, hi = (ipaddress.ip_address(x) for x in text.split("-", 1))
        else:
            net = ipaddress.ip_network(text, strict=True)
            lo, hi = net.network_address, net.broadcast_address
    except ValueError:
        return None
    keys = [_key(lo.packed)]
    if int(hi) + 1 < 1 << hi.max_prefixlen:              # an interval ends one past its last address
        keys.append(_key((hi + 1).packed, end=True))
    return keys


def _message(line: str) -> tuple[int, bytes] | None:
    """(message type, body: nfgenmsg and attributes) of one delete line; None when nft must do it."""
    m = _LINE.match(line)
    if not m or m.group(3) not in FAMILY:
        return None
    flush, what, family, table, name, elems = m.groups()
    head = struct.pack("=BBH", FAMILY[family], 0, 0)
    if flush:
        if what != "chain" or not name or elems is not None:
            return None
        what, body = "flush", _name(1, table) + _name(2, name)                    # NFTA_RULE_TABLE, _CHAIN
    elif what == "table":
        body = _name(1, table) if name is None and elems is None else None          # NFTA_TABLE_NAME
    elif what == "chain":
        body = _name(1, table) + _name(3, name) if name and elems is None else None  # NFTA_CHAIN_TABLE, _NAME
    elif what in ("set", "map"):
        body = _name(1, table) + _name(2, name) if name and elems is None else None  # NFTA_SET_TABLE, _NAME
    else:
        keys = [_element(e.strip()) for e in (elems or "").split(",")] if name else [None]
        if any(k is None for k in keys):
            return None
        body = _name(1, table) + _name(2, name) + _nest(3, *(k for ks in keys for k in ks))
    if body is None:
        return None
    return (NFNL_SUBSYS_NFTABLES << 8) | MSG[what], head + body


def split(script: list[str]) -> tuple[list[tuple[int, bytes]], list[str], list[tuple[int, bytes]]]:
    """(messages to send before nft, lines left to nft, messages to send after it) of a script, each in order.
    Element deletions go first (an element whose value changes is deleted before nft adds it again); chains, sets
    and tables after (a rule nft rewrites may still name them until then). A `flush chain` is sent only when the
    script deletes that chain too (emptied first, so chains that jump to each other can go in any order); a
    chain flushed to be refilled stays with its refill, in nft's transaction."""
    deleted = {line.replace("delete chain ", "flush chain ", 1) for line in script if line.startswith("delete chain ")}
    before, left, after = [], [], []
    for line in script:
        msg = _message(line) if line.startswith("delete ") or line in deleted else None
        if msg is None:
            left.append(line)
        else:
            (before if line.startswith("delete element ") else after).append(msg)
    return before, left, after


def send(sock: socket.socket, messages: list[tuple[int, bytes]]) -> None:
    """One batch of delete messages on a netfilter netlink socket; raises the first error the kernel answers (the
    caller drops the socket then: answers may be left unread)."""
    if not messages:
        return
    out, seq = [], 1

    def nlmsg(typ: int, flags: int, body: bytes) -> bytes:
        return struct.pack("=LHHLL", 16 + len(body), typ, flags, seq, 0) + body + b"\0" * (-len(body) % 4)
    batch = struct.pack("=BBH", 0, 0, socket.htons(NFNL_SUBSYS_NFTABLES))
    out.append(nlmsg(BATCH_BEGIN, NLM_F_REQUEST, batch))
    for typ, body in messages:
        seq += 1
        out.append(nlmsg(typ, NLM_F_REQUEST | NLM_F_ACK, body))
    seq += 1
    out.append(nlmsg(BATCH_END, NLM_F_REQUEST, batch))
    sock.sendall(b"".join(out))
    _acks(sock, len(messages))


def _acks(sock: socket.socket, count: int) -> None:
    """Read one ACK per message; the kernel stops at the first error (the batch is aborted then)."""
    seen = 0
    while seen < count:
        data = sock.recv(1 << 16)
        off = 0
        while off + 16 <= len(data):
            length, typ = struct.unpack_from("=LH", data, off)
            if typ == 2:                                                   # NLMSG_ERROR
                err = -struct.unpack_from("=i", data, off + 16)[0]
                if err:
                    raise KernelError(f"nft delete: {errno.errorcode.get(err, err)} ({os.strerror(err)})",
                                      errno=err)
                seen += 1
            off += (length + 3) & ~3
            if length == 0:
                break
