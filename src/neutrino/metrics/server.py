"""The server's /metrics (Prometheus text format, prometheus_client).

Own: request latency per route, method and status (a histogram; its _count is the request count), time spent in
database queries, open watches (agents' long-polls and the page's event streams). Read from the database at scrape
time (so every server process answers the same): objects per type, the global revision. Relayed from the agents'
reports: sync duration per driver, drift, ports by state, driver (kernel call) errors, daemon (re)starts, and each
host's view revision lag (the global revision minus the one its agent last reported applied).

Several server processes: set PROMETHEUS_MULTIPROC_DIR and the counters and histograms of all of them are summed;
the relayed agent figures are those of the reports this process received. Metering labels' counters are read
from the database at scrape time; other collectors can be added with `Metrics.add_collector`.
"""
from __future__ import annotations

import asyncio

import os
import time
from contextlib import contextmanager

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select
from starlette.routing import Match

from neutrino.core import common, metering
from neutrino.db import models as m

OBJECTS = {"network": m.Network, "subnet": m.Subnet, "subnetpool": m.SubnetPool, "address_scope": m.AddressScope,
           "port": m.Port, "router": m.Router, "floatingip": m.FloatingIP, "port_forwarding": m.PortForwarding,
           "security_group": m.SecurityGroup, "security_group_rule": m.SecurityGroupRule,
           "rbac_policy": m.RbacPolicy, "agent": m.Agent}
AGENT_PREFIX = "neutrino_agent_"
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}     # others count as "other": labels stay few
AGENT_GROUPS = ("sync_last_seconds", "sync_seconds", "syncs", "drift", "errors", "daemon_starts", "ports")


def route_label(scope, paths: dict) -> str:
    """The route template that served a request (paths: endpoint -> its routes); a collection's one catch-all route
    is split into list and item."""
    routes = paths.get(scope.get("endpoint"), ())
    route = routes[0] if len(routes) == 1 else next((r for r in routes if r.matches(scope)[0] == Match.FULL), None)
    if route is None:
        return "unmatched"
    path = route.path
    if path.endswith("{rest:path}"):
        rest = scope.get("path_params", {}).get("rest", "")
        base = path[:-len("{rest:path}")]
        return base if rest in ("", ".json") else base + ("/{id}/tags" if "/tags" in rest else "/{id}")
    return path


