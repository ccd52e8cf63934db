"""Every case of issue 13 as a regression test: inputs that once answered 500, limits, strict JSON, ownership,
request ids and the access log, the identity root and quota flags."""
from __future__ import annotations

import contextlib
import json
import logging

import pytest
from fastapi.testclient import TestClient

from neutrino.api.app import create_app
from neutrino.config import Settings
from neutrino.db.engine import Database

JSON = {"Content-Type": "application/json"}


def neutron_error(r, code: int, type_name: str | None = None) -> dict:
    assert r.status_code == code, r.text[:300]
    err = r.json()["NeutronError"]
    assert set(err) == {"type", "message", "detail"}
    if type_name:
        assert err["type"] == type_name, err
    return err


def _net(c, **kw) -> dict:
    return c.post("/v2.0/networks", json={"network": {"name": "n", **kw}}).json()["network"]


def _subnet(c, net_id: str, cidr: str = "10.0.0.0/24", **kw) -> dict:
    r = c.post("/v2.0/subnets", json={"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 4, **kw}})
    assert r.status_code == 201, r.text
    return r.json()["subnet"]


def _revision(app) -> int:
    from neutrino.core import common
    return app.state.db.run(common.revision)


# --- once 500s --------------------------------------------------------------------------------------------------

def test_odd_if_match_headers_are_400_not_500(client):
    net = _net(client)
    for value in ("²".encode(), "revision_number=" + "9" * 5000, "revision_number=", "revision_number=--1", "abc"):
        neutron_error(client.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "x"}},
                                 headers={"If-Match": value}), 400)
        neutron_error(client.delete(f"/v2.0/networks/{net['id']}", headers={"If-Match": value}), 400)
    assert client.get(f"/v2.0/networks/{net['id']}").json()["network"]["name"] == "n"


def test_unicode_digits_are_not_integers(client):
    sg = client.post("/v2.0/security-groups", json={"security_group": {"name": "g"}}).json()["security_group"]
    rule = {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp"}
    neutron_error(client.post("/v2.0/security-group-rules", json={"security_group_rule": {
        **rule, "port_range_min": "²", "port_range_max": 5}}), 400, "SecurityGroupInvalidPortValue")
    neutron_error(client.post("/v2.0/security-group-rules", json={"security_group_rule": {
        **rule, "protocol": "³"}}), 400, "SecurityGroupRuleInvalidProtocol")
    neutron_error(client.post("/v2.0/networks", json={"network": {"mtu": "٣٠٠٠"}}), 400)
    # ASCII digit strings stay accepted, as Neutron's converters accept them
    assert client.post("/v2.0/networks", json={"network": {"mtu": "1400"}}).json()["network"]["mtu"] == 1400


def test_integers_beyond_the_column_are_400(client):
    pool = {"name": "p", "prefixes": ["10.9.0.0/16"]}
    for big in (2 ** 63, "9" * 30, 2 ** 31):
        neutron_error(client.post("/v2.0/subnetpools", json={"subnetpool": {**pool, "default_quota": big}}), 400)
        neutron_error(client.put("/v2.0/quotas/p1", json={"quota": {"network": big}}), 400)


def test_pool_default_prefixlen_shorter_than_its_prefix_is_a_409(client):
    pool = client.post("/v2.0/subnetpools", json={"subnetpool": {
        "name": "p", "prefixes": ["10.9.0.0/16"], "min_prefixlen": 8, "default_prefixlen": 8}}).json()["subnetpool"]
    net = _net(client)
    neutron_error(client.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                                "subnetpool_id": pool["id"]}}),
                  409, "SubnetAllocationError")
    ok = client.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                       "subnetpool_id": pool["id"], "prefixlen": 30}})
    assert ok.json()["subnet"]["cidr"] == "10.9.0.0/30"


