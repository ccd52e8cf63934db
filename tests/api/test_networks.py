"""Networks and subnets through HTTP: Neutron's semantics, list rules, standard attributes and errors."""


def mknet(c, **kw):
    r = c.post("/v2.0/networks", json={"network": {"name": "n", **kw}})
    assert r.status_code == 201, r.text
    return r.json()["network"]


def mksub(c, net_id, cidr="10.0.0.0/24", **kw):
    r = c.post("/v2.0/subnets", json={"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 4, **kw}})
    assert r.status_code == 201, r.text
    return r.json()["subnet"]


def err(r, code, type_=None):
    assert r.status_code == code, r.text
    body = r.json()["NeutronError"]
    assert set(body) == {"type", "message", "detail"}
    if type_:
        assert body["type"] == type_, body
    return body


def test_discovery_documents(client):
    v = client.get("/").json()["versions"][0]
    assert v["id"] == "v2.0" and v["status"] == "CURRENT" and v["links"][0]["rel"] == "self"
    assert client.get("/v2.0/").json()["version"]["id"] == "v2.0"
    names = [e["alias"] for e in client.get("/v2.0/extensions").json()["extensions"]]
    assert "router" in names and "external-gateway-multihoming" not in names
    assert client.get("/v2.0/extensions/security-group").json()["extension"]["alias"] == "security-group"
    err(client.get("/v2.0/extensions/port-hints"), 404)


def test_network_defaults_and_std_attrs(client):
    n = mknet(client)
    assert n["status"] == "ACTIVE" and n["admin_state_up"] is True and n["shared"] is False
    assert n["subnets"] == [] and n["tags"] == [] and n["mtu"] == 1450
    assert n["project_id"] == n["tenant_id"] and n["revision_number"] == 0
    assert n["created_at"].endswith("Z") and n["provider:network_type"] == "vxlan"
    n2 = mknet(client)
    assert n2["provider:segmentation_id"] != n["provider:segmentation_id"]
    r = client.put(f"/v2.0/networks/{n['id']}", json={"network": {"name": "renamed", "mtu": "1400"}})
    assert r.json()["network"]["name"] == "renamed" and r.json()["network"]["mtu"] == 1400
    assert r.json()["network"]["revision_number"] == 1


def test_provider_networks(client):
    flat = mknet(client, **{"provider:network_type": "flat", "provider:physical_network": "public",
                            "router:external": True})
    assert flat["mtu"] == 1500 and flat["router:external"] is True
    err(client.post("/v2.0/networks", json={"network": {"provider:network_type": "flat",
                                                        "provider:physical_network": "public"}}), 409,
        "FlatNetworkInUse")
    vlan = mknet(client, **{"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                            "provider:segmentation_id": "100"})
    assert vlan["provider:segmentation_id"] == 100
    err(client.post("/v2.0/networks", json={"network": {"provider:network_type": "vlan",
                                                        "provider:physical_network": "physnet1",
                                                        "provider:segmentation_id": 5000}}), 400)
    err(client.post("/v2.0/networks", json={"network": {"provider:network_type": "bogus"}}), 400)


def test_bad_input_is_400_and_stores_nothing(client):
    for body in ({"network": {"name": 5}}, {"network": {"admin_state_up": "maybe"}}, {"network": {"x": 1}},
                 {"network": {"id": "abc"}}, {"network": {"status": "DOWN"}}, {"net": {}}, [], {"network": []},
                 {"network": {"mtu": "big"}}):
        err(client.post("/v2.0/networks", json=body), 400)
    err(client.post("/v2.0/networks", content=b"{not json", headers={"Content-Type": "application/json"}), 400)
    assert client.get("/v2.0/networks").json()["networks"] == []


def test_not_found_and_bad_ids(client):
    err(client.get("/v2.0/networks/nope"), 404, "NetworkNotFound")
    err(client.put("/v2.0/networks/nope", json={"network": {"name": "x"}}), 404)
    err(client.delete("/v2.0/networks/00000000-0000-0000-0000-000000000000"), 404)
    err(client.get("/v2.0/nothing"), 404)


def test_filters_fields_sorting_pagination(client):
    for name in ("c", "a", "b", "a"):
        mknet(client, name=name)
    nets = client.get("/v2.0/networks?name=a&name=b").json()["networks"]
    assert sorted(n["name"] for n in nets) == ["a", "a", "b"]
    assert client.get("/v2.0/networks?shared=False&name=c").json()["networks"][0]["name"] == "c"
    only = client.get("/v2.0/networks?fields=id&fields=name").json()["networks"]
    assert all(set(n) == {"id", "name"} for n in only)
    desc = client.get("/v2.0/networks?sort_key=name&sort_dir=desc").json()["networks"]
    assert [n["name"] for n in desc] == ["c", "b", "a", "a"]
    err(client.get("/v2.0/networks?bogus=1"), 400)
    err(client.get("/v2.0/networks?sort_key=bogus&sort_dir=asc"), 400)
    seen, url = [], "/v2.0/networks?limit=3&sort_key=name&sort_dir=asc"
    while url:
        body = client.get(url).json()
        seen += [n["id"] for n in body["networks"]]
        nxt = [lk["href"] for lk in body.get("networks_links", []) if lk["rel"] == "next"]
        url = nxt[0].replace("http://testserver", "") if nxt else None
    assert len(seen) == 4 and len(set(seen)) == 4


def test_tags_api_and_filters(client):
    n = mknet(client)
    url = f"/v2.0/networks/{n['id']}/tags"
    assert client.put(url, json={"tags": ["red", "blue"]}).json()["tags"] == ["blue", "red"]
    assert client.put(f"{url}/green").status_code == 201
    assert client.get(f"{url}/green").status_code == 204
    err(client.get(f"{url}/nope"), 404)
    assert client.delete(f"{url}/red").status_code == 204
    assert client.get(url).json()["tags"] == ["blue", "green"]
    assert [x["id"] for x in client.get("/v2.0/networks?tags=blue,green").json()["networks"]] == [n["id"]]
    assert client.get("/v2.0/networks?not-tags=blue").json()["networks"] == []
    assert client.delete(url).status_code == 204
    assert client.get(f"/v2.0/networks/{n['id']}").json()["network"]["tags"] == []


def test_if_match_revision(client):
    n = mknet(client)
    url = f"/v2.0/networks/{n['id']}"
    err(client.put(url, json={"network": {"name": "x"}}, headers={"If-Match": "revision_number=7"}), 412)
    assert client.put(url, json={"network": {"name": "x"}}, headers={"If-Match": "revision_number=0"}).status_code \
        == 200
    err(client.delete(url, headers={"If-Match": "revision_number=0"}), 412)
    assert client.delete(url, headers={"If-Match": "revision_number=1"}).status_code == 204


def test_bulk_create_is_atomic(client):
    ok = client.post("/v2.0/networks", json={"networks": [{"name": "x"}, {"name": "y"}]})
    assert ok.status_code == 201 and len(ok.json()["networks"]) == 2
    bad = client.post("/v2.0/networks", json={"networks": [{"name": "z"}, {"provider:network_type": "flat"}]})
    err(bad, 400)
    assert sorted(n["name"] for n in client.get("/v2.0/networks").json()["networks"]) == ["x", "y"]


def test_subnet_defaults_and_validation(client):
    n = mknet(client)
    s = mksub(client, n["id"])
    assert s["gateway_ip"] == "10.0.0.1" and s["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    assert s["dns_nameservers"] == [] and s["host_routes"] == [] and s["enable_dhcp"] is True
    assert client.get(f"/v2.0/networks/{n['id']}").json()["network"]["subnets"] == [s["id"]]
    err(client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "cidr": "10.0.0.128/25",
                                                      "ip_version": 4}}), 400)          # overlap
    err(client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "cidr": "10.1.0.0/24",
                                                      "ip_version": 6}}), 400)          # version mismatch
    err(client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "cidr": "10.1.0.5/24",
                                                      "ip_version": 4}}), 400)          # host bits
    err(client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "cidr": "10.2.0.0/24", "ip_version": 4,
                                                      "allocation_pools": [{"start": "10.2.0.9",
                                                                            "end": "10.2.0.2"}]}}), 400)
    err(client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "cidr": "10.2.0.0/24", "ip_version": 4,
                                                      "allocation_pools": [{"start": "10.2.0.1",
                                                                            "end": "10.2.0.9"}]}}), 409)
    err(client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "cidr": "10.2.0.0/24", "ip_version": 4,
                                                      "allocation_pools": [{"start": "10.3.0.1",
                                                                            "end": "10.3.0.9"}]}}), 400)
    err(client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "cidr": "10.2.0.0/24", "ip_version": 4,
                                                      "dns_nameservers": ["8.8.8.8", "8.8.8.8"]}}), 400)
    nogw = mksub(client, n["id"], "10.4.0.0/24", gateway_ip=None)
    assert nogw["gateway_ip"] is None and nogw["allocation_pools"][0]["start"] == "10.4.0.1"
    assert len(client.get("/v2.0/subnets").json()["subnets"]) == 2


