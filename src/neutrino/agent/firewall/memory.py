"""What a firewall driver keeps between syncs: what it last applied to the kernel, and each port's rendering.

Reading the kernel back (iptables-save of four tables, `nft list`, `ipset save`) costs 0.5-1 s at 1000 ports, more
than everything else a one-port change needs. So a driver keeps the state its last sync left in the kernel and
diffs against that instead, but only while nftables' ruleset generation of the namespace (lib.nft.generation,
bumped by every committed change by anyone, iptables-nft included) is still the one it saw after its own last
apply, and only within `trust` seconds of its last real read: a change behind its back is read and repaired at
the next sync, and the first sync after the window (at the latest the agent's periodic resync) reads the kernel
anyway, which bounds what a change racing the driver's own apply could hide. An apply made from memory that the
kernel refuses means the kernel drifted: the driver forgets and retries from a fresh read.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from neutrino.errors import KernelError

TRUST = 10.0     # seconds; below the agent's 15 s resync interval, so every periodic resync reads the kernel


SLOW = 3         # a read (and its apply) that took longer than trust / SLOW stretches the window to SLOW times it


class KernelMemory:
    def __init__(self, trust: float = TRUST, clock: Callable[[], float] = time.monotonic):
        self.trust = trust
        self.window = trust         # trust, or longer after a slow read: see remember
        self.clock = clock
        self.state: Any = None
        self.read_at = float("-inf")
        self.generation: int | None = None
        self._fresh = float("-inf")     # read_at of the last real read

    def trusted(self, generation: int) -> Any:
        """The remembered kernel state, or None when it must be read again."""
        if self.state is not None and generation == self.generation and self.clock() - self.read_at < self.window:
            return self.state
        return None

    def remember(self, state: Any, read_at: float, generation: int) -> None:
        """Keep what the kernel holds now; read_at = when the kernel was last read (the state builds on that),
        generation = the ruleset generation right after this driver's apply. After a real read the window is
        at least SLOW times what that read and apply took: at 5000 ports reading the tables back takes longer
        than `trust`, and every sync would otherwise read them again."""
        if read_at != self._fresh:
            self._fresh = read_at
            self.window = max(self.trust, SLOW * (self.clock() - read_at))
        self.state, self.read_at, self.generation = state, read_at, generation

    def forget(self) -> None:
        self.state, self.read_at, self.generation = None, float("-inf"), None

    def apply(self, generation: int, fn: Callable[[Any], None]) -> None:
        """fn(remembered state or None); when an apply from memory is refused by the kernel, the kernel is not
        what we left there: forget, and fn(None) reads it and tries again."""
        now = self.trusted(generation)
        try:
            fn(now)
        except KernelError:
            if now is None:
                raise
            self.forget()
            fn(None)


class Rendered:
    """Per-port renderings, reused while the port is the same FwPort object (ports.PortCache keeps it so while
    the port's inputs are unchanged). `prune` after a sync drops ports that were not asked for."""

    def __init__(self, render: Callable[..., Any]):
        self.render = render
        self._hits: dict[tuple, tuple[object, Any]] = {}
        self._used: dict[tuple, tuple[object, Any]] = {}

    def __call__(self, port, *args) -> Any:
        key = (port.id, *args)
        hit = self._used.get(key) or self._hits.get(key)
        if hit is None or hit[0] is not port:
            hit = (port, self.render(port, *args))
        self._used[key] = hit
        return hit[1]

    def prune(self) -> None:
        self._hits, self._used = self._used, {}
