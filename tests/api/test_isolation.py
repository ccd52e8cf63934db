"""Multi-tenancy through the real SDK and Keystone password auth: project B cannot see, change, delete or attach
to project A's resources (404), except what sharing and external networks allow; a reader cannot write (403);
wrong password, revoked and expired tokens are 401. Every case is counted; the goal is 0 leaks."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import httpx
import openstack
import pytest
import uvicorn
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as exc

from neutrino.api.app import create_app
from neutrino.config import Settings
from neutrino.db.engine import Database
from neutrino.identity import tokens
from neutrino.identity.bootstrap import bootstrap

PASSWORD = "secret-pw"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """The whole server with auth=keystone on one loopback port (catalog URLs point at it)."""
    tmp = tmp_path_factory.mktemp("iso")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(state_dir=str(tmp), auth="keystone", admin_password=PASSWORD, port=port, identity_port=port)
    db = Database(f"sqlite:///{tmp}/db.sqlite")
    db.setup()
    bootstrap(db, settings)
    app = create_app(settings, db)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    admin = connect(url, "admin", "admin")
    for project, user, role in (("pa", "ua", "member"), ("pb", "ub", "member"), ("pa", "ra", "reader"),
                                ("pc", "uc", "member")):
        proj = admin.identity.find_project(project) or admin.identity.create_project(name=project,
                                                                                      domain_id="default")
        usr = admin.identity.create_user(name=user, password=PASSWORD, domain_id="default",
                                         default_project_id=proj.id)
        admin.identity.assign_project_role_to_user(proj, usr, admin.identity.find_role(role))
    yield {"url": url, "db": db, "admin": admin}
    server.should_exit = True
    thread.join(5)


def connect(url: str, user: str, project: str, password: str = PASSWORD):
    return openstack.connect(auth_url=f"{url}/v3", username=user, password=password, project_name=project,
                             user_domain_name="Default", project_domain_name="Default", region_name="RegionOne")


class Counter:
    def __init__(self):
        self.cases = 0

    def expect(self, error, fn, *args, **kw):
        self.cases += 1
        with pytest.raises(error):
            fn(*args, **kw)


@pytest.fixture(scope="module")
def world(cloud):
    url, admin = cloud["url"], cloud["admin"]
    a, b, reader = connect(url, "ua", "pa"), connect(url, "ub", "pb"), connect(url, "ra", "pa")
    shared = admin.network.create_network(name="shared", is_shared=True)
    admin.network.create_subnet(network_id=shared.id, cidr="10.9.0.0/24", ip_version=4)
    ext = admin.network.create_network(name="public", is_router_external=True, provider_network_type="flat",
                                       provider_physical_network="public")
    admin.network.create_subnet(network_id=ext.id, cidr="172.24.4.0/24", ip_version=4, is_dhcp_enabled=False)
    net = a.network.create_network(name="a-net")
    sub = a.network.create_subnet(network_id=net.id, cidr="10.0.0.0/24", ip_version=4)
    port = a.network.create_port(network_id=net.id, name="a-port")
    sg = a.network.create_security_group(name="a-sg")
    rule = a.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="tcp",
                                                port_range_min=22, port_range_max=22)
    router = a.network.create_router(name="a-router", external_gateway_info={"network_id": ext.id})
    a.network.add_interface_to_router(router, subnet=sub.id)
    fip = a.network.create_ip(floating_network_id=ext.id, port_id=port.id)
    pool = a.network.create_subnet_pool(name="a-pool", prefixes=["10.100.0.0/16"], default_prefix_length=24)
    b_net = b.network.create_network(name="b-net")
    b.network.create_subnet(network_id=b_net.id, cidr="10.1.0.0/24", ip_version=4)
    b_router = b.network.create_router(name="b-router", external_gateway_info={"network_id": ext.id})
    return {"a": a, "b": b, "reader": reader, "net": net, "sub": sub, "port": port, "sg": sg, "rule": rule,
            "router": router, "fip": fip, "pool": pool, "shared": shared, "ext": ext, "b_net": b_net,
            "b_router": b_router}


RESOURCES = {   # key in world -> (get, update, delete, list) on the SDK's network proxy
    "net": ("get_network", "update_network", "delete_network", "networks"),
    "sub": ("get_subnet", "update_subnet", "delete_subnet", "subnets"),
    "port": ("get_port", "update_port", "delete_port", "ports"),
    "sg": ("get_security_group", "update_security_group", "delete_security_group", "security_groups"),
    "rule": ("get_security_group_rule", None, "delete_security_group_rule", "security_group_rules"),
    "router": ("get_router", "update_router", "delete_router", "routers"),
    "fip": ("get_ip", "update_ip", "delete_ip", "ips"),
    "pool": ("get_subnet_pool", "update_subnet_pool", "delete_subnet_pool", "subnet_pools"),
}


def test_project_b_cannot_touch_project_a(world):
    b, count = world["b"].network, Counter()
    for key, (get, upd, delete, lister) in RESOURCES.items():
        obj = world[key]
        count.expect(exc.NotFoundException, getattr(b, get), obj.id)
        count.cases += 1
        assert obj.id not in {x.id for x in getattr(b, lister)()}, key
        if upd:
            count.expect(exc.NotFoundException, getattr(b, upd), obj.id, description="stolen")
        count.expect(exc.NotFoundException, getattr(b, delete), obj.id, ignore_missing=False)
    # attach: ports on A's network, A's subnet on B's router, A's group on B's port, FIP onto A's port
    count.expect(exc.NotFoundException, b.create_port, network_id=world["net"].id)
    count.expect(exc.NotFoundException, b.add_interface_to_router, world["b_router"], subnet=world["sub"].id)
    count.expect(exc.NotFoundException, b.add_interface_to_router, world["b_router"], port_id=world["port"].id)
    count.expect(exc.NotFoundException, b.create_port, network_id=world["b_net"].id,
                 security_group_ids=[world["sg"].id])
    count.expect(exc.NotFoundException, b.create_security_group_rule, security_group_id=world["sg"].id,
                 direction="ingress")
    b_sg = b.create_security_group(name="b-sg")
    count.expect(exc.NotFoundException, b.create_security_group_rule, security_group_id=b_sg.id,
                 direction="ingress", remote_group_id=world["sg"].id)
    b_fip = b.create_ip(floating_network_id=world["ext"].id)
    count.expect(exc.NotFoundException, b.update_ip, b_fip, port_id=world["port"].id)
    count.expect(exc.NotFoundException, b.create_subnet, network_id=world["net"].id, cidr="10.5.0.0/24",
                 ip_version=4)
    count.expect(exc.NotFoundException, b.create_subnet, network_id=world["b_net"].id, ip_version=4,
                 subnetpool_id=world["pool"].id)
    print(f"\nisolation: {count.cases} cases checked, 0 leaks")
    assert count.cases >= 40


def test_sharing_and_external_are_the_exceptions(world):
    b = world["b"].network
    visible = {n.id for n in b.networks()}
    assert {world["shared"].id, world["ext"].id} <= visible
    assert b.create_port(network_id=world["shared"].id).network_id == world["shared"].id
    assert b.create_ip(floating_network_id=world["ext"].id).floating_network_id == world["ext"].id
    with pytest.raises(exc.ForbiddenException):
        b.update_network(world["shared"].id, name="mine")
    with pytest.raises(exc.ForbiddenException):
        b.create_port(network_id=world["ext"].id)
    assert b.get_network(world["ext"].id).provider_network_type is None      # admin-only attribute


def test_rbac_shared_network_usable_by_b_invisible_to_c(cloud, world):
    """A shares its network with B alone (openstacksdk, Keystone tokens): B sees it and plugs a port into it;
    C cannot see, list or use it; A cannot withdraw the policy while B's port is on it."""
    a, b, c = world["a"].network, world["b"].network, connect(cloud["url"], "uc", "pc").network
    pb = cloud["admin"].identity.find_project("pb")
    net = a.create_network(name="a-rbac")
    sub = a.create_subnet(network_id=net.id, cidr="10.77.0.0/24", ip_version=4)
    pol = a.create_rbac_policy(object_type="network", object_id=net.id, action="access_as_shared",
                               target_project_id=pb.id)
    assert pol.target_project_id == pb.id and pol.project_id == world["net"].project_id
    assert b.get_network(net.id).is_shared and net.id in {n.id for n in b.networks()}
    port = b.create_port(network_id=net.id)
    assert port.fixed_ips[0]["subnet_id"] == sub.id and port.project_id == pb.id
    count = Counter()
    count.expect(exc.NotFoundException, c.get_network, net.id)
    count.expect(exc.NotFoundException, c.get_subnet, sub.id)
    count.expect(exc.NotFoundException, c.create_port, network_id=net.id)
    count.expect(exc.NotFoundException, c.get_rbac_policy, pol.id)
    count.expect(exc.NotFoundException, b.delete_rbac_policy, pol.id, ignore_missing=False)
    count.expect(exc.ConflictException, a.delete_rbac_policy, pol.id, ignore_missing=False)
    assert net.id not in {n.id for n in c.networks()} and sub.id not in {x.id for x in c.subnets()}
    assert list(c.rbac_policies()) == []
    b.delete_port(port)
    a.delete_rbac_policy(pol)
    count.expect(exc.NotFoundException, b.get_network, net.id)


