"""The agent loop's logic with fake drivers, a fake server and a fake clock: change detection, driver order,
failure isolation and back-off, result merging, heartbeats, resync, server outages; plus the client and config."""
from __future__ import annotations

import http.server
import json
import os
import socketserver
import threading

import httpx
import pytest

from neutrino.agent import config as agent_config
from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.agent.main import DEVICE_POLL, Agent, failure_result, merge, view_content
from neutrino.errors import KernelError
from neutrino.sync.client import Backoff, ProtocolError, ServerUnavailable, SyncClient
from neutrino.sync.schema import empty_view

HOST = "h1"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.t += seconds


class FakeServer:
    """Answers long-polls from a script (a view or an exception each); when the script is empty the long-poll
    times out: the clock moves by `wait` and the current view comes back unchanged."""

    def __init__(self, clock: Clock, view):
        self.clock, self.current, self.script = clock, view, []
        self.polls: list[tuple[int, float]] = []
        self.poll_times: list[float] = []
        self.reports: list[dict] = []
        self.report_times: list[float] = []
        self.report_errors: list[Exception] = []
        self.backoff = Backoff()
        self.server = "fake"

    def retry_delay(self):
        return self.backoff.delay or self.backoff.fail()

    def view(self, since, wait):
        self.polls.append((since, wait))
        self.poll_times.append(self.clock.t)
        if self.script:
            item = self.script.pop(0)
            if isinstance(item, Exception):
                self.backoff.fail()
                raise item
            self.current = item
            self.backoff.reset()
            return json.loads(json.dumps(item))
        self.clock.t += wait
        self.backoff.reset()
        return json.loads(json.dumps(self.current))

    def report(self, body):
        if self.report_errors:
            self.backoff.fail()
            raise self.report_errors.pop(0)
        self.reports.append(body)
        self.report_times.append(self.clock.t)
        return self.current["revision"]

    def close(self):
        pass


class FakeDriver:
    def __init__(self, name, log, clock, result=None, failures=0):
        self.name, self.log, self.clock = name, log, clock
        self.result = result or SyncResult()
        self.failures = failures
        self.calls: list[float] = []
        self.closed = 0

    def sync(self, view):
        self.calls.append(self.clock.t)
        self.log.append(self.name)
        if self.failures:
            self.failures -= 1
            raise KernelError(f"{self.name} broke")
        return self.result

    def cleanup(self):
        raise AssertionError("the agent must never clean up")

    def close(self):
        self.closed += 1


def port(pid, kind="instance", security=True):
    return {"id": pid, "network_id": "n1", "kind": kind, "device": f"tap{pid}", "ns_device": None,
            "mac_address": "fa:16:3e:00:00:01", "fixed_ips": [], "admin_state_up": True, "device_owner": "",
            "device_id": "", "port_security_enabled": security, "security_groups": [], "allowed_address_pairs": [],
            "mtu": 1450}


def a_view(revision, ports=("p1",)):
    v = empty_view(HOST, revision)
    v["ports"] = [port(p) for p in ports]
    return v


def make_agent(view=None, watch_devices=False, **drivers_kw):
    clock = Clock()
    server = FakeServer(clock, view or a_view(1))
    log: list[str] = []
    roles = ("dhcp", "l3", "l2", "firewall", "metadata")
    drivers = {r: FakeDriver(r, log, clock, **drivers_kw.get(r, {})) for r in roles}
    agent = Agent(HostConfig(host=HOST, state_dir="/nonexistent", server="unix:/nonexistent"), drivers=[
        (r, drivers[r]) for r in roles], client=server, clock=clock, sleep=clock.sleep, datapath_type="netdev",
        watch_devices=watch_devices)
    return agent, server, drivers, log, clock


# --- the loop -----------------------------------------------------------------------------------------------------