def test_ipv6_subnet(client):
    n = mknet(client)
    r = client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "cidr": "fd00:1::/64", "ip_version": 6,
                                                      "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}})
    assert r.status_code == 201 and r.json()["subnet"]["gateway_ip"] == "fd00:1::1"
    err(client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "cidr": "fd00:2::/64", "ip_version": 6,
                                                      "ipv6_ra_mode": "slaac",
                                                      "ipv6_address_mode": "dhcpv6-stateful"}}), 400)


def test_subnetpool_allocation(client):
    pool = client.post("/v2.0/subnetpools", json={"subnetpool": {"name": "p", "prefixes": ["10.10.0.0/16"],
                                                                 "default_prefixlen": 24}}).json()["subnetpool"]
    n = mknet(client)
    a = client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "subnetpool_id": pool["id"],
                                                      "ip_version": 4}}).json()["subnet"]
    b = client.post("/v2.0/subnets", json={"subnet": {"network_id": n["id"], "subnetpool_id": pool["id"],
                                                      "ip_version": 4, "prefixlen": 26}}).json()["subnet"]
    assert a["cidr"] == "10.10.0.0/24" and b["cidr"] == "10.10.1.0/26"
    err(client.delete(f"/v2.0/subnetpools/{pool['id']}"), 409)


