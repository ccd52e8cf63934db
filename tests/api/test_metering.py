"""Metering labels and rules through HTTP and the real openstack CLI; the view gives a router its project's and the
shared labels; counters an agent reports are kept and readable (core.metering.counters, /agent/v1/metering)."""
from __future__ import annotations

import pytest

from neutrino.core import metering
from tests.api.apifix_l3 import err
from tests.api.test_clients import osc  # noqa: F401 - fixture

LABELS = "/v2.0/metering/metering-labels"
RULES = "/v2.0/metering/metering-label-rules"



def label(client, **kw):
    r = client.post(LABELS, json={"metering_label": {"name": "l", **kw}})
    assert r.status_code == 201, r.text
    return r.json()["metering_label"]


def add_rule(client, lid, **kw):
    return client.post(RULES, json={"metering_label_rule": {"metering_label_id": lid, **kw}})


def test_labels_and_rules_with_neutrons_checks(client):
    lb = label(client, description="outbound", project_id="pa")
    assert lb["shared"] is False and lb["project_id"] == "pa"
    r = add_rule(client, lb["id"], direction="egress", remote_ip_prefix="0.0.0.0/0").json()["metering_label_rule"]
    assert r == {"id": r["id"], "metering_label_id": lb["id"], "direction": "egress", "remote_ip_prefix": "0.0.0.0/0",
                 "source_ip_prefix": None, "destination_ip_prefix": None, "excluded": False, "project_id": "pa",
                 "tenant_id": "pa"}
    err(add_rule(client, lb["id"], direction="egress", remote_ip_prefix="10.0.0.0/8"), 409,
        "MeteringLabelRuleOverlaps")
    assert add_rule(client, lb["id"], direction="egress", remote_ip_prefix="10.0.0.0/8", excluded=True).status_code \
        == 201
    assert add_rule(client, lb["id"], direction="ingress", remote_ip_prefix="10.0.0.0/8").status_code == 201
    assert add_rule(client, lb["id"], source_ip_prefix="10.0.0.0/24", destination_ip_prefix="0.0.0.0/0").json()[
        "metering_label_rule"]["direction"] == "ingress"
    err(add_rule(client, lb["id"], remote_ip_prefix="10.2.0.0/16", source_ip_prefix="10.0.0.0/24"), 400,
        "MeteringLabelRuleInvalidPrefixes")
    err(add_rule(client, lb["id"]), 400, "MeteringLabelRuleInvalidPrefixes")
    listed = client.get(RULES, params={"metering_label_id": lb["id"], "direction": "egress"}).json()
    assert len(listed["metering_label_rules"]) == 2
    err(client.put(f"{RULES}/{r['id']}", json={"metering_label_rule": {"excluded": True}}), 400)
    assert client.delete(f"{RULES}/{r['id']}").status_code == 204
    err(client.get(f"{RULES}/{r['id']}"), 404, "MeteringLabelRuleNotFound")
    assert client.delete(f"{LABELS}/{lb['id']}").status_code == 204
    assert client.get(RULES).json()["metering_label_rules"] == []


@pytest.mark.parametrize("body", [
    {"direction": "sideways", "remote_ip_prefix": "10.0.0.0/8"},
    {"remote_ip_prefix": "10.0.0.1/8"},
    {"remote_ip_prefix": "banana"},
    {"source_ip_prefix": "10.0.0.0/24", "excluded": "perhaps"},
    {"metering_label_id": "not-a-uuid", "remote_ip_prefix": "10.0.0.0/8"},
])
def test_bad_rules_are_400(client, body):
    lb = label(client)
    err(client.post(RULES, json={"metering_label_rule": {"metering_label_id": lb["id"], **body}}), 400)
    assert client.get(RULES).json()["metering_label_rules"] == []