def test_pool_allocation_skips_a_large_taken_block_at_once(client):
    pool = client.post("/v2.0/subnetpools", json={"subnetpool": {
        "name": "p", "prefixes": ["10.0.0.0/8"], "min_prefixlen": 8, "max_prefixlen": 30}}).json()["subnetpool"]
    net = _net(client)
    body = {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"]}
    assert client.post("/v2.0/subnets", json={"subnet": {**body, "cidr": "10.0.0.0/9"}}).status_code == 201
    r = client.post("/v2.0/subnets", json={"subnet": {**body, "prefixlen": 30}})
    assert r.json()["subnet"]["cidr"] == "10.128.0.0/30"


def test_empty_port_forwarding_update_changes_nothing(client, project_client):
    from tests.api.apifix_l3 import floatingip, port, seed
    t = project_client("p1")
    world = seed(client, t)
    vm = port(t, world.private["id"], "vm")
    fid = floatingip(t, world.public["id"]).json()["floatingip"]["id"]
    pf = t.post(f"/v2.0/floatingips/{fid}/port_forwardings", json={"port_forwarding": {
        "internal_port_id": vm["id"], "internal_ip_address": vm["fixed_ips"][0]["ip_address"], "internal_port": 22,
        "external_port": 2222, "protocol": "tcp"}}).json()["port_forwarding"]
    url = f"/v2.0/floatingips/{fid}/port_forwardings/{pf['id']}"
    r = t.put(url, json={"port_forwarding": {}})
    assert r.status_code == 200, r.text
    assert r.json()["port_forwarding"]["external_port"] == pf["external_port"]


def test_deep_json_is_400(client):
    for depth in (1000, 40):
        body = b'{"network": ' + b"[" * depth + b"]" * depth + b"}"
        neutron_error(client.post("/v2.0/networks", content=body, headers=JSON), 400)


def test_a_crash_is_a_logged_500_on_a_connection_that_stays_usable(app, client, caplog, monkeypatch):
    from neutrino.core import networks
    _net(client)
    monkeypatch.setattr(networks, "render", lambda *a: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="neutrino.api"):
        r = client.get("/v2.0/networks")
    err = neutron_error(r, 500, "HTTPInternalServerError")
    assert "ZeroDivisionError" not in err["message"]
    rid = r.headers["x-openstack-request-id"]
    assert any(rid in rec.getMessage() and rec.exc_info for rec in caplog.records)
    monkeypatch.undo()
    assert client.get("/v2.0/networks").status_code == 200


# --- limits ------------------------------------------------------------------------------------------------------

def test_neutron_list_limits(client):
    net = _net(client)
    sub = _subnet(client, net["id"], "10.0.0.0/16")
    fixed = [{"subnet_id": sub["id"]} for _ in range(6)]
    neutron_error(client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": fixed}}), 400,
                  "InvalidInput")
    ok = client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": fixed[:5]}})
    assert ok.status_code == 201 and len(ok.json()["port"]["fixed_ips"]) == 5
    pairs = [{"ip_address": f"10.1.0.{i}"} for i in range(11)]
    neutron_error(client.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                            "allowed_address_pairs": pairs}}),
                  400, "AllowedAddressPairExhausted")
    routes = [{"destination": f"10.{i}.0.0/16", "nexthop": "10.0.0.9"} for i in range(21)]
    neutron_error(client.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"host_routes": routes}}), 400,
                  "HostRoutesExhausted")
    dns = [f"10.0.0.{i}" for i in range(2, 8)]
    neutron_error(client.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"dns_nameservers": dns}}), 400,
                  "DNSNameServersExhausted")
    router = client.post("/v2.0/routers", json={"router": {"name": "r"}}).json()["router"]
    many = {"router": {"routes": [{"destination": f"10.{i}.0.0/16", "nexthop": "10.0.0.9"} for i in range(31)]}}
    neutron_error(client.put(f"/v2.0/routers/{router['id']}/add_extraroutes", json=many), 400, "RoutesExhausted")


def test_limits_are_configurable(tmp_path):
    settings = Settings(state_dir=str(tmp_path), auth="noauth", max_fixed_ips_per_port=7)
    db = Database(f"sqlite:///{tmp_path}/n.db")
    db.setup()
    with TestClient(create_app(settings, db)) as c:
        net = _net(c)
        sub = _subnet(c, net["id"], "10.0.0.0/16")
        r = c.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                 "fixed_ips": [{"subnet_id": sub["id"]}] * 7}})
        assert r.status_code == 201, r.text


def test_request_body_limit_is_413_and_stores_nothing(app, client):
    before = _revision(app)
    big = {"network": {"name": "n", "description": "x" * 200_000}}
    neutron_error(client.post("/v2.0/networks", json=big), 413, "HTTPRequestEntityTooLarge")

    def chunks():                   # no Content-Length: the limit holds while the body streams
        yield b'{"network": {"name": "n", "description": "'
        for _ in range(200):
            yield b"x" * 1000
        yield b'"}}'
    neutron_error(client.post("/v2.0/networks", content=chunks(), headers=JSON), 413)
    assert _revision(app) == before and client.get("/v2.0/networks").json()["networks"] == []