def test_first_turn_fetches_at_once_runs_drivers_in_order_and_reports():
    ok = {"l2": {"result": SyncResult(ports={"p1": True})}, "firewall": {"result": SyncResult(ports={"p1": True})}}
    agent, server, drivers, log, _ = make_agent(**ok)
    agent.step()
    assert server.polls == [(0, 0.0)]
    assert log == ["dhcp", "l3", "l2", "firewall", "metadata"]
    assert len(server.reports) == 1
    body = server.reports[0]
    assert body["revision"] == 1 and body["ports"] == {"p1": True}
    assert body["agent"] == {"l2": "ovs", "firewall": "iptables", "roles": ["l2", "dhcp", "l3", "metadata"],
                             "bridge_mappings": {"public": "br-ex"}, "tunnel_ip": None, "datapath_type": "netdev",
                             "ovs_hybrid_plug": True, "server": "fake"}
    assert agent.since == 1


def test_same_content_with_new_revision_runs_nothing_but_reports_the_revision():
    agent, server, _, log, clock = make_agent()
    agent.step()
    log.clear()
    server.script.append(a_view(7))
    agent.step()
    assert log == []
    assert agent.since == 7 and agent.applied_revision == 7
    clock.t = agent.next_report
    agent.step()
    assert server.reports[-1]["revision"] == 7


def test_changed_view_runs_the_drivers_of_its_changed_parts_and_reports_at_once():
    agent, server, _, log, clock = make_agent()
    agent.step()
    log.clear()
    server.script.append(a_view(2, ports=("p1", "p2")))
    agent.step()
    assert log == ["l2", "firewall"]        # a port changed: no router or DHCP server is re-read
    assert server.reports[-1]["revision"] == 2
    assert set(server.reports[-1]["ports"]) == {"p1", "p2"}
    assert server.polls[-1][0] == 1          # long-polled with the last revision seen
    log.clear()
    view = a_view(3, ports=("p1", "p2"))
    view["routers"] = [{"id": "r1", "interfaces": [], "gateway": None, "floating_ips": []}]
    server.script.append(view)
    agent.step()
    assert log == ["l3", "l2", "firewall", "metadata"]   # DHCP untouched; the drivers of ports always run
    log.clear()
    clock.t = agent.next_resync
    agent.step()
    assert log == ["dhcp", "l3", "l2", "firewall", "metadata"]   # the resync runs every driver


def test_a_port_waiting_for_its_device_runs_the_drivers_as_soon_as_it_appears(monkeypatch):
    from neutrino.lib import ip
    present: set[str] = set()
    monkeypatch.setattr(ip, "link_exists", lambda dev, netns=None: dev in present)
    agent, server, _, log, clock = make_agent(watch_devices=True)
    agent.step()
    assert agent._awaited() == ["tapp1"]
    agent.step()
    assert server.polls[-1][1] == pytest.approx(DEVICE_POLL)    # short polls while a device is awaited
    log.clear()
    agent.step()
    assert log == []
    present.add("tapp1")
    agent.step()
    assert log == ["l2", "firewall"]     # only the drivers of the unchanged view that wire devices


def test_an_announced_device_is_wired_and_reported_by_the_device_thread(monkeypatch):
    """The kernel's link announcement, not the loop's timer, runs the drivers for an awaited tap; an announcement of
    an unrelated link runs nothing."""
    from neutrino.lib import ip
    present: set[str] = set()
    monkeypatch.setattr(ip, "link_exists", lambda dev, netns=None: dev in present)
    agent, server, _, log, _ = make_agent(watch_devices=True)
    agent.step()
    announced = [{"eth9"}, {"tapp1"}]

    class Events:
        def wait(self, timeout):
            if not announced:
                agent.stop()
                return set()
            names = announced.pop(0)
            present.update(names)
            return names

        def close(self):
            pass
    monkeypatch.setattr(ip, "LinkEvents", Events)
    log.clear()
    reports = len(server.reports)
    agent._devices()
    assert log == ["l2", "firewall"]
    assert len(server.reports) == reports + 1     # reported at once, not after the long-poll


