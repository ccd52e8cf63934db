"""QoS through HTTP and the real openstack CLI: policies, rules per type and direction, rule types, the default
policy, port and network association, and Neutron's errors; the agent's view carries a port's rules."""
from __future__ import annotations

import pytest

from tests.api.apifix_l3 import err
from tests.api.test_clients import osc  # noqa: F401 - fixture

POL = "/v2.0/qos/policies"



def policy(client, **kw):
    r = client.post(POL, json={"policy": {"name": "gold", **kw}})
    assert r.status_code == 201, r.text
    return r.json()["policy"]


def rule(client, pid, kind, **kw):
    return client.post(f"{POL}/{pid}/{kind}_rules", json={f"{kind}_rule": kw})


def test_policy_with_rules_per_type_and_direction(client):
    p = policy(client, description="d", shared=True)
    assert p["shared"] is True and p["is_default"] is False and p["rules"] == [] and p["project_id"] == "admin"
    egress = rule(client, p["id"], "bandwidth_limit", max_kbps=10000).json()["bandwidth_limit_rule"]
    assert egress == {"id": egress["id"], "max_kbps": 10000, "max_burst_kbps": 0, "direction": "egress"}
    err(rule(client, p["id"], "bandwidth_limit", max_kbps=5), 409, "QoSRulesConflict")
    ingress = rule(client, p["id"], "bandwidth_limit", max_kbps=20000, max_burst_kbps=800, direction="ingress")
    assert ingress.status_code == 201
    dscp = rule(client, p["id"], "dscp_marking", dscp_mark=26).json()["dscp_marking_rule"]
    err(rule(client, p["id"], "dscp_marking", dscp_mark=10), 409, "QoSRulesConflict")
    assert rule(client, p["id"], "minimum_bandwidth", min_kbps=1000).status_code == 201
    err(rule(client, p["id"], "minimum_bandwidth", min_kbps=50000, direction="ingress"), 409,
        "QoSRuleParameterConflict")                                 # above the ingress maximum of 20000
    shown = client.get(f"{POL}/{p['id']}").json()["policy"]
    assert shown["revision_number"] == 4          # one per rule added
    assert sorted((r["type"], r.get("direction")) for r in shown["rules"]) == [
        ("bandwidth_limit", "egress"), ("bandwidth_limit", "ingress"), ("dscp_marking", None),
        ("minimum_bandwidth", "egress")]
    assert all(r["qos_policy_id"] == p["id"] for r in shown["rules"])
    listed = client.get(f"{POL}/{p['id']}/bandwidth_limit_rules", params={"direction": "ingress"}).json()
    assert [r["max_kbps"] for r in listed["bandwidth_limit_rules"]] == [20000]
    url = f"{POL}/{p['id']}/bandwidth_limit_rules/{egress['id']}"
    r = client.put(url, json={"bandwidth_limit_rule": {"max_kbps": 5000}})
    assert r.json()["bandwidth_limit_rule"]["max_kbps"] == 5000
    err(client.put(url, json={"bandwidth_limit_rule": {"max_kbps": 500}}), 409, "QoSRuleParameterConflict")
    err(client.put(url, json={"bandwidth_limit_rule": {"direction": "ingress"}}), 409, "QoSRulesConflict")
    err(client.get(f"{POL}/{p['id']}/dscp_marking_rules/{egress['id']}"), 404, "QoSDscpMarkingRuleNotFound")
    assert client.delete(f"{POL}/{p['id']}/dscp_marking_rules/{dscp['id']}").status_code == 204
    err(client.delete(f"{POL}/{p['id']}/dscp_marking_rules/{dscp['id']}"), 404)
    assert client.put(f"{POL}/{p['id']}/tags/gold").status_code == 201
    assert client.get(POL, params={"tags": "gold"}).json()["policies"][0]["id"] == p["id"]