def test_bodies_must_be_json(app, client):
    before = _revision(app)
    body = json.dumps({"network": {"name": "n"}})
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        neutron_error(client.post("/v2.0/networks", content=body, headers={"Content-Type": ctype}), 415,
                      "HTTPUnsupportedMediaType")
    r = client.post("/v3/auth/tokens", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "error" in r.json()           # Keystone's error shape under /v3
    assert _revision(app) == before
    assert client.post("/v2.0/networks", content=body,
                       headers={"Content-Type": "application/json; charset=UTF-8"}).status_code == 201
    assert client.post("/v2.0/networks", content=body).status_code == 201      # none at all is JSON, as Neutron


def test_another_sites_page_cannot_write(app, client):
    """What a browser sends for a page of another site posting to a noauth server: Origin and Sec-Fetch-Site (a
    bare body needs no Content-Type, so the 415 alone would not stop it)."""
    before = _revision(app)
    body = json.dumps({"network": {"name": "csrf"}})
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-site"}):
        neutron_error(client.post("/v2.0/networks", content=body, headers=headers), 403, "PolicyNotAuthorized")
    net = client.post("/v2.0/networks", json={"network": {"name": "mine"}}).json()["network"]
    neutron_error(client.delete(f"/v2.0/networks/{net['id']}", headers={"Origin": "http://evil.example"}), 403)
    assert [n["name"] for n in client.get("/v2.0/networks", headers={"Origin": "http://evil.example"})
            .json()["networks"]] == ["mine"]                      # reading is not refused (nothing changes)
    assert _revision(app) > before
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}       # the server's own /ui page
    assert client.post("/v2.0/networks", content=body, headers=same).status_code == 201


def test_control_characters_are_refused_in_names_but_not_newlines_in_descriptions(client):
    for name in ("a\x00b", "tab\there", "\x1b[31mred", "\u0085"):
        neutron_error(client.post("/v2.0/networks", json={"network": {"name": name}}), 400)
    r = client.post("/v2.0/networks", json={"network": {"name": "ok", "description": "two\nlines"}})
    assert r.status_code == 201
    neutron_error(client.get("/v2.0/networks?name=%00"), 400)


def test_error_messages_quote_a_short_prefix_of_the_value(client):
    r = client.post("/v2.0/networks", json={"network": {"mtu": "x" * 100_000}})
    err = neutron_error(r, 400)
    assert len(r.content) < 400 and "xxx..." in err["message"]


# --- ownership ---------------------------------------------------------------------------------------------------

def test_a_project_cannot_plug_its_port_into_another_projects_router(project_client):
    a, b = project_client("pa"), project_client("pb")
    router_b = b.post("/v2.0/routers", json={"router": {"name": "rb"}}).json()["router"]
    net_a = _net(a)
    _subnet(a, net_a["id"])
    for owner in ("network:router_interface", "network:router_interface_distributed",
                  "network:ha_router_replicated_interface"):
        neutron_error(a.post("/v2.0/ports", json={"port": {"network_id": net_a["id"], "device_owner": owner,
                                                           "device_id": router_b["id"]}}),
                      409, "DeviceIDNotOwnedByTenant")
    port = a.post("/v2.0/ports", json={"port": {"network_id": net_a["id"]}}).json()["port"]
    neutron_error(a.put(f"/v2.0/ports/{port['id']}", json={"port": {"device_owner": "network:router_interface",
                                                                    "device_id": router_b["id"]}}),
                  409, "DeviceIDNotOwnedByTenant")
    assert b.delete(f"/v2.0/routers/{router_b['id']}").status_code == 204
    # its own router is fine
    router_a = a.post("/v2.0/routers", json={"router": {"name": "ra"}}).json()["router"]
    assert a.post("/v2.0/ports", json={"port": {"network_id": net_a["id"], "device_owner": "network:router_interface",
                                                "device_id": router_a["id"]}}).status_code == 201


