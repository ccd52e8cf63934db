"""RBAC policies through HTTP: sharing networks, security groups, subnet pools and address scopes with one project
or all; who may create them; `shared`/`router:external` as views over them; 409 while a project depends on one."""
import pytest

from tests.api.test_networks import err, mknet, mksub


@pytest.fixture
def abc(project_client):
    return project_client("pa"), project_client("pb"), project_client("pc")


def share(c, obj_id, target, object_type="network", action="access_as_shared", code=201):
    r = c.post("/v2.0/rbac-policies", json={"rbac_policy": {"object_type": object_type, "object_id": obj_id,
                                                             "action": action, "target_tenant": target}})
    assert r.status_code == code, r.text
    return r.json().get("rbac_policy") if code == 201 else r


def test_network_shared_with_one_project(abc):
    a, b, c = abc
    net = mknet(a)
    sub = mksub(a, net["id"])
    pol = share(a, net["id"], "pb")
    assert pol["target_tenant"] == "pb" and pol["project_id"] == "pa" and pol["tenant_id"] == "pa"
    assert pol["object_type"] == "network" and pol["action"] == "access_as_shared"
    # B sees it (as shared to B), may plug a port into it; C sees nothing of it
    seen = b.get(f"/v2.0/networks/{net['id']}").json()["network"]
    assert seen["shared"] is True and seen["subnets"] == [sub["id"]]
    assert net["id"] in [n["id"] for n in b.get("/v2.0/networks?shared=True").json()["networks"]]
    assert b.get(f"/v2.0/subnets/{sub['id']}").status_code == 200
    port = b.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
    assert port.status_code == 201 and port.json()["port"]["project_id"] == "pb"
    err(c.get(f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")
    err(c.get(f"/v2.0/subnets/{sub['id']}"), 404, "SubnetNotFound")
    assert net["id"] not in [n["id"] for n in c.get("/v2.0/networks").json()["networks"]]
    err(c.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 404, "NetworkNotFound")
    # to its owner a network shared with one project is not "shared"; B may not change it
    assert a.get(f"/v2.0/networks/{net['id']}").json()["network"]["shared"] is False
    err(b.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "mine"}}), 403)
    # policies belong to their creator: B and C cannot see or remove it
    err(b.get(f"/v2.0/rbac-policies/{pol['id']}"), 404, "RbacPolicyNotFound")
    assert b.get("/v2.0/rbac-policies").json()["rbac_policies"] == []
    err(c.delete(f"/v2.0/rbac-policies/{pol['id']}"), 404)
    # the network's revision moved with the subnet, then with the policy
    assert a.get(f"/v2.0/networks/{net['id']}").json()["network"]["revision_number"] == 2


def test_policy_in_use_cannot_go(abc, client):
    a, b, c = abc
    net = mknet(a)
    mksub(a, net["id"])
    pol = share(a, net["id"], "pb")
    b.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
    err(a.delete(f"/v2.0/rbac-policies/{pol['id']}"), 409, "RbacPolicyInUse")
    err(a.put(f"/v2.0/rbac-policies/{pol['id']}", json={"rbac_policy": {"target_tenant": "pc"}}), 409,
        "RbacPolicyInUse")
    # a wildcard policy covers B too: then the targeted one may go, but the wildcard may not
    star = share(client, net["id"], "*")
    assert a.delete(f"/v2.0/rbac-policies/{pol['id']}").status_code == 204
    err(client.delete(f"/v2.0/rbac-policies/{star['id']}"), 409, "RbacPolicyInUse")
    err(client.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": False}}), 409,
        "InvalidSharedSetting")
    assert c.get(f"/v2.0/networks/{net['id']}").json()["network"]["shared"] is True
    # once B's port is gone, sharing can end
    port = b.get(f"/v2.0/ports?network_id={net['id']}").json()["ports"][0]
    assert b.delete(f"/v2.0/ports/{port['id']}").status_code == 204
    assert client.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": False}}).status_code == 200
    assert client.get(f"/v2.0/rbac-policies?object_id={net['id']}").json()["rbac_policies"] == []
    err(c.get(f"/v2.0/networks/{net['id']}"), 404)