class Metrics:
    def __init__(self, db):
        self.db = db
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("neutrino_http_request_duration_seconds", "API requests by route and status",
                                 ["method", "route", "status"], registry=self.registry)
        self.db_time = Histogram("neutrino_db_query_duration_seconds", "Time in database queries",
                                 registry=self.registry,
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.watches = Gauge("neutrino_open_watches", "Open long-polls (agents) and event streams (page)", ["kind"],
                             registry=self.registry, multiprocess_mode="livesum")
        self.paths: dict = {}                               # endpoint -> routes serving it (route labels)
        self.reports: dict[str, tuple[int, dict]] = {}     # host -> (applied revision, agent metrics)
        self.scraped: list = []                             # collectors that compute at scrape time
        self.add_collector(_Scraped(self))
        self.add_collector(_Metering(db))
        db.observe_query = self.db_time.observe      # each statement of a session (db/engine.py)

    def learn(self, *routers) -> None:
        """The routes of the app, so a request is labelled by its route's template (not its path: ids would make
        every port a new time series)."""
        for router in routers:
            for route in router.routes:
                self.paths.setdefault(getattr(route, "endpoint", None), []).append(route)

    @contextmanager
    def watch(self, kind: str):
        gauge = self.watches.labels(kind)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def agent_report(self, host: str, body: dict) -> None:
        """Keep what an agent's report says about itself (its applied revision and its counters)."""
        stats = body.get("metrics") if isinstance(body.get("metrics"), dict) else {}
        clean = {key: {str(k): v for k, v in group.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                 for key, group in stats.items() if key in AGENT_GROUPS and isinstance(group, dict)}
        rev = body.get("revision")
        self.reports[host] = (rev if isinstance(rev, int) and not isinstance(rev, bool) else 0, clean)

    def hosts(self, revision: int) -> dict[str, dict]:
        """Per host, from its agent's last report: view revision lag, drift repairs, errors, ports up/down."""
        return {host: {"lag": max(revision - applied, 0), "drift": sum(stats.get("drift", {}).values()),
                       "errors": sum(stats.get("errors", {}).values()), "ports": stats.get("ports", {})}
                for host, (applied, stats) in self.reports.items()}

    def add_collector(self, collector) -> None:
        """More metrics on the same page (a prometheus_client collector: `collect()` yields metric families)."""
        self.scraped.append(collector)
        self.registry.register(collector)

    def exposition(self) -> tuple[bytes, str]:
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            for collector in self.scraped:
                registry.register(collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _Scraped:
    """Figures computed at scrape time: from the database and from the agents' last reports."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self):
        counts, revision = self.metrics.db.run(_counts)
        objects = GaugeMetricFamily("neutrino_objects", "Objects in the database by type", labels=["type"])
        for kind, n in counts.items():
            objects.add_metric([kind], n)
        yield objects
        yield GaugeMetricFamily("neutrino_revision", "Global revision (what agents watch)", value=revision)
        yield from _relayed(self.metrics.reports, revision)


class _Metering:
    """Metering labels' packets and bytes per router, as the agents last reported them (core.metering.counters)."""

    def __init__(self, db):
        self.db = db

    def collect(self):
        labels = ["label", "label_id", "router_id", "host", "project_id"]
        fams = {k: CounterMetricFamily(f"neutrino_metering_{k}", f"{k.capitalize()} a metering label counted on a "
                                       "router", labels=labels) for k in ("packets", "bytes")}
        for c in self.db.run(metering.counters):
            for k, fam in fams.items():
                fam.add_metric([c["label_name"], c["label_id"], c["router_id"], c["host"], c["project_id"]], c[k])
        yield from fams.values()


def _counts(s) -> tuple[dict[str, int], int]:
    return ({k: s.execute(select(func.count()).select_from(model.__table__)).scalar_one()
             for k, model in OBJECTS.items()}, common.revision(s))


def _relayed(reports: dict[str, tuple[int, dict]], revision: int):
    lag = GaugeMetricFamily("neutrino_view_revision_lag", "Global revision minus the one the host's agent last "
                            "reported applied", labels=["host"])
    last = GaugeMetricFamily(AGENT_PREFIX + "sync_last_seconds", "Duration of the last sync", labels=["host",
                                                                                                    "driver"])
    fams = {key: CounterMetricFamily(AGENT_PREFIX + name, doc, labels=["host", label]) for key, name, doc, label in (
        ("sync_seconds", "sync_seconds", "Time spent in syncs", "driver"),
        ("syncs", "syncs", "Sync runs", "driver"),
        ("drift", "drift_repairs", "Periodic resyncs that found the kernel changed and repaired it", "driver"),
        ("errors", "driver_errors", "Sync runs that failed (a kernel or daemon call raised)", "driver"),
        ("daemon_starts", "daemon_starts", "Daemons (dnsmasq, ovs-vswitchd, ...) the agent (re)started", "daemon"))}
    ports = GaugeMetricFamily(AGENT_PREFIX + "ports", "Ports of the host by state", labels=["host", "state"])
    for host, (applied, stats) in sorted(reports.items()):
        lag.add_metric([host], max(revision - applied, 0))
        for driver, v in (stats.get("sync_last_seconds") or {}).items():
            last.add_metric([host, driver], float(v))
        for key, fam in fams.items():
            for label, v in (stats.get(key) or {}).items():
                fam.add_metric([host, label], float(v))
        for state, n in (stats.get("ports") or {}).items():
            ports.add_metric([host, state], float(n))
    yield from (lag, last, *fams.values(), ports)


class MetricsMiddleware:
    """Times every HTTP request by route, method and status, and counts agents' open long-polls (plain ASGI)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        path = scope["path"]

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        t0 = time.perf_counter()
        try:
            if path.startswith("/agent/v1/hosts/") and path.endswith("/view"):
                with self.metrics.watch("agent"):
                    await self.app(scope, receive, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.latency.labels(method, route_label(scope, self.metrics.paths), str(status)).observe(
                time.perf_counter() - t0)


router = APIRouter()


@router.get("/metrics")
async def metrics_page(request: Request):
    body, ctype = await asyncio.to_thread(request.app.state.metrics.exposition)   # it reads the database
    return Response(content=body, media_type=ctype)
