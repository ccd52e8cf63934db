"""What an agent counts about itself, sent in every report (`metrics`) for the server to relay on /metrics.

Counters are totals since the agent started (Prometheus' rate() handles restarts); durations are of the last run.
Drift is what a periodic resync (nothing changed in the view) had to change in the kernel: someone or something
altered what the agent had made.
"""
from __future__ import annotations

from collections import Counter


class AgentStats:
    def __init__(self):
        self.last_seconds: dict[str, float] = {}
        self.sync_seconds: Counter = Counter()     # driver -> total seconds
        self.syncs: Counter = Counter()            # driver -> runs
        self.drift: Counter = Counter()            # driver -> resyncs that changed the kernel
        self.errors: Counter = Counter()           # driver -> failed runs and failed kernel/daemon calls
        self.starts: Counter = Counter()           # daemon -> (re)starts by this agent

    def synced(self, driver: str, seconds: float, reason: str, result) -> None:
        """One driver run that completed (its SyncResult: changes, daemons started, calls that failed)."""
        self.last_seconds[driver] = seconds
        self.sync_seconds[driver] += seconds
        self.syncs[driver] += 1
        if result.changed and reason == "resync":
            self.drift[driver] += 1
        if result.errors:
            self.errors[driver] += result.errors
        self.started(result.started)

    def failed(self, driver: str) -> None:
        self.errors[driver] += 1

    def started(self, daemons) -> None:
        self.starts.update(daemons)

    def body(self, ports: dict[str, bool]) -> dict:
        up = sum(1 for ok in ports.values() if ok)
        return {"sync_last_seconds": dict(self.last_seconds), "sync_seconds": dict(self.sync_seconds),
                "syncs": dict(self.syncs), "drift": dict(self.drift), "errors": dict(self.errors),
                "daemon_starts": dict(self.starts), "ports": {"up": up, "down": len(ports) - up}}
