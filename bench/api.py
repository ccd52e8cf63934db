"""API benchmark: the same workload against any Networking API base URL (ours by default, started here).

    python bench/api.py [--url http://127.0.0.1:9696] [--token T] [--ports 500] [--workers 2]

Prints rates and latency percentiles for: sequential port creates, creates from 8 threads, GET of all ports
(median of 5), GET of one port (median of 200), floating IP creates, security group rule creates, port deletes.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(name: str, times: list[float], wall: float | None = None) -> None:
    wall = wall if wall is not None else sum(times)
    rate = len(times) / wall if wall else 0
    print(f"{name:<34} n={len(times):<5} rate={rate:8.1f}/s  p50={pct(times, 50) * 1000:7.2f} ms  "
          f"p99={pct(times, 99) * 1000:7.2f} ms", flush=True)


def timed(fn, *args):
    t = time.perf_counter()
    r = fn(*args)
    return time.perf_counter() - t, r


def ok(r: httpx.Response) -> dict:
    if r.status_code >= 300:
        sys.exit(f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:300]}")
    return r.json() if r.content else {}


def start_server(workers: int = 1) -> tuple[subprocess.Popen, str, str]:
    state = tempfile.mkdtemp(prefix="neutrino-bench-")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = os.path.join(os.path.dirname(sys.executable), "neutrino")
    proc = subprocess.Popen([exe, "server", "--auth", "noauth", "--state-dir", state, "--port", str(port),
                             "--log-level", "warning", "--workers", str(workers)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/")
            return proc, url, state
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("server did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--token", default="bench")
    ap.add_argument("--ports", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2, help="server workers (2 was the faster beside Neutron here)")
    args = ap.parse_args()
    proc = state = None
    url = args.url
    if not url:
        proc, url, state = start_server(args.workers)
    headers = {"X-Auth-Token": args.token}
    try:
        run(url, headers, args.ports)
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(state, ignore_errors=True)


def run(url: str, headers: dict, n: int) -> None:
    c = httpx.Client(base_url=url, headers=headers, timeout=60)
    print(f"neutrino API benchmark against {url}")
    net = ok(c.post("/v2.0/networks", json={"network": {"name": "bench"}}))["network"]
    ok(c.put(f"/v2.0/quotas/{net['project_id']}", json={"quota": {"port": -1, "floatingip": -1,
                                                                   "security_group_rule": -1}}))
    ok(c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.80.0.0/16", "ip_version": 4}}))
    body = {"port": {"network_id": net["id"]}}

    seq = [timed(lambda: ok(c.post("/v2.0/ports", json=body)))[0] for _ in range(n)]
    report("port create, sequential", seq)

    local = threading.local()

    def one(_):
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=url, headers=headers, timeout=60)
        return timed(lambda: ok(local.c.post("/v2.0/ports", json=body)))[0]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        par = list(ex.map(one, range(n)))
    report("port create, 8 threads", par, time.perf_counter() - t0)

    lists = [timed(lambda: ok(c.get("/v2.0/ports", params={"network_id": net["id"]})))[0] for _ in range(5)]
    count = len(ok(c.get("/v2.0/ports", params={"network_id": net["id"]}))["ports"])
    print(f"{'GET all ' + str(count) + ' ports':<34} median={statistics.median(lists) * 1000:7.2f} ms")
    pid = ok(c.get("/v2.0/ports", params={"limit": 1}))["ports"][0]["id"]
    gets = [timed(lambda: ok(c.get(f"/v2.0/ports/{pid}")))[0] for _ in range(200)]
    print(f"{'GET one port':<34} median={statistics.median(gets) * 1000:7.2f} ms  p99={pct(gets, 99) * 1000:.2f} ms")

    ext = ok(c.post("/v2.0/networks", json={"network": {"name": "bench-ext", "router:external": True,
                                                        "provider:network_type": "flat",
                                                        "provider:physical_network": "bench"}}))["network"]
    ok(c.post("/v2.0/subnets", json={"subnet": {"network_id": ext["id"], "cidr": "172.31.0.0/22", "ip_version": 4,
                                                "enable_dhcp": False}}))
    fips = [timed(lambda: ok(c.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"]}})))[0]
            for _ in range(100)]
    report("floating IP create", fips)

    sg = ok(c.post("/v2.0/security-groups", json={"security_group": {"name": "bench"}}))["security_group"]
    rules = [timed(lambda i=i: ok(c.post("/v2.0/security-group-rules", json={"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 1000 + i,
        "port_range_max": 1000 + i}})))[0] for i in range(50)]
    report("security group rule create", rules)

    ids = [p["id"] for p in ok(c.get("/v2.0/ports", params={"network_id": net["id"], "fields": "id"}))["ports"]]
    dels = [timed(lambda i=i: c.delete(f"/v2.0/ports/{i}"))[0] for i in ids]
    report("port delete", dels)


if __name__ == "__main__":
    main()