def test_create_negative_cases(abc, client):
    a, b, _ = abc
    net = mknet(a)
    body = {"object_type": "network", "object_id": net["id"], "action": "access_as_shared", "target_tenant": "pb"}

    def post(c, **change):
        return c.post("/v2.0/rbac-policies", json={"rbac_policy": {**body, **change}})
    err(post(a, target_tenant="*"), 403)                                  # wildcards are for admins
    err(post(b), 400, "InvalidInput")                                     # not B's network
    err(post(a, object_id="0b6b3c2e-4f47-4c1b-9a9c-000000000000"), 400, "InvalidInput")
    err(post(a, object_id="nope"), 400)
    err(post(a, object_type="router"), 400)
    err(post(a, action="access_as_owner"), 400)
    err(post(a, target_tenant=None), 400)
    err(post(a, target_tenant="x" * 256), 400)
    err(post(a, colour="red"), 400)
    err(a.post("/v2.0/rbac-policies", json={"rbac_policy": {k: v for k, v in body.items()
                                                            if k != "target_tenant"}}), 400)
    sg = a.post("/v2.0/security-groups", json={"security_group": {"name": "g"}}).json()["security_group"]
    err(post(a, object_type="security_group", object_id=sg["id"], action="access_as_external"), 400,
        "InvalidActionForType")
    assert post(a).status_code == 201
    err(post(a), 409, "DuplicateRbacPolicy")
    pol = a.get("/v2.0/rbac-policies").json()["rbac_policies"][0]
    err(a.put(f"/v2.0/rbac-policies/{pol['id']}", json={"rbac_policy": {"target_tenant": "*"}}), 403)
    err(a.put(f"/v2.0/rbac-policies/{pol['id']}", json={"rbac_policy": {"object_id": sg["id"]}}), 400)
    moved = a.put(f"/v2.0/rbac-policies/{pol['id']}", json={"rbac_policy": {"target_tenant": "pc"}})
    assert moved.status_code == 200 and moved.json()["rbac_policy"]["target_tenant"] == "pc"
    # an admin may share anybody's network, with everybody; the network now shows shared to all
    assert share(client, net["id"], "*")["project_id"] == "admin"
    assert b.get(f"/v2.0/networks/{net['id']}").json()["network"]["shared"] is True
    listed = client.get("/v2.0/rbac-policies?target_tenant=*&object_type=network").json()["rbac_policies"]
    assert [p["object_id"] for p in listed] == [net["id"]]
    err(client.get("/v2.0/rbac-policies?colour=red"), 400)


def test_rbac_quota_and_cascade(abc, client):
    a, _, _ = abc
    client.put("/v2.0/quotas/pa", json={"quota": {"rbac_policy": 2}})
    net = mknet(a)
    share(a, net["id"], "p1")
    share(a, net["id"], "p2")
    err(share(a, net["id"], "p3", code=409), 409, "OverQuota")
    assert a.delete(f"/v2.0/networks/{net['id']}").status_code == 204
    assert client.get("/v2.0/rbac-policies").json()["rbac_policies"] == []


def test_shared_flag_creates_the_wildcard_policy(client, abc):
    _, b, _ = abc
    net = mknet(client, shared=True)
    pols = client.get(f"/v2.0/rbac-policies?object_id={net['id']}").json()["rbac_policies"]
    assert [(p["action"], p["target_tenant"]) for p in pols] == [("access_as_shared", "*")]
    assert b.get(f"/v2.0/networks/{net['id']}").json()["network"]["shared"] is True
    assert client.delete(f"/v2.0/rbac-policies/{pols[0]['id']}").status_code == 204
    assert client.get(f"/v2.0/networks/{net['id']}").json()["network"]["shared"] is False
    err(b.get(f"/v2.0/networks/{net['id']}"), 404)


