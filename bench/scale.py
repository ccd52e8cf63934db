"""Many hosts without the kernel: simulated agents watch their host views through the real agent protocol.

    python bench/scale.py [--quick] [--hosts 1000] [--ports 50000] [--networks 2000] [--servers 2]
                          [--rate 20] [--duration 60]

Starts a private PostgreSQL (Debian's, in a temporary directory) and several `neutrino server` processes on it.
Each simulated agent registers (the report an agent sends), then long-polls its view from one server over that
server's Unix socket exactly as `neutrino agent` does (`since` = the revision it holds, "unchanged" answers keep the
view), heartbeats, and fails over to the next server when its own dies. Nothing touches the kernel.

The run: register the agents; create the networks (one subnet each, no DHCP: no network node in the simulation)
and the ports, bound to random hosts, in bulk; start every watch (the full sync of all agents); then create, update
(admin_state_up) and delete ports at a steady rate through the servers in turn, each write timed from the moment it
is sent until the view of the host owning the port shows it; kill -9 one server and time until every agent that
watched it holds a view from another. Prints latency percentiles (all writes, and those sent through another server
than the one the owning agent watches), the resync times, server CPU and memory (also per host) and view sizes, and
the simulation's own CPU and event-loop lag while writing: all its timing happens on that one loop, so a figure
is only as good as that lag is small (on 2 cores shared with the servers and PostgreSQL, it often is not).
Ports sit in one security group without remote-group rules (the default group's rule on itself would put all 50,000
addresses in every view, as it does in Neutron's ipsets).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import httpx
import orjson

from neutrino.lib import postgres

TOKEN = "scale-bench"
CONF = {"l2": "ovs", "firewall": "iptables", "roles": ["l2"], "bridge_mappings": {}, "tunnel_ip": None,
        "datapath_type": "system", "ovs_hybrid_plug": True}
HEARTBEAT = 30.0
POLL_WAIT = 30
BULK = 250
LAG_TICK = 0.01
# httpx loads the CA bundle for every client it makes (~30 ms of CPU each): 2,000 agent clients would keep the
# simulation's own process busy for a minute and the figures would measure it, not the servers. One for all.
TLS = ssl.create_default_context()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def load() -> str:
    """The machine's load average (1, 5, 15 min): the servers share the cores with whatever else runs."""
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def family(pid: int) -> list[int]:
    """A server process and its workers."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [pid, *(int(c) for c in f.read().split())]
    except OSError:
        return [pid]


def cpu_seconds(pid: int) -> float:
    """CPU of a process and its children, live or reaped (PostgreSQL's backends come and go with the servers' pools)."""
    total = 0.0
    for p in family(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:         # gone meanwhile: counted by its parent once reaped
            continue
        total += sum(int(x) for x in fields[11:15 if p == pid else 13]) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy() -> tuple[float, float]:
    """CPU seconds all cores spent busy (everything but idle and iowait) and in the kernel, since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - fields[3] - fields[4]) / tick, (fields[2] + fields[5] + fields[6]) / tick


def rss_mib(pid: int) -> float:
    total = 0.0
    for p in family(pid):
        with open(f"/proc/{p}/status") as f:
            total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0) / 1024
    return total