@pytest.mark.parametrize("kind,body", [
    ("bandwidth_limit", {}),
    ("bandwidth_limit", {"max_kbps": -1}),
    ("bandwidth_limit", {"max_kbps": "ten"}),
    ("bandwidth_limit", {"max_kbps": 10, "direction": "sideways"}),
    ("bandwidth_limit", {"max_kbps": 10, "dscp_mark": 8}),
    ("dscp_marking", {"dscp_mark": 7}),
    ("dscp_marking", {"dscp_mark": 64}),
    ("dscp_marking", {"dscp_mark": None}),
    ("minimum_bandwidth", {"min_kbps": 2 ** 31}),
])
def test_bad_rules_are_400_and_nothing_stored(client, kind, body):
    p = policy(client)
    err(rule(client, p["id"], kind, **body), 400)
    assert client.get(f"{POL}/{p['id']}").json()["policy"]["rules"] == []


def test_unknown_policy_and_rule_collection(client):
    missing = "0b0c3ad7-3b0f-4a85-9d19-0d4b1b0a3a11"
    err(client.get(f"{POL}/{missing}"), 404, "QosPolicyNotFound")
    err(rule(client, missing, "bandwidth_limit", max_kbps=1), 404, "QosPolicyNotFound")
    p = policy(client)
    err(client.get(f"{POL}/{p['id']}/bogus_rules"), 404)


def test_rule_types_and_details(client, project_client):
    types = client.get("/v2.0/qos/rule-types").json()["rule_types"]
    assert sorted(t["type"] for t in types) == ["bandwidth_limit", "dscp_marking", "minimum_bandwidth"]
    d = client.get("/v2.0/qos/rule-types/dscp_marking").json()["rule_type"]
    params = d["drivers"][0]["supported_parameters"]
    assert params[0]["parameter_name"] == "dscp_mark" and 26 in params[0]["parameter_values"]
    err(client.get("/v2.0/qos/rule-types/packet_rate_limit"), 404)
    err(project_client("pa").get("/v2.0/qos/rule-types/dscp_marking"), 403)
    names = [e["alias"] for e in client.get("/v2.0/extensions").json()["extensions"]]
    assert {"qos", "qos-bw-limit-direction", "qos-default", "qos-rule-type-details"} <= set(names)


def test_projects_use_but_do_not_manage_policies(client, project_client):
    c = project_client("pa")
    err(c.post(POL, json={"policy": {"name": "mine"}}), 403)
    private = policy(client, project_id="pb")
    shared = policy(client, shared=True)
    assert [x["id"] for x in c.get(POL).json()["policies"]] == [shared["id"]]
    err(c.get(f"{POL}/{private['id']}"), 404, "QosPolicyNotFound")
    err(c.delete(f"{POL}/{shared['id']}"), 403)
    err(rule(c, shared["id"], "bandwidth_limit", max_kbps=1), 403)
    for kind, body in (("bandwidth_limit", {"max_kbps": 1}), ("dscp_marking", {"dscp_mark": 8}),
                       ("minimum_bandwidth", {"min_kbps": 1})):
        err(rule(c, "no-such-policy", kind, **body), 403)            # the policy check comes before the lookup
        err(rule(client, "no-such-policy", kind, **body), 404)
    own = policy(client, project_id="pa")
    admin_rule = rule(client, own["id"], "bandwidth_limit", max_kbps=1).json()["bandwidth_limit_rule"]
    err(c.put(f"{POL}/{own['id']}/bandwidth_limit_rules/{admin_rule['id']}",
              json={"bandwidth_limit_rule": {"max_kbps": 2}}), 403)      # its own policy: seen, not managed
    err(c.put(f"{POL}/{private['id']}/bandwidth_limit_rules/{admin_rule['id']}",
              json={"bandwidth_limit_rule": {"max_kbps": 2}}), 404)      # another project's: not seen
    net = c.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
    err(c.post("/v2.0/ports", json={"port": {"network_id": net["id"], "qos_policy_id": private["id"]}}), 404,
        "QosPolicyNotFound")
    port = c.post("/v2.0/ports", json={"port": {"network_id": net["id"], "qos_policy_id": shared["id"]}})
    assert port.status_code == 201 and port.json()["port"]["qos_policy_id"] == shared["id"]
    assert c.get("/v2.0/ports").json()["ports"][0]["qos_policy_id"] == shared["id"]


