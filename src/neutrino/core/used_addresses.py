"""Each subnet's used addresses as of a global revision, kept by this process between write transactions.

A port create chooses the lowest free address of its subnet. Reading every used address for that costs half of a
create at 1000 ports on a subnet, and then the search starts again from the pool's start. So a write transaction
takes the subnet's kept set instead (no other transaction can use it meanwhile), with the lowest candidate not yet
known to be used, and adds what it allocates. Once committed, it puts them back under the revision it committed.

It uses a kept set only if that set was kept at the revision the transaction read. It keeps a set only if it bumped
the revision to the next number. Every write bumps the revision, on every server, so no other commit can come in
between. A transaction that releases addresses keeps nothing and reads again. A set that is wrong anyway (a write
that bumped nothing) gives a duplicate address. The primary key refuses it, the set is gone with the failed
transaction, and the retry reads the table.
"""
from __future__ import annotations

from typing import Callable

from neutrino.core import common

_KEPT: dict[str, tuple[int, set[str], int]] = {}    # subnet id -> (revision, used addresses, lowest candidate)
KEY = "used_addresses"


class Taken:
    """A transaction's used addresses: subnet id -> [used set, lowest candidate], and the revision it read."""

    def __init__(self, revision: int):
        self.revision = revision
        self.subnets: dict[str, list] = {}
        self.released = False


def _taken(s) -> Taken:
    taken = s.info.get(KEY)
    if taken is None:
        taken = s.info[KEY] = Taken(common.revision(s))
        s.info.setdefault("after_commit", []).append(lambda: _keep(s, taken))
    return taken


def used(s, subnet_id: str, read: Callable[[], set[str]]) -> list:
    """[used addresses, lowest candidate] of the subnet in this transaction (mutable: `allocated` adds to it); the
    kept set when it is current, else read()."""
    taken = _taken(s)
    entry = taken.subnets.get(subnet_id)
    if entry is None:
        kept = _KEPT.pop(subnet_id, None)
        if kept is not None and kept[0] == taken.revision and not taken.released:
            entry = [kept[1], kept[2]]
        else:
            entry = [read(), 0]
        taken.subnets[subnet_id] = entry
    return entry


def allocated(s, ips: list[dict]) -> None:
    """Addresses this transaction stores: in its sets of their subnets."""
    taken = s.info.get(KEY)
    if taken is not None:
        for ip in ips:
            entry = taken.subnets.get(ip["subnet_id"])
            if entry is not None:
                entry[0].add(ip["ip_address"])


def released(s) -> None:
    """This transaction deletes addresses: what it has taken is dropped (read again if needed) and nothing is kept."""
    taken = s.info.get(KEY)
    if taken is not None:
        taken.released = True
        taken.subnets.clear()


def _keep(s, taken: Taken) -> None:
    bumped = s.info.get("bumped")
    if taken.released or bumped != taken.revision + 1:
        return
    if len(_KEPT) > 4096:               # a process that allocates on many subnets: bounded
        _KEPT.clear()
    for subnet_id, (addresses, low) in taken.subnets.items():
        _KEPT[subnet_id] = (bumped, addresses, low)
