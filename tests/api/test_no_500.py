"""No user input gets a 500: every writable attribute of every resource, on POST and PUT, with values of every
wrong shape; odd query strings on every list. Each answer must be a NeutronError below 500."""
from neutrino.api import networks, ports, routers, secgroups

ODD = [None, True, -1, 0, 2 ** 70, 1.5, "", "x" * 300, "not-a-uuid", "10.0.0.0/33", "::/200", "fa:16:3e:zz:00:00",
       [], [None], [{}], [{"x": 1}], {}, {"x": 1}, ["a", "a"], "0" * 36]
RESOURCES = [networks.NETWORK, networks.SUBNET, networks.SUBNETPOOL, ports.PORT, *secgroups.RESOURCES,
             *routers.RESOURCES]


def _world(client) -> dict:
    ext = client.post("/v2.0/networks", json={"network": {"name": "ext", "router:external": True}}).json()["network"]
    client.post("/v2.0/subnets", json={"subnet": {"network_id": ext["id"], "cidr": "172.24.4.0/24",
                                                  "ip_version": 4}})
    net = client.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
    sub = client.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24",
                                                        "ip_version": 4}}).json()["subnet"]
    port = client.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}).json()["port"]
    sg = client.post("/v2.0/security-groups", json={"security_group": {"name": "g"}}).json()["security_group"]
    rule = sg["security_group_rules"][0]
    router = client.post("/v2.0/routers", json={"router": {"name": "r"}}).json()["router"]
    fip = client.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"]}}).json()
    pool = client.post("/v2.0/subnetpools", json={"subnetpool": {"name": "p", "prefixes": ["10.9.0.0/16"]}}).json()
    return {"networks": net, "subnets": sub, "ports": port, "security-groups": sg, "security-group-rules": rule,
            "routers": router, "floatingips": fip["floatingip"], "subnetpools": pool["subnetpool"],
            "_valid": {"network_id": net["id"], "security_group_id": sg["id"], "floating_network_id": ext["id"],
                       "direction": "ingress", "prefixes": ["10.8.0.0/16"], "cidr": "10.7.0.0/24",
                       "ip_version": 4}}


def _check(r, what):
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert set(r.json()["NeutronError"]) == {"type", "message", "detail"}, what


def test_no_500_for_any_odd_attribute_value(client):
    world = _world(client)
    sent = 0
    for res in RESOURCES:
        existing = world[res.path]
        required = {k: v for k, v in world["_valid"].items() if k in res.attrs}
        for attr in res.attrs:
            for value in ODD:
                body = {**required, attr: value}
                _check(client.post(f"/v2.0/{res.path}", json={res.singular: body}), f"POST {res.path} {attr}={value!r}")
                _check(client.put(f"/v2.0/{res.path}/{existing['id']}", json={res.singular: {attr: value}}),
                       f"PUT {res.path} {attr}={value!r}")
                sent += 2
    print(f"\n{sent} odd writes, none answered 500")


def test_no_500_for_odd_bodies_queries_and_actions(client):
    world = _world(client)
    router = world["routers"]["id"]
    for res in RESOURCES:
        for body in (b"", b"null", b"[]", b"{", b'{"x": 1}', b'"s"', b"1" * 5000):
            _check(client.post(f"/v2.0/{res.path}", content=body), f"POST {res.path} {body[:20]!r}")
        for query in ("limit=-1", "limit=x", "marker=nope", "sort_key=id&sort_dir=up", "fields=", "tags=",
                      "page_reverse=maybe", "id=1&id=2", "name=%00", "fixed_ips=nonsense"):
            _check(client.get(f"/v2.0/{res.path}?{query}"), f"GET {res.path}?{query}")
    for action in ("add_router_interface", "remove_router_interface", "add_extraroutes", "remove_extraroutes"):
        for body in ({}, {"subnet_id": "x"}, {"port_id": None}, {"router": {"routes": "x"}}, [], {"subnet_id": 5}):
            _check(client.put(f"/v2.0/routers/{router}/{action}", json=body), f"{action} {body}")
    for tag in ("a" * 300, "", "ä"):
        _check(client.put(f"/v2.0/networks/{world['networks']['id']}/tags/{tag}"), f"tag {tag!r}")
    _check(client.put(f"/v2.0/networks/{world['networks']['id']}/tags", json={"tags": [1, None]}), "tags")


def test_no_500_on_the_identity_api(tmp_path):
    from fastapi.testclient import TestClient

    from neutrino.api.app import create_app
    from neutrino.config import Settings
    from neutrino.db.engine import Database
    from neutrino.identity.bootstrap import bootstrap
    settings = Settings(state_dir=str(tmp_path), auth="keystone", admin_password="pw", admin_token="tok")
    db = Database(f"sqlite:///{tmp_path}/id.db")
    db.setup()
    bootstrap(db, settings)
    with TestClient(create_app(settings, db), headers={"X-Auth-Token": "tok"}) as c:
        for body in (None, [], {}, {"auth": None}, {"auth": {"identity": []}},
                     {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": 5}}}}},
                     {"auth": {"identity": {"methods": ["token"], "token": {"id": None}}}},
                     {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                         "name": "admin", "password": "pw", "domain": {"name": "Default"}}}},
                         "scope": {"project": {"name": ["x"]}}}}):
            r = c.post("/v3/auth/tokens", json=body)
            assert r.status_code < 500, (body, r.text)
        for coll, key in (("projects", "project"), ("users", "user"), ("roles", "role"), ("domains", "domain")):
            for value in ODD:
                for field in ("name", "enabled", "domain_id", "description", "password", "default_project_id"):
                    r = c.post(f"/v3/{coll}", json={key: {"name": "n1", field: value}})
                    assert r.status_code < 500, (coll, field, value, r.text)
        for path in ("/v3/role_assignments?user.id=%00", "/v3/projects/nope", "/v3/users?name=",
                     "/v3/auth/tokens"):
            assert c.get(path).status_code < 500, path
