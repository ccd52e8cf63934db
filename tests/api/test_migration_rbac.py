"""An existing database upgraded across 0003: `shared` and `router:external` flags become `*` RBAC policies, and
the API shows the same sharing as before."""
from fastapi.testclient import TestClient
from sqlalchemy import text

from neutrino.api.app import create_app
from neutrino.config import Settings
from neutrino.db.engine import Database, migrate

NET = ("INSERT INTO networks (id, project_id, description, created_at, updated_at, revision_number, name, "
       "admin_state_up, status, shared, external, is_default, mtu, port_security_enabled, network_type, dns_domain, "
       "availability_zone_hints) VALUES (:id, 'pa', '', '2025-01-01', '2025-01-01', 0, :id, 1, 'ACTIVE', :shared, "
       ":external, 0, 1450, 1, 'vxlan', '', '[]')")
POOL = ("INSERT INTO subnetpools (id, project_id, description, created_at, updated_at, revision_number, name, "
        "ip_version, prefixes, min_prefixlen, max_prefixlen, default_prefixlen, shared, is_default) VALUES "
        "('pool', 'pa', '', '2025-01-01', '2025-01-01', 0, 'pool', 4, '[\"10.0.0.0/8\"]', 8, 32, 24, 1, 0)")


def test_shared_flags_become_policies(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/old.db")
    migrate(db.engine, "0002")
    with db.engine.begin() as c:
        for nid, shared, external in (("n-shared", 1, 0), ("n-ext", 0, 1), ("n-private", 0, 0)):
            c.execute(text(NET), {"id": nid, "shared": shared, "external": external})
        c.execute(text(POOL))
    db.setup()
    with db.engine.connect() as c:
        rows = c.execute(text("SELECT object_type, object_id, action, target_project, project_id "
                              "FROM rbac_policies ORDER BY object_id")).all()
        assert "shared" not in {col[1] for col in c.execute(text("PRAGMA table_info(networks)"))}
    assert [tuple(r) for r in rows] == [("network", "n-ext", "access_as_external", "*", "pa"),
                                        ("network", "n-shared", "access_as_shared", "*", "pa"),
                                        ("subnetpool", "pool", "access_as_shared", "*", "pa")]
    app = create_app(Settings(state_dir=str(tmp_path), auth="noauth"), db)
    with TestClient(app, headers={"X-Project-Id": "pb", "X-Roles": "member"}) as other:
        nets = {n["id"]: n for n in other.get("/v2.0/networks").json()["networks"]}
        assert set(nets) == {"n-shared", "n-ext"}
        assert nets["n-shared"]["shared"] and nets["n-ext"]["router:external"] and not nets["n-ext"]["shared"]
        assert other.get("/v2.0/subnetpools/pool").json()["subnetpool"]["shared"] is True
    db.engine.dispose()


def test_shared_qos_policy_becomes_a_policy(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/old.db")
    migrate(db.engine, "0003_i15b")
    with db.engine.begin() as c:
        for pid, shared in (("q-shared", 1), ("q-private", 0)):
            c.execute(text("INSERT INTO qos_policies (id, project_id, description, created_at, updated_at, "
                           "revision_number, name, shared) VALUES (:id, 'pa', '', '2025-01-01', '2025-01-01', 0, "
                           ":id, :shared)"), {"id": pid, "shared": shared})
    db.setup()
    with db.engine.connect() as c:
        rows = c.execute(text("SELECT object_type, object_id, action, target_project FROM rbac_policies")).all()
        assert "shared" not in {col[1] for col in c.execute(text("PRAGMA table_info(qos_policies)"))}
    assert [tuple(r) for r in rows] == [("qos_policy", "q-shared", "access_as_shared", "*")]
    app = create_app(Settings(state_dir=str(tmp_path), auth="noauth"), db)
    with TestClient(app, headers={"X-Project-Id": "pb", "X-Roles": "member"}) as other:
        assert [p["id"] for p in other.get("/v2.0/qos/policies").json()["policies"]] == ["q-shared"]
    db.engine.dispose()
