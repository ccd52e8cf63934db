"""Tokens: random secrets handed out once, stored only as their sha256, expiring (12 h by default), revocable.

`validate` runs on every API request, so a validated token's Context is cached in memory for a few seconds by
digest; anything that revokes tokens in this process drops the cache at once (`revoke`, `forget`). Other server
processes sharing the database notice a revocation within CACHE_SECONDS."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select, update

from neutrino.context import Context
from neutrino.db.identity import Domain, Project, Role, RoleAssignment, Token, User

TTL = timedelta(hours=12)
CACHE_SECONDS = 5.0
CACHE_MAX = 10000

_cache: dict[str, tuple[float, Context]] = {}   # digest -> (monotonic deadline, context)
_generation = [0]   # bumped by every revocation: a validation that read the DB before it is not cached


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> datetime:
    """Naive UTC, as stored in DateTime columns."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def isotime(dt: datetime) -> str:
    """Keystone's format; clients parse only `...Z` (not `+00:00`)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def context_for(project_id: str, project_name: str | None, user_id: str | None, user_name: str | None,
                roles: list[str]) -> Context:
    return Context(project_id=project_id, user_id=user_id, roles=list(roles), is_admin="admin" in roles,
                   project_name=project_name, user_name=user_name)


def project_roles(s, user_id: str, project_id: str) -> list[dict]:
    """[{id, name}] of the roles `user_id` has on `project_id`, sorted by name."""
    rows = s.execute(select(Role.id, Role.name).join(RoleAssignment, RoleAssignment.role_id == Role.id)
                     .where(RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id)
                     .order_by(Role.name)).all()
    return [{"id": rid, "name": name} for rid, name in rows]


def issue(db, user_id: str, project_id: str | None, methods: list[str], catalog: list | None = None,
          expires_at: datetime | None = None) -> tuple[str, dict]:
    """Store a new token for the user (scoped to project_id, or unscoped when None) and return it with its body.
    The roles are snapshotted now; expired rows are purged on the way."""
    token = secrets.token_hex(32)

    def _issue(s):
        now = utcnow()
        s.execute(delete(Token).where(Token.expires_at < now))
        roles = project_roles(s, user_id, project_id) if project_id else []
        row = Token(id=digest(token), user_id=user_id, project_id=project_id, roles=roles, methods=list(methods),
                    issued_at=now, expires_at=expires_at or now + TTL, revoked=False)
        s.add(row)
        s.flush()
        return _body(s, row, catalog)
    return token, db.run(_issue)


def _named(obj, s) -> dict:
    dom = s.get(Domain, obj.domain_id)
    return {"id": obj.id, "name": obj.name, "domain": {"id": dom.id, "name": dom.name}}


def _body(s, row: Token, catalog: list | None) -> dict:
    user = s.get(User, row.user_id)
    body = {"methods": row.methods, "user": {**_named(user, s), "password_expires_at": None},
            "audit_ids": [base64.urlsafe_b64encode(bytes.fromhex(row.id)[:16]).decode().rstrip("=")],
            "issued_at": isotime(row.issued_at), "expires_at": isotime(row.expires_at)}
    if row.project_id:
        body["project"] = _named(s.get(Project, row.project_id), s)
        body["is_domain"] = False
        body["roles"] = row.roles
        body["catalog"] = catalog or []
    return body


def _live(s, key: str) -> Token | None:
    """The token row if it is unrevoked, unexpired, and its user, project and their domains are enabled."""
    row = s.get(Token, key)
    if row is None or row.revoked or row.expires_at <= utcnow():
        return None
    owners = [s.get(User, row.user_id)] + ([s.get(Project, row.project_id)] if row.project_id else [])
    if not all(o.enabled and s.get(Domain, o.domain_id).enabled for o in owners):
        return None
    return row


def live_token(s, token: str) -> Token | None:
    return _live(s, digest(token))


def lookup(db, token: str, catalog: list | None = None) -> dict | None:
    """The body of a live token (for GET /v3/auth/tokens), or None."""
    def _lookup(s):
        row = _live(s, digest(token))
        return _body(s, row, catalog) if row else None
    return db.run(_lookup)


def _load(s, key: str) -> tuple[Context, datetime] | None:
    row = _live(s, key)
    if row is None or not row.project_id:
        return None
    user, project = s.get(User, row.user_id), s.get(Project, row.project_id)
    ctx = context_for(project.id, project.name, user.id, user.name, [r["name"] for r in row.roles])
    return ctx, row.expires_at


def validate(db, token: str) -> Context | None:
    """Context of a live project-scoped token, or None (the network API needs a project; unscoped tokens are for
    the identity API only)."""
    key = digest(token)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit and hit[0] > now:
        return dataclasses.replace(hit[1], roles=list(hit[1].roles))
    generation = _generation[0]
    found = db.run(_load, key)
    if found is None:
        _cache.pop(key, None)
        return None
    ctx, expires_at = found
    if generation == _generation[0]:
        left = (expires_at - utcnow()).total_seconds()
        remember(key, now + min(CACHE_SECONDS, left), ctx)
    return dataclasses.replace(ctx, roles=list(ctx.roles))


def remember(key: str, deadline: float, ctx: Context) -> None:
    """Cache ctx until the monotonic deadline; when the cache is full, drop the stale entries first."""
    if len(_cache) >= CACHE_MAX:
        now = time.monotonic()
        for k in [k for k, (d, _) in list(_cache.items()) if d <= now]:
            _cache.pop(k, None)
        if len(_cache) >= CACHE_MAX:
            _cache.clear()
    _cache[key] = (deadline, ctx)


def revoke(db, token: str) -> bool:
    """Revoke one token; False when it was not live."""
    key = digest(token)

    def _revoke(s):
        if _live(s, key) is None:
            return False
        s.execute(update(Token).where(Token.id == key).values(revoked=True))
        return True
    try:
        return db.run(_revoke)
    finally:
        _generation[0] += 1
        _cache.pop(key, None)


def revoke_where(s, *, user_id: str | None = None, project_id: str | None = None) -> None:
    """Revoke (in the caller's transaction) the tokens of a user, a project, or a user on a project; the caller
    calls `forget()` after commit."""
    stmt = update(Token).where(Token.revoked.is_(False))
    if user_id:
        stmt = stmt.where(Token.user_id == user_id)
    if project_id:
        stmt = stmt.where(Token.project_id == project_id)
    s.execute(stmt.values(revoked=True))


def forget() -> None:
    """Drop every cached validation (after identity changes that may revoke or reshape tokens)."""
    _generation[0] += 1
    _cache.clear()
