"""No user input gets a 500 from the service extensions either: QoS policies and their rules, address groups and
their actions, metering labels and rules, and the qos_policy_id of ports and networks."""
from neutrino.api import addressgroups, metering, qos
from tests.api.test_no_500 import ODD, _check


def test_no_500_for_odd_values_on_the_service_resources(client):
    pol = client.post("/v2.0/qos/policies", json={"policy": {"name": "p"}}).json()["policy"]
    ag = client.post("/v2.0/address-groups", json={"address_group": {"name": "a"}}).json()["address_group"]
    lb = client.post("/v2.0/metering/metering-labels", json={"metering_label": {"name": "m"}}).json()["metering_label"]
    net = client.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
    port = client.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}).json()["port"]
    existing = {"qos/policies": pol, "address-groups": ag, "metering/metering-labels": lb,
                "metering/metering-label-rules": None}
    valid = {"metering_label_id": lb["id"], "remote_ip_prefix": "10.0.0.0/8"}
    for res in (qos.POLICY, addressgroups.ADDRESS_GROUP, *metering.RESOURCES):
        for attr in res.attrs:
            for value in ODD:
                body = {**{k: v for k, v in valid.items() if k in res.attrs}, attr: value}
                _check(client.post(f"/v2.0/{res.path}", json={res.singular: body}), f"POST {res.path} {attr}")
                if existing[res.path]:
                    _check(client.put(f"/v2.0/{res.path}/{existing[res.path]['id']}",
                                      json={res.singular: {attr: value}}), f"PUT {res.path} {attr}")
    for rule_type, attrs in qos.RULE_ATTRS.items():
        collection = f"/v2.0/qos/policies/{pol['id']}/{rule_type}_rules"
        for attr in attrs:
            for value in ODD:
                _check(client.post(collection, json={f"{rule_type}_rule": {attr: value}}), f"{rule_type} {attr}")
        for body in (None, [], {}, {f"{rule_type}_rule": None}):
            _check(client.post(collection, json=body), f"{rule_type} {body}")
            _check(client.put(f"{collection}/nope", json=body), f"{rule_type} {body}")
    for action in ("add_addresses", "remove_addresses"):
        for value in ODD:
            _check(client.put(f"/v2.0/address-groups/{ag['id']}/{action}", json={"addresses": value}), action)
        _check(client.put(f"/v2.0/address-groups/{ag['id']}/{action}", json=[]), action)
    for value in ODD:
        _check(client.put(f"/v2.0/ports/{port['id']}", json={"port": {"qos_policy_id": value}}), "port qos")
        _check(client.put(f"/v2.0/networks/{net['id']}", json={"network": {"qos_policy_id": value}}), "network qos")
    for path in ("/v2.0/qos/rule-types?type=%00", "/v2.0/qos/rule-types/%00", "/v2.0/qos/policies/x/bogus_rules",
                 f"/v2.0/qos/policies/{pol['id']}/dscp_marking_rules?limit=x"):
        _check(client.get(path), path)
