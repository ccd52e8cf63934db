"""Floating IPs and port forwardings through HTTP: the seed's vm1 association, address choice and policy,
association rules (router reachability, fixed IP choice, one FIP per fixed IP), disassociation (PUT and port
deletion), deletion, quota, filters, and the port forwarding sub-resource with its exclusivity rules."""
from __future__ import annotations

from sqlalchemy import update as sql_update

from neutrino.db import models as m
from tests.api.apifix_l3 import add_subnet, err, floatingip, network, ok, port, router, seed, subnet

NIL = "00000000-0000-0000-0000-000000000000"


def _fip(c, fid):
    return ok(c.get(f"/v2.0/floatingips/{fid}"))["floatingip"]


def _set_port(c, fid, port_id, **extra):
    return c.put(f"/v2.0/floatingips/{fid}", json={"floatingip": {"port_id": port_id, **extra}})


def test_seed_floating_ip(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    vm = port(t, s.private["id"], "vm1")
    fip = ok(floatingip(t, s.public["id"], port_id=vm["id"], description="vm1's"), 201)["floatingip"]
    assert fip["router_id"] == s.router["id"] and fip["port_id"] == vm["id"]
    assert fip["fixed_ip_address"] == vm["fixed_ips"][0]["ip_address"]
    assert fip["floating_ip_address"] == "172.24.4.3"      # .1 is the subnet gateway, .2 router1's gateway
    assert fip["status"] == "DOWN" and fip["floating_network_id"] == s.public["id"]
    assert fip["port_details"] == {"name": "vm1", "network_id": s.private["id"], "mac_address": vm["mac_address"],
                                   "admin_state_up": True, "status": "DOWN", "device_id": "",
                                   "device_owner": ""}
    assert fip["port_forwardings"] == [] and fip["tags"] == [] and fip["description"] == "vm1's"
    assert (fip["project_id"], fip["tenant_id"], fip["dns_name"], fip["dns_domain"]) == ("p1", "p1", "", "")
    assert _fip(t, fip["id"]) == fip
    holder = ok(client.get("/v2.0/ports", params={"device_id": fip["id"]}))["ports"]
    assert [(p["device_owner"], p["project_id"], p["network_id"]) for p in holder] == [
        ("network:floatingip", "", s.public["id"])]
    assert holder[0]["fixed_ips"][0]["ip_address"] == fip["floating_ip_address"]
    err(client.delete(f"/v2.0/ports/{holder[0]['id']}"), 409)
    # lists and filters
    other = ok(floatingip(t, s.public["id"]), 201)["floatingip"]
    assert other["port_id"] is None and other["router_id"] is None and other["port_details"] is None
    assert {f["id"] for f in ok(t.get("/v2.0/floatingips"))["floatingips"]} == {fip["id"], other["id"]}
    for key, value in (("port_id", vm["id"]), ("floating_ip_address", "172.24.4.3"),
                       ("router_id", s.router["id"]), ("fixed_ip_address", fip["fixed_ip_address"])):
        found = ok(t.get("/v2.0/floatingips", params={key: value}))["floatingips"]
        assert [f["id"] for f in found] == [fip["id"]], key
    assert ok(project_client("p2").get("/v2.0/floatingips"))["floatingips"] == []
    err(project_client("p2").get(f"/v2.0/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")


def test_create_errors(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    msg = err(floatingip(t, s.private["id"]), 400, "BadRequest")
    assert msg == f"Bad floatingip request: Network {s.private['id']} is not a valid external network."
    err(floatingip(t, NIL), 404, "NetworkNotFound")
    err(t.post("/v2.0/floatingips", json={"floatingip": {}}), 400)
    empty = network(client, "ext-empty", **{"router:external": True})
    msg = err(floatingip(t, empty["id"]), 400, "BadRequest")
    assert "does not contain any IPv4 subnet" in msg
    # choosing the address is for admins; a taken one is a conflict
    err(floatingip(t, s.public["id"], floating_ip_address="172.24.4.77"), 403, "PolicyNotAuthorized")
    fip = ok(floatingip(client, s.public["id"], floating_ip_address="172.24.4.77", project_id="p1"), 201)
    assert fip["floatingip"]["floating_ip_address"] == "172.24.4.77"
    assert fip["floatingip"]["project_id"] == "p1"
    err(floatingip(client, s.public["id"], floating_ip_address="172.24.4.77"), 409, "IpAddressInUse")
    err(floatingip(client, s.public["id"], floating_ip_address="10.0.0.5"), 400)
    fip = ok(floatingip(t, s.public["id"], subnet_id=s.public_sub["id"]), 201)["floatingip"]
    assert fip["floating_ip_address"].startswith("172.24.4.")
    assert "subnet_id" not in fip
    assert len(ok(t.get("/v2.0/floatingips"))["floatingips"]) == 2


def test_association_rules(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    fid = ok(floatingip(t, s.public["id"]), 201)["floatingip"]["id"]
    # a network no router joins to public
    lone = network(t, "lone")
    lone_sub = subnet(t, lone["id"], "10.8.0.0/24")
    stray = port(t, lone["id"], "stray")
    msg = err(_set_port(t, fid, stray["id"]), 404, "ExternalGatewayForFloatingIPNotFound")
    assert msg.startswith(f"External network {s.public['id']} is not reachable from subnet {lone_sub['id']}.")
    # a router with an interface there but no gateway is no help either
    r2 = router(t, "r2")
    ok(add_subnet(t, r2["id"], lone_sub["id"]))
    err(_set_port(t, fid, stray["id"]), 404, "ExternalGatewayForFloatingIPNotFound")
    err(_set_port(t, fid, NIL), 404, "PortNotFound")
    # fixed IP choice on a port with two IPv4 addresses
    sub2 = subnet(t, s.private["id"], "10.0.1.0/24")
    ok(add_subnet(t, s.router["id"], sub2["id"]))
    multi = port(t, s.private["id"], "multi", fixed_ips=[{"subnet_id": s.private_sub["id"]},
                                                         {"subnet_id": sub2["id"]}])
    msg = err(_set_port(t, fid, multi["id"]), 400, "BadRequest")
    assert "has multiple fixed IPv4 addresses" in msg
    msg = err(_set_port(t, fid, multi["id"], fixed_ip_address="10.0.0.200"), 400, "BadRequest")
    assert msg == f"Bad floatingip request: Port {multi['id']} does not have fixed ip 10.0.0.200."
    second = multi["fixed_ips"][1]["ip_address"]
    fip = ok(_set_port(t, fid, multi["id"], fixed_ip_address=second))["floatingip"]
    assert (fip["fixed_ip_address"], fip["router_id"]) == (second, s.router["id"])
    msg = err(t.put(f"/v2.0/floatingips/{fid}", json={"floatingip": {"fixed_ip_address": second}}), 400)
    assert "fixed_ip_address cannot be specified without a port_id" in msg
    # an update without port_id keeps the association
    fip = ok(t.put(f"/v2.0/floatingips/{fid}", json={"floatingip": {"description": "d"}}))["floatingip"]
    assert (fip["port_id"], fip["fixed_ip_address"], fip["description"]) == (multi["id"], second, "d")
    # one floating IP per fixed IP (per external network)
    msg = err(floatingip(t, s.public["id"], port_id=multi["id"], fixed_ip_address=second), 409,
              "FloatingIPPortAlreadyAssociated")
    assert f"using fixed IP {second}, as that fixed IP already has a floating IP" in msg
    first = multi["fixed_ips"][0]["ip_address"]
    assert ok(floatingip(t, s.public["id"], port_id=multi["id"], fixed_ip_address=first), 201)
    # service ports and other projects' ports cannot take one
    router_port = ok(t.get("/v2.0/ports", params={"device_id": s.router["id"]}))["ports"][0]
    err(_set_port(t, fid, router_port["id"]), 400, "BadRequest")
    theirs = port(client, s.private["id"], "theirs", project_id="p2")
    err(_set_port(t, fid, theirs["id"]), 400, "BadRequest")
    assert len(ok(t.get("/v2.0/floatingips"))["floatingips"]) == 2      # failed creates left nothing


def test_disassociate(app, client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    vm = port(t, s.private["id"], "vm")
    fip = ok(floatingip(t, s.public["id"], port_id=vm["id"]), 201)["floatingip"]
    with app.state.db.session() as db:     # as if the agent had reported it
        db.execute(sql_update(m.FloatingIP.__table__).values(status="ACTIVE"))
    out = ok(_set_port(t, fip["id"], None))["floatingip"]
    assert out["status"] == "DOWN"
    assert (out["port_id"], out["fixed_ip_address"], out["router_id"], out["port_details"]) == (None,) * 4
    assert out["revision_number"] > fip["revision_number"]
    ok(_set_port(t, fip["id"], vm["id"]))
    # deleting the port frees the floating IP
    assert t.delete(f"/v2.0/ports/{vm['id']}").status_code == 204
    out = _fip(t, fip["id"])
    assert (out["port_id"], out["fixed_ip_address"], out["router_id"]) == (None, None, None)


def test_delete_and_quota(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    fip = ok(floatingip(t, s.public["id"]), 201)["floatingip"]
    holder = ok(client.get("/v2.0/ports", params={"device_id": fip["id"]}))["ports"][0]
    assert t.delete(f"/v2.0/floatingips/{fip['id']}").status_code == 204
    err(t.get(f"/v2.0/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
    err(client.get(f"/v2.0/ports/{holder['id']}"), 404)
    ok(client.put("/v2.0/quotas/p1", json={"quota": {"floatingip": 2}}))
    for _ in range(2):
        ok(floatingip(t, s.public["id"]), 201)
    err(floatingip(t, s.public["id"]), 409, "OverQuota")
    ports_now = len(ok(client.get("/v2.0/ports"))["ports"])
    err(floatingip(t, s.public["id"]), 409, "OverQuota")
    assert len(ok(client.get("/v2.0/ports"))["ports"]) == ports_now


def test_tags(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    fid = ok(floatingip(t, s.public["id"]), 201)["floatingip"]["id"]
    assert ok(t.put(f"/v2.0/floatingips/{fid}/tags", json={"tags": ["b", "a"]}))["tags"] == ["a", "b"]
    assert [f["id"] for f in ok(t.get("/v2.0/floatingips", params={"tags": "a"}))["floatingips"]] == [fid]
    assert _fip(t, fid)["tags"] == ["a", "b"]


# --- port forwardings ---------------------------------------------------------------------------------------------

def _pf_url(fid, pid=""):
    return f"/v2.0/floatingips/{fid}/port_forwardings" + (f"/{pid}" if pid else "")


def _pf(c, fid, **body):
    return c.post(_pf_url(fid), json={"port_forwarding": body})


def test_port_forwarding_lifecycle(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    vm = port(t, s.private["id"], "vm")
    ip = vm["fixed_ips"][0]["ip_address"]
    fid = ok(floatingip(t, s.public["id"]), 201)["floatingip"]["id"]
    pf = ok(_pf(t, fid, internal_port_id=vm["id"], internal_ip_address=ip, internal_port=22, external_port=2222,
                protocol="tcp", description="ssh"), 201)["port_forwarding"]
    assert set(pf) == {"id", "internal_port_id", "internal_ip_address", "internal_port", "external_port",
                       "protocol", "description"}
    assert (pf["internal_port"], pf["external_port"], pf["protocol"]) == (22, 2222, "tcp")
    fip = _fip(t, fid)
    assert fip["router_id"] == s.router["id"] and fip["port_id"] is None
    assert fip["port_forwardings"] == [{"protocol": "tcp", "internal_ip_address": ip, "internal_port": 22,
                                        "external_port": 2222}]
    udp = ok(_pf(t, fid, internal_port_id=vm["id"], internal_ip_address=ip, internal_port="53",
                 external_port="53", protocol="udp"), 201)["port_forwarding"]
    assert udp["internal_port"] == 53
    assert len(ok(t.get(_pf_url(fid)))["port_forwardings"]) == 2
    assert [p["id"] for p in ok(t.get(_pf_url(fid), params={"protocol": "udp"}))["port_forwardings"]] == [udp["id"]]
    assert ok(t.get(_pf_url(fid, pf["id"])))["port_forwarding"] == pf
    assert ok(t.get(_pf_url(fid, pf["id"]), params={"fields": "external_port"}))["port_forwarding"] == {
        "external_port": 2222}
    out = ok(t.put(_pf_url(fid, pf["id"]), json={"port_forwarding": {"external_port": 2200,
                                                                      "description": "moved"}}))
    assert out["port_forwarding"]["external_port"] == 2200 and out["port_forwarding"]["description"] == "moved"
    # the floating IP is busy with forwardings: no port association, no deletion
    msg = err(_set_port(t, fid, vm["id"]), 409, "FipInUseByPortForwarding")
    assert msg == f"Floating IP {fid} in use by Port Forwarding resources."
    err(t.delete(f"/v2.0/floatingips/{fid}"), 409, "FipInUseByPortForwarding")
    err(project_client("p2").get(_pf_url(fid)), 404, "FloatingIPNotFound")
    err(t.get(_pf_url(fid, NIL)), 404, "PortForwardingNotFound")
    assert t.delete(_pf_url(fid, pf["id"])).status_code == 204
    assert _fip(t, fid)["router_id"] == s.router["id"]              # still one forwarding left
    assert t.delete(_pf_url(fid, udp["id"])).status_code == 204
    assert _fip(t, fid)["router_id"] is None                        # the last one took the router with it
    err(t.delete(_pf_url(fid, udp["id"])), 404, "PortForwardingNotFound")
    assert t.delete(f"/v2.0/floatingips/{fid}").status_code == 204


def test_port_forwarding_errors(client, project_client):
    t = project_client("p1")
    s = seed(client, t)
    vm = port(t, s.private["id"], "vm")
    ip = vm["fixed_ips"][0]["ip_address"]
    fid = ok(floatingip(t, s.public["id"]), 201)["floatingip"]["id"]
    base = dict(internal_port_id=vm["id"], internal_ip_address=ip, internal_port=80, external_port=8080,
                protocol="tcp")
    for bad in ({"external_port": 0}, {"internal_port": 65536}, {"protocol": "icmp"}, {"internal_port_id": "x"}):
        err(_pf(t, fid, **{**base, **bad}), 400)
    err(_pf(t, fid, **{k: v for k, v in base.items() if k != "external_port"}), 400)
    msg = err(_pf(t, fid, **{**base, "internal_ip_address": "10.0.0.250"}), 400, "BadRequest")
    assert "is not suitable for internal neutron port" in msg
    lone = network(t, "lone")
    subnet(t, lone["id"], "10.8.0.0/24")
    stray = port(t, lone["id"], "stray")
    msg = err(_pf(t, fid, **{**base, "internal_port_id": stray["id"],
                             "internal_ip_address": stray["fixed_ips"][0]["ip_address"]}), 400, "BadRequest")
    assert "is not reachable from subnet" in msg
    ok(_pf(t, fid, **base), 201)
    msg = err(_pf(t, fid, **{**base, "internal_port": 81}), 400, "BadRequest")     # same external port + protocol
    assert "A duplicate port forwarding entry with same attributes already exists" in msg
    err(_pf(t, fid, **{**base, "external_port": 8081}), 400, "BadRequest")         # same internal socket
    ok(_pf(t, fid, **{**base, "protocol": "udp"}), 201)
    assert len(ok(t.get(_pf_url(fid)))["port_forwardings"]) == 2
    # a port with its own floating IP takes no forwardings; a floating IP with a port takes none either
    other = port(t, s.private["id"], "other")
    bound = ok(floatingip(t, s.public["id"], port_id=other["id"]), 201)["floatingip"]
    err(_pf(t, fid, **{**base, "internal_port_id": other["id"], "internal_port": 90,
                       "internal_ip_address": other["fixed_ips"][0]["ip_address"], "external_port": 9090}), 409,
        "PortHasBindingFloatingIP")
    err(_pf(t, bound["id"], **{**base, "external_port": 9091}), 409, "FloatingIPPortAlreadyAssociated")
    err(project_client("p2").post(_pf_url(fid), json={"port_forwarding": base}), 404)
    # deleting the internal port removes its forwardings and frees the floating IP from the router
    assert t.delete(f"/v2.0/ports/{vm['id']}").status_code == 204
    assert ok(t.get(_pf_url(fid)))["port_forwardings"] == []
    assert _fip(t, fid)["router_id"] is None


def test_agent_reports_set_floating_ip_and_router_status(client, project_client):
    """A report names every floating IP and router of its host: their statuses follow it (a router only from the
    host it is on), and what did not change is not written again."""
    conf = {"l2": "ovs", "roles": ["l2", "l3"]}
    ok(client.post("/agent/v1/hosts/h1/report", json={"agent": conf}))
    t = project_client("p1")
    s = seed(client, t)
    fip = ok(floatingip(t, s.public["id"], port_id=port(t, s.private["id"], "vm1")["id"]), 201)["floatingip"]
    rid, fid = s.router["id"], fip["id"]
    assert ok(client.get(f"/v2.0/routers/{rid}"))["router"]["status"] == "ACTIVE"      # Neutron's default

    def report(host: str, router_ok: bool, fip_ok: bool):
        ok(client.post(f"/agent/v1/hosts/{host}/report", json={"agent": conf, "routers": {rid: router_ok},
                                                                  "floatingips": {fid: fip_ok, NIL: True}}))
        return ok(client.get(f"/v2.0/routers/{rid}"))["router"]["status"], _fip(t, fid)["status"]

    assert report("h1", True, True) == ("ACTIVE", "ACTIVE")
    assert report("h1", True, True) == ("ACTIVE", "ACTIVE")
    assert report("h1", False, False) == ("ERROR", "DOWN")
    assert report("h2", True, False)[0] == "ERROR"                  # router1 is not on h2
    assert report("h1", True, True) == ("ACTIVE", "ACTIVE")