def settle() -> None:
    """Before the timed part: the 2,000 clients and 50,000 ports' records live until the end. Frozen, the collector
    stops walking them: unfrozen, one full collection of this process took up to 1.8 s (load 9-14), and every
    write and view in flight meanwhile was timed as that much slower."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


class WriteFailed(Exception):
    """The API refused a write."""


class Server:
    """One `neutrino server` process on the shared database."""

    def __init__(self, root: str, index: int, db_url: str, workers: int = 1):
        self.index, self.db_url, self.workers = index, db_url, workers
        self.state = os.path.join(root, f"server{index}")
        os.makedirs(self.state, exist_ok=True)
        self.sock = os.path.join(root, f"s{index}.sock")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        exe = os.path.join(os.path.dirname(sys.executable), "neutrino")
        self.proc = subprocess.Popen(
            [exe, "server", "--auth", "noauth", "--state-dir", self.state, "--port", str(self.port),
             "--unix-socket", self.sock, "--agent-token", TOKEN, "--db", self.db_url, "--workers", str(self.workers),
             "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.state, "server.log"), "ab"))

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"server {self.index} exited; see {self.state}/server.log")
            try:
                if os.path.exists(self.sock) and httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        sys.exit(f"server {self.index} did not answer")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Sim:
    """The simulated agents, the writer and the measurements."""

    def __init__(self, args, servers: list[Server], pg: int):
        self.args, self.servers, self.pg = args, servers, pg        # pg: the postmaster (its backends are its children)
        self.hosts = [f"sim{i:04d}" for i in range(args.hosts)]
        self.rng = random.Random(16)
        self.clients: list[httpx.AsyncClient] = []       # closed at the end
        self.conns: dict[str, list[httpx.AsyncClient]] = {}     # host -> its agent's client per server
        self.apis = [httpx.AsyncClient(base_url=s.url, timeout=120, limits=httpx.Limits(max_connections=64),
                                       verify=TLS) for s in servers]
        self.watching = {h: i % len(servers) for i, h in enumerate(self.hosts)}
        self.ports: dict[str, dict[str, bool]] = {h: {} for h in self.hosts}     # host -> port id -> admin up
        self.pending: dict[str, list] = {h: [] for h in self.hosts}
        self.latency: list[tuple[float, bool]] = []                            # (seconds, cross-server)
        self.api_latency: list[float] = []                                     # seconds until the API answered
        self.failed: list[str] = []                                            # writes the API did not take
        self.answered: dict[float, float] = {}                                 # write's start -> API's answer
        self.after_answer: list[float] = []     # seconds from the API's answer to the view (0: the view was first)
        self.first_view: dict[str, float] = {}
        self.view_bytes: dict[str, int] = {}
        self.view_ports: dict[str, int] = {}
        self.moved: dict[str, float] = {}
        self.killed: int | None = None
        self.victims: set[str] = set()          # hosts that watched the killed server
        self.stopping = False
        self.loop_lag: list[float] = []         # seconds this process's loop ran late, every LAG_TICK while writing
        self.own_cpu = self.pg_cpu = 0.0        # this process's and PostgreSQL's CPU (share of one core) while writing
        self.machine = [0.0, 0.0]               # all cores' busy and kernel CPU seconds per second while writing

    # --- agents -------------------------------------------------------------------------------------------------

    def connect(self) -> list[httpx.AsyncClient]:
        """One connection per server for one agent, as `neutrino agent` keeps (it stays with one worker)."""
        out = [httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=s.sock, verify=TLS), base_url="http://sim",
                                 headers={"X-Auth-Token": TOKEN}, timeout=POLL_WAIT + 15,
                                 limits=httpx.Limits(max_connections=1)) for s in self.servers]
        self.clients += out
        return out

    async def report(self, host: str, clients: list[httpx.AsyncClient]) -> None:
        r = await clients[self.watching[host]].post(f"/agent/v1/hosts/{host}/report", json={"agent": CONF})
        r.raise_for_status()

    async def agent(self, host: str) -> None:
        since = 0
        next_beat = time.monotonic() + self.rng.uniform(0, HEARTBEAT)
        clients = self.conns[host]
        while not self.stopping:
            server = self.watching[host]
            try:
                wait = max(1, min(POLL_WAIT, int(next_beat - time.monotonic())))
                r = await clients[server].get(f"/agent/v1/hosts/{host}/view", params={"since": since,
                                                                                      "wait": wait})
                r.raise_for_status()
            except (httpx.HTTPError, OSError):
                if self.stopping:
                    return
                self.watching[host] = (server + 1) % len(self.servers)      # fail over, keep `since`
                continue
            now = time.monotonic()
            view = orjson.loads(r.content)
            since = view["revision"]
            if host in self.victims and server != self.killed and host not in self.moved:
                self.moved[host] = now
            if not view.get("unchanged"):
                self.first_view.setdefault(host, now)
                self.view_bytes[host], self.view_ports[host] = len(r.content), len(view["ports"])
                self._check(host, view, now, server)
            if now >= next_beat:
                next_beat = now + HEARTBEAT
                try:
                    await self.report(host, clients)
                except httpx.HTTPError:
                    pass

    def _check(self, host: str, view: dict, now: float, server: int) -> None:
        if not self.pending[host]:
            return
        by_device = {p["device_id"]: p for p in view["ports"]}
        by_id = {p["id"]: p for p in view["ports"]}
        left = []
        for kind, key, want, t0, via in self.pending[host]:
            if kind == "create":
                done = key in by_device
            elif kind == "update":
                done = key in by_id and by_id[key]["admin_state_up"] == want
            else:
                done = key not in by_id
            if done:
                self.latency.append((now - t0, via != server))
                answered = self.answered.get(t0)
                self.after_answer.append(max(0.0, now - answered) if answered is not None else 0.0)
            else:
                left.append((kind, key, want, t0, via))
        self.pending[host] = left

    async def keep_alive(self) -> None:
        """Heartbeats while the world is being made (the agents' own loops take over when they start): an agent
        silent past the server's agent_down_time is dead, ports bound to its host fail to bind and stay out of its
        view, and its first report would revive them all at once."""
        async def beat(h: str) -> None:
            await asyncio.sleep(self.rng.uniform(0, HEARTBEAT))
            while True:
                t = time.monotonic()
                try:
                    await self.report(h, self.conns[h])
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(max(0.0, HEARTBEAT - (time.monotonic() - t)))
        await asyncio.gather(*(beat(h) for h in self.hosts))

    # --- the world ----------------------------------------------------------------------------------------------

    async def lag(self) -> None:
        """How late this process's event loop runs (GC, its own backlog, the cores busy elsewhere): every time taken
        here — a write's start, its answer, a view's arrival — can be late by as much."""
        while True:
            t = time.monotonic()
            await asyncio.sleep(LAG_TICK)
            self.loop_lag.append(time.monotonic() - t - LAG_TICK)

    async def api(self, method: str, path: str, body=None, server: int = 0) -> dict:
        r = await self.apis[server].request(method, path, json=body)
        if r.status_code >= 300:
            raise WriteFailed(f"{method} {path} -> {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else {}

    async def populate(self) -> None:
        a = self.args
        net0 = (await self.api("POST", "/v2.0/networks", {"network": {"name": "scale-0"}}))["network"]
        project = net0["project_id"]
        await self.api("PUT", f"/v2.0/quotas/{project}", {"quota": {k: -1 for k in (
            "network", "subnet", "port", "security_group", "security_group_rule")}})
        sg = (await self.api("POST", "/v2.0/security-groups", {"security_group": {"name": "scale"}}))["security_group"]
        await self.api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
            "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}})
        self.sg = sg["id"]
        nets = [net0["id"]]
        for start in range(1, a.networks, BULK):
            body = {"networks": [{"name": f"scale-{i}"} for i in range(start, min(a.networks, start + BULK))]}
            nets += [n["id"] for n in (await self.api("POST", "/v2.0/networks", body))["networks"]]
        for start in range(0, a.networks, BULK):
            body = {"subnets": [{"network_id": nets[i], "ip_version": 4, "enable_dhcp": False,
                                 "cidr": f"10.{i // 256}.{i % 256}.0/24"}
                                for i in range(start, min(a.networks, start + BULK))]}
            await self.api("POST", "/v2.0/subnets", body)
        self.nets = nets
        for i, start in enumerate(range(0, a.ports, BULK)):     # one at a time: concurrent bulks collide and retry
            batch = [self._port_body(self.rng.choice(self.hosts)) for _ in range(min(BULK, a.ports - start))]
            out = await self.api("POST", "/v2.0/ports", {"ports": batch}, server=i % len(self.servers))
            for p in out["ports"]:
                self.ports[p["binding:host_id"]][p["id"]] = True

    def _port_body(self, host: str, device_id: str = "") -> dict:
        return {"network_id": self.rng.choice(self.nets), "binding:host_id": host,
                "device_owner": "compute:nova", "device_id": device_id or str(uuid.uuid4()), "security_groups": [self.sg]}

    async def write(self, n: int) -> None:
        """One create, update or delete through server n % servers, timed until the owning agent's view has it (and
        until the API answered, apart: the difference is what the watch adds)."""
        host = self.rng.choice(self.hosts)
        server = n % len(self.servers)
        ops = self.ports[host]
        kind = self.rng.choice(["create", "update", "delete"]) if ops else "create"
        t0 = time.monotonic()
        try:
            if kind == "create":
                body = self._port_body(host, str(uuid.uuid4()))
                self.pending[host].append(("create", body["device_id"], None, t0, server))
                p = (await self.api("POST", "/v2.0/ports", {"port": body}, server))["port"]
                ops[p["id"]] = True
            else:
                pid = self.rng.choice(list(ops))
                if kind == "update":
                    ops[pid] = not ops[pid]
                    self.pending[host].append(("update", pid, ops[pid], t0, server))
                    await self.api("PUT", f"/v2.0/ports/{pid}", {"port": {"admin_state_up": ops[pid]}}, server)
                else:
                    del ops[pid]
                    self.pending[host].append(("delete", pid, None, t0, server))
                    await self.api("DELETE", f"/v2.0/ports/{pid}", server=server)
        except (httpx.HTTPError, WriteFailed) as e:       # counted apart, not waited for
            self.failed.append(str(e)[:200])
            self.pending[host] = [x for x in self.pending[host] if x[3] != t0]
            return
        self.answered[t0] = time.monotonic()
        self.api_latency.append(self.answered[t0] - t0)

    async def run(self) -> None:
        a = self.args
        t = time.monotonic()
        sem = asyncio.Semaphore(32)

        async def register(h):
            async with sem:
                self.conns[h] = self.connect()
                await self.report(h, self.conns[h])
        await asyncio.gather(*(register(h) for h in self.hosts))
        print(f"{a.hosts} agents registered in {time.monotonic() - t:.1f} s ({load()})", flush=True)
        t = time.monotonic()
        beating = asyncio.create_task(self.keep_alive())
        await self.populate()
        print(f"{a.networks} networks, {a.ports} ports created in {time.monotonic() - t:.1f} s ({load()})", flush=True)

        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        settle()
        t0 = time.monotonic()
        cpu0 = {s.index: cpu_seconds(s.proc.pid) for s in self.servers}
        agents = [asyncio.create_task(self.agent(h)) for h in self.hosts]
        while len(self.first_view) < len(self.hosts):
            await asyncio.sleep(0.05)
        sync = time.monotonic() - t0
        print(f"full sync of all {a.hosts} agents (each compiles its view): {sync:.1f} s ({load()})", flush=True)

        cpu1 = {s.index: cpu_seconds(s.proc.pid) for s in self.servers}
        own1, pg1, machine1 = time.process_time(), cpu_seconds(self.pg), machine_busy()
        lagging = asyncio.create_task(self.lag())
        t1 = time.monotonic()
        writes, n = [], 0
        while time.monotonic() - t1 < a.duration:
            writes.append(asyncio.create_task(self.write(n)))
            n += 1
            await asyncio.sleep(max(0.0, t1 + n / a.rate - time.monotonic()))
        await asyncio.gather(*writes)
        deadline = time.monotonic() + 30
        while any(self.pending.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        steady = time.monotonic() - t1
        cpu2 = {s.index: cpu_seconds(s.proc.pid) for s in self.servers}
        self.own_cpu = (time.process_time() - own1) / steady
        self.pg_cpu = (cpu_seconds(self.pg) - pg1) / steady
        self.machine = [(b - a) / steady for a, b in zip(machine1, machine_busy())]
        lagging.cancel()
        rss = {s.index: rss_mib(s.proc.pid) for s in self.servers}
        lost = sum(len(v) for v in self.pending.values())

        victim = self.servers[0]
        watched = [h for h in self.hosts if self.watching[h] == 0]
        self.victims, self.killed = set(watched), 0
        t2 = time.monotonic()
        victim.kill()
        while len(self.moved) < len(watched) and time.monotonic() - t2 < 120:
            await asyncio.sleep(0.05)
        moved = max(self.moved.values(), default=t2) - t2

        self.stopping = True
        for task in agents:
            task.cancel()
        await asyncio.gather(*agents, return_exceptions=True)
        self.print_results(n, steady, sync, cpu0, cpu1, cpu2, rss, lost, len(watched), moved)

    def print_results(self, n, steady, sync, cpu0, cpu1, cpu2, rss, lost, watched, moved) -> None:
        a = self.args
        ms = [x * 1000 for x, _ in self.latency]
        cross = [x * 1000 for x, c in self.latency if c]
        same = [x * 1000 for x, c in self.latency if not c]
        print(f"\nsteady writes: {n} in {steady:.1f} s ({n / steady:.1f}/s) through {len(self.servers)} servers; "
              f"{lost} never seen by their agent, {len(self.failed)} failed ({load()} at its end)")
        if self.failed:
            print(f"  first failure: {self.failed[0]}")
        print(f"write -> owning agent's view   n={len(ms):<6} p50={pct(ms, 50):7.1f} ms  p99={pct(ms, 99):7.1f} ms  "
              f"max={max(ms, default=0):7.1f} ms")
        print(f"  through another server       n={len(cross):<6} p50={pct(cross, 50):7.1f} ms  "
              f"p99={pct(cross, 99):7.1f} ms")
        print(f"  through the watched server   n={len(same):<6} p50={pct(same, 50):7.1f} ms  "
              f"p99={pct(same, 99):7.1f} ms")
        api = [x * 1000 for x in self.api_latency]
        after = [x * 1000 for x in self.after_answer]
        print(f"  (the API's answer to the write  p50={pct(api, 50):7.1f} ms  p99={pct(api, 99):7.1f} ms; from that "
              f"answer to the view p50={pct(after, 50):7.1f} ms  p99={pct(after, 99):7.1f} ms)")
        lag = [x * 1000 for x in self.loop_lag]
        print(f"  (this simulation's own CPU {self.own_cpu * 100:.0f}% of a core; its event loop ran late p50="
              f"{pct(lag, 50):.1f} ms p99={pct(lag, 99):.1f} ms max={max(lag, default=0):.1f} ms: its times are late "
              f"by as much)")
        print(f"  (PostgreSQL's CPU {self.pg_cpu * 100:.0f}% of a core; the machine's {os.cpu_count()} cores were "
              f"{self.machine[0] * 100 / os.cpu_count():.0f}% busy, in the kernel "
              f"{self.machine[1] * 100 / os.cpu_count():.0f}%)")
        print(f"full sync of all {a.hosts} agents: {sync:.1f} s; after kill -9 of server 1, its {watched} agents "
              f"held a view from another server within {moved:.1f} s ({len(self.moved)}/{watched} moved)")
        for s in self.servers:
            busy_sync = (cpu1[s.index] - cpu0[s.index]) / sync
            busy = (cpu2[s.index] - cpu1[s.index]) / steady
            print(f"server {s.index}: CPU {busy_sync * 100:5.1f}% during the full sync, {busy * 100:5.1f}% steady "
                  f"({busy * 1e6 / a.hosts:6.1f} µs/s per host); RSS {rss[s.index]:6.1f} MiB "
                  f"({rss[s.index] * 1024 / a.hosts:5.1f} KiB per host)")
        sizes, counts = list(self.view_bytes.values()), list(self.view_ports.values())
        print(f"view size: p50 {pct(sizes, 50) / 1024:.1f} KiB, max {max(sizes) / 1024:.1f} KiB; ports per view "
              f"p50 {statistics.median(counts):.0f}, max {max(counts)}")

    async def close(self) -> None:
        for c in self.clients + self.apis:
            await c.aclose()


async def simulate(args, servers: list[Server], pg: int) -> None:
    sim = Sim(args, servers, pg)
    try:
        await sim.run()
    finally:
        await sim.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100 hosts, 5,000 ports, 200 networks, 20 s")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--ports", type=int, default=50_000)
    ap.add_argument("--networks", type=int, default=2000)
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="worker processes per server")
    ap.add_argument("--rate", type=float, default=20.0, help="port writes per second")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of steady writes")
    args = ap.parse_args()
    if args.quick:
        args.hosts, args.ports, args.networks, args.duration = 100, 5000, 200, 20.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))      # and still stop the servers below
    root = tempfile.mkdtemp(prefix="neutrino-scale-")
    servers: list[Server] = []
    try:
        pg = os.path.join(root, "pg")
        postmaster = postgres.start(pg)
        servers = [Server(root, i + 1, postgres.url(pg), args.workers) for i in range(args.servers)]
        for s in servers:
            s.start()
        for s in servers:
            s.wait()
        print(f"neutrino scale simulation: {args.hosts} hosts, {args.ports} ports, {args.networks} networks, "
              f"{args.servers} servers on PostgreSQL, {args.rate:g} writes/s for {args.duration:g} s", flush=True)
        asyncio.run(simulate(args, servers, postmaster))
    finally:
        for s in servers:
            s.stop()
        postgres.stop(os.path.join(root, "pg"))
        if not os.environ.get("KEEP"):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