def test_delete_rules(client):
    n = mknet(client)
    s = mksub(client, n["id"])
    port = client.post("/v2.0/ports", json={"port": {"network_id": n["id"]}}).json()["port"]
    err(client.delete(f"/v2.0/networks/{n['id']}"), 409, "NetworkInUse")
    err(client.delete(f"/v2.0/subnets/{s['id']}"), 409, "SubnetInUse")
    assert client.delete(f"/v2.0/ports/{port['id']}").status_code == 204
    assert client.delete(f"/v2.0/networks/{n['id']}").status_code == 204
    err(client.get(f"/v2.0/subnets/{s['id']}"), 404)


def test_projects_are_isolated(client, project_client):
    a, b = project_client("pa"), project_client("pb")
    na = mknet(a)
    err(b.get(f"/v2.0/networks/{na['id']}"), 404)
    err(b.put(f"/v2.0/networks/{na['id']}", json={"network": {"name": "x"}}), 404)
    err(b.delete(f"/v2.0/networks/{na['id']}"), 404)
    assert b.get("/v2.0/networks").json()["networks"] == []
    err(b.post("/v2.0/networks", json={"network": {"shared": True}}), 403)
    err(b.post("/v2.0/networks", json={"network": {"tenant_id": "pa"}}), 400)   # as Neutron
    shared = mknet(client, shared=True)
    assert [n["id"] for n in b.get("/v2.0/networks").json()["networks"]] == [shared["id"]]
    assert "provider:network_type" not in b.get(f"/v2.0/networks/{shared['id']}").json()["network"]
    reader = project_client("pa", roles="reader")
    err(reader.post("/v2.0/networks", json={"network": {}}), 403)
    assert len(reader.get("/v2.0/networks").json()["networks"]) == 2


def test_quotas(client, project_client):
    assert client.put("/v2.0/quotas/pq", json={"quota": {"network": 1}}).json()["quota"]["network"] == 1
    p = project_client("pq")
    mknet(p)
    err(p.post("/v2.0/networks", json={"network": {}}), 409, "OverQuota")
    assert p.get("/v2.0/quotas/pq").json()["quota"]["port"] == 500
    err(p.get("/v2.0/quotas/other"), 403)
    err(p.put("/v2.0/quotas/pq", json={"quota": {"network": 9}}), 403)
    assert client.get("/v2.0/quotas/pq/details.json").json()["quota"]["network"]["used"] == 1
    assert client.delete("/v2.0/quotas/pq").status_code == 204
    assert client.get("/v2.0/quotas/pq").json()["quota"]["network"] == 100
