"""Routers through HTTP: the seed's router1, gateway rules and policy, interfaces by subnet and by port, extra
routes (plain and atomic), deletion, scheduling, isolation, and the real `openstack` CLI against a live server."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import insert, select

from neutrino.core import common
from neutrino.db import models as m
from tests.api.apifix_l3 import (add_subnet, err, floatingip, network, ok, port, remove_subnet, router, seed,
                                 subnet)

OPENSTACK = str(Path(sys.executable).parent / "openstack")


def _ports_of(c, device_id):
    return ok(c.get("/v2.0/ports", params={"device_id": device_id}))["ports"]


def test_seed_router(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    r = ok(t.get(f"/v2.0/routers/{s.router['id']}"))["router"]
    assert r["status"] == "ACTIVE" and r["admin_state_up"] is True and r["name"] == "router1"
    gw = r["external_gateway_info"]
    assert gw["network_id"] == s.public["id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"] == [{"subnet_id": s.public_sub["id"], "ip_address": "172.24.4.2"}]
    assert (r["routes"], r["distributed"], r["ha"], r["availability_zones"]) == ([], False, False, ["nova"])
    assert r["availability_zone_hints"] == [] and r["flavor_id"] is None and r["project_id"] == "p1"
    # the gateway port is hidden from the tenant (project ''), the interface port is the tenant's
    admin_view = {p["device_owner"]: p for p in _ports_of(client, r["id"])}
    assert admin_view["network:router_gateway"]["project_id"] == ""
    assert admin_view["network:router_gateway"]["network_id"] == s.public["id"]
    intf = admin_view["network:router_interface"]
    assert intf["fixed_ips"] == [{"subnet_id": s.private_sub["id"], "ip_address": "10.0.0.1"}]
    assert [p["device_owner"] for p in _ports_of(t, r["id"])] == ["network:router_interface"]
    assert ok(t.get("/v2.0/routers", params={"name": "router1"}))["routers"][0]["id"] == r["id"]
    listed = ok(client.get("/v2.0/routers", params={"external_gateway_info.network_id": s.public["id"]}))
    assert [x["id"] for x in listed["routers"]] == [r["id"]]


def _revision(app) -> int:
    with app.state.db.session() as s:
        return common.revision(s)


def test_add_interface_answer(app, client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    net = network(t, "n2")
    sub = subnet(t, net["id"], "10.1.0.0/24")
    before = _revision(app)
    info = ok(add_subnet(t, s.router["id"], sub["id"]))
    assert _revision(app) == before + 1          # agents watching the revision learn about the new interface
    assert set(info) == {"id", "subnet_id", "subnet_ids", "port_id", "network_id", "tenant_id", "project_id"}
    assert (info["id"], info["subnet_id"], info["subnet_ids"]) == (s.router["id"], sub["id"], [sub["id"]])
    assert (info["network_id"], info["tenant_id"], info["project_id"]) == (net["id"], "p1", "p1")
    p = ok(t.get(f"/v2.0/ports/{info['port_id']}"))["port"]
    assert p["device_owner"] == "network:router_interface" and p["device_id"] == s.router["id"]
    assert ok(remove_subnet(t, s.router["id"], sub["id"])) == info
    err(t.get(f"/v2.0/ports/{info['port_id']}"), 404, "PortNotFound")


def test_gateway_needs_external_network(client, project_client):
    t = project_client("p1")
    net = network(t, "internal")
    subnet(t, net["id"], "10.5.0.0/24")
    msg = err(t.post("/v2.0/routers", json={"router": {"name": "r", "external_gateway_info": {
        "network_id": net["id"]}}}), 400, "BadRequest")
    assert msg == f"Bad router request: Network {net['id']} is not an external network."
    assert ok(t.get("/v2.0/routers"))["routers"] == []      # nothing stored
    r = router(t, "r")
    err(t.put(f"/v2.0/routers/{r['id']}", json={"router": {"external_gateway_info": {"network_id": net["id"]}}}),
        400, "BadRequest")
    err(t.put(f"/v2.0/routers/{r['id']}", json={"router": {"external_gateway_info": {
        "network_id": "00000000-0000-0000-0000-000000000000"}}}), 404, "NetworkNotFound")


def test_gateway_policy_and_snat(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    rid = s.router["id"]
    err(t.put(f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": {
        "network_id": s.public["id"], "enable_snat": False}}}), 403, "PolicyNotAuthorized")
    err(t.post("/v2.0/routers", json={"router": {"name": "x", "external_gateway_info": {
        "network_id": s.public["id"], "external_fixed_ips": [{"ip_address": "172.24.4.50"}]}}}), 403)
    r = ok(client.put(f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": {
        "network_id": s.public["id"], "enable_snat": False}}}))["router"]
    assert r["external_gateway_info"]["enable_snat"] is False
    gw_port = r["external_gateway_info"]["external_fixed_ips"]
    r = ok(client.put(f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": {
        "network_id": s.public["id"], "external_fixed_ips": [{"ip_address": "172.24.4.50"}]}}}))["router"]
    assert r["external_gateway_info"]["external_fixed_ips"] == [{"subnet_id": s.public_sub["id"],
                                                                 "ip_address": "172.24.4.50"}]
    assert r["external_gateway_info"]["enable_snat"] is True   # not given: back to the default
    assert gw_port != r["external_gateway_info"]["external_fixed_ips"]
    msg = err(client.put(f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": {
        "network_id": s.public["id"], "external_fixed_ips": [{"ip_address": "172.24.4.1"}]}}}), 400, "BadRequest")
    assert "is the same as the gateway IP" in msg
    err(client.post("/v2.0/routers", json={"router": {"name": "dup", "external_gateway_info": {
        "network_id": s.public["id"], "external_fixed_ips": [{"ip_address": "172.24.4.50"}]}}}), 409,
        "IpAddressInUse")


def test_clear_gateway(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    rid = s.router["id"]
    p = port(t, s.private["id"], "vm")
    fip = ok(floatingip(t, s.public["id"], port_id=p["id"]), 201)["floatingip"]
    msg = err(t.put(f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": {}}}), 409,
              "RouterExternalGatewayInUseByFloatingIp")
    assert rid in msg and s.public["id"] in msg
    ok(t.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}))
    r = ok(t.put(f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": None}}))["router"]
    assert r["external_gateway_info"] is None
    assert [p["device_owner"] for p in _ports_of(client, rid)] == ["network:router_interface"]
    r = ok(t.put(f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": {
        "network_id": s.public["id"]}}}))["router"]
    assert r["external_gateway_info"]["network_id"] == s.public["id"]


def test_interface_errors(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    rid = s.router["id"]
    msg = err(add_subnet(t, rid, s.private_sub["id"]), 400, "BadRequest")
    assert msg == f"Bad router request: Router already has a port on subnet {s.private_sub['id']}."
    other = network(t, "other")
    same_cidr = subnet(t, other["id"], "10.0.0.0/24")
    msg = err(add_subnet(t, rid, same_cidr["id"]), 400, "BadRequest")
    assert "overlaps with cidr 10.0.0.0/24" in msg
    no_gw = subnet(t, network(t, "nogw")["id"], "10.9.0.0/24", gateway_ip=None)
    msg = err(add_subnet(t, rid, no_gw["id"]), 400, "BadRequest")
    assert msg == "Bad router request: Subnet for router interface must have a gateway IP."
    r2 = router(t, "r2")
    err(add_subnet(t, r2["id"], s.private_sub["id"]), 409, "IpAddressInUse")   # 10.0.0.1 is router1's
    err(t.put(f"/v2.0/routers/{rid}/add_router_interface", json={}), 400, "BadRequest")
    err(t.put(f"/v2.0/routers/{rid}/add_router_interface", json={"subnet_id": same_cidr["id"],
                                                                  "port_id": same_cidr["id"]}), 400, "BadRequest")
    err(t.put(f"/v2.0/routers/{rid}/add_router_interface", json={"subnet_id": "nope"}), 400, "BadRequest")
    err(add_subnet(t, rid, "00000000-0000-0000-0000-000000000000"), 404, "SubnetNotFound")
    err(add_subnet(t, "00000000-0000-0000-0000-000000000000", same_cidr["id"]), 404, "RouterNotFound")
    msg = err(remove_subnet(t, r2["id"], s.private_sub["id"]), 404, "RouterInterfaceNotFoundForSubnet")
    assert msg == f"Router {r2['id']} has no interface on subnet {s.private_sub['id']}"
    foreign = subnet(client, network(client, "admins")["id"], "10.20.0.0/24")
    err(add_subnet(t, rid, foreign["id"]), 404, "SubnetNotFound")


def test_interface_by_port(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    rid = s.router["id"]
    net = network(t, "n3")
    sub = subnet(t, net["id"], "10.3.0.0/24")
    p = port(t, net["id"], "rport", fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.3.0.254"}])
    info = ok(t.put(f"/v2.0/routers/{rid}/add_router_interface", json={"port_id": p["id"]}))
    assert (info["port_id"], info["subnet_id"], info["network_id"]) == (p["id"], sub["id"], net["id"])
    got = ok(t.get(f"/v2.0/ports/{p['id']}"))["port"]
    assert (got["device_id"], got["device_owner"]) == (rid, "network:router_interface")
    used = port(t, net["id"], "vm", device_id="some-instance")
    msg = err(t.put(f"/v2.0/routers/{rid}/add_router_interface", json={"port_id": used["id"]}), 409, "PortInUse")
    assert "Port already has an attached device some-instance" in msg
    # the interface's address answers for the subnet; removing by port deletes the port
    err(t.put(f"/v2.0/routers/{rid}/remove_router_interface", json={"port_id": used["id"]}), 404,
        "RouterInterfaceNotFound")
    err(t.put(f"/v2.0/routers/{rid}/remove_router_interface", json={"port_id": p["id"],
                                                                     "subnet_id": s.private_sub["id"]}), 400,
        "SubnetMismatchForPort")
    assert ok(t.put(f"/v2.0/routers/{rid}/remove_router_interface", json={"port_id": p["id"]}))["port_id"] == p["id"]
    err(t.get(f"/v2.0/ports/{p['id']}"), 404)
    err(t.delete(f"/v2.0/ports/{_ports_of(t, rid)[0]['id']}"), 409, "L3PortInUse")


def test_remove_interface_used_by_floating_ip(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    vm = port(t, s.private["id"], "vm")
    fip = ok(floatingip(t, s.public["id"], port_id=vm["id"]), 201)["floatingip"]
    msg = err(remove_subnet(t, s.router["id"], s.private_sub["id"]), 409, "RouterInterfaceInUseByFloatingIP")
    assert s.private_sub["id"] in msg
    ok(t.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}))
    ok(remove_subnet(t, s.router["id"], s.private_sub["id"]))


def test_routes(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    rid = s.router["id"]
    url = f"/v2.0/routers/{rid}"
    err(t.post("/v2.0/routers", json={"router": {"name": "x", "routes": []}}), 400)
    routes = [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.10"},
              {"destination": "0.0.0.0/0", "nexthop": "172.24.4.100"}]
    assert ok(t.put(url, json={"router": {"routes": routes}}))["router"]["routes"] == routes
    bad = [{"destination": "192.168.1.0/24", "nexthop": "10.99.0.1"}]
    msg = err(t.put(url, json={"router": {"routes": bad}}), 400, "InvalidRoutes")
    assert "the nexthop is not connected with router" in msg
    err(t.put(url, json={"router": {"routes": [{"destination": "192.168.1.0/24", "nexthop": "10.0.0.1"}]}}), 400,
        "InvalidRoutes")
    err(t.put(url, json={"router": {"routes": [{"destination": "192.168.1.1/24", "nexthop": "10.0.0.9"}]}}), 400)
    err(t.put(url, json={"router": {"routes": routes + routes[:1]}}), 400)
    many = [{"destination": f"192.168.{i}.0/24", "nexthop": "10.0.0.10"} for i in range(31)]
    err(t.put(url, json={"router": {"routes": many}}), 400, "RoutesExhausted")
    assert ok(t.get(url))["router"]["routes"] == routes   # failed updates left nothing behind
    msg = err(remove_subnet(t, rid, s.private_sub["id"]), 409, "RouterInterfaceInUseByRoute")
    assert s.private_sub["id"] in msg
    # extraroute-atomic
    extra = {"destination": "192.168.7.0/24", "nexthop": "10.0.0.11"}
    out = ok(t.put(f"{url}/add_extraroutes", json={"router": {"routes": [extra, routes[0]]}}))["router"]
    assert out["routes"] == routes + [extra] and out["id"] == rid
    err(t.put(f"{url}/add_extraroutes", json={"router": {"routes": [{"destination": "1.0.0.0/8",
                                                                     "nexthop": "9.9.9.9"}]}}), 400, "InvalidRoutes")
    err(t.put(f"{url}/add_extraroutes", json={"routes": [extra]}), 400)
    out = ok(t.put(f"{url}/remove_extraroutes", json={"router": {"routes": routes}}))["router"]
    assert out["routes"] == [extra]
    out = ok(t.put(f"{url}/remove_extraroutes", json={"router": {"routes": [extra, routes[0]]}}))["router"]
    assert out["routes"] == []
    ok(remove_subnet(t, rid, s.private_sub["id"]))


def test_delete(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    rid = s.router["id"]
    msg = err(t.delete(f"/v2.0/routers/{rid}"), 409, "RouterInUse")
    assert msg == f"Router {rid} still has ports"
    gw_port = [p["id"] for p in _ports_of(client, rid) if p["device_owner"] == "network:router_gateway"]
    ok(remove_subnet(t, rid, s.private_sub["id"]))
    assert t.delete(f"/v2.0/routers/{rid}").status_code == 204
    err(t.get(f"/v2.0/routers/{rid}"), 404, "RouterNotFound")
    err(client.get(f"/v2.0/ports/{gw_port[0]}"), 404)
    assert _ports_of(client, rid) == []
    # the external network is free again
    assert client.delete(f"/v2.0/networks/{s.public['id']}").status_code == 204


def test_isolation_and_quota(client, project_client):
    t = project_client("p1")
    other = project_client("p2")
    s = seed(client, t)
    rid = s.router["id"]
    err(other.get(f"/v2.0/routers/{rid}"), 404, "RouterNotFound")
    assert ok(other.get("/v2.0/routers"))["routers"] == []
    err(other.put(f"/v2.0/routers/{rid}", json={"router": {"name": "mine"}}), 404)
    err(other.put(f"/v2.0/routers/{rid}/add_router_interface", json={"subnet_id": s.private_sub["id"]}), 404)
    err(other.delete(f"/v2.0/routers/{rid}"), 404)
    reader = project_client("p1", roles="reader")
    err(reader.put(f"/v2.0/routers/{rid}/remove_router_interface", json={"subnet_id": s.private_sub["id"]}), 403)
    for i in range(9):
        router(t, f"r{i}")
    err(t.post("/v2.0/routers", json={"router": {"name": "one-too-many"}}), 409, "OverQuota")
    err(client.post("/v2.0/routers", json={"router": {"name": "by-admin", "project_id": "p1"}}), 409, "OverQuota")
    assert ok(client.get("/v2.0/quotas/p1/details"))["quota"]["router"]["used"] == 10


def test_scheduled_to_live_l3_agent(app, client):
    now = common.now()
    with app.state.db.session() as s:
        s.execute(insert(m.Agent.__table__).values(
            id=common.new_id(), host="net1", agent_type="L3 agent", binary="neutrino-agent", created_at=now,
            started_at=now, heartbeat_timestamp=now, configurations={}))
    r = router(client, "r")
    with app.state.db.session() as s:
        assert s.execute(select(m.Router.host).where(m.Router.id == r["id"])).scalar() == "net1"


def test_unscheduled_without_agent(app, client):
    r = router(client, "r")
    with app.state.db.session() as s:
        assert s.execute(select(m.Router.host).where(m.Router.id == r["id"])).scalar() is None


def _cli(url: str, *args: str) -> str:
    res = subprocess.run([OPENSTACK, "--os-auth-type", "none", "--os-endpoint", url, *args],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_openstack_cli(client, live_server):
    cli = lambda *a: json.loads(_cli(live_server, *a, "-f", "json"))  # noqa: E731
    _cli(live_server, "network", "create", "--external", "--provider-network-type", "flat",
         "--provider-physical-network", "public", "public")
    _cli(live_server, "subnet", "create", "--network", "public", "--subnet-range", "172.24.4.0/24", "--no-dhcp",
         "public-subnet")
    _cli(live_server, "network", "create", "private")
    _cli(live_server, "subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/24", "sub1")
    r = cli("router", "create", "r1")
    assert r["name"] == "r1" and r["status"] == "ACTIVE"
    _cli(live_server, "router", "set", "--external-gateway", "public", "r1")
    _cli(live_server, "router", "add", "subnet", "r1", "sub1")
    p = cli("port", "create", "--network", "private", "p1")
    fip = cli("floating", "ip", "create", "public")
    assert fip["floating_ip_address"].startswith("172.24.4.") and fip["port_id"] is None
    _cli(live_server, "floating", "ip", "set", "--port", "p1", fip["floating_ip_address"])
    shown = cli("floating", "ip", "show", fip["id"])
    assert shown["port_id"] == p["id"] and shown["router_id"] == r["id"] and shown["fixed_ip_address"] == "10.0.0.2"
    shown = cli("router", "show", "r1")
    gw = shown["external_gateway_info"]
    gw = json.loads(gw) if isinstance(gw, str) else gw
    assert gw["enable_snat"] is True and gw["external_fixed_ips"][0]["ip_address"].startswith("172.24.4.")
    assert "10.0.0.1" in json.dumps(shown["interfaces_info"])
    _cli(live_server, "router", "set", "--route", "destination=192.168.0.0/24,gateway=10.0.0.9", "r1")
    assert "192.168.0.0/24" in json.dumps(cli("router", "show", "r1")["routes"])
    _cli(live_server, "floating", "ip", "unset", "--port", fip["id"])
    _cli(live_server, "router", "unset", "--route", "destination=192.168.0.0/24,gateway=10.0.0.9", "r1")
    _cli(live_server, "router", "remove", "subnet", "r1", "sub1")
    _cli(live_server, "floating", "ip", "delete", fip["id"])
    _cli(live_server, "router", "delete", "r1")
    assert ok(client.get("/v2.0/routers"))["routers"] == []
    assert ok(client.get("/v2.0/floatingips"))["floatingips"] == []
