"""The agent loop: watch this host's view, make the kernel match it through the drivers, report what is in place.

Level-triggered: the agent long-polls with the last revision it saw and always converges to the latest view. A view
whose content (all but `revision`) is what the drivers last applied runs nothing. Every `resync_interval` the
drivers run anyway, which repairs drift (a deleted device, a dead dnsmasq) at almost no cost since each driver
reads the kernel and writes only differences. A failing driver is isolated: it is logged, the others still run, and
it is retried alone with exponential back-off (0.5 s → 30 s) until it succeeds; what it owns is reported as not in
place meanwhile. Nothing is flushed on start: a restarted agent reads what the kernel has and converges, so traffic
keeps flowing. SIGTERM ends the loop and leaves every device, rule and process in place.

A watcher thread looks every WATCH_INTERVAL at what drivers depend on outside the kernel's tables (a driver's
`restarted()`: ovs-vswitchd and ovsdb-server by pid, the metadata listeners): when one died or came back, every
driver runs at once (flows, bridges and listeners back within a second), not at the next resync. A device thread
listens to the kernel's link announcements: the tap of a port waiting for it is wired and reported the moment the
hypervisor makes it, while the loop sits in its long-poll. On a view change the DHCP, L3 and metadata drivers run
only when their part of the view changed (a port booting does not re-read every router).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from neutrino.agent.driver import Driver, HostConfig, SyncResult, backend
from neutrino.errors import NeutrinoError
from neutrino.lib import ip, ovs as lib_ovs
from neutrino.metrics.agent import AgentStats
from neutrino.sync.client import Backoff, ProtocolError, SyncClient
from neutrino.sync.schema import View

LOG = logging.getLogger(__name__)

ROLES = ("l2", "dhcp", "l3", "metadata")
# dhcp and l3 create the ns- veth ends that l2 plugs; the firewall filters plugged taps; metadata needs the namespaces
ORDER = ("dhcp", "l3", "l2", "firewall", "qos", "metadata")
# the view keys a driver reads, for drivers that read only part of it: on a view change or an arrived device they run
# only when their part changed (a port booting must not pay for re-reading every router); the resync runs them all
READS = {"dhcp": ("dhcp",), "l3": ("routers", "metadata"), "metadata": ("routers", "dhcp", "metadata")}
DEVICE_POLL = 1.0   # seconds between looks for awaited devices, should a link announcement be lost (see _devices)
WATCH_INTERVAL = 0.1  # seconds between looks at the daemons the drivers depend on


class AgentStopped(BaseException):
    """Raised from the signal handler to cut a long-poll short (a BaseException: no error handler swallows it)."""


@dataclass
class Slot:
    """One driver in the pipeline with its failure state."""
    role: str
    driver: Driver
    result: SyncResult = field(default_factory=SyncResult)
    failed: bool = False
    retry_at: float = 0.0
    backoff: Backoff = field(default_factory=Backoff)
    ran_on: dict | None = None      # the part of the view (READS) this driver last ran on without failing


def build_drivers(config: HostConfig, l2: str, firewall: str, roles) -> list[tuple[str, Driver]]:
    """The drivers for these roles, in pipeline order, found by backend name in the registry (agent/driver.py).
    The firewall and QoS filter what L2 plugs, so they come with the l2 role."""
    chosen = {"l2": l2, "firewall": firewall}
    made: list[tuple[str, Driver]] = []
    for role in ORDER:
        if role not in roles and not (role in ("firewall", "qos") and "l2" in roles):
            continue
        cls = backend(role, chosen.get(role))
        made.append((role, cls.for_l2(config, l2) if role == "firewall" else cls(config)))
    return made


def view_content(view: View, keys: tuple[str, ...] | None = None) -> dict:
    """A view's content: everything but the revision, or only `keys`. Two are compared with ==, which runs in C and
    stops at the first difference (5000 ports: ~15 ms; hashing the JSON of the view cost 150-400 ms). It holds the
    view's own values, which nobody changes (a driver reads the view, never writes it)."""
    return {k: v for k, v in view.items() if k != "revision" and (keys is None or k in keys)}


def failure_result(role: str, view: View) -> SyncResult:
    """What a driver that raised owns, all reported as not in place."""
    r = SyncResult()
    if role == "l2":
        r.ports = {p["id"]: False for p in view.get("ports", [])}
    elif role == "firewall":
        r.ports = {p["id"]: False for p in view.get("ports", [])
                   if p.get("kind") == "instance" and p.get("port_security_enabled")}
    elif role == "dhcp":
        r.ports = {n["port_id"]: False for n in view.get("dhcp", [])}
    elif role in ("l3", "metadata"):
        routers = [x for x in view.get("routers", []) if role == "l3" or x.get("admin_state_up", True)]
        r.routers = {x["id"]: False for x in routers}
        if role == "l3":
            r.ports = {p["port_id"]: False for x in routers for p in [*x["interfaces"], x.get("gateway")] if p}
            r.floatingips = {f["id"]: False for x in routers for f in x.get("floating_ips", [])}
    return r