def test_long_poll_waits_until_the_next_local_deadline_at_most_poll_wait():
    agent, server, _, _, clock = make_agent()
    agent.step()
    agent.step()
    since, wait = server.polls[-1]
    assert since == 1 and wait == pytest.approx(agent.report_interval)
    agent.report_interval = agent.resync_interval = 1000
    agent.next_report = agent.next_resync = clock.t + 1000
    agent.step()
    assert server.polls[-1][1] == agent.poll_wait


def test_periodic_resync_runs_drivers_without_a_new_view():
    agent, server, drivers, log, clock = make_agent()
    agent.step()
    log.clear()
    for _ in range(10):
        agent.step()
        if log:
            break
    assert log == ["dhcp", "l3", "l2", "firewall", "metadata"]
    assert server.script == [] and agent.since == 1, "no new view came"
    assert drivers["l2"].calls[1] - drivers["l2"].calls[0] == pytest.approx(agent.resync_interval)


def test_reports_carry_the_agents_own_figures_for_metrics():
    fw_changed = SyncResult(ports={"p1": True}, changed=True)
    dhcp = SyncResult(ports={"p1": False}, started=["dnsmasq"], errors=1)
    agent, server, drivers, log, clock = make_agent(firewall={"result": fw_changed}, dhcp={"result": dhcp},
                                                    l3={"failures": 1})
    # runs: the view (its changes are the view's), l3's retry, then the periodic resync (a change there is drift)
    while len(drivers["firewall"].calls) < 3:
        agent.step()
    agent.report()
    stats = server.reports[-1]["metrics"]
    assert stats["syncs"]["firewall"] == 3 and stats["drift"] == {"firewall": 1}
    assert stats["errors"] == {"l3": 1, "dhcp": 3}           # a failed run, and calls the driver survived
    assert stats["daemon_starts"] == {"dnsmasq": 3}
    assert stats["ports"] == {"up": 0, "down": 1}           # p1: the DHCP side said not in place
    assert set(stats["sync_last_seconds"]) == {"dhcp", "l3", "l2", "firewall", "metadata"}


def test_heartbeat_at_least_every_report_interval():
    agent, server, _, _, clock = make_agent()
    for _ in range(12):
        agent.step()
    assert clock.t - 1000 >= 60
    gaps = [b - a for a, b in zip(server.report_times, server.report_times[1:])]
    assert gaps and max(gaps) <= agent.report_interval + 1e-9


def test_failing_driver_is_isolated_and_retried_with_exponential_backoff():
    ok = SyncResult(ports={"p1": True})
    agent, server, drivers, log, clock = make_agent(
        l3={"failures": 4}, l2={"result": ok}, firewall={"result": ok})
    agent.step()
    assert log == ["dhcp", "l3", "l2", "firewall", "metadata"], "the others still run"
    assert drivers["l3"].closed == 1, "a failed driver drops its connections"
    for _ in range(30):
        agent.step()
        if len(drivers["l3"].calls) == 5:
            break
    calls = drivers["l3"].calls
    gaps = [round(b - a, 3) for a, b in zip(calls, calls[1:])]
    assert gaps == [0.5, 1.0, 2.0, 4.0]
    assert not agent.slots[1].failed
    # healthy drivers ran along with each retry (dhcp/l3 create what l2 plugs)
    assert len(drivers["l2"].calls) == 5


def test_failed_drivers_own_things_are_reported_down_until_recovery():
    ok = SyncResult(ports={"p1": True})
    agent, server, drivers, _, _ = make_agent(l2={"result": ok}, firewall={"result": ok, "failures": 1})
    agent.step()
    assert server.reports[-1]["ports"] == {"p1": False}
    for _ in range(3):
        agent.step()
    assert server.reports[-1]["ports"] == {"p1": True}


def test_backoff_is_capped_at_30_seconds():
    b = Backoff()
    delays = [b.fail() for _ in range(10)]
    assert delays[:7] == [0.5, 1, 2, 4, 8, 16, 30] and delays[-1] == 30
    b.reset()
    assert b.fail() == 0.5


