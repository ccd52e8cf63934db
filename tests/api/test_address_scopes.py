"""Address scopes and network IP availability through HTTP, with Neutron's errors."""
from tests.api.test_networks import err, mknet, mksub


def mkscope(c, **kw):
    r = c.post("/v2.0/address-scopes", json={"address_scope": {"name": "s", "ip_version": 4, **kw}})
    assert r.status_code == 201, r.text
    return r.json()["address_scope"]


def mksub_raw(c, net_id, **kw):
    return c.post("/v2.0/subnets", json={"subnet": {"network_id": net_id, "ip_version": 4, **kw}})


def mkpool(c, prefixes, **kw):
    return c.post("/v2.0/subnetpools", json={"subnetpool": {"name": "p", "prefixes": prefixes, **kw}})


def test_address_scope_crud(client, project_client):
    s = mkscope(client)
    assert set(s) == {"id", "name", "ip_version", "shared", "project_id", "tenant_id"}
    assert s["shared"] is False and s["ip_version"] == 4
    r = client.put(f"/v2.0/address-scopes/{s['id']}", json={"address_scope": {"name": "t", "shared": True}})
    assert r.json()["address_scope"] == {**s, "name": "t", "shared": True}
    err(client.put(f"/v2.0/address-scopes/{s['id']}", json={"address_scope": {"shared": False}}), 400,
        "AddressScopeUpdateError")
    err(client.put(f"/v2.0/address-scopes/{s['id']}", json={"address_scope": {"ip_version": 6}}), 400)
    assert [x["id"] for x in client.get("/v2.0/address-scopes?ip_version=4").json()["address_scopes"]] == [s["id"]]
    assert client.get("/v2.0/address-scopes?ip_version=6").json()["address_scopes"] == []
    other = project_client("pb")
    assert other.get(f"/v2.0/address-scopes/{s['id']}").json()["address_scope"]["shared"] is True
    err(other.delete(f"/v2.0/address-scopes/{s['id']}"), 403)
    assert client.delete(f"/v2.0/address-scopes/{s['id']}").status_code == 204
    err(client.get(f"/v2.0/address-scopes/{s['id']}"), 404, "AddressScopeNotFound")
    aliases = {e["alias"] for e in client.get("/v2.0/extensions").json()["extensions"]}
    assert {"address-scope", "rbac-policies", "rbac-address-scope", "network-ip-availability"} <= aliases
    assert "address-scopes" in {r["collection"] for r in client.get("/v2.0/").json()["resources"]}


def test_address_scope_bad_input(client, project_client):
    for body in ({"name": "x"}, {"name": "x", "ip_version": 5}, {"name": "x", "ip_version": "four"},
                 {"name": 3, "ip_version": 4}, {"ip_version": 4, "prefixes": []}):
        err(client.post("/v2.0/address-scopes", json={"address_scope": body}), 400)
    err(project_client("pa").post("/v2.0/address-scopes", json={"address_scope": {"ip_version": 4,
                                                                                   "shared": True}}), 403)
    err(client.get("/v2.0/address-scopes/0b6b3c2e-4f47-4c1b-9a9c-000000000000"), 404)
    err(client.get("/v2.0/address-scopes/x/tags"), 404)


def test_pools_in_a_scope(client, project_client):
    v4 = mkscope(client)
    v6 = mkscope(client, ip_version=6)
    p1 = mkpool(client, ["10.10.0.0/16"], address_scope_id=v4["id"])
    assert p1.status_code == 201 and p1.json()["subnetpool"]["address_scope_id"] == v4["id"]
    err(mkpool(client, ["10.10.128.0/17"], address_scope_id=v4["id"]), 409, "AddressScopePrefixConflict")
    err(mkpool(client, ["10.20.0.0/16"], address_scope_id=v6["id"]), 400,
        "IllegalSubnetPoolIpVersionAssociationWithAddressScope")
    err(mkpool(client, ["10.20.0.0/16"], address_scope_id="0b6b3c2e-4f47-4c1b-9a9c-000000000000"), 404,
        "AddressScopeNotFound")
    err(project_client("pb").post("/v2.0/subnetpools", json={"subnetpool": {
        "prefixes": ["10.30.0.0/16"], "address_scope_id": v4["id"]}}), 404, "AddressScopeNotFound")
    p2 = mkpool(client, ["10.20.0.0/16"]).json()["subnetpool"]
    err(client.put(f"/v2.0/subnetpools/{p2['id']}", json={"subnetpool": {"prefixes": ["10.0.0.0/8"],
                                                                         "address_scope_id": v4["id"]}}), 409)
    moved = client.put(f"/v2.0/subnetpools/{p2['id']}", json={"subnetpool": {"address_scope_id": v4["id"]}})
    assert moved.status_code == 200 and moved.json()["subnetpool"]["address_scope_id"] == v4["id"]
    # a network shows the scope of its subnets' pool
    net = mknet(client)
    assert net["ipv4_address_scope"] is None
    client.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "prefixlen": 24,
                                                  "subnetpool_id": p2["id"]}})
    shown = client.get(f"/v2.0/networks/{net['id']}").json()["network"]
    assert shown["ipv4_address_scope"] == v4["id"] and shown["ipv6_address_scope"] is None
    # a network's subnets of one version stay in its scope (another pool of the scope is fine), or in one pool
    err(mksub_raw(client, net["id"], cidr="10.99.0.0/24"), 400, "NetworkAddressScopeAffinityError")
    p1_id = p1.json()["subnetpool"]["id"]
    assert mksub_raw(client, net["id"], subnetpool_id=p1_id, prefixlen=24).status_code == 201
    plain = mknet(client)
    mksub(client, plain["id"], "10.98.0.0/24")
    err(mksub_raw(client, plain["id"], subnetpool_id=p1_id, prefixlen=24), 400, "NetworkSubnetPoolAffinityError")
    assert mksub_raw(client, plain["id"], cidr="10.98.1.0/24").status_code == 201
    # moving one of the network's two pools out of the scope would split the network across scopes
    err(client.put(f"/v2.0/subnetpools/{p1_id}", json={"subnetpool": {"address_scope_id": None}}), 400,
        "NetworkAddressScopeAffinityError")
    err(client.delete(f"/v2.0/address-scopes/{v4['id']}"), 409, "AddressScopeInUse")