def test_network_owners_only_on_another_projects_shared_network(client, project_client):
    shared = _net(client, shared=True)
    _subnet(client, shared["id"])
    a = project_client("pa")
    for owner in ("network:dhcp", "network:router_gateway", "network:router_interface"):
        neutron_error(a.post("/v2.0/ports", json={"port": {"network_id": shared["id"], "device_owner": owner}}),
                      403, "PolicyNotAuthorized")
    assert a.post("/v2.0/ports", json={"port": {"network_id": shared["id"],
                                                "device_owner": "compute:nova"}}).status_code == 201
    private = _net(client)
    neutron_error(a.post("/v2.0/ports", json={"port": {"network_id": private["id"]}}), 404, "NetworkNotFound")


def test_project_id_cannot_be_spoofed(project_client):
    a = project_client("pa")
    for key in ("project_id", "tenant_id"):     # 400, as Neutron (neutron-tempest-plugin checks it on ports)
        neutron_error(a.post("/v2.0/networks", json={"network": {"name": "n", key: "pb"}}), 400)
        neutron_error(a.post("/v2.0/security-groups", json={"security_group": {"name": "g", key: "pb"}}), 400)
    neutron_error(a.post("/v2.0/routers", json={"router": {"project_id": "pa", "tenant_id": "pb"}}), 400)


# --- request ids, logs, identity root, quotas ----------------------------------------------------------------------

def test_every_response_has_a_request_id_and_one_access_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="neutrino.access"):
        responses = [client.get("/v2.0/networks"), client.get("/v2.0/nope"), client.post("/v2.0/networks"),
                     client.get("/", headers={"X-Project-Id": "p1"})]
    ids = [r.headers["x-openstack-request-id"] for r in responses]
    assert all(i.startswith("req-") for i in ids) and len(set(ids)) == 4
    lines = [rec for rec in caplog.records if rec.name == "neutrino.access"]
    assert len(lines) == 4
    assert lines[0].method == "GET" and lines[0].path == "/v2.0/networks" and lines[0].status == 200
    assert lines[0].project == "admin" and lines[0].request_id == ids[0] and lines[0].ms >= 0
    assert lines[1].status == 404 and lines[2].status in (400, 415)


def test_json_log_format():
    from neutrino.api.serving import JsonFormatter
    rec = logging.LogRecord("neutrino.access", logging.INFO, __file__, 1, "GET / 200", None, None)
    rec.method, rec.status, rec.request_id = "GET", 200, "req-1"
    out = json.loads(JsonFormatter().format(rec))
    assert out["message"] == "GET / 200" and out["status"] == 200 and out["request_id"] == "req-1"


def test_identity_root_answers_keystone_version_discovery(tmp_path):
    from neutrino.identity.bootstrap import bootstrap
    settings = Settings(state_dir=str(tmp_path), auth="keystone", admin_password="pw", port=9696, identity_port=5000)
    db = Database(f"sqlite:///{tmp_path}/id.db")
    db.setup()
    bootstrap(db, settings)
    app = create_app(settings, db)
    with TestClient(app, base_url="http://testserver:5000") as c:
        r = c.get("/")
        assert r.status_code == 300
        (v3,) = r.json()["versions"]["values"]
        assert v3["id"].startswith("v3") and v3["links"][0]["href"] == "http://testserver:5000/v3/"
    with TestClient(app, base_url="http://testserver:9696") as c:
        assert c.get("/").json()["versions"][0]["id"] == "v2.0"


