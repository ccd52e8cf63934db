"""The page's topology builder (ui/static/topology.js, pure) run by node on API-shaped data."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

import neutrino.ui

NODE = shutil.which("node")
SCRIPT = os.path.join(os.path.dirname(neutrino.ui.__file__), "static", "topology.js")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

DATA = {
    "networks": [{"id": "pub", "name": "public", "status": "ACTIVE", "router:external": True},
                 {"id": "priv", "name": "private", "status": "ACTIVE", "router:external": False}],
    "subnets": [{"id": "s1", "name": "public-subnet", "network_id": "pub", "cidr": "172.24.4.0/24"},
                {"id": "s2", "name": "private-subnet", "network_id": "priv", "cidr": "10.0.0.0/24"}],
    "routers": [{"id": "r1", "name": "router1", "status": "ACTIVE", "external_gateway_info": {
        "network_id": "pub", "external_fixed_ips": [{"ip_address": "172.24.4.2"}]}}],
    "ports": [
        {"id": "p-if", "device_owner": "network:router_interface", "device_id": "r1", "network_id": "priv",
         "fixed_ips": [{"ip_address": "10.0.0.1"}], "binding:host_id": "host1"},
        {"id": "p-gw", "device_owner": "network:router_gateway", "device_id": "r1", "network_id": "pub",
         "fixed_ips": [{"ip_address": "172.24.4.2"}]},
        {"id": "p-vm1", "name": "vm1", "device_owner": "compute:nova", "network_id": "priv", "status": "ACTIVE",
         "fixed_ips": [{"ip_address": "10.0.0.3"}], "security_groups": ["sg1"], "binding:host_id": "host1"},
        {"id": "p-vm2", "name": "vm2", "device_owner": "compute:nova", "network_id": "gone", "status": "DOWN",
         "fixed_ips": [], "security_groups": ["sg-hidden"]},
    ],
    "floatingips": [{"id": "f1", "port_id": "p-vm1", "floating_ip_address": "172.24.4.3"}],
    "security_groups": [{"id": "sg1", "name": "default", "security_group_rules": [
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
         "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}]}],
    "agents": [{"host": "host1", "agent_type": "Open vSwitch agent", "alive": True},
               {"host": "host1", "agent_type": "L3 agent", "alive": False}],
}


def build(data: dict) -> dict:
    code = f"{open(SCRIPT).read()}\nprocess.stdout.write(JSON.stringify(Topology.build({json.dumps(data)})));"
    out = subprocess.run([NODE, "-e", code], capture_output=True, text=True, check=True, timeout=30).stdout
    return json.loads(out)


def test_the_seed_world_as_nodes_and_edges():
    got = build(DATA)
    nodes = {e["data"]["id"]: e["data"] for e in got["elements"] if e["group"] == "nodes"}
    edges = {(e["data"]["source"], e["data"]["target"]): e["data"] for e in got["elements"] if e["group"] == "edges"}
    assert nodes["pub"]["label"] == "public\npublic-subnet 172.24.4.0/24" and nodes["pub"]["external"] is True
    assert nodes["r1"]["label"] == "router1\ngw 172.24.4.2"
    assert nodes["p-vm1"]["label"] == "vm1\n10.0.0.3\nFIP 172.24.4.3" and nodes["p-vm1"]["kind"] == "instance"
    assert nodes["sg:sg1"]["label"] == "SG default\nin IPv4 tcp/22 from 0.0.0.0/0"
    assert nodes["host:host1"]["status"] == "DOWN"           # one of its agents is dead
    assert "p-if" not in nodes and "p-gw" not in nodes      # router ports are edges, not boxes
    assert edges[("r1", "pub")]["kind"] == "gateway" and edges[("r1", "pub")]["label"] == "172.24.4.2"
    assert edges[("r1", "priv")]["label"] == "10.0.0.1"
    assert {("p-vm1", "priv"), ("p-vm1", "sg:sg1"), ("p-vm1", "host:host1"), ("r1", "host:host1")} <= set(edges)


def test_a_host_whose_agent_lags_or_fails_is_marked():
    seen = {"host1": {"lag": 2, "drift": 1, "errors": 0, "ports": {"up": 1, "down": 0}}}
    alive = [{**a, "alive": True} for a in DATA["agents"]]
    host = next(e["data"] for e in build({**DATA, "agents": alive, "hosts": seen})["elements"]
                if e["data"]["id"] == "host:host1")
    assert host["status"] == "BUILD" and "view lag 2, drift repaired 1×, errors 0" in host["label"]
    caught_up = {"host1": {**seen["host1"], "lag": 0}}
    host = next(e["data"] for e in build({**DATA, "agents": alive, "hosts": caught_up})["elements"]
                if e["data"]["id"] == "host:host1")
    assert host["status"] == "ACTIVE"


def test_edges_to_what_the_user_cannot_see_are_left_out():
    got = build({**DATA, "agents": []})
    ids = {e["data"]["id"] for e in got["elements"] if e["group"] == "nodes"}
    for e in got["elements"]:
        if e["group"] == "edges":
            assert e["data"]["source"] in ids and e["data"]["target"] in ids
    assert not [i for i in ids if i.startswith("host:")]
    assert "DOWN" in next(i["status"] for i in got["items"] if i["name"] == "vm2")