def test_admin_only_and_visibility(client, project_client):
    c = project_client("pa")
    err(c.post(LABELS, json={"metering_label": {"name": "mine"}}), 403)
    mine, theirs = label(client, project_id="pa"), label(client, project_id="pb")
    assert [x["id"] for x in c.get(LABELS).json()["metering_labels"]] == [mine["id"]]
    err(c.get(f"{LABELS}/{theirs['id']}"), 404, "MeteringLabelNotFound")
    err(add_rule(c, mine["id"], remote_ip_prefix="10.0.0.0/8"), 403)
    err(add_rule(client, "0b0c3ad7-3b0f-4a85-9d19-0d4b1b0a3a11", remote_ip_prefix="10.0.0.0/8"), 404)
    err(c.delete(f"{LABELS}/{mine['id']}"), 403)


def test_routers_get_their_labels_and_counters_are_kept(app, client):
    conf = {"l2": "linuxbridge", "firewall": "nftables", "roles": ["l2", "l3"]}
    client.post("/agent/v1/hosts/h1/report", json={"agent": conf})
    rt = client.post("/v2.0/routers", json={"router": {"name": "r", "project_id": "pa"}}).json()["router"]
    own, shared, foreign = label(client, project_id="pa"), label(client, shared=True), label(client, project_id="pb")
    add_rule(client, own["id"], direction="egress", remote_ip_prefix="0.0.0.0/0")
    view = client.get("/agent/v1/hosts/h1/view").json()
    labels = {x["id"]: x for x in next(r for r in view["routers"] if r["id"] == rt["id"])["metering_labels"]}
    assert set(labels) == {own["id"], shared["id"]}
    assert [x["direction"] for x in labels[own["id"]]["rules"]] == ["egress"]
    counted = {rt["id"]: {own["id"]: {"packets": 4, "bytes": 4112}, foreign["id"]: {"packets": 1, "bytes": 1},
                          "0b0c3ad7-3b0f-4a85-9d19-0d4b1b0a3a11": {"packets": 1, "bytes": 1}},
               "0b0c3ad7-3b0f-4a85-9d19-0d4b1b0a3a12": {own["id"]: {"packets": 9, "bytes": 9}}}
    assert client.post("/agent/v1/hosts/h1/report", json={"agent": conf, "metering": counted}).status_code == 200
    rows = app.state.db.run(metering.counters)
    assert [(r["label_id"], r["router_id"], r["packets"], r["bytes"], r["host"]) for r in rows if
            r["label_id"] == own["id"]] == [(own["id"], rt["id"], 4, 4112, "h1")]
    assert {r["label_id"] for r in rows} == {own["id"], foreign["id"]}       # unknown labels and routers dropped
    assert client.post("/agent/v1/hosts/h2/report", json={"agent": conf, "metering": counted}).status_code == 200
    assert client.get("/agent/v1/metering").json()["metering"] == rows      # routers of other hosts are not theirs
    client.delete(f"{LABELS}/{foreign['id']}")
    assert [r["label_id"] for r in app.state.db.run(metering.counters)] == [own["id"]]


def test_cli_network_meter(osc):
    m = osc("network", "meter", "create", "--description", "all out", "--share", "out", "-f", "json")
    assert m["shared"] is True
    osc("network", "meter", "rule", "create", "--egress", "--remote-ip-prefix", "0.0.0.0/0", "out")
    osc("network", "meter", "rule", "create", "--egress", "--exclude", "--remote-ip-prefix", "10.0.0.0/8", "out")
    rules = osc("network", "meter", "rule", "list", "-f", "json")      # its Excluded column is always blank
    shown = [osc("network", "meter", "rule", "show", r["ID"], "-f", "json") for r in rules]
    assert sorted((r["is_excluded"], r["remote_ip_prefix"]) for r in shown) == [(False, "0.0.0.0/0"),
                                                                               (True, "10.0.0.0/8")]
    assert [x["Name"] for x in osc("network", "meter", "list", "-f", "json")] == ["out"]
    osc("network", "meter", "delete", "out")