def test_port_and_network_association_and_in_use(client):
    p, q = policy(client), policy(client, name="silver")
    net = client.post("/v2.0/networks", json={"network": {"name": "n", "qos_policy_id": p["id"]}}).json()["network"]
    assert net["qos_policy_id"] == p["id"]
    port = client.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}).json()["port"]
    assert port["qos_policy_id"] is None and port["qos_network_policy_id"] == p["id"]
    port = client.put(f"/v2.0/ports/{port['id']}", json={"port": {"qos_policy_id": q["id"]}}).json()["port"]
    assert port["qos_policy_id"] == q["id"]
    err(client.delete(f"{POL}/{q['id']}"), 409, "QosPolicyInUse")
    client.put(f"/v2.0/ports/{port['id']}", json={"port": {"qos_policy_id": None}})
    assert client.delete(f"{POL}/{q['id']}").status_code == 204
    err(client.delete(f"{POL}/{p['id']}"), 409, "QosPolicyInUse")
    assert client.put(f"/v2.0/networks/{net['id']}", json={"network": {"qos_policy_id": None}}).json()[
        "network"]["qos_policy_id"] is None
    err(client.put(f"/v2.0/networks/{net['id']}", json={"network": {"qos_policy_id": "x"}}), 400)
    assert client.delete(f"{POL}/{p['id']}").status_code == 204


def test_default_policy_goes_to_new_networks_only_when_none_is_named(client):
    d = policy(client, is_default=True)
    err(client.post(POL, json={"policy": {"name": "other", "is_default": True}}), 409,
        "QoSPolicyDefaultAlreadyExists")
    other = policy(client, name="other")
    err(client.put(f"{POL}/{other['id']}", json={"policy": {"is_default": True}}), 409)
    n1 = client.post("/v2.0/networks", json={"network": {"name": "a"}}).json()["network"]
    n2 = client.post("/v2.0/networks", json={"network": {"name": "b", "qos_policy_id": other["id"]}}).json()["network"]
    n3 = client.post("/v2.0/networks", json={"network": {"name": "c", "qos_policy_id": None}}).json()["network"]
    assert (n1["qos_policy_id"], n2["qos_policy_id"], n3["qos_policy_id"]) == (d["id"], other["id"], None)
    undone = client.put(f"{POL}/{d['id']}", json={"policy": {"is_default": False}}).json()["policy"]
    assert undone["is_default"] is False
    assert client.post("/v2.0/networks", json={"network": {"name": "d"}}).json()["network"]["qos_policy_id"] is None


def test_view_carries_the_effective_rules(client):
    conf = {"l2": "linuxbridge", "firewall": "nftables", "roles": ["l2"]}
    assert client.post("/agent/v1/hosts/h1/report", json={"agent": conf}).status_code == 200
    p = policy(client)
    rule(client, p["id"], "bandwidth_limit", max_kbps=3000)
    net = client.post("/v2.0/networks", json={"network": {"name": "n", "qos_policy_id": p["id"]}}).json()["network"]
    port = client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "binding:host_id": "h1",
                                                     "device_owner": "compute:nova"}}).json()["port"]
    view = client.get("/agent/v1/hosts/h1/view").json()
    mine = next(x for x in view["ports"] if x["id"] == port["id"])
    assert [(r["type"], r["direction"], r["max_kbps"]) for r in mine["qos"]] == [("bandwidth_limit", "egress", 3000)]


def test_cli_qos_policy_and_rules(osc):
    pol = osc("network", "qos", "policy", "create", "--share", "--description", "ten megabits", "bw", "-f", "json")
    assert pol["shared"] is True and pol["name"] == "bw"
    osc("network", "qos", "rule", "create", "--type", "bandwidth-limit", "--max-kbps", "10000",
        "--max-burst-kbits", "8000", "--egress", "bw")
    osc("network", "qos", "rule", "create", "--type", "dscp-marking", "--dscp-mark", "26", "bw")
    rules = osc("network", "qos", "rule", "list", "bw", "-f", "json")
    assert sorted(r["Type"] for r in rules) == ["bandwidth_limit", "dscp_marking"]
    types = osc("network", "qos", "rule", "type", "list", "-f", "json")
    assert {"bandwidth_limit", "dscp_marking", "minimum_bandwidth"} == {t["Type"] for t in types}
    osc("network", "create", "--qos-policy", "bw", "net1")
    assert osc("network", "show", "net1", "-f", "json")["qos_policy_id"] == pol["id"]
    osc("network", "set", "--no-qos-policy", "net1")
    osc("network", "qos", "policy", "delete", "bw")


