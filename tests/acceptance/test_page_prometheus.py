"""Debian's Prometheus scrapes the seed lab's server (/metrics, one target for the server and its agents) and answers
neutrino's figures back through its HTTP query API. Prometheus listens on loopback only, its data in a temp dir."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import httpx
import pytest
import yaml

from labfix import free_port, need

pytestmark = pytest.mark.kernel
need(("ovsdb-server", "ovs-vswitchd", "dnsmasq", "busybox", "dhclient", "iptables", "nsenter", "prometheus"))
DEADLINE = 60


@pytest.fixture(scope="module")
def world(seed_world):
    return seed_world


@pytest.fixture(scope="module")
def prometheus(world):
    """A Prometheus scraping the lab's server every second; yields its base URL."""
    workdir = tempfile.mkdtemp(prefix="nl-prometheus-")
    config = os.path.join(workdir, "prometheus.yml")
    with open(config, "w") as f:
        yaml.safe_dump({"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                        "scrape_configs": [{"job_name": "neutrino", "static_configs": [
                            {"targets": [f"127.0.0.1:{world.lab.load().port}"]}]}]}, f)
    port = free_port()
    log = open(os.path.join(workdir, "prometheus.log"), "w")
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir}/data",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def query(base: str, promql: str) -> list[dict]:
    """The instant vector Prometheus answers, waiting (by condition) until it is not empty."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            r = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
            if r.status_code == 200 and r.json()["data"]["result"]:
                return r.json()["data"]["result"]
        except httpx.HTTPError:
            pass                                        # still starting
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus has no {promql} after {DEADLINE} s")
        time.sleep(0.2)


def test_prometheus_scrapes_the_lab_server(prometheus):
    [up] = query(prometheus, 'up{job="neutrino"} == 1')
    assert up["value"][1] == "1"


def test_objects_per_type_read_back_through_prometheus(world, prometheus):
    ports = sum(1 for _ in world.admin.network.ports())
    [got] = query(prometheus, f'neutrino_objects{{type="port"}} == {ports}')
    assert got["metric"]["job"] == "neutrino"


def test_agent_figures_are_relayed_by_the_server(prometheus):
    syncs = query(prometheus, 'neutrino_agent_syncs_total{host="host1"} > 0')
    assert {s["metric"]["driver"] for s in syncs} >= {"l2", "firewall", "dhcp", "l3"}
    query(prometheus, 'neutrino_view_revision_lag{host="host1"} == 0')      # the agent caught up
    [up] = query(prometheus, 'neutrino_agent_ports{host="host1",state="up"} > 0')
    assert int(up["value"][1]) >= 2                     # vm1 and the DHCP port at least


def test_requests_are_counted_per_route_and_status(prometheus):
    got = query(prometheus, 'neutrino_http_request_duration_seconds_count{route="/v2.0/ports",method="GET"}')
    assert {g["metric"]["status"] for g in got} >= {"200"}
