"""`neutrino server --workers 2`: two processes accept on one socket; what one commits the other serves, and a watch
held by one is woken by a write through the other (datagram on SQLite, NOTIFY on PostgreSQL)."""
from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import free_port

CONF = {"l2": "ovs", "firewall": "iptables", "roles": ["l2"], "bridge_mappings": {}, "tunnel_ip": None}
TOKEN = "workers-test"


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def _owner(port: int, conn: http.client.HTTPConnection, workers: list[int]) -> int | None:
    """The worker that accepted this connection: the process holding the server end of it (by socket inode)."""
    here = conn.sock.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and int(fields[2].split(":")[1], 16) == here:
                inode = fields[9]
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def _call(conn: http.client.HTTPConnection, method: str, path: str, body=None) -> dict:
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json", "X-Auth-Token": TOKEN})
    resp = conn.getresponse()
    data = resp.read()
    assert resp.status < 300, (method, path, resp.status, data[:300])
    return json.loads(data) if data else {}


@pytest.fixture
def server(tmp_path, db_url):
    """A two-worker server on the test's database; yields (port, worker pids)."""
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "neutrino")
    (tmp_path / "server.yaml").write_text("keepalive_timeout: 300\n")     # the test's connections stay with
    proc = subprocess.Popen([exe, "server", "--config", str(tmp_path / "server.yaml"),    # their worker
                             "--auth", "noauth", "--state-dir", str(tmp_path), "--port", str(port),
                             "--agent-token", TOKEN, "--db", db_url, "--workers", "2", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "wb"))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not answer"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                _call(conn, "GET", "/")
                conn.close()
                if len(_children(proc.pid)) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        yield port, _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _two_connections_per_worker(port: int, workers: list[int]) -> dict[int, list[http.client.HTTPConnection]]:
    """Open keep-alive connections until each worker holds two (the kernel hands each to whichever accepts)."""
    held: dict[int, list[http.client.HTTPConnection]] = {pid: [] for pid in workers}
    spare = []
    for _ in range(400):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        _call(conn, "GET", "/")                  # accepted and answered: it is now bound to one worker
        pid = _owner(port, conn, workers)
        if pid is not None and len(held[pid]) < 2:
            held[pid].append(conn)
            if all(len(v) == 2 for v in held.values()):
                break
        else:
            spare.append(conn)
    for conn in spare:
        conn.close()
    assert all(len(v) == 2 for v in held.values()), "the kernel never handed two connections to every worker"
    return held


def _wait_watching(conn: http.client.HTTPConnection) -> None:
    """Until the worker behind conn holds an agent's long-poll (its metrics), so the write comes after it."""
    deadline = time.monotonic() + 30
    while True:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
        if 'neutrino_open_watches{kind="agent"} 1.0' in text:
            return
        assert time.monotonic() < deadline, "the watch never opened"
        time.sleep(0.01)


def test_writes_through_either_worker_are_served_and_wake_watches_on_the_other(server):
    port, workers = server
    conns = _two_connections_per_worker(port, workers)
    (a, a_probe), (b, b_probe) = (conns[pid] for pid in workers)
    try:
        net = _call(a, "POST", "/v2.0/networks", {"network": {"name": "w"}})["network"]
        assert _call(b, "GET", f"/v2.0/networks/{net['id']}")["network"]["name"] == "w"
        _call(b, "POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                                       "cidr": "10.9.0.0/24"}})
        assert len(_call(a, "GET", f"/v2.0/subnets?network_id={net['id']}")["subnets"]) == 1
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            for watcher, probe, writer, host in ((a, a_probe, b, "h1"), (b, b_probe, a, "h2")):
                _call(watcher, "POST", f"/agent/v1/hosts/{host}/report", {"agent": CONF})
                rev = _call(watcher, "GET", f"/agent/v1/hosts/{host}/view?since=0")["revision"]
                waiting = ex.submit(_call, watcher, "GET", f"/agent/v1/hosts/{host}/view?since={rev}&wait=60")
                _wait_watching(probe)
                port_ = _call(writer, "POST", "/v2.0/ports", {"port": {"network_id": net["id"],
                                                                       "binding:host_id": host}})["port"]
                view = waiting.result(timeout=40)      # woken by the write, not answered at its deadline
                assert not view.get("unchanged") and [p["id"] for p in view["ports"]] == [port_["id"]]
    finally:
        for conn in (a, a_probe, b, b_probe):
            conn.close()
