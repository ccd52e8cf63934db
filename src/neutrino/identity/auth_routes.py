"""`/v3/auth/*`: issuing tokens (password or token method, optionally project-scoped), validating, checking and
revoking them, and the caller's catalog and projects."""
from __future__ import annotations

from typing import Any

from fastapi import Body, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from neutrino.identity import tokens
from neutrino.identity.catalog import catalog
from neutrino.identity.errors import AUTH_FAILED, KeystoneError, bad
from neutrino.identity.http import Json, caller, collection, database, member, read, settings
from neutrino.db.identity import Domain, Project, User
from neutrino.identity.passwords import verify_password
from neutrino.identity.projects import user_projects


def _domain_ref(s, ref: Any) -> Domain:
    if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
        raise KeystoneError(401, AUTH_FAILED)
    if ref.get("id"):
        dom = s.get(Domain, ref["id"])
    else:
        dom = s.scalar(select(Domain).where(Domain.name == ref["name"]))
    if dom is None or not dom.enabled:
        raise KeystoneError(401, AUTH_FAILED)
    return dom


def _referenced(s, model, ref: Json, where: str):
    """The user or project a reference names by id, or by name + domain; None when there is none."""
    if ref.get("id"):
        return s.get(model, ref["id"])
    if ref.get("name"):
        dom = _domain_ref(s, ref.get("domain"))
        return s.scalar(select(model).where(model.domain_id == dom.id, model.name == ref["name"]))
    raise bad(f"Expecting to find id or name in {where}.")


def _password_user(s, ref: Any) -> tuple[str | None, str | None, str]:
    """(user id, password hash) of the user a password-method reference names (id, or name + domain), and the
    password given; (None, None, password) for an unknown user."""
    if not isinstance(ref, dict) or not isinstance(ref.get("password"), str):
        raise bad("Expecting to find password in identity.password.user.")
    user = _referenced(s, User, ref, "identity.password.user")
    return (user.id, user.password_hash, ref["password"]) if user else (None, None, ref["password"])


def _scope_project(s, scope: Any, user: User) -> str | None:
    """The project id the token is to be scoped to (None: unscoped); 401 when the user has no role there."""
    if scope is None:
        if user.default_project_id and tokens.project_roles(s, user.id, user.default_project_id):
            project = s.get(Project, user.default_project_id)
            if project.enabled and s.get(Domain, project.domain_id).enabled:
                return project.id
        return None
    if scope == "unscoped":
        return None
    if not isinstance(scope, dict) or not isinstance(scope.get("project"), dict):
        raise bad("Only project scope is supported.")
    project = _referenced(s, Project, scope["project"], "scope.project")
    if project is None or not project.enabled or not s.get(Domain, project.domain_id).enabled:
        raise KeystoneError(401, AUTH_FAILED)
    if not tokens.project_roles(s, user.id, project.id):
        raise KeystoneError(401, f"User {user.id} has no access to project {project.id}")
    return project.id


def create_token(request: Request, body: Json = Body(...)) -> Response:
    auth = member(body, "auth")
    identity = member(auth, "identity")
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods:
        raise bad("Expecting to find methods in identity.")
    expires_at = None
    if "password" in methods:
        user_id, stored, password = read(request,
                                         lambda s: _password_user(s, member(identity, "password").get("user")))
        # verified outside the transaction (the slow part); an unknown user costs the same time
        if not verify_password(password, stored):
            raise KeystoneError(401, AUTH_FAILED)
    elif "token" in methods:
        secret = member(identity, "token").get("id")

        def _owner(s):
            row = tokens.live_token(s, secret) if isinstance(secret, str) else None
            if row is None:
                raise KeystoneError(404, "Failed to validate token")
            return row.user_id, row.expires_at
        user_id, expires_at = read(request, _owner)
    else:
        raise KeystoneError(401, "Unsupported authentication method.")

    def _scope(s):
        user = s.get(User, user_id)
        if user is None or not user.enabled or not s.get(Domain, user.domain_id).enabled:
            raise KeystoneError(401, AUTH_FAILED)
        return _scope_project(s, auth.get("scope"), user)
    project_id = read(request, _scope)
    token, token_body = tokens.issue(database(request), user_id, project_id,
                                     [m for m in methods if m in ("password", "token")],
                                     catalog=catalog(settings(request)), expires_at=expires_at)
    return JSONResponse({"token": token_body}, status_code=201, headers={"X-Subject-Token": token})


def _subject(request: Request) -> Json:
    """Body of the X-Subject-Token the caller may see (its own, or any when admin/service); 404 otherwise."""
    ctx = caller(request)
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise bad("X-Subject-Token header is required.")
    cat = None if "nocatalog" in request.query_params else catalog(settings(request))
    body = tokens.lookup(database(request), subject, catalog=cat)
    if body is None or not (ctx.is_admin or "service" in ctx.roles or body["user"]["id"] == ctx.user_id):
        raise KeystoneError(404, "Failed to validate token")
    if cat is None:
        body.pop("catalog", None)
    return body


def validate_token(request: Request) -> Response:
    return JSONResponse({"token": _subject(request)},
                        headers={"X-Subject-Token": request.headers.get("x-subject-token", "")})


def check_token(request: Request) -> Response:
    _subject(request)
    return Response(status_code=200)


def revoke_token(request: Request) -> Response:
    _subject(request)
    tokens.revoke(database(request), request.headers["x-subject-token"])
    return Response(status_code=204)


def auth_catalog(request: Request) -> Json:
    caller(request)
    return {"catalog": catalog(settings(request)), "links": {"self": str(request.url)}}


def auth_projects(request: Request) -> Json:
    ctx = caller(request)
    return collection(request, "projects",
                      read(request, lambda s: user_projects(s, request, ctx.user_id)) if ctx.user_id else [])

