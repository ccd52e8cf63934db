"""The agent watch (GET /agent/v1/hosts/{host}/view?since=&wait=): woken only by changes that touch the host's view,
"unchanged" otherwise; on PostgreSQL a change committed through one server reaches the watches of another."""
from __future__ import annotations

import concurrent.futures
import time

from fastapi.testclient import TestClient

from neutrino.api.app import create_app
from neutrino.config import Settings
from neutrino.db import notify
from neutrino.db.engine import Database
from tests.api.test_networks import mknet, mksub
from tests.api.test_ports import mkport

CONF = {"l2": "ovs", "firewall": "iptables", "roles": ["l2"], "datapath_type": "netdev", "ovs_hybrid_plug": True}


def watch(c, host: str, since: int, wait: float = 0) -> dict:
    r = c.get(f"/agent/v1/hosts/{host}/view", params={"since": since, "wait": wait})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_watch_wakes_for_its_own_ports_and_answers_unchanged_for_other_hosts(client):
    for host in ("h1", "h2"):
        assert client.post(f"/agent/v1/hosts/{host}/report", json={"agent": CONF}).status_code == 200
    net = mknet(client)
    mksub(client, net["id"])
    mine = mkport(client, net["id"], **{"binding:host_id": "h1"})
    view = watch(client, "h1", 0)
    assert [p["id"] for p in view["ports"]] == [mine["id"]]

    # same network, another host, in no group h1's rules name
    other = mkport(client, net["id"], security_groups=[], **{"binding:host_id": "h2"})
    quiet = watch(client, "h1", view["revision"], wait=1)
    assert quiet == {"schema": 1, "revision": quiet["revision"], "host": "h1", "unchanged": True}
    assert quiet["revision"] > view["revision"]
    assert other["id"] in [p["id"] for p in watch(client, "h2", 0)["ports"]]

    client.put(f"/v2.0/ports/{mine['id']}", json={"port": {"admin_state_up": False}})
    woken = watch(client, "h1", quiet["revision"], wait=30)
    assert not woken.get("unchanged") and woken["ports"][0]["admin_state_up"] is False

    mknet(client)                                   # a write naming nothing it touches: every watch wakes
    assert not watch(client, "h1", woken["revision"], wait=30).get("unchanged")


def test_an_agent_coming_from_another_server_always_gets_a_view(client):
    client.post("/agent/v1/hosts/h1/report", json={"agent": CONF})
    rev = watch(client, "h1", 0)["revision"]
    assert not watch(client, "h1", rev + 5, wait=1).get("unchanged")   # a revision this server never served


def test_a_change_through_one_server_wakes_the_watch_on_another(tmp_path, db_url):
    """Two apps on one database, as two server processes (on PostgreSQL the change arrives by NOTIFY) or two workers
    of one server (on SQLite, by a datagram)."""
    dbs = [Database(db_url), Database(db_url)]
    for db in dbs:
        db.setup()
    apps = [create_app(Settings(state_dir=str(tmp_path), auth="noauth"), db) for db in dbs]
    (tmp_path / "workers").mkdir()
    for i, app in enumerate(apps):
        app.state.siblings = notify.Siblings(str(tmp_path / "workers"), i)
    try:
        with TestClient(apps[0]) as a, TestClient(apps[1]) as b, concurrent.futures.ThreadPoolExecutor(1) as ex:
            a.post("/agent/v1/hosts/h1/report", json={"agent": CONF})
            net = mknet(a)
            mksub(a, net["id"])
            rev = watch(b, "h1", 0)["revision"]             # the first watch starts b's LISTEN thread
            hub = apps[1].state.changes
            if db_url.startswith("postgresql"):
                deadline = time.monotonic() + 30
                while not hub.listening:
                    assert time.monotonic() < deadline, "no LISTEN connection"
                    time.sleep(0.01)
            waiting = ex.submit(watch, b, "h1", rev, 30)
            port = mkport(a, net["id"], **{"binding:host_id": "h1"})
            view = waiting.result(timeout=30)
            assert [p["id"] for p in view["ports"]] == [port["id"]]
            assert "host:h1" in hub.log[view["revision"]]     # heard (NOTIFY or datagram) with what it touched
    finally:
        for db in dbs:
            db.engine.dispose()


def test_a_floating_ip_wakes_its_routers_host_although_its_port_lives_elsewhere(client):
    """The floating IP's own port names only its network: a write that is not port CRUD wakes every watch."""
    client.post("/agent/v1/hosts/h1/report", json={"agent": {**CONF, "roles": ["l2", "l3"]}})
    client.post("/agent/v1/hosts/h2/report", json={"agent": CONF})
    ext = mknet(client, **{"router:external": True})
    mksub(client, ext["id"], cidr="172.24.4.0/24")
    net = mknet(client)
    sub = mksub(client, net["id"])
    router = client.post("/v2.0/routers", json={"router": {"external_gateway_info": {"network_id": ext["id"]}}})
    rid = router.json()["router"]["id"]
    client.put(f"/v2.0/routers/{rid}/add_router_interface", json={"subnet_id": sub["id"]})
    vm = mkport(client, net["id"], security_groups=[], **{"binding:host_id": "h2"})
    rev = watch(client, "h1", 0)["revision"]
    fip = client.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"],
                                                                 "port_id": vm["id"]}}).json()["floatingip"]
    view = watch(client, "h1", rev, wait=30)
    assert [f["id"] for r in view["routers"] for f in r["floating_ips"]] == [fip["id"]]