def _all(values: dict[str, list[bool]]) -> dict[str, bool]:
    return {k: all(v) for k, v in sorted(values.items())}


def merge(view: View, results: list[SyncResult]) -> SyncResult:
    """One result for the report: a thing is in place when every driver that speaks of it says so; a port of the
    view no driver speaks of is not in place."""
    ports: dict[str, list[bool]] = {p["id"]: [] for p in view.get("ports", [])}
    routers: dict[str, list[bool]] = {}
    fips: dict[str, list[bool]] = {}
    ready: set[str] = set()
    for r in results:
        for target, source in ((ports, r.ports), (routers, r.routers), (fips, r.floatingips)):
            for key, ok in source.items():
                target.setdefault(key, []).append(bool(ok))
        ready.update(r.dhcp_ready)
    return SyncResult(ports={k: bool(v) and all(v) for k, v in sorted(ports.items())}, dhcp_ready=sorted(ready),
                      routers=_all(routers), floatingips=_all(fips), changed=any(r.changed for r in results))


class Agent:
    """The loop of one host. `drivers` and `client` are built from the config unless given (tests give fakes)."""

    def __init__(self, config: HostConfig, l2: str = "ovs", firewall: str = "iptables", roles=ROLES, *,
                 ovs_rundir: str | None = None, report_interval: float = 10.0, resync_interval: float = 15.0,
                 poll_wait: float = 30.0, drivers: list[tuple[str, Driver]] | None = None,
                 client: SyncClient | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None, datapath_type: str | None = None,
                 watch_devices: bool = True):
        self.config = config
        self.ovs_rundir = ovs_rundir if l2 == "ovs" else None
        self.report_interval, self.resync_interval, self.poll_wait = report_interval, resync_interval, poll_wait
        self.client = client or SyncClient(config.servers or [config.server], config.host, config.token)
        self.slots = [Slot(role, drv) for role, drv in
                      (drivers if drivers is not None else build_drivers(config, l2, firewall, roles))]
        if datapath_type is None:
            datapath_type = lib_ovs.datapath_type()
        self.info = {"l2": l2, "firewall": firewall, "roles": [r for r in ROLES if r in roles],
                     "bridge_mappings": dict(config.bridge_mappings), "tunnel_ip": config.tunnel_ip,
                     "datapath_type": datapath_type, "ovs_hybrid_plug": l2 == "ovs"}
        self.clock = clock
        self.watch_devices = watch_devices
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._apply_lock = threading.Lock()  # the loop and the watcher never run the drivers at the same time
        self.view: View | None = None       # the latest view received
        self.content: dict | None = None    # and its content (view_content)
        self.since = 0                      # its revision: the next long-poll waits for more
        self.applied: dict | None = None    # content the drivers last ran on
        self.applied_revision = 0           # revision the current results reflect
        self.result = SyncResult()          # merged results of the last run
        self.stats = AgentStats()           # what the agent counts about itself (relayed to /metrics)
        self.polling = False                # inside a long-poll (a signal may cut it short)
        self.watching: str | None = None    # the server that answered the last poll
        now = clock()
        self.next_poll = now
        self.next_resync = now
        self.next_report = now

    # --- control ----------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Loop until stop(); then drop connections but leave the host's wiring as it is."""
        LOG.info("agent %s: drivers %s, server %s", self.config.host,
                 ", ".join(f"{s.role}={getattr(s.driver, 'name', type(s.driver).__name__)}" for s in self.slots),
                 self.client.server)
        watched = [s for s in self.slots if hasattr(s.driver, "restarted")]
        if watched:
            threading.Thread(target=self._watch, args=(watched,), name="watch", daemon=True).start()
        if self.watch_devices:
            threading.Thread(target=self._devices, name="devices", daemon=True).start()
        try:
            while not self.stopped:
                self.step()
        except AgentStopped:
            pass
        finally:
            self.stop()
            with self._apply_lock:
                self.close()
        LOG.info("agent %s stopped (wiring left in place)", self.config.host)

    def close(self) -> None:
        for slot in self.slots:
            self._close_driver(slot)
        self.client.close()

    @staticmethod
    def _close_driver(slot: Slot) -> None:
        """Drop a driver's connections, if it keeps any; a failure here is only logged."""
        close = getattr(slot.driver, "close", None)
        if close:
            try:
                close()
            except Exception:                               # noqa: BLE001 - must not hide the real failure
                LOG.exception("closing driver %s", slot.role)

    # --- one turn of the loop ---------------------------------------------------------------------------------

    def step(self) -> None:
        """Poll for a view (long-poll until the next local deadline), run the drivers when needed, report."""
        if self.clock() >= self.next_poll:
            self._poll()
        if self.view is not None:
            self._work()
        now = self.clock()
        if now < self.next_poll and not self.stopped:     # server unreachable: wait out the back-off
            until = self.next_poll if self.view is None else min(self.next_poll, self._deadline())
            self._sleep(max(0.0, until - now))

    def _deadline(self) -> float:
        """When local work (heartbeat, resync, a driver retry, a look for awaited devices) is next due."""
        times = [self.next_report, self.next_resync] + [s.retry_at for s in self.slots if s.failed]
        if self._awaited():
            times.append(self.clock() + DEVICE_POLL)
        return min(times)

    def _awaited(self) -> list[str]:
        """Host devices of ports not yet in place (an instance's tap the hypervisor has still to make)."""
        if self.view is None or not self.watch_devices:
            return []
        return [p["device"] for p in self.view.get("ports", []) if p.get("device")
                and not self.result.ports.get(p["id"], True)]

    def _devices_arrived(self) -> bool:
        """Whether an awaited device now exists: then the drivers run at once instead of at the next resync
        (what Neutron's OVS agent learns from its OVSDB monitor)."""
        return any(ip.link_exists(dev) for dev in self._awaited())

    def _poll(self) -> None:
        now = self.clock()
        wait = 0.0 if self.view is None else min(self.poll_wait, max(0.0, self._deadline() - now))
        self.polling = True
        server = self.client.server
        try:
            view = self.client.view(self.since, wait)
            if not isinstance(view, dict):
                raise ProtocolError(f"the view is a {type(view).__name__}, not an object")
            if view.get("unchanged") and self.view is None:
                raise ProtocolError("the server answered 'unchanged' to an agent holding no view")
        except Exception as e:                              # noqa: BLE001 - the agent outlives any server trouble
            delay = self.client.retry_delay()
            self.next_poll = self.clock() + delay
            LOG.warning("no view from %s (%s in %.1f s): %s", server,
                        f"trying {self.client.server}" if self.client.server != server else "retry", delay, e,
                        exc_info=not isinstance(e, NeutrinoError))
            return
        finally:
            self.polling = False
        self.next_poll = self.clock()
        if self.watching != server:
            LOG.info("watching %s from revision %d", server, self.since)
            self.watching = server
            self.next_report = self.clock()                 # tell the servers which one this agent watches
        self.since = int(view.get("revision", 0))
        if view.get("unchanged"):                           # no change touched this host: the view held stands
            if self.content == self.applied:
                self.applied_revision = self.since
            return
        self.view, self.content = view, view_content(view)
        if self.content == self.applied:
            self.content = self.applied             # kept as the one object: later comparisons stop at identity
            self.applied_revision = self.since      # same content: the results stand for this revision too

    def _watch(self, slots: list[Slot]) -> None:
        """The watcher thread: run every driver as soon as one says what it depends on restarted."""
        while not self._stop.wait(WATCH_INTERVAL):
            if self.view is None or not self._apply_lock.acquire(blocking=False):
                continue                                    # the loop is applying right now anyway
            try:
                hit = {s.role for s in slots if _restarted(s)}
                if hit and not self.stopped:
                    LOG.warning("watch: %s lost a daemon or listener; applying now", ", ".join(sorted(hit)))
                    self.apply("watch", roles=hit)
            finally:
                self._apply_lock.release()

    def _devices(self) -> None:
        """The device thread: when the kernel announces an awaited device (an instance's tap just made), run the
        drivers and report at once, while the loop may sit in a long-poll (Neutron's OVS agent learns the same from
        its OVSDB monitor)."""
        events = ip.LinkEvents()
        try:
            while not self.stopped:
                announced = events.wait(WATCH_INTERVAL)
                if not announced:
                    continue
                with self._apply_lock:     # after a run in progress, which may have missed a tap made meanwhile
                    arrived = announced.intersection(self._awaited())
                    if not self.stopped and any(ip.link_exists(dev) for dev in arrived):
                        self.apply("device")
                        self.report()
        except Exception:                                   # noqa: BLE001 - the loop's timer look still works
            LOG.exception("device watch ended; awaited devices are looked for every %.1f s", DEVICE_POLL)
        finally:
            events.close()

    def _work(self) -> None:
        now = self.clock()
        with self._apply_lock:
            if self.content != self.applied:
                self.apply("view")
            elif now >= self.next_resync:
                self.apply("resync")
            elif any(s.failed and s.retry_at <= now for s in self.slots):
                self.apply("retry")
            elif self._devices_arrived():
                self.apply("device")
        if self.clock() >= self.next_report:
            self.report()

    # --- applying ---------------------------------------------------------------------------------------------

    def apply(self, reason: str, roles: set[str] | None = None) -> SyncResult:
        """Run the drivers on the current view in order; a retry runs healthy drivers and the due failed ones,
        a watch only the drivers in `roles` (the others' work still stands); on a view change or an arrived device,
        a driver whose part of the view (READS) is what it last ran on is skipped."""
        content = self.content          # before the view: the device thread may run while the loop takes a new one
        view = self.view
        start = self.clock()
        timings = []
        for slot in self.slots:
            if reason == "retry" and slot.failed and slot.retry_at > start or roles and slot.role not in roles:
                continue
            part = view_content(view, READS[slot.role]) if slot.role in READS else None
            if reason in ("view", "device") and part is not None and part == slot.ran_on and not slot.failed:
                continue
            timings.append(self._run_slot(slot, view, reason))
            slot.ran_on = None if slot.failed else part
        up_before = sum(self.result.ports.values())
        self.result = merge(view, [s.result for s in self.slots])
        if not roles:                                      # a watch leaves the view's other parts to the loop
            self.applied = content
            self.applied_revision = int(view.get("revision", 0))
        if reason not in ("retry", "watch"):
            self.next_resync = self.clock() + self.resync_interval
        self.next_report = start                          # report right after every run
        took = (self.clock() - start) * 1000
        failed = [s.role for s in self.slots if s.failed]
        up = sum(self.result.ports.values())
        level = logging.INFO if reason == "view" or self.result.changed or failed or up != up_before else logging.DEBUG
        LOG.log(level, "%s: revision %d applied in %.0f ms (%s)%s; ports up %d/%d", reason, self.applied_revision,
                took, ", ".join(timings), f"; failing: {', '.join(failed)}" if failed else "", up,
                len(self.result.ports))
        return self.result

    def _run_slot(self, slot: Slot, view: View, reason: str) -> str:
        t0 = self.clock()
        try:
            if slot.role == "l2" and self.ovs_rundir:
                self.stats.started(lib_ovs.start_daemons(self.ovs_rundir))   # lab mode: our own OVS (kept)
            slot.result = slot.driver.sync(view)
        except Exception as e:                              # noqa: BLE001 - one driver must not stop the others
            self.stats.failed(slot.role)
            delay = slot.backoff.fail()
            slot.failed, slot.retry_at = True, self.clock() + delay
            slot.result = failure_result(slot.role, view)
            LOG.error("driver %s failed (retry in %.1f s): %s", slot.role, delay, e,
                      exc_info=not isinstance(e, NeutrinoError))
            self._close_driver(slot)                        # reconnect (e.g. OVSDB) on the next try
            return f"{slot.role} FAILED"
        if slot.failed:
            LOG.info("driver %s recovered", slot.role)
        slot.failed = False
        slot.backoff.reset()
        ms = (self.clock() - t0) * 1000
        self.stats.synced(slot.role, ms / 1000, reason, slot.result)
        return f"{slot.role} {ms:.0f} ms{' changed' if slot.result.changed else ''}"

    # --- reporting --------------------------------------------------------------------------------------------

    def report_body(self) -> dict:
        r = self.result
        return {"agent": {**self.info, "server": self.watching or self.client.server},
                "revision": self.applied_revision, "ports": dict(r.ports),
                "dhcp_ready": list(r.dhcp_ready), "routers": dict(r.routers), "floatingips": dict(r.floatingips),
                "metrics": self.stats.body(r.ports), "metering": self._metering()}

    def _metering(self) -> dict:
        """Metering counters read now from the drivers that keep them (the L3 driver): router -> label -> counts."""
        out: dict = {}
        for slot in self.slots:
            read = getattr(slot.driver, "metering_counters", None)
            if read and not slot.failed:
                out.update(read())
        return out

    def report(self) -> None:
        try:
            self.client.report(self.report_body())
        except Exception as e:                              # noqa: BLE001 - retried; never ends the agent
            delay = min(max(self.client.backoff.delay, 0.5), self.report_interval)
            self.next_report = self.clock() + delay
            LOG.warning("report failed (retry in %.1f s, to %s): %s", delay, self.client.server, e)
            return
        self.next_report = self.clock() + self.report_interval


def _restarted(slot: Slot) -> bool:
    try:
        return bool(slot.driver.restarted())
    except Exception:                                       # noqa: BLE001 - the watcher must keep watching
        LOG.exception("watching driver %s", slot.role)
        return False


def install_signal_handlers(agent: Agent) -> None:
    """SIGTERM/SIGINT stop the loop; a long-poll in progress is cut short, a driver run is allowed to finish."""
    owner = os.getpid()

    def handler(signum, frame):
        if os.getpid() != owner:       # a forked child that inherited this handler just ends
            os._exit(128 + signum)
        agent.stop()
        if agent.polling:
            raise AgentStopped()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
