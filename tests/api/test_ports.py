"""Ports through HTTP: IPAM (requested and automatic addresses, exhaustion, reuse), MACs, groups, pairs, binding."""
import concurrent.futures

from tests.api.test_networks import err, mknet, mksub


def mkport(c, net_id, **kw):
    r = c.post("/v2.0/ports", json={"port": {"network_id": net_id, **kw}})
    assert r.status_code == 201, r.text
    return r.json()["port"]


def test_port_defaults(client):
    n = mknet(client)
    s = mksub(client, n["id"])
    p = mkport(client, n["id"], name="p1")
    assert p["status"] == "DOWN" and p["mac_address"].startswith("fa:16:3e:")
    assert p["fixed_ips"] == [{"subnet_id": s["id"], "ip_address": "10.0.0.2"}]
    assert len(p["security_groups"]) == 1 and p["binding:vif_type"] == "unbound"
    default = client.get(f"/v2.0/security-groups/{p['security_groups'][0]}").json()["security_group"]
    assert default["name"] == "default"
    assert p["allowed_address_pairs"] == [] and p["extra_dhcp_opts"] == []


def test_requested_addresses(client):
    n = mknet(client)
    s = mksub(client, n["id"])
    p = mkport(client, n["id"], fixed_ips=[{"ip_address": "10.0.0.50"}])
    assert p["fixed_ips"][0] == {"subnet_id": s["id"], "ip_address": "10.0.0.50"}
    err(client.post("/v2.0/ports", json={"port": {"network_id": n["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}}),
        409, "IpAddressInUse")
    err(client.post("/v2.0/ports", json={"port": {"network_id": n["id"], "fixed_ips": [{"ip_address": "10.9.0.5"}]}}),
        400)
    err(client.post("/v2.0/ports", json={"port": {"network_id": n["id"],
                                                  "fixed_ips": [{"subnet_id": s["id"], "ip_address": "10.0.1.5"}]}}),
        400)
    err(client.post("/v2.0/ports", json={"port": {"network_id": n["id"], "fixed_ips": [{"ip_address": "bogus"}]}}),
        400)
    q = client.put(f"/v2.0/ports/{p['id']}", json={"port": {"fixed_ips": [{"ip_address": "10.0.0.60"}]}}).json()
    assert q["port"]["fixed_ips"][0]["ip_address"] == "10.0.0.60"
    assert mkport(client, n["id"], fixed_ips=[{"ip_address": "10.0.0.50"}])["fixed_ips"][0]["ip_address"] == \
        "10.0.0.50"
    assert client.get("/v2.0/ports?fixed_ips=ip_address%3D10.0.0.60").json()["ports"][0]["id"] == p["id"]
    assert len(client.get("/v2.0/ports?fixed_ips=ip_address_substr%3D10.0.0.").json()["ports"]) == 2


def test_pool_exhaustion_and_reuse(client):
    n = mknet(client)
    mksub(client, n["id"], "10.0.0.0/29")      # .2 - .6: 5 addresses
    ports = [mkport(client, n["id"]) for _ in range(5)]
    err(client.post("/v2.0/ports", json={"port": {"network_id": n["id"]}}), 409, "IpAddressGenerationFailure")
    gone = ports[2]["fixed_ips"][0]["ip_address"]
    assert client.delete(f"/v2.0/ports/{ports[2]['id']}").status_code == 204
    assert mkport(client, n["id"])["fixed_ips"][0]["ip_address"] == gone


def test_concurrent_creates_get_distinct_addresses(live_server):
    import httpx
    with httpx.Client(base_url=live_server, timeout=60) as c:
        net = c.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
        c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}})

        def one(_):
            return c.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            results = list(ex.map(one, range(100)))
        assert all(r.status_code == 201 for r in results)
        ips = {r.json()["port"]["fixed_ips"][0]["ip_address"] for r in results}
        assert len(ips) == 100


def test_mac_and_pairs_and_port_security(client):
    n = mknet(client)
    mksub(client, n["id"])
    p = mkport(client, n["id"], mac_address="FA:16:3E:00:00:01")
    assert p["mac_address"] == "fa:16:3e:00:00:01"
    err(client.post("/v2.0/ports", json={"port": {"network_id": n["id"], "mac_address": "fa:16:3e:00:00:01"}}), 409,
        "MacAddressInUse")
    err(client.post("/v2.0/ports", json={"port": {"network_id": n["id"], "mac_address": "zz"}}), 400)
    q = mkport(client, n["id"], allowed_address_pairs=[{"ip_address": "10.0.0.200/30"}])
    assert q["allowed_address_pairs"] == [{"ip_address": "10.0.0.200/30", "mac_address": q["mac_address"]}]
    err(client.put(f"/v2.0/ports/{q['id']}", json={"port": {"port_security_enabled": False}}), 409)
    r = client.put(f"/v2.0/ports/{q['id']}", json={"port": {"port_security_enabled": False, "security_groups": [],
                                                            "allowed_address_pairs": []}})
    assert r.status_code == 200 and r.json()["port"]["port_security_enabled"] is False
    insecure = mkport(client, n["id"], port_security_enabled=False)
    assert insecure["security_groups"] == []


def test_protected_owners_and_policy(client, project_client):
    n = mknet(client)
    mksub(client, n["id"])
    p = mkport(client, n["id"], device_owner="network:router_interface")
    err(client.delete(f"/v2.0/ports/{p['id']}"), 409)
    other = project_client("po")
    err(other.get(f"/v2.0/ports/{p['id']}"), 404)
    err(other.post("/v2.0/ports", json={"port": {"network_id": n["id"]}}), 404)
    err(other.post("/v2.0/ports", json={"port": {"network_id": mknet(other)["id"], "binding:host_id": "h1"}}), 403)


def test_binding_without_agent_fails(client):
    n = mknet(client)
    mksub(client, n["id"])
    p = mkport(client, n["id"], **{"binding:host_id": "nohost"})
    assert p["binding:vif_type"] == "binding_failed" and p["binding:host_id"] == "nohost"


def test_binding_with_live_agent_and_status(client):
    n = mknet(client)
    mksub(client, n["id"])
    conf = {"l2": "ovs", "firewall": "iptables", "roles": ["l2", "dhcp"], "datapath_type": "netdev",
            "ovs_hybrid_plug": True}
    assert client.post("/agent/v1/hosts/h1/report", json={"agent": conf}).status_code == 200
    agents = client.get("/v2.0/agents").json()["agents"]
    assert {a["agent_type"] for a in agents} == {"Open vSwitch agent", "DHCP agent"}
    assert all(a["alive"] for a in agents)
    p = mkport(client, n["id"], **{"binding:host_id": "h1"})
    assert p["binding:vif_type"] == "ovs" and p["binding:vif_details"]["ovs_hybrid_plug"] is True
    view = client.get("/agent/v1/hosts/h1/view").json()
    assert [x["id"] for x in view["ports"] if x["kind"] == "instance"] == [p["id"]]
    dhcp = view["dhcp"][0]
    assert dhcp["network_id"] == n["id"] and dhcp["hosts"][0]["port_id"] == p["id"]
    client.post("/agent/v1/hosts/h1/report", json={"agent": conf, "ports": {p["id"]: True}})
    assert client.get(f"/v2.0/ports/{p['id']}").json()["port"]["status"] == "DOWN"   # DHCP block left
    client.post("/agent/v1/hosts/h1/report", json={"agent": conf, "dhcp_ready": [p["id"]]})
    assert client.get(f"/v2.0/ports/{p['id']}").json()["port"]["status"] == "ACTIVE"


def test_reported_status_follows_the_l2_agent_after_the_blocks_are_gone(client):
    """Once ACTIVE, a port the agent reports down is DOWN (whatever DHCP says), and ACTIVE again when it is back."""
    n = mknet(client)
    mksub(client, n["id"])
    conf = {"l2": "linuxbridge", "firewall": "nftables", "roles": ["l2", "dhcp"]}
    client.post("/agent/v1/hosts/h1/report", json={"agent": conf})
    p = mkport(client, n["id"], **{"binding:host_id": "h1"})

    def status(ports: dict) -> str:
        client.post("/agent/v1/hosts/h1/report", json={"agent": conf, "ports": ports, "dhcp_ready": [p["id"]]})
        return client.get(f"/v2.0/ports/{p['id']}").json()["port"]["status"]
    assert status({p["id"]: True}) == "ACTIVE"
    assert status({p["id"]: False}) == "DOWN"
    assert status({p["id"]: False}) == "DOWN"
    assert status({p["id"]: True}) == "ACTIVE"


def test_metadata_answers_only_the_instance_behind_the_source_address(client):
    """The compute side records an instance; the metadata service answers its own port's address only."""
    n = mknet(client)
    mksub(client, n["id"])
    r = client.post("/v2.0/routers", json={"router": {"name": "r"}}).json()["router"]
    client.put(f"/v2.0/routers/{r['id']}/add_router_interface",
               json={"subnet_id": client.get("/v2.0/subnets").json()["subnets"][0]["id"]})
    vm = mkport(client, n["id"], name="vm1", device_id="dev-1", device_owner="compute:nova")
    other = mkport(client, n["id"], name="vm2", device_id="dev-2", device_owner="compute:nova")
    body = {"hostname": "vm1", "public_keys": {"k1": "ssh-ed25519 AAAA k1"}, "user_data": "#!/bin/sh\necho hi\n"}
    assert client.put("/agent/v1/instances/dev-1", json=body).status_code == 200
    assert client.put("/agent/v1/instances/dev-1", json={"hostname": 5}).status_code == 400
    assert client.put("/agent/v1/instances/dev-1", json={"public_keys": []}).status_code == 400

    def md(path, source):
        return client.get(f"/agent/v1/metadata/{path}", headers={"X-Neutrino-Router-ID": r["id"],
                                                                  "X-Forwarded-For": source})
    ip1, ip2 = vm["fixed_ips"][0]["ip_address"], other["fixed_ips"][0]["ip_address"]
    doc = md("openstack/latest/meta_data.json", ip1).json()
    assert doc["uuid"] == "dev-1" and doc["hostname"] == "vm1" and doc["public_keys"] == body["public_keys"]
    assert md("openstack/latest/user_data", ip1).text == body["user_data"]
    assert md("latest/meta-data/public-keys/0/openssh-key", ip1).text == "ssh-ed25519 AAAA k1"
    assert md("latest/meta-data/local-ipv4", ip1).text == ip1
    assert md("openstack/latest/meta_data.json", ip2).json()["uuid"] == "dev-2"
    assert md("openstack/latest/user_data", ip2).status_code == 404
    assert md("openstack/latest/meta_data.json", "10.9.9.9").status_code == 404
    assert client.delete("/agent/v1/instances/dev-1").status_code == 204
    assert md("openstack/latest/meta_data.json", ip1).json()["public_keys"] == {}



def test_addresses_kept_between_writes_follow_other_servers_and_stray_writes(app, db_url, tmp_path):
    """Each process keeps its subnets' used addresses between its writes (core/used_addresses.py): a second server
    on the same database, and an address taken by a write that bumps no revision, must not make it hand out an
    address twice or skip the lowest free one."""
    from fastapi.testclient import TestClient
    from sqlalchemy import insert

    from neutrino.api.app import create_app
    from neutrino.config import Settings
    from neutrino.db import models
    from neutrino.db.engine import Database

    other_db = Database(db_url)
    other = create_app(Settings(state_dir=str(tmp_path), auth="noauth", admin_token="admintoken"), other_db)
    with TestClient(app) as a, TestClient(other) as b:
        n = mknet(a)
        s = mksub(a, n["id"])

        def port(c):
            return mkport(c, n["id"])

        def ip(c):
            return port(c)["fixed_ips"][0]["ip_address"]
        first = port(a)
        assert [first["fixed_ips"][0]["ip_address"], ip(a), ip(b), ip(a)] == \
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
        third = a.get("/v2.0/ports?fixed_ips=ip_address%3D10.0.0.3").json()["ports"][0]
        assert b.delete(f"/v2.0/ports/{third['id']}").status_code == 204
        assert ip(a) == "10.0.0.3"
        other_db.run(lambda sess: sess.execute(insert(models.IPAllocation.__table__).values(
            subnet_id=s["id"], ip_address="10.0.0.6", port_id=first["id"], network_id=n["id"])), write=True)
        assert [ip(a), ip(a)] == ["10.0.0.7", "10.0.0.8"]
    other_db.engine.dispose()
