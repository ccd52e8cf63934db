"""The built-in Keystone v3 subset, through HTTP (TestClient), through the real `openstack` CLI against a live
uvicorn server, and as the external Keystone that `validate_external` trusts."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from neutrino.config import Settings
from neutrino.db.engine import Database
from neutrino.errors import ServiceUnavailable
from neutrino.identity import tokens
from neutrino.identity.bootstrap import bootstrap
from neutrino.identity.external import validate_external
from neutrino.identity.routes import router

PASSWORD = "secret"
OPENSTACK = str(Path(sys.executable).parent / "openstack")


def _bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def _identity_app(tmp_path, **settings) -> FastAPI:
    db = Database(f"sqlite:///{tmp_path}/identity.db")
    db.setup()
    app = FastAPI()
    app.include_router(router)
    app.state.db = db
    app.state.settings = Settings(state_dir=str(tmp_path), **settings)
    return app


@pytest.fixture
def app(tmp_path):
    app = _identity_app(tmp_path, admin_password=PASSWORD)
    bootstrap(app.state.db, app.state.settings)
    yield app
    app.state.db.engine.dispose()


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def password_auth(user: str, password: str = PASSWORD, project: str | None = None) -> dict:
    auth = {"identity": {"methods": ["password"],
                         "password": {"user": {"name": user, "password": password, "domain": {"name": "Default"}}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    return {"auth": auth}


def login(client, user: str, password: str = PASSWORD, project: str | None = None) -> str:
    r = client.post("/v3/auth/tokens", json=password_auth(user, password, project or user))
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def auth(token: str) -> dict:
    return {"X-Auth-Token": token}


def create(client, token: str, kind: str, ref: dict) -> dict:
    r = client.post(f"/v3/{kind}s", headers=auth(token), json={kind: ref})
    assert r.status_code == 201, r.text
    return r.json()[kind]


# --- HTTP ---------------------------------------------------------------------------------------------------

def test_version_document(client):
    for path in ("/v3", "/v3/"):
        v = client.get(path).json()["version"]
        assert v["id"] == "v3.14" and v["status"] == "stable"
        assert v["links"] == [{"rel": "self", "href": "http://testserver/v3/"}]


def test_password_token_has_what_clients_need(client, app):
    r = client.post("/v3/auth/tokens", json=password_auth("demo", project="demo"))
    assert r.status_code == 201
    assert r.headers["X-Subject-Token"]
    tok = r.json()["token"]
    assert tok["expires_at"].endswith("Z") and tok["issued_at"].endswith("Z")
    assert tok["methods"] == ["password"]
    assert tok["user"]["name"] == "demo" and tok["user"]["domain"] == {"id": "default", "name": "Default"}
    assert tok["project"]["name"] == "demo" and tok["project"]["domain"] == {"id": "default", "name": "Default"}
    assert [role["name"] for role in tok["roles"]] == ["member"]
    services = {svc["type"]: svc for svc in tok["catalog"]}
    settings = app.state.settings
    for kind, url in (("network", settings.network_url()), ("identity", settings.identity_url())):
        public = [ep for ep in services[kind]["endpoints"] if ep["interface"] == "public"]
        assert public == [{"id": public[0]["id"], "interface": "public", "region": "RegionOne",
                           "region_id": "RegionOne", "url": url}]


def test_token_by_user_id_and_project_id(client):
    admin = login(client, "admin")
    me = client.get("/v3/auth/tokens", headers={**auth(admin), "X-Subject-Token": admin}).json()["token"]
    r = client.post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"id": me["user"]["id"], "password": PASSWORD}}},
        "scope": {"project": {"id": me["project"]["id"]}}}})
    assert r.status_code == 201
    assert r.json()["token"]["project"]["id"] == me["project"]["id"]


def test_failed_logins_are_401_in_keystone_shape(client):
    for body in (password_auth("demo", "wrong", "demo"), password_auth("nobody", PASSWORD, "demo"),
                 password_auth("demo", PASSWORD, "nosuchproject")):
        r = client.post("/v3/auth/tokens", json=body)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == 401 and r.json()["error"]["title"] == "Unauthorized"


def test_no_role_on_project_is_401(client):
    r = client.post("/v3/auth/tokens", json=password_auth("demo", project="admin"))
    assert r.status_code == 401
    assert "has no access to project" in r.json()["error"]["message"]


def test_malformed_requests_are_400(client):
    assert client.post("/v3/auth/tokens", json={"nope": 1}).status_code == 400
    assert client.post("/v3/auth/tokens", content=b"not json", headers={"Content-Type": "application/json"}).json()["error"]["code"] == 400
    admin = login(client, "admin")
    assert client.post("/v3/projects", headers=auth(admin), json={"project": {"name": ""}}).status_code == 400


def test_without_scope_the_default_project_is_used_else_unscoped(client):
    r = client.post("/v3/auth/tokens", json=password_auth("demo"))
    assert r.status_code == 201 and r.json()["token"]["project"]["name"] == "demo"
    body = password_auth("demo")
    body["auth"]["scope"] = "unscoped"
    tok = client.post("/v3/auth/tokens", json=body).json()["token"]
    assert "project" not in tok and "catalog" not in tok and tok["expires_at"].endswith("Z")


def test_token_method_rescopes_keeping_expiry(client):
    admin = login(client, "admin")
    original = client.get("/v3/auth/tokens", headers={**auth(admin), "X-Subject-Token": admin}).json()["token"]
    r = client.post("/v3/auth/tokens", json={"auth": {"identity": {"methods": ["token"], "token": {"id": admin}},
                                                      "scope": {"project": {"name": "admin",
                                                                            "domain": {"id": "default"}}}}})
    assert r.status_code == 201
    assert r.headers["X-Subject-Token"] != admin
    assert r.json()["token"]["expires_at"] == original["expires_at"]


def test_validate_head_revoke(client, app):
    admin, demo = login(client, "admin"), login(client, "demo")
    subject = {"X-Subject-Token": demo}
    r = client.get("/v3/auth/tokens", headers={**auth(admin), **subject})
    assert r.status_code == 200 and r.json()["token"]["user"]["name"] == "demo" and r.json()["token"]["catalog"]
    assert "catalog" not in client.get("/v3/auth/tokens?nocatalog", headers={**auth(admin), **subject}).json()["token"]
    assert client.head("/v3/auth/tokens", headers={**auth(demo), **subject}).status_code == 200
    assert tokens.validate(app.state.db, demo) is not None            # now cached
    assert client.delete("/v3/auth/tokens", headers={**auth(demo), **subject}).status_code == 204
    assert tokens.validate(app.state.db, demo) is None
    r = client.get("/v3/auth/tokens", headers={**auth(admin), **subject})
    assert r.status_code == 404 and r.json()["error"]["title"] == "Not Found"
    assert client.head("/v3/auth/tokens", headers={**auth(admin), **subject}).status_code == 404
    assert client.get("/v3/users", headers=auth(demo)).status_code == 401


def test_users_cannot_see_each_others_tokens(client):
    demo, other = login(client, "demo"), login(client, "admin")
    assert client.get("/v3/auth/tokens", headers={**auth(demo), "X-Subject-Token": other}).status_code == 404


def test_expired_token_is_rejected(client, app):
    h = auth(login(client, "admin"))
    user_id = client.get("/v3/users?name=demo", headers=h).json()["users"][0]["id"]
    project_id = client.get("/v3/projects?name=demo", headers=h).json()["projects"][0]["id"]
    expired, _ = tokens.issue(app.state.db, user_id, project_id, ["password"],
                              expires_at=tokens.utcnow() - timedelta(seconds=1))
    assert client.get("/v3/auth/tokens", headers={**h, "X-Subject-Token": expired}).status_code == 404
    assert client.get(f"/v3/users/{user_id}", headers=auth(expired)).status_code == 401


def test_non_admin_may_not_write_or_list(client):
    demo = login(client, "demo")
    me = client.get("/v3/auth/tokens", headers={**auth(demo), "X-Subject-Token": demo}).json()["token"]
    r = client.post("/v3/projects", headers=auth(demo), json={"project": {"name": "mine"}})
    assert r.status_code == 403 and r.json()["error"]["title"] == "Forbidden"
    for path in ("/v3/projects", "/v3/users", "/v3/roles", "/v3/domains", "/v3/role_assignments"):
        assert client.get(path, headers=auth(demo)).status_code == 403, path
    assert client.get(f"/v3/users/{me['user']['id']}", headers=auth(demo)).status_code == 200
    assert client.get(f"/v3/projects/{me['project']['id']}", headers=auth(demo)).status_code == 200
    mine = client.get(f"/v3/role_assignments?user.id={me['user']['id']}", headers=auth(demo))
    assert [a["scope"]["project"]["id"] for a in mine.json()["role_assignments"]] == [me["project"]["id"]]
    assert [p["name"] for p in client.get("/v3/auth/projects", headers=auth(demo)).json()["projects"]] == ["demo"]


def test_project_user_role_crud_and_assignments(client):
    admin = login(client, "admin")
    h = auth(admin)
    p2 = create(client, admin, "project", {"name": "p2", "description": "second"})
    assert p2["domain_id"] == "default" and p2["is_domain"] is False and p2["enabled"] is True
    assert client.post("/v3/projects", headers=h, json={"project": {"name": "p2"}}).status_code == 409
    u2 = create(client, admin, "user", {"name": "u2", "password": "pw2", "default_project_id": p2["id"]})
    assert u2["default_project_id"] == p2["id"] and "password" not in u2
    role = create(client, admin, "role", {"name": "auditor"})
    member = client.get("/v3/roles?name=member", headers=h).json()["roles"][0]
    assert [p["name"] for p in client.get("/v3/projects?name=p2", headers=h).json()["projects"]] == ["p2"]
    assert client.get("/v3/users?name=nobody", headers=h).json()["users"] == []

    grant = f"/v3/projects/{p2['id']}/users/{u2['id']}/roles"
    assert client.head(f"{grant}/{member['id']}", headers=h).status_code == 404
    assert client.put(f"{grant}/{member['id']}", headers=h).status_code == 204
    assert client.put(f"{grant}/{role['id']}", headers=h).status_code == 204
    assert client.head(f"{grant}/{member['id']}", headers=h).status_code == 204
    assert sorted(r["name"] for r in client.get(grant, headers=h).json()["roles"]) == ["auditor", "member"]
    r = client.get(f"/v3/role_assignments?scope.project.id={p2['id']}&include_names=True", headers=h)
    named = r.json()["role_assignments"]
    assert sorted(a["role"]["name"] for a in named) == ["auditor", "member"]
    assert named[0]["user"] == {"id": u2["id"], "name": "u2", "domain": {"id": "default", "name": "Default"}}
    assert named[0]["scope"]["project"]["name"] == "p2"
    assert len(client.get(f"/v3/role_assignments?user.id={u2['id']}&role.id={role['id']}",
                          headers=h).json()["role_assignments"]) == 1
    assert client.get("/v3/role_assignments?group.id=x", headers=h).json()["role_assignments"] == []

    u2_token = login(client, "u2", "pw2", "p2")
    assert client.patch(f"/v3/projects/{p2['id']}", headers=h,
                        json={"project": {"description": "changed"}}).json()["project"]["description"] == "changed"
    assert client.delete(f"/v3/roles/{role['id']}", headers=h).status_code == 204
    assert client.get("/v3/users", headers=auth(u2_token)).status_code == 401   # role deletion revoked it
    assert client.delete(f"/v3/users/{u2['id']}", headers=h).status_code == 204
    assert client.get(f"/v3/users/{u2['id']}", headers=h).status_code == 404
    assert client.delete(f"/v3/projects/{p2['id']}", headers=h).status_code == 204
    assert len(client.get("/v3/role_assignments", headers=h).json()["role_assignments"]) == 2


def test_removing_a_role_or_disabling_revokes_at_once(client, app):
    admin = login(client, "admin")
    h = auth(admin)
    demo = login(client, "demo")
    db = app.state.db
    assert tokens.validate(db, demo).roles == ["member"]
    me = client.get("/v3/auth/tokens", headers={**h, "X-Subject-Token": demo}).json()["token"]
    member = me["roles"][0]["id"]
    grant = f"/v3/projects/{me['project']['id']}/users/{me['user']['id']}/roles/{member}"
    assert client.delete(grant, headers=h).status_code == 204
    assert tokens.validate(db, demo) is None
    assert client.delete(grant, headers=h).status_code == 404
    assert client.put(grant, headers=h).status_code == 204
    demo = login(client, "demo")
    assert tokens.validate(db, demo) is not None
    assert client.patch(f"/v3/users/{me['user']['id']}", headers=h,
                        json={"user": {"enabled": False}}).status_code == 200
    assert tokens.validate(db, demo) is None
    assert client.post("/v3/auth/tokens", json=password_auth("demo", project="demo")).status_code == 401


def test_self_service_password_change(client, app):
    demo = login(client, "demo")
    user_id = tokens.validate(app.state.db, demo).user_id
    url = f"/v3/users/{user_id}/password"
    bad = client.post(url, json={"user": {"original_password": "nope", "password": "new"}})
    assert bad.status_code == 401
    assert client.post(url, json={"user": {"original_password": PASSWORD, "password": "new"}}).status_code == 204
    assert tokens.validate(app.state.db, demo) is None
    login(client, "demo", "new")


def test_domains(client):
    admin = login(client, "admin")
    h = auth(admin)
    d2 = create(client, admin, "domain", {"name": "d2"})
    p = create(client, admin, "project", {"name": "dp", "domain_id": d2["id"]})
    assert p["parent_id"] == d2["id"]
    assert client.get(f"/v3/projects?domain_id={d2['id']}", headers=h).json()["projects"][0]["name"] == "dp"
    assert client.delete(f"/v3/domains/{d2['id']}", headers=h).status_code == 403
    client.patch(f"/v3/domains/{d2['id']}", headers=h, json={"domain": {"enabled": False}})
    assert client.delete(f"/v3/domains/{d2['id']}", headers=h).status_code == 204
    assert client.get(f"/v3/projects/{p['id']}", headers=h).status_code == 404


def test_bootstrap_is_idempotent_and_returns_a_generated_password(tmp_path):
    app = _identity_app(tmp_path)
    db, settings = app.state.db, app.state.settings
    generated = bootstrap(db, settings)
    assert generated
    assert bootstrap(db, settings) is None
    with TestClient(app) as c:
        admin = login(c, "admin", generated)
        assert [r["name"] for r in c.get("/v3/roles", headers=auth(admin)).json()["roles"]] == \
            ["admin", "member", "reader"]
        assert tokens.validate(db, admin).is_admin
        demo = tokens.validate(db, login(c, "demo", generated))
        assert demo.roles == ["member"] and not demo.is_admin and demo.project_name == "demo"
        assert len(c.get("/v3/users", headers=auth(admin)).json()["users"]) == 2
    db.engine.dispose()


def test_tokens_and_generated_passwords_never_look_like_options(client, tmp_path):
    """Both are typed as command-line arguments (`openstack token revoke TOKEN`, `--os-password X`); a leading '-'
    makes argparse take them for an option, as a base64url secret did in one run of 64."""
    for token in [login(client, "admin") for _ in range(64)]:
        assert len(token) == 64 and set(token) <= set("0123456789abcdef")
    (tmp_path / "fresh").mkdir()
    app = _identity_app(tmp_path / "fresh")
    assert set(bootstrap(app.state.db, app.state.settings)) <= set("0123456789abcdef")
    app.state.db.engine.dispose()


# --- a live server: the real openstack CLI, and validate_external -------------------------------------------

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The identity router under uvicorn on a free loopback port; the network endpoint is a port nobody serves."""
    tmp = tmp_path_factory.mktemp("live")
    sock, dead = _bound_socket(), _bound_socket()
    port, dead_port = sock.getsockname()[1], dead.getsockname()[1]
    dead.close()
    app = _identity_app(tmp, admin_password=PASSWORD, identity_port=port, port=dead_port, admin_token="static-tok")
    bootstrap(app.state.db, app.state.settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started
    clouds = tmp / "clouds.yaml"
    base = {"auth_type": "password", "region_name": "RegionOne",
            "network_endpoint_override": f"http://127.0.0.1:{dead_port}"}
    clouds.write_text(yaml.safe_dump({"clouds": {
        name: {**base, "auth": {"auth_url": f"http://127.0.0.1:{port}/v3", "username": name, "password": PASSWORD,
                                "project_name": name, "user_domain_name": "Default",
                                "project_domain_name": "Default"}} for name in ("admin", "demo")}}))
    try:
        yield {"url": f"http://127.0.0.1:{port}/v3", "clouds": str(clouds), "app": app}
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        app.state.db.engine.dispose()


def cli(live, *args, cloud: str | None = "admin", check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = live["clouds"]
    cmd = [OPENSTACK] + (["--os-cloud", cloud] if cloud else []) + list(args)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_cli_token_issue(live):
    out = yaml.safe_load(cli(live, "token", "issue", "-f", "yaml").stdout)
    assert out["id"] and out["project_id"] and out["user_id"]
    assert cli(live, "token", "issue", "-f", "value", "-c", "id", cloud="demo").stdout.strip()


def test_cli_project_user_role_flow_and_new_user_login(live):
    cli(live, "project", "create", "p2")
    cli(live, "user", "create", "--password", "x", "--project", "p2", "u2")
    cli(live, "role", "add", "--project", "p2", "--user", "u2", "member")
    assert "p2" in cli(live, "project", "list", "-f", "value", "-c", "Name").stdout.split()
    assert "u2" in cli(live, "user", "list", "-f", "value", "-c", "Name").stdout.split()
    rows = cli(live, "role", "assignment", "list", "--names", "-f", "value", "-c", "Role", "-c", "User",
               "-c", "Project").stdout.splitlines()
    assert "member u2@Default p2@Default" in rows
    as_u2 = ["--os-auth-url", live["url"], "--os-username", "u2", "--os-project-name", "p2",
             "--os-user-domain-name", "Default", "--os-project-domain-name", "Default"]
    p2_id = cli(live, "project", "show", "p2", "-f", "value", "-c", "id").stdout.strip()
    issued = cli(live, *as_u2, "--os-password", "x", "token", "issue", "-f", "value", "-c", "project_id", cloud=None)
    assert issued.stdout.strip() == p2_id
    wrong = cli(live, *as_u2, "--os-password", "wrong", "token", "issue", cloud=None, check=False)
    assert wrong.returncode != 0 and "HTTP 401" in wrong.stderr


def test_cli_revoke_then_validate_is_404(live):
    tok = cli(live, "token", "issue", "-f", "value", "-c", "id", cloud="demo").stdout.strip()
    headers = {"X-Auth-Token": "static-tok", "X-Subject-Token": tok}
    assert httpx.get(f"{live['url']}/auth/tokens", headers=headers).status_code == 200
    cli(live, "token", "revoke", tok)
    assert httpx.get(f"{live['url']}/auth/tokens", headers=headers).status_code == 404


def test_validate_external_against_a_live_keystone(live):
    r = httpx.post(f"{live['url']}/auth/tokens", json=password_auth("demo", project="demo"))
    user_token = r.headers["X-Subject-Token"]
    settings = Settings(auth="external", external_keystone_url=live["url"], service_token="static-tok")
    ctx = validate_external(settings, user_token)
    assert (ctx.project_name, ctx.user_name, ctx.roles, ctx.is_admin) == ("demo", "demo", ["member"], False)
    assert ctx.project_id == r.json()["token"]["project"]["id"]
    assert validate_external(settings, "bogus") is None
    with pytest.raises(ServiceUnavailable):
        validate_external(Settings(external_keystone_url=live["url"], service_token="wrong"), "other-token")
    dead = _bound_socket()
    url = f"http://127.0.0.1:{dead.getsockname()[1]}/v3"
    dead.close()
    with pytest.raises(ServiceUnavailable):
        validate_external(Settings(external_keystone_url=url, service_token="x"), "another-token")

