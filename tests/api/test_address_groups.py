"""Address groups through HTTP and the real openstack CLI, and as the remote side of security group rules: the
agent's view carries the group's addresses under its id, updated by add/remove_addresses."""
from __future__ import annotations

import pytest

from tests.api.apifix_l3 import err
from tests.api.test_clients import osc  # noqa: F401 - fixture

AG = "/v2.0/address-groups"



def group(c, addresses=(), **kw):
    r = c.post(AG, json={"address_group": {"name": "ag", "addresses": list(addresses), **kw}})
    assert r.status_code == 201, r.text
    return r.json()["address_group"]


def change(c, gid, action, addresses):
    return c.put(f"{AG}/{gid}/{action}", json={"addresses": addresses})


def test_create_normalizes_and_add_remove_addresses(project_client):
    c = project_client("pa")
    g = group(c, ["10.0.0.1/32", "192.168.0.9/24", "2001:db8::1/128"], description="d")   # host bits dropped
    assert g["addresses"] == ["10.0.0.1/32", "192.168.0.0/24", "2001:db8::1/128"]
    assert g["project_id"] == "pa" and g["revision_number"] == 0
    g = change(c, g["id"], "add_addresses", ["10.0.0.2", "10.0.0.5/24"]).json()["address_group"]
    assert g["addresses"] == ["10.0.0.0/24", "10.0.0.1/32", "10.0.0.2/32", "192.168.0.0/24", "2001:db8::1/128"]
    assert g["revision_number"] == 1
    err(change(c, g["id"], "add_addresses", ["10.0.0.1/32", "10.9.9.9"]), 400, "AddressesAlreadyExist")
    err(change(c, g["id"], "remove_addresses", ["10.9.9.9"]), 404, "AddressesNotFound")
    g = change(c, g["id"], "remove_addresses", ["10.0.0.1", "2001:db8::1"]).json()["address_group"]
    assert g["addresses"] == ["10.0.0.0/24", "10.0.0.2/32", "192.168.0.0/24"]
    r = c.put(f"{AG}/{g['id']}", json={"address_group": {"name": "renamed"}})
    assert r.json()["address_group"]["name"] == "renamed"
    err(c.put(f"{AG}/{g['id']}", json={"address_group": {"addresses": []}}), 400)
    assert c.get(AG, params={"name": "renamed"}).json()["address_groups"][0]["id"] == g["id"]


@pytest.mark.parametrize("body,status", [
    ({"addresses": ["10.0.0.300"]}, 400),
    ({"addresses": ["10.20.30.40"]}, 400),          # a group's address needs its prefix length (the actions do not)
    ({"addresses": "10.0.0.1"}, 400),
    ({"addresses": [None]}, 400),
    ({"bogus": 1}, 400),
    ({"name": "x" * 256}, 400),
])
def test_bad_groups_are_400_and_nothing_stored(project_client, body, status):
    c = project_client("pa")
    err(c.post(AG, json={"address_group": body}), status)
    assert c.get(AG).json()["address_groups"] == []


def test_bad_actions_and_isolation(project_client):
    a, b = project_client("pa"), project_client("pb")
    g = group(a, ["10.0.0.1/32"])
    err(change(a, g["id"], "add_addresses", ["nope"]), 400)
    err(a.put(f"{AG}/{g['id']}/add_addresses", json={"addresses": ["10.0.0.7"], "extra": 1}), 400)
    err(a.put(f"{AG}/{g['id']}/add_addresses", json={"address_group": {}}), 400)
    err(b.get(f"{AG}/{g['id']}"), 404, "AddressGroupNotFound")
    err(change(b, g["id"], "add_addresses", ["10.0.0.7"]), 404, "AddressGroupNotFound")
    err(b.delete(f"{AG}/{g['id']}"), 404)
    assert b.get(AG).json()["address_groups"] == []
    assert a.get(f"{AG}/{g['id']}").json()["address_group"]["addresses"] == ["10.0.0.1/32"]


def test_security_group_rule_with_remote_address_group(client, project_client):
    c = project_client("pa")
    g = group(c, ["10.0.0.0/24", "10.0.0.7/32"])
    sg = c.post("/v2.0/security-groups", json={"security_group": {"name": "web"}}).json()["security_group"]
    body = {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
            "port_range_max": 22, "remote_address_group_id": g["id"]}
    r = c.post("/v2.0/security-group-rules", json={"security_group_rule": body})
    assert r.status_code == 201 and r.json()["security_group_rule"]["remote_address_group_id"] == g["id"]
    err(c.post("/v2.0/security-group-rules", json={"security_group_rule": body}), 409, "SecurityGroupRuleExists")
    for extra in ({"remote_ip_prefix": "10.1.0.0/16"}, {"remote_group_id": sg["id"]}):
        err(c.post("/v2.0/security-group-rules", json={"security_group_rule": {**body, **extra}}), 400,
            "SecurityGroupMultipleRemoteEntites")
    other = group(project_client("pb"), ["10.0.0.9/32"])
    err(c.post("/v2.0/security-group-rules", json={"security_group_rule": {**body, "remote_address_group_id":
                                                                            other["id"]}}), 404)
    listed = c.get("/v2.0/security-group-rules", params={"remote_address_group_id": g["id"]}).json()
    assert [x["id"] for x in listed["security_group_rules"]] == [r.json()["security_group_rule"]["id"]]
    err(c.delete(f"{AG}/{g['id']}"), 409, "AddressGroupInUse")

    conf = {"l2": "linuxbridge", "firewall": "nftables", "roles": ["l2"]}
    client.post("/agent/v1/hosts/h1/report", json={"agent": conf})
    net = c.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
    c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}})
    client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "binding:host_id": "h1", "project_id": "pa",
                                              "device_owner": "compute:nova", "security_groups": [sg["id"]]}})
    view = client.get("/agent/v1/hosts/h1/view").json()
    assert view["remote_groups"][g["id"]] == {"IPv4": ["10.0.0.0/24"], "IPv6": []}      # overlaps merged
    assert any(x.get("remote_address_group_id") == g["id"] for x in view["security_groups"][sg["id"]]["rules"])
    change(c, g["id"], "remove_addresses", ["10.0.0.0/24"])
    change(c, g["id"], "add_addresses", ["2001:db8::/64"])
    view = client.get("/agent/v1/hosts/h1/view", params={"since": view["revision"]}).json()
    assert view["remote_groups"][g["id"]] == {"IPv4": ["10.0.0.7/32"], "IPv6": ["2001:db8::/64"]}
    c.delete(f"/v2.0/security-group-rules/{r.json()['security_group_rule']['id']}")
    assert c.delete(f"{AG}/{g['id']}").status_code == 204


def test_cli_address_group(osc):
    g = osc("address", "group", "create", "--address", "10.0.0.1", "--address", "10.0.1.0/24", "ag1", "-f", "json")
    assert sorted(g["addresses"]) == ["10.0.0.1/32", "10.0.1.0/24"]
    osc("address", "group", "set", "--address", "10.0.2.0/24", "ag1")
    osc("address", "group", "unset", "--address", "10.0.0.1", "ag1")
    assert sorted(osc("address", "group", "show", "ag1", "-f", "json")["addresses"]) == ["10.0.1.0/24", "10.0.2.0/24"]
    osc("security", "group", "create", "web")
    osc("security", "group", "rule", "create", "--remote-address-group", "ag1", "--protocol", "tcp",
        "--dst-port", "22", "web")
    osc("address", "group", "list")