def osc(cloud, user: str, project: str, *args: str, ok: bool = True):
    """The real `openstack` CLI with Keystone password auth against the test cloud."""
    env = {**os.environ, "OS_AUTH_URL": f"{cloud['url']}/v3", "OS_USERNAME": user, "OS_PASSWORD": PASSWORD,
           "OS_PROJECT_NAME": project, "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
           "OS_REGION_NAME": "RegionOne", "OS_IDENTITY_API_VERSION": "3"}
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "openstack"), *args], env=env,
                         capture_output=True, text=True, timeout=120)
    assert (out.returncode == 0) == ok, f"{' '.join(args)}: {out.stdout} {out.stderr}"
    return json.loads(out.stdout) if ok and "-f" in args else out.stdout + out.stderr


def test_cli_rbac_address_scope_and_ip_availability(cloud):
    """What a user types: `network rbac create/list/set/delete`, `address scope create`, `subnet pool create
    --address-scope`, `ip availability list/show`, with Neutron's refusals surfacing as CLI errors."""
    pb = cloud["admin"].identity.find_project("pb")
    net = osc(cloud, "ua", "pa", "network", "create", "cli-net", "-f", "json")
    osc(cloud, "ua", "pa", "subnet", "create", "--network", "cli-net", "--subnet-range", "10.88.0.0/24",
        "cli-sub", "-f", "json")
    pol = osc(cloud, "ua", "pa", "network", "rbac", "create", "--type", "network", "--action", "access_as_shared",
              "--target-project", pb.id, "cli-net", "-f", "json")
    assert pol["target_project_id"] == pb.id and pol["object_id"] == net["id"]
    assert [p["ID"] for p in osc(cloud, "ua", "pa", "network", "rbac", "list", "-f", "json")] == [pol["id"]]
    osc(cloud, "ub", "pb", "port", "create", "--network", net["id"], "cli-port", "-f", "json")
    assert "depend on it" in osc(cloud, "ua", "pa", "network", "rbac", "delete", pol["id"], ok=False)
    assert "disallowed by policy" in osc(cloud, "ua", "pa", "network", "rbac", "create", "--type", "network",
                                         "--action", "access_as_shared", "--target-all-projects", "cli-net",
                                         ok=False)
    pc = cloud["admin"].identity.find_project("pc")
    moved = osc(cloud, "ua", "pa", "network", "rbac", "set", "--target-project", pc.id, pol["id"], ok=False)
    assert "depend on it" in moved
    assert "Only admins" in osc(cloud, "ub", "pb", "network", "rbac", "create", "--type", "network", "--action",
                                "access_as_shared", "--target-project", pb.id, net["id"], ok=False)
    assert "cli-net" not in {n["Name"] for n in osc(cloud, "uc", "pc", "network", "list", "-f", "json")}
    scope = osc(cloud, "admin", "admin", "address", "scope", "create", "--ip-version", "4", "--share", "cli-scope",
                "-f", "json")
    assert scope["shared"] is True and scope["ip_version"] == 4
    pool = osc(cloud, "uc", "pc", "subnet", "pool", "create", "--address-scope", "cli-scope", "--pool-prefix",
               "10.99.0.0/16", "--default-prefix-length", "24", "cli-pool", "-f", "json")
    assert pool["address_scope_id"] == scope["id"]
    assert "in use" in osc(cloud, "admin", "admin", "address", "scope", "delete", "cli-scope", ok=False)
    avail = osc(cloud, "admin", "admin", "ip", "availability", "show", net["id"], "-f", "json")
    assert avail["network_name"] == "cli-net" and avail["used_ips"] == 1 and avail["total_ips"] == 253
    listed = osc(cloud, "admin", "admin", "ip", "availability", "list", "--ip-version", "4", "-f", "json")
    row = next(x for x in listed if x["Network ID"] == net["id"])
    assert (row["Network Name"], row["Total IPs"], row["Used IPs"]) == ("cli-net", 253, 1)
    assert (row["Total IPs in Subnet"], row["Used IPs in Allocation Pool"]) == (254, 1)
    assert osc(cloud, "ua", "pa", "ip", "availability", "list", "-f", "json") == []


