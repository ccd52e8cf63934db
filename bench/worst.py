"""Stall benchmark: the worst requests of issue 13, each run while another client streams GETs; prints each worst
request's time and answer, and the p99 of the GETs made meanwhile (goal: under 50 ms).

    python bench/worst.py [--url http://127.0.0.1:9696] [--ports 1000]
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api import ok, pct, start_server  # noqa: E402  (bench/ is a directory of scripts, not a package)


class GetStream:
    """Another client GETting one network in a loop; `window()` collects the latencies of one phase."""

    def __init__(self, url: str, path: str):
        self.client = httpx.Client(base_url=url, timeout=120)
        self.path, self.samples, self.stop = path, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            t = time.perf_counter()
            ok(self.client.get(self.path))
            self.samples.append(time.perf_counter() - t)

    def window(self, fn):
        self.samples = []
        t = time.perf_counter()
        answer = fn()
        took = time.perf_counter() - t
        while len(self.samples) < 5:            # at least a few GETs overlap even a fast worst request
            time.sleep(0.001)
        return took, answer, list(self.samples)


def worst_requests(url: str, c: httpx.Client, net: dict, sub: dict, pool: dict, n: int) -> list:
    """(name, callable returning a short description of the answer); lists of n items (n=20,000 is past the body
    limit, 1,000 fits in it and meets the validators)."""
    def status(r: httpx.Response) -> str:
        return f"{r.status_code} {r.text[:60]}"

    def idle_connections() -> str:
        socks = [socket.create_connection(url.removeprefix("http://").split(":")) for _ in range(50)]
        time.sleep(0.5)
        for s in socks:
            s.close()
        return "50 silent connections held 0.5 s"

    big_fixed = [{"subnet_id": sub["id"]} for _ in range(n)]
    pairs = [{"ip_address": f"10.{i // 250}.{i % 250}.1"} for i in range(n)]
    routes = [{"destination": f"10.{i // 250}.{i % 250}.0/24", "nexthop": "172.16.0.9"} for i in range(n)]
    deep = b'{"network": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    port = ok(c.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}))["port"]
    sg = ok(c.post("/v2.0/security-groups", json={"security_group": {"name": "w"}}))["security_group"]
    rules = [{"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp",
                                      "port_range_min": p, "port_range_max": p}} for p in range(1, 501)]
    return [
        (f"port with {n:,} fixed_ips", lambda: status(c.post("/v2.0/ports", json={"port": {
            "network_id": net["id"], "fixed_ips": big_fixed}}))),
        (f"port with {n:,} address pairs", lambda: status(c.put(f"/v2.0/ports/{port['id']}", json={"port": {
            "allowed_address_pairs": pairs}}))),
        (f"subnet with {n:,} host routes", lambda: status(c.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {
            "host_routes": routes}}))),
        ("10 MB body", lambda: status(c.post("/v2.0/networks", content=b'{"network": {"name": "' + b"x" * 10_000_000
                                              + b'"}}', headers={"Content-Type": "application/json"}))),
        ("JSON nested 1,000 deep", lambda: status(c.post("/v2.0/networks", content=deep,
                                                          headers={"Content-Type": "application/json"}))),
        ("If-Match with 5,000 digits", lambda: status(c.put(f"/v2.0/networks/{net['id']}", json={"network": {}},
                                                             headers={"If-Match": "revision_number=" + "9" * 5000}))),
        ("subnet /30 from a /8 pool past a /9", lambda: status(c.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"], "prefixlen": 30}}))),
        ("GET all ports", lambda: f"{len(ok(c.get('/v2.0/ports'))['ports'])} ports"),
        ("bulk create of 500 security group rules", lambda: status(c.post("/v2.0/security-group-rules", json={
            "security_group_rules": rules}))),
        ("50 idle connections", idle_connections),
    ]


def run(url: str, n_ports: int) -> None:
    c = httpx.Client(base_url=url, timeout=300)
    print(f"neutrino stall benchmark against {url}")
    net = ok(c.post("/v2.0/networks", json={"network": {"name": "worst"}}))["network"]
    ok(c.put(f"/v2.0/quotas/{net['project_id']}", json={"quota": {"port": -1, "security_group_rule": -1,
                                                                   "subnet": -1, "security_group": -1}}))
    sub = ok(c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "172.16.0.0/16",
                                                      "ip_version": 4}}))["subnet"]
    pool = ok(c.post("/v2.0/subnetpools", json={"subnetpool": {"name": "w", "prefixes": ["10.0.0.0/8"],
                                                               "min_prefixlen": 8, "max_prefixlen": 30}}))["subnetpool"]
    ok(c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"],
                                                "cidr": "10.0.0.0/9"}}))
    for _ in range(n_ports):
        ok(c.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}))
    stream = GetStream(url, f"/v2.0/networks/{net['id']}")
    stream.thread.start()
    time.sleep(0.5)
    quiet = list(stream.samples)
    print(f"{'(no worst request: GETs alone)':<42} GET p99={pct(quiet, 99) * 1000:7.1f} ms  n={len(quiet)}")
    for name, fn in [*worst_requests(url, c, net, sub, pool, 20000), *worst_requests(url, c, net, sub, pool, 1000)[:3]]:
        took, answer, gets = stream.window(fn)
        print(f"{name:<42} took {took * 1000:8.1f} ms  GET p99={pct(gets, 99) * 1000:7.1f} ms  n={len(gets):<5} "
              f"-> {answer}", flush=True)
    stream.stop.set()
    stream.thread.join(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--ports", type=int, default=1000)
    args = ap.parse_args()
    proc, url = None, args.url
    if not url:
        proc, url, _state = start_server()
    try:
        run(url, args.ports)
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
