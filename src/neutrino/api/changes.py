"""Which long-polling agents a committed change wakes, on this server and on every other server of the database.

Every write transaction bumps the global revision and names what it changed (`core.common.affects`: "host:NAME",
"ports:NETWORK_ID", "members:GROUP_ID", "agents"; a write that names nothing changes everything). After the
commit the change — (revision, keys) — is published to the `Hub` of every server: in-process right away, and on
PostgreSQL by a NOTIFY sent in the same transaction, which every server LISTENing receives at commit, in commit
order (db/notify.py). Each hub keeps a bounded log of recent changes and, per host, the revision and the keys of
the last view it served. A watch (`GET .../view?since=REV`) is answered as soon as a change after REV touches one
of those keys, or when the hub cannot tell: the log does not reach back to REV, or REV is not the revision of a
view this server served (the agent came from another server, or this one restarted). Otherwise it waits, and at
its deadline answers "unchanged" without compiling a view: an idle host costs nothing however many writes others
make. Open watches and the per-host revision of the last answer stay readable for metrics (`watches`, `served`).
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

from neutrino.core import common
from neutrino.db import notify
from neutrino.db.notify import Keys

AGENTS = "agents"         # the set of live agents changed (tunnel peers)
LOG_SIZE = 50_000         # changes remembered; a watch further behind compiles its view



class Change(NamedTuple):
    revision: int
    keys: Keys


def record(s, precise: bool = False) -> Change:
    """End a write transaction: bump the global revision and, on PostgreSQL, NOTIFY every server of the change
    (delivered at commit) and commit (db/notify.py: the bump's row lock is held until then). The caller publishes the returned change to its own hub after the commit. Only a
    `precise` write (one whose every step names what it changes: port CRUD, agent reports) wakes just the views it
    named; any other wakes all, whatever helpers it called named (a floating IP's port names no router)."""
    keys = common.affected(s) if precise else None
    if notify.is_postgres(s):
        return Change(notify.bump_send_and_commit(s, keys), keys)
    return Change(common.bump(s), keys)


def view_keys(view: dict) -> frozenset[str]:
    """What a host view depends on: a change naming none of these leaves it as it is. The host's own ports are
    "host:NAME"; the other ports of a network ("ports:ID") only matter to its DHCP server and, with tunnels, to
    l2pop (fdb); a group's members ("members:ID") only to hosts using it as a remote group."""
    keys = {f"host:{view['host']}", *view["networks"], *view["security_groups"],
            *(f"members:{g}" for g in view["remote_groups"]), *(r["id"] for r in view["routers"]),
            *(f"ports:{d['network_id']}" for d in view["dhcp"])}
    if view["tunnels"].get("local_ip"):
        keys.add(AGENTS)
        keys.update(f"ports:{n}" for n in view["networks"])
    return frozenset(keys)


@dataclass(eq=False)
class Watch:
    """One open long-poll: the host, the revision it holds, and what wakes it."""
    host: str
    since: int
    keys: frozenset[str] | None
    opened: float = field(default_factory=time.monotonic)
    event: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    """The change log and open watches of one server process (all methods run on its event loop)."""

    def __init__(self):
        self.log: OrderedDict[int, Keys] = OrderedDict()
        self.floor = 0                  # revisions up to here may be missing from the log
        self.top = 0                    # the newest revision published (or the floor)
        self.served: dict[str, tuple[int, frozenset[str]]] = {}   # host -> (revision, keys) of its last answer
        self.watches: set[Watch] = set()
        self.listening = False          # a LISTEN connection is live: changes of other servers arrive here
        self.exact = False              # every commit after `floor` reaches this hub: `latest` is the revision
        self.listener = None            # what brings other processes' changes (db/notify.py), once started

    @property
    def latest(self) -> int:
        """The newest revision heard of (while `exact`, the database's: no need to read it for every watch)."""
        return self.top

    def publish(self, revision: int, keys: Keys) -> None:
        """A committed change (ours or another server's); wakes the watches it concerns."""
        if revision in self.log or revision <= self.floor:
            return
        self.log[revision] = keys
        self.top = max(self.top, revision)
        while len(self.log) > LOG_SIZE:
            self.floor = max(self.floor, self.log.popitem(last=False)[0])
        for w in self.watches:
            if keys is None or w.keys is None or w.keys & keys:
                w.event.set()

    def reset(self, revision: int = 0) -> None:
        """Changes may have been missed (the LISTEN connection was lost, or is new and `revision` is the database's
        as it began): forget the log, wake every watch."""
        self.floor = self.top = max(self.floor, self.top, revision)
        self.log.clear()
        for w in self.watches:
            w.event.set()

    def due(self, host: str, since: int, current: int) -> bool:
        """Whether the host's view must be compiled now for a watch holding revision `since`."""
        held = self.served.get(host)
        if held is None or held[0] != since:
            return True                          # not a view this server served: it cannot tell what changed
        if current <= since:
            return False
        if since < self.floor:
            return True
        keys = held[1]
        for rev in range(since + 1, current + 1):
            changed = self.log.get(rev, notify.ALL)      # not (yet) heard of: assume it matters
            if changed is None or changed == notify.ALL or keys & changed:
                return True
        return False

    def answered(self, host: str, revision: int, keys: frozenset[str] | None = None) -> None:
        """The host now holds `revision` from this server (with a new view's keys, or the same ones)."""
        if keys is None:
            keys = self.served.get(host, (0, frozenset()))[1]
        self.served[host] = (revision, keys)

    def watch(self, host: str, since: int) -> Watch:
        held = self.served.get(host)
        w = Watch(host, since, held[1] if held else None)
        self.watches.add(w)
        return w

    def unwatch(self, w: Watch) -> None:
        self.watches.discard(w)