def test_policy_tags_under_neutrons_tag_resource_name(client):
    """Neutron's tag extension names QoS policies `policies`: /v2.0/policies/{id}/tags is the same tag set."""
    p = policy(client)
    assert client.put(f"/v2.0/policies/{p['id']}/tags", json={"tags": ["a", "b"]}).json() == {"tags": ["a", "b"]}
    assert client.put(f"/v2.0/policies/{p['id']}/tags/c").status_code == 201
    assert sorted(client.get(f"{POL}/{p['id']}").json()["policy"]["tags"]) == ["a", "b", "c"]
    assert client.delete(f"/v2.0/policies/{p['id']}/tags/a").status_code == 204
    err(client.get(f"/v2.0/policies/{p['id']}/tags/a"), 404)
    assert client.get(f"/v2.0/policies/{p['id']}").status_code == 404     # only the tag API lives there
    err(client.get("/v2.0/policies/nope/tags"), 404)


def test_policy_shared_through_rbac(client, project_client):
    """`shared` is the `*` RBAC policy; one project can be granted a policy; a network using it holds its grant."""
    a, b = project_client("pa"), project_client("pb")
    p = policy(client)
    err(a.get(f"{POL}/{p['id']}"), 404, "QosPolicyNotFound")
    grant = client.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "qos_policy", "object_id": p["id"], "action": "access_as_shared", "target_tenant": "pa"}})
    assert grant.status_code == 201, grant.text
    grant = grant.json()["rbac_policy"]
    assert a.get(f"{POL}/{p['id']}").json()["policy"]["shared"] is True          # shared with pa, as pa sees it
    assert client.get(f"{POL}/{p['id']}").json()["policy"]["shared"] is False
    err(b.get(f"{POL}/{p['id']}"), 404)
    net = a.post("/v2.0/networks", json={"network": {"name": "n", "qos_policy_id": p["id"]}})
    assert net.status_code == 201, net.text
    err(client.delete(f"/v2.0/rbac-policies/{grant['id']}"), 409, "RbacPolicyInUse")
    err(client.put(f"/v2.0/rbac-policies/{grant['id']}", json={"rbac_policy": {"target_tenant": "pb"}}), 409)
    assert client.put(f"{POL}/{p['id']}", json={"policy": {"shared": True}}).json()["policy"]["shared"] is True
    wildcard = [r for r in client.get("/v2.0/rbac-policies", params={"object_id": p["id"]}).json()["rbac_policies"]
                if r["target_tenant"] == "*"]
    assert [(r["object_type"], r["action"]) for r in wildcard] == [("qos_policy", "access_as_shared")]
    assert b.get(f"{POL}/{p['id']}").json()["policy"]["shared"] is True
    assert client.delete(f"/v2.0/rbac-policies/{grant['id']}").status_code == 204        # `*` still grants pa
    err(client.put(f"{POL}/{p['id']}", json={"policy": {"shared": False}}), 409)       # pa's network uses it
    assert a.delete(f"/v2.0/networks/{net.json()['network']['id']}").status_code == 204
    own = client.post("/v2.0/networks", json={"network": {"name": "o", "qos_policy_id": p["id"]}}).json()["network"]
    err(client.put(f"{POL}/{p['id']}", json={"policy": {"shared": False}}), 409)       # even the owner's own (Neutron)
    assert client.delete(f"/v2.0/networks/{own['id']}").status_code == 204
    assert client.put(f"{POL}/{p['id']}", json={"policy": {"shared": False}}).json()["policy"]["shared"] is False
    err(b.get(f"{POL}/{p['id']}"), 404)
    assert client.delete(f"{POL}/{p['id']}").status_code == 204
    assert client.get("/v2.0/rbac-policies", params={"object_id": p["id"]}).json()["rbac_policies"] == []