def test_quota_set_accepts_check_limit_and_force(client, project_client):
    p = project_client("pq")
    for i in range(3):
        _net(p)
    r = client.put("/v2.0/quotas/pq", json={"quota": {"network": 5, "check_limit": True, "force": False}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == 5
    neutron_error(client.put("/v2.0/quotas/pq", json={"quota": {"network": 2, "check_limit": True}}), 400,
                  "InvalidQuotaValue")
    assert client.put("/v2.0/quotas/pq", json={"quota": {"network": 2, "force": True}}).status_code == 200


def test_default_quotas_from_the_config_file_and_environment(tmp_path, monkeypatch, db_url):
    """The server's default limits are Neutron's with the configured ones over them (Neutron's [quotas] quota_*)."""
    from neutrino import config
    from neutrino.core import quotas
    conf = tmp_path / "neutrino.yaml"
    conf.write_text("server:\n  quotas: {router: 1, floatingip: -1}\n")
    assert config.load(str(conf)).quotas == {"router": 1, "floatingip": -1}
    monkeypatch.setenv("NEUTRINO_QUOTAS", "router=2,network=3")
    settings = config.load(str(conf), state_dir=str(tmp_path), auth="noauth")
    assert settings.quotas == {"router": 2, "network": 3}          # the environment over the file
    db = Database(db_url)
    db.setup()
    try:
        with TestClient(create_app(settings, db)) as c:
            default = c.get("/v2.0/quotas/pz/default").json()["quota"]
            assert (default["router"], default["network"], default["floatingip"]) == (2, 3, 50)
            assert c.get("/v2.0/quotas/pz").json()["quota"]["subnet"] == 100         # Neutron's, not configured
            for _ in range(2):
                assert c.post("/v2.0/routers", json={"router": {"project_id": "pz"}}).status_code == 201
            neutron_error(c.post("/v2.0/routers", json={"router": {"project_id": "pz"}}), 409, "OverQuota")
        with pytest.raises(ValueError, match="unknown quota resources: widget"):
            create_app(config.load(None, quotas={"widget": 1}), db)
    finally:
        db.engine.dispose()
        quotas.set_defaults({})          # the next test's server: Neutron's defaults


def test_catalog_urls_from_flags_and_environment(monkeypatch):
    from neutrino import config
    from neutrino.identity.catalog import services
    monkeypatch.setenv("NEUTRINO_IDENTITY_PUBLIC_URL", "http://203.0.113.1:5000/v3")
    s = config.load(None, public_url="http://203.0.113.1:9696", bind="0.0.0.0")
    assert dict((k, u) for k, _n, u in services(s)) == {"network": "http://203.0.113.1:9696",
                                                         "identity": "http://203.0.113.1:5000/v3"}


@pytest.mark.parametrize("path", ["/openapi.json"])
def test_openapi_document_is_served_without_auth(tmp_path, path):
    settings = Settings(state_dir=str(tmp_path), auth="keystone", admin_password="pw")
    db = Database(f"sqlite:///{tmp_path}/o.db")
    db.setup()
    with TestClient(create_app(settings, db)) as c:
        doc = c.get(path).json()
    assert doc["openapi"] == "3.1.0"
    assert "/v2.0/ports/{id}" in doc["paths"] and "/v3/auth/tokens" in doc["paths"]
    post = doc["paths"]["/v2.0/ports"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    port = post["anyOf"][0]["properties"]["port"]
    assert port["properties"]["fixed_ips"]["maxItems"] == 1000 and "network_id" in port["required"]


# --- connections (a real uvicorn with neutrino's connection settings) ----------------------------------------------

@contextlib.contextmanager
def serving(app, port: int):
    """The app behind uvicorn as `neutrino server` runs it (neutrino's connection settings)."""
    import threading
    import time

    import uvicorn

    from neutrino.api.serving import uvicorn_config
    server = uvicorn.Server(uvicorn_config(app, app.state.settings, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.fixture
def guarded_server(app):
    from tests.conftest import free_port
    app.state.settings.header_timeout = 0.5
    with serving(app, free_port()) as port:
        yield port


def _read_response(sock) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_500_keeps_the_keep_alive_connection(app, guarded_server, monkeypatch):
    import socket

    from neutrino.core import networks
    with TestClient(app) as c:
        _net(c)
    monkeypatch.setattr(networks, "render", lambda *a: 1 / 0)
    request = b"GET /v2.0/networks HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", guarded_server), timeout=10) as s:
        s.sendall(request)
        assert _read_response(s).startswith(b"HTTP/1.1 500")
        monkeypatch.undo()
        s.sendall(request)                      # the same connection serves the next request
        assert _read_response(s).startswith(b"HTTP/1.1 200")


def test_silent_and_slow_header_connections_are_closed(guarded_server):
    import socket
    with socket.create_connection(("127.0.0.1", guarded_server), timeout=10) as silent, \
            socket.create_connection(("127.0.0.1", guarded_server), timeout=10) as slow:
        slow.sendall(b"GET /v2.0/networks HTTP/1.1\r\nHost")
        assert silent.recv(1) == b""            # closed by the server (recv would block until the 10 s timeout)
        assert slow.recv(1) == b""


def test_cli_devstack_auth_url_without_v3_and_quota_set(tmp_path):
    """Keystone's version discovery on the identity root lets an auth_url without /v3 work (DevStack's clouds.yaml);
    `openstack quota set` (which sends check_limit) works."""
    import yaml

    from neutrino.identity.bootstrap import bootstrap
    from tests.api.test_identity import cli
    from tests.conftest import free_port
    identity_port, port = free_port(), free_port()
    settings = Settings(state_dir=str(tmp_path), auth="keystone", admin_password="pw", port=port,
                        identity_port=identity_port)
    db = Database(f"sqlite:///{tmp_path}/ks.db")
    db.setup()
    bootstrap(db, settings)
    root = f"http://127.0.0.1:{identity_port}"
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"devstack": {
        "auth_type": "password", "region_name": "RegionOne", "network_endpoint_override": f"http://127.0.0.1:{port}",
        "auth": {"auth_url": root, "username": "admin", "password": "pw", "project_name": "admin",
                 "user_domain_name": "Default", "project_domain_name": "Default"}}}}))
    devstack = {"clouds": str(clouds)}
    app = create_app(settings, db)
    with serving(app, identity_port), serving(app, port):
        assert cli(devstack, "token", "issue", "-f", "value", "-c", "id", cloud="devstack").stdout.strip()
        cli(devstack, "quota", "set", "--networks", "7", "admin", cloud="devstack")
        shown = json.loads(cli(devstack, "quota", "show", "admin", "-f", "json", cloud="devstack").stdout)
        assert {"Resource": "networks", "Limit": 7} in shown, shown