def test_server_outage_never_crashes_keeps_the_view_and_still_repairs_drift():
    agent, server, drivers, log, clock = make_agent()
    agent.step()
    runs = len(drivers["l2"].calls)
    server.script.extend([ServerUnavailable("down")] * 30)
    server.report_errors.extend([ServerUnavailable("down")] * 100)
    start = clock.t
    for _ in range(30):
        agent.step()
    assert agent.view is not None and agent.since == 1
    assert len(drivers["l2"].calls) > runs, "the periodic resync goes on while the server is away"
    times = server.poll_times[1:]                  # the outage starts with the second poll
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) < 30 and min(gaps) >= 0.5, "polls are spaced by the back-off, not a busy loop"
    assert max(gaps) >= 16
    assert clock.t - start > 60


def test_unexpected_client_and_close_errors_do_not_end_the_agent():
    agent, server, drivers, log, clock = make_agent(l2={"failures": 1})
    drivers["l2"].close = lambda: (_ for _ in ()).throw(RuntimeError("close broke"))
    server.script.append(ValueError("garbage from the server"))
    agent.step()
    assert log == [] and clock.t == pytest.approx(1000.5)
    agent.step()
    assert log == ["dhcp", "l3", "l2", "firewall", "metadata"] and agent.slots[2].failed
    server.report_errors.append(RuntimeError("socket weirdness"))
    clock.t = agent.slots[2].retry_at
    agent.step()
    assert not agent.slots[2].failed


def test_first_poll_failing_waits_the_backoff():
    agent, server, drivers, log, clock = make_agent()
    server.script.extend([ServerUnavailable("down"), ServerUnavailable("down")])
    agent.step()
    agent.step()
    assert clock.t == pytest.approx(1000 + 0.5 + 1.0)
    assert log == []
    agent.step()
    assert log == ["dhcp", "l3", "l2", "firewall", "metadata"]


def test_report_failure_is_retried_soon_not_in_a_busy_loop():
    agent, server, _, _, clock = make_agent()
    server.report_errors.append(ProtocolError("401"))
    agent.step()
    assert server.reports == []
    agent.step()
    assert len(server.reports) == 1 and clock.t > 1000


def test_stop_ends_run_and_closes_without_cleanup():
    agent, server, drivers, _, _ = make_agent()
    orig = server.report

    def report_then_stop(body):
        agent.stop()
        return orig(body)
    server.report = report_then_stop
    agent.run()
    assert all(d.closed == 1 for d in drivers.values())


# --- pure helpers -------------------------------------------------------------------------------------------------

def test_content_ignores_revision_only():
    assert view_content(a_view(1)) == view_content(a_view(99))
    assert view_content(a_view(1)) != view_content(a_view(1, ports=("p2",)))


def test_merge_every_driver_that_speaks_must_agree():
    v = a_view(1, ports=("p1", "p2", "p3"))
    r = merge(v, [SyncResult(ports={"p1": True, "p2": True}, routers={"r1": True}, dhcp_ready=["p1"]),
                  SyncResult(ports={"p2": False, "d1": True}, routers={"r1": False}, floatingips={"f": True},
                             dhcp_ready=["p2"], changed=True),
                  SyncResult(dhcp_ready=["p1"])])
    assert r.ports == {"p1": True, "p2": False, "p3": False, "d1": True}
    assert r.routers == {"r1": False} and r.floatingips == {"f": True}
    assert r.dhcp_ready == ["p1", "p2"] and r.changed


def test_failure_results_cover_what_each_role_owns():
    v = a_view(1, ports=("p1", "p2"))
    v["ports"][1]["port_security_enabled"] = False
    v["dhcp"] = [{"network_id": "n1", "port_id": "d1"}]
    v["routers"] = [{"id": "r1", "admin_state_up": True, "interfaces": [{"port_id": "ri"}],
                     "gateway": {"port_id": "rg"}, "floating_ips": [{"id": "f1"}]}]
    assert failure_result("l2", v).ports == {"p1": False, "p2": False}
    assert failure_result("firewall", v).ports == {"p1": False}
    assert failure_result("dhcp", v).ports == {"d1": False}
    l3 = failure_result("l3", v)
    assert l3.ports == {"ri": False, "rg": False} and l3.routers == {"r1": False} and l3.floatingips == {"f1": False}
    md = failure_result("metadata", v)
    assert md.routers == {"r1": False} and md.ports == {}