def test_reader_reads_but_cannot_write(world):
    r = world["reader"].network
    assert r.get_network(world["net"].id).name == "a-net"
    for call in (lambda: r.create_network(name="x"), lambda: r.update_network(world["net"].id, name="y"),
                 lambda: r.delete_network(world["net"].id, ignore_missing=False),
                 lambda: r.create_port(network_id=world["net"].id),
                 lambda: r.create_security_group_rule(security_group_id=world["sg"].id, direction="egress")):
        with pytest.raises(exc.ForbiddenException):
            call()


def test_bad_credentials_and_tokens_are_401(cloud):
    url = cloud["url"]
    with pytest.raises(ks_exc.Unauthorized) as e:
        next(connect(url, "ua", "pa", password="wrong").network.networks())
    assert e.value.http_status == 401
    tok = httpx.post(f"{url}/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": "ua", "password": PASSWORD,
                                                                      "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "pa", "domain": {"name": "Default"}}}}}).headers["X-Subject-Token"]
    assert httpx.get(f"{url}/v2.0/networks", headers={"X-Auth-Token": tok}).status_code == 200
    assert httpx.delete(f"{url}/v3/auth/tokens", headers={"X-Auth-Token": tok, "X-Subject-Token": tok}) \
        .status_code == 204
    assert httpx.get(f"{url}/v2.0/networks", headers={"X-Auth-Token": tok}).status_code == 401
    user = cloud["admin"].identity.find_user("ua")
    project = cloud["admin"].identity.find_project("pa")
    expired, _ = tokens.issue(cloud["db"], user.id, project.id, ["password"],
                              expires_at=datetime.utcnow() - timedelta(seconds=1))
    assert httpx.get(f"{url}/v2.0/networks", headers={"X-Auth-Token": expired}).status_code == 401
    assert httpx.get(f"{url}/v2.0/networks", headers={"X-Auth-Token": "garbage"}).status_code == 401
    assert httpx.get(f"{url}/v2.0/networks").status_code == 401