def test_external_access_to_one_project(client, abc):
    a, b, c = abc
    ext = mknet(client, **{"provider:network_type": "flat", "provider:physical_network": "public"})
    mksub(client, ext["id"], "172.24.4.0/24", enable_dhcp=False)
    pol = share(client, ext["id"], "pb", action="access_as_external")
    assert client.get(f"/v2.0/networks/{ext['id']}").json()["network"]["router:external"] is True
    seen = b.get(f"/v2.0/networks/{ext['id']}").json()["network"]
    assert seen["router:external"] is True and seen["shared"] is False
    err(b.post("/v2.0/ports", json={"port": {"network_id": ext["id"]}}), 403)   # external, not shared
    r = b.post("/v2.0/routers", json={"router": {"name": "r", "external_gateway_info": {"network_id": ext["id"]}}})
    assert r.status_code == 201, r.text
    err(c.get(f"/v2.0/networks/{ext['id']}"), 404)
    err(c.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"]}}), 404)
    err(a.post("/v2.0/routers", json={"router": {"external_gateway_info": {"network_id": ext["id"]}}}), 404)
    err(client.delete(f"/v2.0/rbac-policies/{pol['id']}"), 409, "RbacPolicyInUse")
    err(client.put(f"/v2.0/networks/{ext['id']}", json={"network": {"router:external": False}}), 409,
        "ExternalNetworkInUse")
    # router:external=True is the wildcard access_as_external policy
    other = mknet(client, **{"router:external": True})
    pols = client.get(f"/v2.0/rbac-policies?object_id={other['id']}").json()["rbac_policies"]
    assert [(p["action"], p["target_tenant"]) for p in pols] == [("access_as_external", "*")]
    assert client.put(f"/v2.0/networks/{other['id']}", json={"network": {"router:external": False}}) \
        .status_code == 200
    assert client.get(f"/v2.0/rbac-policies?object_id={other['id']}").json()["rbac_policies"] == []
    # and an internal network made external by a policy is internal again once its last external policy goes
    pol = share(client, other["id"], "pc", action="access_as_external")
    assert client.get(f"/v2.0/networks/{other['id']}").json()["network"]["router:external"] is True
    assert client.delete(f"/v2.0/rbac-policies/{pol['id']}").status_code == 204
    assert client.get(f"/v2.0/networks/{other['id']}").json()["network"]["router:external"] is False


def test_security_group_shared_with_one_project(abc):
    a, b, c = abc
    sg = a.post("/v2.0/security-groups", json={"security_group": {"name": "web"}}).json()["security_group"]
    b_net = mknet(b)
    mksub(b, b_net["id"])
    err(b.post("/v2.0/ports", json={"port": {"network_id": b_net["id"], "security_groups": [sg["id"]]}}), 404,
        "SecurityGroupNotFound")
    pol = share(a, sg["id"], "pb", object_type="security_group")
    seen = b.get(f"/v2.0/security-groups/{sg['id']}").json()["security_group"]
    assert seen["shared"] is True and len(seen["security_group_rules"]) == 2
    assert a.get(f"/v2.0/security-groups/{sg['id']}").json()["security_group"]["shared"] is False
    port = b.post("/v2.0/ports", json={"port": {"network_id": b_net["id"], "security_groups": [sg["id"]]}})
    assert port.status_code == 201 and port.json()["port"]["security_groups"] == [sg["id"]]
    b_sg = b.post("/v2.0/security-groups", json={"security_group": {"name": "b"}}).json()["security_group"]
    remote = b.post("/v2.0/security-group-rules", json={"security_group_rule": {
        "security_group_id": b_sg["id"], "direction": "ingress", "remote_group_id": sg["id"]}})
    assert remote.status_code == 201, remote.text
    # shared to use, not to edit
    err(b.post("/v2.0/security-group-rules", json={"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress"}}), 403)
    rule = seen["security_group_rules"][0]
    err(b.delete(f"/v2.0/security-group-rules/{rule['id']}"), 403)
    err(b.put(f"/v2.0/security-groups/{sg['id']}", json={"security_group": {"name": "x"}}), 403)
    err(c.get(f"/v2.0/security-groups/{sg['id']}"), 404)
    err(c.get(f"/v2.0/security-group-rules/{rule['id']}"), 404)
    err(a.delete(f"/v2.0/rbac-policies/{pol['id']}"), 409, "RbacPolicyInUse")


def test_subnetpool_and_address_scope_shared(abc):
    a, b, c = abc
    scope = a.post("/v2.0/address-scopes", json={"address_scope": {"name": "s", "ip_version": 4}}) \
        .json()["address_scope"]
    pool = a.post("/v2.0/subnetpools", json={"subnetpool": {"name": "p", "prefixes": ["10.50.0.0/16"],
                                                             "default_prefixlen": 24}}).json()["subnetpool"]
    b_net = mknet(b)
    sub = {"subnet": {"network_id": b_net["id"], "ip_version": 4, "subnetpool_id": pool["id"]}}
    err(b.post("/v2.0/subnets", json=sub), 404, "SubnetPoolNotFound")
    pool_pol = share(a, pool["id"], "pb", object_type="subnetpool")
    assert b.get(f"/v2.0/subnetpools/{pool['id']}").json()["subnetpool"]["shared"] is True
    made = b.post("/v2.0/subnets", json=sub)
    assert made.status_code == 201 and made.json()["subnet"]["cidr"] == "10.50.0.0/24"
    err(c.get(f"/v2.0/subnetpools/{pool['id']}"), 404)
    err(a.delete(f"/v2.0/rbac-policies/{pool_pol['id']}"), 409, "RbacPolicyInUse")
    # B may put its own pool into A's scope only once the scope is shared with B
    body = {"subnetpool": {"name": "bp", "prefixes": ["10.60.0.0/16"], "address_scope_id": scope["id"]}}
    err(b.post("/v2.0/subnetpools", json=body), 404, "AddressScopeNotFound")
    scope_pol = share(a, scope["id"], "pb", object_type="address_scope")
    assert b.get(f"/v2.0/address-scopes/{scope['id']}").json()["address_scope"]["shared"] is True
    assert b.post("/v2.0/subnetpools", json=body).status_code == 201
    err(c.get(f"/v2.0/address-scopes/{scope['id']}"), 404)
    err(a.delete(f"/v2.0/rbac-policies/{scope_pol['id']}"), 409, "RbacPolicyInUse")
    err(b.delete(f"/v2.0/address-scopes/{scope['id']}"), 403)