# --- the client ---------------------------------------------------------------------------------------------------

def test_client_long_poll_request_and_errors():
    seen = []
    answers = [httpx.Response(200, json=a_view(5)), httpx.Response(503), httpx.Response(401, text="no"),
               httpx.Response(200, json={"revision": 6})]

    def handler(request: httpx.Request):
        seen.append(request)
        return answers.pop(0)
    c = SyncClient("http://server:9696", HOST, "tok", transport=httpx.MockTransport(handler))
    assert c.view(4, 29.2)["revision"] == 5
    req = seen[0]
    assert req.url.path == f"/agent/v1/hosts/{HOST}/view" and req.headers["X-Auth-Token"] == "tok"
    assert dict(req.url.params) == {"since": "4", "wait": "30"}
    assert req.extensions["timeout"]["read"] > 30
    with pytest.raises(ServerUnavailable):
        c.view(5, 30)
    assert c.backoff.delay == 0.5
    with pytest.raises(ProtocolError):
        c.report({})
    assert c.backoff.delay == 1.0
    assert c.report({"revision": 5}) == 6
    assert c.backoff.delay == 0
    assert json.loads(seen[-1].content) == {"revision": 5} and seen[-1].method == "POST"


def test_client_refused_connection_is_unavailable_not_a_crash():
    c = SyncClient("unix:/nonexistent/neutrino.sock", HOST)
    with pytest.raises(ServerUnavailable):
        c.view(0, 0)
    with pytest.raises(ServerUnavailable):
        c.report({})
    assert c.backoff.delay == 1.0


def test_client_fails_over_to_the_next_server_at_once_and_backs_off_only_after_a_round():
    up = {"a": False, "b": True}
    seen = []

    def handler(request: httpx.Request):
        seen.append(request.url.host)
        if not up[request.url.host]:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json=a_view(7))
    c = SyncClient(["http://a:1", "http://b:2"], HOST, transport=httpx.MockTransport(handler))
    with pytest.raises(ServerUnavailable):
        c.view(6, 30)
    assert c.server == "http://b:2" and c.retry_delay() == 0.0       # an untried server: no waiting
    assert c.view(6, 30)["revision"] == 7 and seen == ["a", "b"]
    up["b"] = False
    for server in ("http://a:1", "http://b:2"):
        with pytest.raises(ServerUnavailable):
            c.view(7, 30)
        assert c.server == server
    assert c.retry_delay() == 0.5                                     # both down: the back-off counts
    up["a"] = True
    with pytest.raises(ServerUnavailable):                            # b, still down; then a again
        c.view(7, 30)
    assert c.view(7, 30)["revision"] == 7 and c.backoff.delay == 0 and c.server == "http://a:1"


def test_agent_resumes_its_watch_on_another_server_without_running_the_drivers_again():
    agent, server, _, log, clock = make_agent()
    agent.step()
    ran = len(log)
    server.script.extend([ServerUnavailable("gone"), {"schema": 1, "revision": 3, "host": HOST, "unchanged": True}])
    server.server = "other"
    agent.step()
    agent.step()
    assert server.polls[-1][0] == server.polls[-2][0] == 1       # the watch resumes from the revision it held
    assert agent.since == 3 and agent.applied_revision == 3 and len(log) == ran
    assert agent.report_body()["agent"]["server"] == "other"


def test_client_rejects_an_unknown_view_schema():
    view = a_view(1)
    view["schema"] = 99
    c = SyncClient("http://s", HOST, transport=httpx.MockTransport(lambda r: httpx.Response(200, json=view)))
    with pytest.raises(ProtocolError):
        c.view(0, 0)


