"""Tokens: stored hashed, expiring, revocable at once despite the validation cache, Keystone time format."""
import hashlib
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from neutrino.db.engine import Database
from neutrino.identity import tokens
from neutrino.db.identity import Domain, Project, Role, RoleAssignment, Token, User


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/identity.db")
    database.setup()

    def _seed(s):
        s.add(Domain(id="default", name="Default"))
        s.add_all([Project(id="p1", domain_id="default", name="proj"), Role(id="r1", name="member"),
                   Role(id="r2", name="admin"), User(id="u1", domain_id="default", name="alice")])
        s.flush()
        s.add(RoleAssignment(user_id="u1", project_id="p1", role_id="r1"))
    database.run(_seed)
    yield database
    database.engine.dispose()


def test_issued_token_validates_to_its_context(db):
    token, body = tokens.issue(db, "u1", "p1", ["password"], catalog=[{"type": "network", "endpoints": []}])
    ctx = tokens.validate(db, token)
    assert (ctx.project_id, ctx.user_id, ctx.roles, ctx.is_admin) == ("p1", "u1", ["member"], False)
    assert (ctx.project_name, ctx.user_name) == ("proj", "alice")
    assert body["project"] == {"id": "p1", "name": "proj", "domain": {"id": "default", "name": "Default"}}
    assert body["roles"] == [{"id": "r1", "name": "member"}] and body["catalog"][0]["type"] == "network"


def test_admin_role_makes_admin_context(db):
    db.run(lambda s: s.add(RoleAssignment(user_id="u1", project_id="p1", role_id="r2")))
    token, _ = tokens.issue(db, "u1", "p1", ["password"])
    ctx = tokens.validate(db, token)
    assert ctx.is_admin and ctx.roles == ["admin", "member"]


def test_only_the_hash_is_stored(db):
    token, _ = tokens.issue(db, "u1", "p1", ["password"])
    ids = db.run(lambda s: s.scalars(select(Token.id)).all())
    assert ids == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in ids


def test_times_are_keystone_format_with_z(db):
    _, body = tokens.issue(db, "u1", "p1", ["password"])
    issued = datetime.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires - issued == tokens.TTL == timedelta(hours=12)


def test_expired_token_is_rejected(db):
    token, _ = tokens.issue(db, "u1", "p1", ["password"], expires_at=tokens.utcnow() - timedelta(seconds=1))
    assert tokens.validate(db, token) is None
    assert tokens.lookup(db, token) is None


def test_cache_never_outlives_expiry(db):
    expires = tokens.utcnow() + timedelta(seconds=0.5)
    token, _ = tokens.issue(db, "u1", "p1", ["password"], expires_at=expires)
    assert tokens.validate(db, token) is not None
    assert tokens.validate(db, token) is not None       # served from the cache
    while tokens.utcnow() <= expires:                   # the clock just past the expiry (at most 0.5 s): no margin
        time.sleep(0.01)
    assert tokens.validate(db, token) is None


def test_revocation_beats_the_cache(db):
    token, _ = tokens.issue(db, "u1", "p1", ["password"])
    assert tokens.validate(db, token) is not None
    assert tokens.revoke(db, token) is True
    assert tokens.validate(db, token) is None
    assert tokens.revoke(db, token) is False


def test_revoke_where_then_forget(db):
    token, _ = tokens.issue(db, "u1", "p1", ["password"])
    assert tokens.validate(db, token) is not None
    db.run(lambda s: tokens.revoke_where(s, user_id="u1", project_id="p1"))
    tokens.forget()
    assert tokens.validate(db, token) is None


def test_disabled_user_token_is_rejected(db):
    token, _ = tokens.issue(db, "u1", "p1", ["password"])

    def _disable(s):
        s.get(User, "u1").enabled = False
    db.run(_disable)
    tokens.forget()
    assert tokens.validate(db, token) is None


def test_unscoped_token_is_not_valid_for_the_network_api(db):
    token, body = tokens.issue(db, "u1", None, ["password"])
    assert "project" not in body and "catalog" not in body
    assert tokens.validate(db, token) is None
    assert tokens.lookup(db, token)["user"]["id"] == "u1"


def test_unknown_token_is_none(db):
    assert tokens.validate(db, "not-a-token") is None