def test_ip_availability(client, project_client):
    net = mknet(client, name="avail")
    s1 = mksub(client, net["id"], "10.0.0.0/24", name="s1")                         # pool .2-.254: 253
    s2 = mksub(client, net["id"], "10.0.1.0/28", allocation_pools=[{"start": "10.0.1.5", "end": "10.0.1.9"}])
    mksub(client, net["id"], "fd00::/120", ip_version=6)
    for _ in range(3):
        client.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                  "fixed_ips": [{"subnet_id": s1["id"]}]}})
    client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": s2["id"], "ip_address": "10.0.1.14"}]}})                     # outside the pool: still used
    empty = mknet(client, name="empty")
    got = client.get(f"/v2.0/network-ip-availabilities/{net['id']}").json()["network_ip_availability"]
    subs = {x["cidr"]: x for x in got["subnet_ip_availability"]}
    assert subs["10.0.0.0/24"] == {"subnet_id": s1["id"], "subnet_name": "s1", "cidr": "10.0.0.0/24",
                                   "ip_version": 4, "total_ips": 253, "used_ips": 3, "ip_availability_details": {
                                       "total_ips_in_subnet": 254, "total_ips_in_allocation_pool": 253,
                                       "used_ips_in_subnet": 3, "used_ips_in_allocation_pool": 3}}
    assert (subs["10.0.1.0/28"]["total_ips"], subs["10.0.1.0/28"]["used_ips"]) == (5, 1)
    assert subs["10.0.1.0/28"]["ip_availability_details"] == {
        "total_ips_in_subnet": 14, "total_ips_in_allocation_pool": 5, "used_ips_in_subnet": 1,
        "used_ips_in_allocation_pool": 0}
    assert subs["fd00::/120"]["total_ips"] == 254 and subs["fd00::/120"]["ip_version"] == 6
    assert got["network_name"] == "avail" and got["project_id"] == got["tenant_id"] == net["project_id"]
    assert got["total_ips"] == 253 + 5 + 254 and got["used_ips"] == 4
    assert got["ip_availability_details"] == {"total_ips_in_subnet": 254 + 14 + 256, "used_ips_in_subnet": 4,
                                              "total_ips_in_allocation_pool": 512, "used_ips_in_allocation_pool": 3}
    listed = client.get("/v2.0/network-ip-availabilities").json()["network_ip_availabilities"]
    assert {x["network_id"] for x in listed} == {net["id"], empty["id"]}
    assert [x for x in listed if x["network_id"] == empty["id"]][0]["total_ips"] == 0
    v4 = client.get("/v2.0/network-ip-availabilities?ip_version=4").json()["network_ip_availabilities"]
    assert [(x["network_id"], x["total_ips"], x["used_ips"]) for x in v4] == [(net["id"], 258, 4)]
    named = client.get("/v2.0/network-ip-availabilities?network_name=empty&fields=network_id").json()
    assert named["network_ip_availabilities"] == [{"network_id": empty["id"]}]
    err(client.get("/v2.0/network-ip-availabilities?colour=red"), 400)
    err(client.get("/v2.0/network-ip-availabilities/0b6b3c2e-4f47-4c1b-9a9c-000000000000"), 404, "NetworkNotFound")
    err(client.post("/v2.0/network-ip-availabilities", json={}), 405)
    # admins only: others get an empty list and 404, even for their own network
    user = project_client(net["project_id"])
    assert user.get("/v2.0/network-ip-availabilities").json()["network_ip_availabilities"] == []
    err(user.get(f"/v2.0/network-ip-availabilities/{net['id']}"), 404)