def test_client_over_a_unix_socket(tmp_path):
    """The lab's transport: a real HTTP server on a Unix socket."""
    path = str(tmp_path / "s.sock")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(a_view(3) if self.headers.get("X-Auth-Token") == "t" else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self):
            request, _ = super().get_request()
            return request, ("local", 0)

    srv = Server(path, Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        c = SyncClient(f"unix:{path}", HOST, "t")
        assert c.view(0, 0)["revision"] == 3
        c.close()
    finally:
        srv.shutdown()
        srv.server_close()


# --- configuration ------------------------------------------------------------------------------------------------

def test_config_file_then_environment_then_flags(tmp_path, monkeypatch):
    f = tmp_path / "agent.yaml"
    f.write_text("agent:\n  host: fromfile\n  server: http://c:9696\n  l2: linuxbridge\n  roles: [l2, dhcp]\n"
                 "  bridge-mappings: {public: br-ex, phys2: br-p2}\n  token: filetok\n")
    monkeypatch.setenv("NEUTRINO_AGENT_TOKEN", "envtok")
    monkeypatch.setenv("NEUTRINO_STATE_DIR", str(tmp_path))
    c = agent_config.load(str(f), host="fromflag", firewall="nftables")
    assert (c.host, c.server, c.l2, c.firewall, c.token) == ("fromflag", ["http://c:9696"], "linuxbridge",
                                                            "nftables", "envtok")
    assert c.roles == ["l2", "dhcp"] and c.bridge_mappings == {"public": "br-ex", "phys2": "br-p2"}
    assert c.state_dir == os.path.join(str(tmp_path), "hosts", "fromflag")
    hc = c.host_config()
    assert hc.ovs_db is None and hc.server == "http://c:9696" and hc.token == "envtok"


def test_config_flags_forms_and_ovs_rundir():
    c = agent_config.load(None, host="h", server="unix:/run/n.sock", roles="l2, l3",
                          bridge_mappings=["public:br-ex", "p2:br-p2"], ovs_rundir="/tmp/ovsrun",
                          state_dir="/tmp/st")
    assert c.roles == ["l2", "l3"] and c.bridge_mappings == {"public": "br-ex", "p2": "br-p2"}
    assert c.host_config().ovs_db == "unix:/tmp/ovsrun/db.sock"
    assert agent_config.load(None, host="h", server="http://s:1").host_config().ovs_db == \
        agent_config.SYSTEM_OVS_DB


@pytest.mark.parametrize("flags", [
    {"server": "http://s"}, {"host": "h"}, {"host": "h", "server": "ftp://x"},
    {"host": "h", "server": "http://s", "l2": "vpp"}, {"host": "h", "server": "http://s", "firewall": "pf"},
    {"host": "h", "server": "http://s", "roles": "l2,bgp"}, {"host": "h", "server": "http://s", "tunnel_ip": "x"},
    {"host": "h", "server": "http://s", "bridge_mappings": "public"}, {"host": "h", "server": "http://s", "colour": 1},
])
def test_config_errors(flags):
    with pytest.raises(agent_config.AgentConfigError):
        agent_config.load(None, **flags)


def test_watcher_runs_only_the_driver_whose_daemon_restarted():
    """A driver's restarted() (ovs-vswitchd's pid changed) makes the watcher thread run that driver at once, alone;
    the loop's own bookkeeping (applied view, next resync) is left to the loop."""
    import threading
    agent, server, drivers, log, clock = make_agent()
    agent.step()
    log.clear()
    answers = [False, True]

    def restarted():
        if not answers:
            agent.stop()
            return False
        return answers.pop(0)
    drivers["l2"].restarted = restarted
    resync, applied = agent.next_resync, agent.applied
    t = threading.Thread(target=agent._watch, args=([s for s in agent.slots if s.role == "l2"],))
    t.start()
    t.join(timeout=10)
    assert not t.is_alive()
    assert log == ["l2"]
    assert (agent.next_resync, agent.applied) == (resync, applied)