# --- the per-request deadline ----------------------------------------------------------------------------------------

def test_database_work_past_the_deadline_is_interrupted_and_rolled_back(app, client):
    import time

    from sqlalchemy import insert, text

    from neutrino.db import models
    from neutrino.db.engine import DEADLINE
    from neutrino.errors import DeadlineExceeded
    if not app.state.db.sqlite:
        pytest.skip("the interrupt is SQLite's progress handler")
    endless = text("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")

    def tx(s):
        s.execute(insert(models.Quota.__table__).values(project_id="p", resource="network", limit=1))
        return s.execute(endless).scalar()
    token = DEADLINE.set(time.monotonic() + 0.2)
    try:
        with pytest.raises(DeadlineExceeded):
            app.state.db.run(tx)
    finally:
        DEADLINE.reset(token)
    assert client.get("/v2.0/quotas/p").json()["quota"]["network"] == 100


def test_a_request_past_its_deadline_is_a_503_that_stored_nothing(tmp_path):
    settings = Settings(state_dir=str(tmp_path), auth="noauth", request_deadline=0)
    db = Database(f"sqlite:///{tmp_path}/d.db")
    db.setup()
    with TestClient(create_app(settings, db)) as c:
        neutron_error(c.post("/v2.0/networks", json={"network": {"name": "n"}}), 503, "RequestDeadlineExceeded")
        settings.request_deadline = 30
        assert c.get("/v2.0/networks").json()["networks"] == []


def test_an_agent_long_poll_outlives_the_request_deadline(tmp_path):
    settings = Settings(state_dir=str(tmp_path), auth="noauth", request_deadline=0.3)
    db = Database(f"sqlite:///{tmp_path}/d.db")
    db.setup()
    with TestClient(create_app(settings, db)) as c:
        r = c.get("/agent/v1/hosts/h1/view", params={"since": 10 ** 6, "wait": 1.2})
        assert r.status_code == 200, r.text


def test_responses_written_in_one_send_are_whole_and_keep_their_connection(app, guarded_server):
    """Head and body leave in one send (api/serving.OneWrite): answers with a body, without one (204) and errors
    arrive whole, and the connection serves the next request."""
    import http.client
    import json
    import socket
    with TestClient(app) as c:
        net = _net(c)
    with socket.create_connection(("127.0.0.1", guarded_server), timeout=10) as s:
        s.sendall(f"GET /v2.0/networks/{net['id']} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        first = s.recv(65536)
        head, _, body = first.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["network"]["id"] == net["id"]
    conn = http.client.HTTPConnection("127.0.0.1", guarded_server, timeout=10)
    for method, path, body, status in [
            ("POST", "/v2.0/networks", {"network": {"name": "m"}}, 201),
            ("DELETE", f"/v2.0/networks/{net['id']}", None, 204),
            ("GET", f"/v2.0/networks/{net['id']}", None, 404),
            ("GET", "/v2.0/networks", None, 200)]:
        conn.request(method, path, body=json.dumps(body) if body else None,
                     headers={"Content-Type": "application/json"} if body else {})
        r = conn.getresponse()
        data = r.read()
        assert r.status == status and (status == 204) == (data == b"")
    conn.close()
