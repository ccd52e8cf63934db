"""The real clients, unmodified: python-openstackclient (auth none and admin_token) and openstacksdk."""
import json
import os
import subprocess
import sys

import openstack
import pytest

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")


@pytest.fixture
def osc(live_server):
    def run(*args, token=None):
        auth = ["--os-auth-type", "admin_token", "--os-token", token] if token else ["--os-auth-type", "none"]
        cmd = [OPENSTACK, *auth, "--os-endpoint", live_server, *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"{' '.join(args)}: {out.stderr}"
        return json.loads(out.stdout) if "-f" in args and out.stdout.strip() else out.stdout
    return run


def test_cli_network_subnet_port_lifecycle(osc):
    net = osc("network", "create", "--tag", "red", "net1", "-f", "json")
    assert net["name"] == "net1" and net["tags"] == ["red"]
    sub = osc("subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/24", "--dns-nameserver",
              "10.0.0.53", "--allocation-pool", "start=10.0.0.10,end=10.0.0.20", "sub1", "-f", "json")
    assert sub["cidr"] == "10.0.0.0/24" and sub["allocation_pools"] == [{"start": "10.0.0.10", "end": "10.0.0.20"}]
    port = osc("port", "create", "--network", "net1", "--fixed-ip", "subnet=sub1,ip-address=10.0.0.15",
               "--tag", "blue", "p1", "-f", "json")
    assert port["fixed_ips"][0]["ip_address"] == "10.0.0.15" and port["tags"] == ["blue"]
    listed = osc("port", "list", "--long", "-f", "json")
    assert [p["Name"] for p in listed] == ["p1"]
    osc("network", "set", "--name", "net2", "--tag", "green", "net1")
    shown = osc("network", "show", "net2", "-f", "json")
    assert shown["tags"] == ["green", "red"] and shown["subnets"] == [sub["id"]]
    assert [n["Name"] for n in osc("network", "list", "--tag", "green", "-f", "json")] == ["net2"]
    osc("subnet", "show", "sub1", "-f", "json")
    osc("subnet", "list", "--long", "-f", "json")
    osc("port", "delete", "p1")
    osc("subnet", "delete", "sub1")
    osc("network", "delete", "net2")
    assert osc("network", "list", "-f", "json") == []


def test_cli_provider_network_with_token(osc):
    net = osc("network", "create", "--provider-network-type", "vlan", "--provider-physical-network", "physnet1",
              "--provider-segment", "100", "pnet", "-f", "json", token="admintoken")
    assert net["provider:segmentation_id"] == 100 and net["provider:network_type"] == "vlan"


def test_cli_reports_neutron_errors(live_server):
    out = subprocess.run([OPENSTACK, "--os-auth-type", "none", "--os-endpoint", live_server, "network", "show",
                          "nosuchnet"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "nosuchnet" in out.stderr


def test_sdk(live_server):
    conn = openstack.connect(auth_type="none", auth={"endpoint": live_server})
    net = conn.network.create_network(name="sdknet")
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.1.0.0/24", ip_version=4, name="sdksub")
    port = conn.network.create_port(network_id=net.id, name="sdkport")
    assert port.fixed_ips[0]["subnet_id"] == sub.id
    conn.network.set_tags(net, ["a", "b"])
    assert sorted(conn.network.get_network(net.id).tags) == ["a", "b"]
    assert conn.network.find_network("sdknet").id == net.id
    assert [p.id for p in conn.network.ports(network_id=net.id)] == [port.id]
    conn.network.update_port(port, name="renamed")
    assert conn.network.get_port(port.id).name == "renamed"
    conn.network.delete_port(port)
    conn.network.delete_subnet(sub)
    conn.network.delete_network(net)
    assert list(conn.network.networks()) == []
