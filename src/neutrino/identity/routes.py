"""The Keystone v3 subset over HTTP: version document, tokens, and CRUD for domains, projects, users, roles and
role assignments, shaped as Keystone answers them (so `openstack project/user/role ...` work unmodified).

Callers are authenticated by the same seam as the network API (neutrino.api.auth); writes need the admin role.
The Database and Settings come from `request.app.state.db` / `request.app.state.settings`."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from neutrino.api.auth import authenticate
from neutrino.context import Context
from neutrino.errors import NeutrinoError
from neutrino.identity import tokens
from neutrino.identity.bootstrap import DEFAULT_DOMAIN_ID, new_id
from neutrino.identity.catalog import catalog, endpoint_list, service_list
from neutrino.identity.models import Domain, Project, Role, RoleAssignment, User
from neutrino.identity.passwords import hash_password, verify_password

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
          500: "Internal Server Error", 503: "Service Unavailable"}
AUTH_FAILED = "The request you have made requires authentication."
FALSE = {"0", "false", "f", "no", "n", "off"}
Json = dict[str, Any]


class KeystoneError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"code": self.code, "title": TITLES.get(self.code, "Error"),
                                       "message": self.message}}, status_code=self.code)


def not_found(kind: str, ident: str) -> KeystoneError:
    return KeystoneError(404, f"Could not find {kind}: {ident}.")


def bad(message: str) -> KeystoneError:
    return KeystoneError(400, message)


class KeystoneRoute(APIRoute):
    """Answers every failure of this router in Keystone's error shape (routers cannot carry exception handlers)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def keystone_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except KeystoneError as e:
                return e.response()
            except RequestValidationError:
                return bad("Expecting to find a JSON object in the request body.").response()
            except NeutrinoError as e:
                return KeystoneError(e.code, e.message).response()
            except IntegrityError:
                return KeystoneError(409, "Conflict occurred attempting to store the object.").response()
        return keystone_errors


router = APIRouter(prefix="/v3", route_class=KeystoneRoute)


# --- plumbing -------------------------------------------------------------------------------------------------

def _db(request: Request):
    return request.app.state.db


def _settings(request: Request):
    return request.app.state.settings


def caller(request: Request) -> Context:
    return authenticate(request.headers, _settings(request), _db(request))


def require_admin(request: Request, action: str) -> Context:
    ctx = caller(request)
    if not ctx.is_admin:
        raise KeystoneError(403, f"You are not authorized to perform the requested action: identity:{action}.")
    return ctx


def _self_or_admin(request: Request, action: str, user_id: str | None) -> Context:
    ctx = caller(request)
    if not ctx.is_admin and (user_id is None or ctx.user_id != user_id):
        raise KeystoneError(403, f"You are not authorized to perform the requested action: identity:{action}.")
    return ctx


def _write(request: Request, fn, *args):
    """Run an identity write; cached token validations are dropped afterwards since it may revoke some."""
    try:
        return _db(request).run(fn, *args)
    finally:
        tokens.forget()


def _read(request: Request, fn, *args):
    return _db(request).run(fn, *args)


def _link(request: Request, path: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/v3/{path}"


def _collection(request: Request, key: str, items: list) -> Json:
    return {key: items, "links": {"self": str(request.url), "previous": None, "next": None}}


def _member(body: Json, key: str) -> Json:
    value = body.get(key)
    if not isinstance(value, dict):
        raise bad(f"Expecting to find {key} in the request body.")
    return value


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() not in FALSE


def _name(value: Any, kind: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise bad(f"Invalid {kind} name: {value!r}.")
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise bad(f"Invalid input for field '{field}': {value!r} is not of type 'boolean'.")
    return value


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad(f"Invalid input for field '{field}': {value!r} is not of type 'string'.")
    return value


def _get(s, model, ident: str, kind: str):
    obj = s.get(model, ident)
    if obj is None:
        raise not_found(kind, ident)
    return obj


def _unique(s, model, message: str, **where) -> None:
    if s.scalar(select(model).filter_by(**where)) is not None:
        raise KeystoneError(409, f"Conflict occurred attempting to store {message}.")


# --- views ----------------------------------------------------------------------------------------------------

def domain_view(request: Request, d: Domain) -> Json:
    return {"id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled, "tags": [],
            "options": {}, "links": {"self": _link(request, f"domains/{d.id}")}}


def project_view(request: Request, p: Project) -> Json:
    return {"id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description,
            "enabled": p.enabled, "parent_id": p.domain_id, "is_domain": False, "tags": [], "options": {},
            "links": {"self": _link(request, f"projects/{p.id}")}}


def user_view(request: Request, u: User) -> Json:
    view = {"id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
            "password_expires_at": None, "options": {}, "links": {"self": _link(request, f"users/{u.id}")}}
    if u.default_project_id:
        view["default_project_id"] = u.default_project_id
    if u.description:
        view["description"] = u.description
    if u.email:
        view["email"] = u.email
    return view


def role_view(request: Request, r: Role) -> Json:
    return {"id": r.id, "name": r.name, "domain_id": None, "description": r.description or None, "options": {},
            "links": {"self": _link(request, f"roles/{r.id}")}}


# --- version --------------------------------------------------------------------------------------------------

@router.get("")
@router.get("/")
def version(request: Request) -> Json:
    return {"version": {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                        "links": [{"rel": "self", "href": _link(request, "")}],
                        "media-types": [{"base": "application/json",
                                         "type": "application/vnd.openstack.identity-v3+json"}]}}


# --- tokens ---------------------------------------------------------------------------------------------------

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


def _password_user(s, ref: Any) -> tuple[str | None, str | None, str]:
    """(user id, password hash) of the user a password-method reference names (id, or name + domain), and the
    password given; (None, None, password) for an unknown user."""
    if not isinstance(ref, dict) or not isinstance(ref.get("password"), str):
        raise bad("Expecting to find password in identity.password.user.")
    if ref.get("id"):
        user = s.get(User, ref["id"])
    elif ref.get("name"):
        dom = _domain_ref(s, ref.get("domain"))
        user = s.scalar(select(User).where(User.domain_id == dom.id, User.name == ref["name"]))
    else:
        raise bad("Expecting to find id or name in identity.password.user.")
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
    ref = scope["project"]
    if ref.get("id"):
        project = s.get(Project, ref["id"])
    elif ref.get("name"):
        dom = _domain_ref(s, ref.get("domain"))
        project = s.scalar(select(Project).where(Project.domain_id == dom.id, Project.name == ref["name"]))
    else:
        raise bad("Expecting to find id or name in scope.project.")
    if project is None or not project.enabled or not s.get(Domain, project.domain_id).enabled:
        raise KeystoneError(401, AUTH_FAILED)
    if not tokens.project_roles(s, user.id, project.id):
        raise KeystoneError(401, f"User {user.id} has no access to project {project.id}")
    return project.id


@router.post("/auth/tokens")
def create_token(request: Request, body: Json = Body(...)) -> Response:
    auth = _member(body, "auth")
    identity = _member(auth, "identity")
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods:
        raise bad("Expecting to find methods in identity.")
    db = _db(request)
    expires_at = None
    if "password" in methods:
        user_id, stored, password = _read(request,
                                          lambda s: _password_user(s, _member(identity, "password").get("user")))
        # verified outside the transaction (the slow part); an unknown user costs the same time
        if not verify_password(password, stored):
            raise KeystoneError(401, AUTH_FAILED)
    elif "token" in methods:
        secret = _member(identity, "token").get("id")

        def _owner(s):
            row = tokens.live_token(s, secret) if isinstance(secret, str) else None
            if row is None:
                raise KeystoneError(404, "Failed to validate token")
            return row.user_id, row.expires_at
        user_id, expires_at = _read(request, _owner)
    else:
        raise KeystoneError(401, "Unsupported authentication method.")

    def _scope(s):
        user = s.get(User, user_id)
        if user is None or not user.enabled or not s.get(Domain, user.domain_id).enabled:
            raise KeystoneError(401, AUTH_FAILED)
        return _scope_project(s, auth.get("scope"), user)
    project_id = _read(request, _scope)
    token, token_body = tokens.issue(db, user_id, project_id, [m for m in methods if m in ("password", "token")],
                                     catalog=catalog(_settings(request)), expires_at=expires_at)
    return JSONResponse({"token": token_body}, status_code=201, headers={"X-Subject-Token": token})


def _subject(request: Request) -> Json:
    """Body of the X-Subject-Token the caller may see (its own, or any when admin/service); 404 otherwise."""
    ctx = caller(request)
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise bad("X-Subject-Token header is required.")
    cat = None if "nocatalog" in request.query_params else catalog(_settings(request))
    body = tokens.lookup(_db(request), subject, catalog=cat)
    if body is None or not (ctx.is_admin or "service" in ctx.roles or body["user"]["id"] == ctx.user_id):
        raise KeystoneError(404, "Failed to validate token")
    if cat is None:
        body.pop("catalog", None)
    return body


@router.get("/auth/tokens")
def validate_token(request: Request) -> Response:
    return JSONResponse({"token": _subject(request)},
                        headers={"X-Subject-Token": request.headers.get("x-subject-token", "")})


@router.head("/auth/tokens")
def check_token(request: Request) -> Response:
    _subject(request)
    return Response(status_code=200)


@router.delete("/auth/tokens")
def revoke_token(request: Request) -> Response:
    _subject(request)
    tokens.revoke(_db(request), request.headers["x-subject-token"])
    return Response(status_code=204)


@router.get("/auth/catalog")
def auth_catalog(request: Request) -> Json:
    caller(request)
    return {"catalog": catalog(_settings(request)), "links": {"self": str(request.url)}}


def _user_projects(s, request: Request, user_id: str) -> list[Json]:
    rows = s.scalars(select(Project).join(RoleAssignment, RoleAssignment.project_id == Project.id)
                     .where(RoleAssignment.user_id == user_id).distinct().order_by(Project.name)).all()
    return [project_view(request, p) for p in rows]


@router.get("/auth/projects")
def auth_projects(request: Request) -> Json:
    ctx = caller(request)
    return _collection(request, "projects",
                       _read(request, lambda s: _user_projects(s, request, ctx.user_id)) if ctx.user_id else [])


# --- services, endpoints, regions (read-only: the catalog is built from settings) ------------------------------

@router.get("/services")
def services(request: Request) -> Json:
    caller(request)
    return _collection(request, "services", service_list(_settings(request)))


@router.get("/endpoints")
def endpoints(request: Request) -> Json:
    caller(request)
    return _collection(request, "endpoints", endpoint_list(_settings(request)))


@router.get("/regions")
def regions(request: Request) -> Json:
    caller(request)
    region = _settings(request).region
    return _collection(request, "regions", [{"id": region, "description": "", "parent_region_id": None,
                                             "links": {"self": _link(request, f"regions/{region}")}}])


# --- domains --------------------------------------------------------------------------------------------------

@router.get("/domains")
def list_domains(request: Request, name: str | None = None, enabled: str | None = None) -> Json:
    require_admin(request, "list_domains")

    def _list(s):
        q = select(Domain).order_by(Domain.name)
        if name is not None:
            q = q.where(Domain.name == name)
        if enabled is not None:
            q = q.where(Domain.enabled.is_(_truthy(enabled)))
        return [domain_view(request, d) for d in s.scalars(q)]
    return _collection(request, "domains", _read(request, _list))


@router.post("/domains", status_code=201)
def create_domain(request: Request, body: Json = Body(...)) -> Json:
    require_admin(request, "create_domain")
    ref = _member(body, "domain")

    def _create(s):
        name = _name(ref.get("name"), "domain")
        _unique(s, Domain, f"domain - it is not permitted to have two domains with the same name: {name}",
                name=name)
        d = Domain(id=ref.get("id") or new_id(), name=name, description=_text(ref.get("description"), "description"),
                   enabled=_bool(ref.get("enabled", True), "enabled"))
        s.add(d)
        s.flush()
        return {"domain": domain_view(request, d)}
    return _write(request, _create)


@router.get("/domains/{domain_id}")
def show_domain(request: Request, domain_id: str) -> Json:
    require_admin(request, "get_domain")
    return {"domain": _read(request, lambda s: domain_view(request, _get(s, Domain, domain_id, "domain")))}


@router.patch("/domains/{domain_id}")
def update_domain(request: Request, domain_id: str, body: Json = Body(...)) -> Json:
    require_admin(request, "update_domain")
    ref = _member(body, "domain")

    def _update(s):
        d = _get(s, Domain, domain_id, "domain")
        if "name" in ref and ref["name"] != d.name:
            d.name = _name(ref["name"], "domain")
            _unique(s, Domain, f"domain - it is not permitted to have two domains with the same name: {d.name}",
                    name=d.name)
        if "description" in ref:
            d.description = _text(ref["description"], "description")
        if "enabled" in ref:
            d.enabled = _bool(ref["enabled"], "enabled")
        s.flush()
        return {"domain": domain_view(request, d)}
    return _write(request, _update)


@router.delete("/domains/{domain_id}", status_code=204)
def delete_domain(request: Request, domain_id: str) -> Response:
    require_admin(request, "delete_domain")

    def _delete(s):
        d = _get(s, Domain, domain_id, "domain")
        if d.enabled:
            raise KeystoneError(403, "Cannot delete a domain that is enabled, please disable it first.")
        s.delete(d)
    _write(request, _delete)
    return Response(status_code=204)


# --- projects -------------------------------------------------------------------------------------------------

@router.get("/projects")
def list_projects(request: Request, name: str | None = None, domain_id: str | None = None,
                  enabled: str | None = None, is_domain: str | None = None, parent_id: str | None = None) -> Json:
    require_admin(request, "list_projects")
    if is_domain is not None and _truthy(is_domain):
        return _collection(request, "projects", [])

    def _list(s):
        q = select(Project).order_by(Project.name)
        if name is not None:
            q = q.where(Project.name == name)
        if domain_id or parent_id:
            q = q.where(Project.domain_id == (domain_id or parent_id))
        if enabled is not None:
            q = q.where(Project.enabled.is_(_truthy(enabled)))
        return [project_view(request, p) for p in s.scalars(q)]
    return _collection(request, "projects", _read(request, _list))


@router.post("/projects", status_code=201)
def create_project(request: Request, body: Json = Body(...)) -> Json:
    require_admin(request, "create_project")
    ref = _member(body, "project")
    if ref.get("is_domain"):
        raise bad("Projects acting as domains are not supported; create a domain instead.")

    def _create(s):
        name = _name(ref.get("name"), "project")
        domain_id = ref.get("domain_id") or ref.get("parent_id") or DEFAULT_DOMAIN_ID
        _get(s, Domain, domain_id, "domain")
        if ref.get("parent_id") and ref["parent_id"] != domain_id:
            raise bad("Nested projects are not supported: parent_id must be the project's domain.")
        _unique(s, Project, "project - it is not permitted to have two projects with the same name in the same "
                f"domain : {name}", domain_id=domain_id, name=name)
        p = Project(id=new_id(), domain_id=domain_id, name=name, enabled=_bool(ref.get("enabled", True), "enabled"),
                    description=_text(ref.get("description"), "description"))
        s.add(p)
        s.flush()
        return {"project": project_view(request, p)}
    return _write(request, _create)


@router.get("/projects/{project_id}")
def show_project(request: Request, project_id: str) -> Json:
    ctx = caller(request)
    if not ctx.is_admin and ctx.project_id != project_id:
        raise KeystoneError(403, "You are not authorized to perform the requested action: identity:get_project.")
    return {"project": _read(request, lambda s: project_view(request, _get(s, Project, project_id, "project")))}


@router.patch("/projects/{project_id}")
def update_project(request: Request, project_id: str, body: Json = Body(...)) -> Json:
    require_admin(request, "update_project")
    ref = _member(body, "project")

    def _update(s):
        p = _get(s, Project, project_id, "project")
        if "name" in ref and ref["name"] != p.name:
            p.name = _name(ref["name"], "project")
            _unique(s, Project, "project - it is not permitted to have two projects with the same name in the "
                    f"same domain : {p.name}", domain_id=p.domain_id, name=p.name)
        if "description" in ref:
            p.description = _text(ref["description"], "description")
        if "enabled" in ref:
            p.enabled = _bool(ref["enabled"], "enabled")
            if not p.enabled:
                tokens.revoke_where(s, project_id=p.id)
        s.flush()
        return {"project": project_view(request, p)}
    return _write(request, _update)


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(request: Request, project_id: str) -> Response:
    require_admin(request, "delete_project")
    _write(request, lambda s: s.delete(_get(s, Project, project_id, "project")))
    return Response(status_code=204)


# --- users ----------------------------------------------------------------------------------------------------

@router.get("/users")
def list_users(request: Request, name: str | None = None, domain_id: str | None = None,
               enabled: str | None = None) -> Json:
    require_admin(request, "list_users")

    def _list(s):
        q = select(User).order_by(User.name)
        if name is not None:
            q = q.where(User.name == name)
        if domain_id is not None:
            q = q.where(User.domain_id == domain_id)
        if enabled is not None:
            q = q.where(User.enabled.is_(_truthy(enabled)))
        return [user_view(request, u) for u in s.scalars(q)]
    return _collection(request, "users", _read(request, _list))


def _password(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise bad("Invalid input for field 'password': a non-empty string is required.")
    return hash_password(value)


def _default_project(s, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or s.get(Project, value) is None:
        raise bad(f"Invalid default_project_id: project {value!r} does not exist.")
    return value


@router.post("/users", status_code=201)
def create_user(request: Request, body: Json = Body(...)) -> Json:
    require_admin(request, "create_user")
    ref = _member(body, "user")
    password_hash = _password(ref["password"]) if ref.get("password") is not None else None

    def _create(s):
        name = _name(ref.get("name"), "user")
        domain_id = ref.get("domain_id") or DEFAULT_DOMAIN_ID
        _get(s, Domain, domain_id, "domain")
        _unique(s, User, f"user - Duplicate entry found with name {name} at domain ID {domain_id}.",
                domain_id=domain_id, name=name)
        u = User(id=new_id(), domain_id=domain_id, name=name, enabled=_bool(ref.get("enabled", True), "enabled"),
                 description=_text(ref.get("description"), "description"), email=ref.get("email"),
                 password_hash=password_hash, default_project_id=_default_project(s, ref.get("default_project_id")))
        s.add(u)
        s.flush()
        return {"user": user_view(request, u)}
    return _write(request, _create)


@router.get("/users/{user_id}")
def show_user(request: Request, user_id: str) -> Json:
    _self_or_admin(request, "get_user", user_id)
    return {"user": _read(request, lambda s: user_view(request, _get(s, User, user_id, "user")))}


@router.patch("/users/{user_id}")
def update_user(request: Request, user_id: str, body: Json = Body(...)) -> Json:
    require_admin(request, "update_user")
    ref = _member(body, "user")
    password_hash = _password(ref["password"]) if "password" in ref else None

    def _update(s):
        u = _get(s, User, user_id, "user")
        if "name" in ref and ref["name"] != u.name:
            u.name = _name(ref["name"], "user")
            _unique(s, User, f"user - Duplicate entry found with name {u.name} at domain ID {u.domain_id}.",
                    domain_id=u.domain_id, name=u.name)
        if "description" in ref:
            u.description = _text(ref["description"], "description")
        if "email" in ref:
            u.email = ref["email"]
        if "default_project_id" in ref:
            u.default_project_id = _default_project(s, ref["default_project_id"])
        if "enabled" in ref:
            u.enabled = _bool(ref["enabled"], "enabled")
        if password_hash or not u.enabled:
            if password_hash:
                u.password_hash = password_hash
            tokens.revoke_where(s, user_id=u.id)
        s.flush()
        return {"user": user_view(request, u)}
    return _write(request, _update)


@router.delete("/users/{user_id}", status_code=204)
def delete_user(request: Request, user_id: str) -> Response:
    require_admin(request, "delete_user")
    _write(request, lambda s: s.delete(_get(s, User, user_id, "user")))
    return Response(status_code=204)


@router.post("/users/{user_id}/password", status_code=204)
def change_password(request: Request, user_id: str, body: Json = Body(...)) -> Response:
    """Self-service: the original password must be right; every token of the user is revoked."""
    ref = _member(body, "user")
    original = ref.get("original_password")
    stored = _read(request, lambda s: _get(s, User, user_id, "user").password_hash)
    if not isinstance(original, str) or not verify_password(original, stored):
        raise KeystoneError(401, AUTH_FAILED)
    new_hash = _password(ref.get("password"))

    def _change(s):
        _get(s, User, user_id, "user").password_hash = new_hash
        tokens.revoke_where(s, user_id=user_id)
    _write(request, _change)
    return Response(status_code=204)


@router.get("/users/{user_id}/projects")
def user_projects(request: Request, user_id: str) -> Json:
    _self_or_admin(request, "list_user_projects", user_id)

    def _list(s):
        _get(s, User, user_id, "user")
        return _user_projects(s, request, user_id)
    return _collection(request, "projects", _read(request, _list))


# --- roles ----------------------------------------------------------------------------------------------------

@router.get("/roles")
def list_roles(request: Request, name: str | None = None) -> Json:
    require_admin(request, "list_roles")

    def _list(s):
        q = select(Role).order_by(Role.name)
        if name is not None:
            q = q.where(Role.name == name)
        return [role_view(request, r) for r in s.scalars(q)]
    return _collection(request, "roles", _read(request, _list))


@router.post("/roles", status_code=201)
def create_role(request: Request, body: Json = Body(...)) -> Json:
    require_admin(request, "create_role")
    ref = _member(body, "role")
    if ref.get("domain_id"):
        raise bad("Domain-specific roles are not supported.")

    def _create(s):
        name = _name(ref.get("name"), "role")
        _unique(s, Role, f"role - Duplicate entry found with name {name}", name=name)
        r = Role(id=new_id(), name=name, description=_text(ref.get("description"), "description"))
        s.add(r)
        s.flush()
        return {"role": role_view(request, r)}
    return _write(request, _create)


@router.get("/roles/{role_id}")
def show_role(request: Request, role_id: str) -> Json:
    require_admin(request, "get_role")
    return {"role": _read(request, lambda s: role_view(request, _get(s, Role, role_id, "role")))}


@router.patch("/roles/{role_id}")
def update_role(request: Request, role_id: str, body: Json = Body(...)) -> Json:
    require_admin(request, "update_role")
    ref = _member(body, "role")

    def _update(s):
        r = _get(s, Role, role_id, "role")
        if "name" in ref and ref["name"] != r.name:
            r.name = _name(ref["name"], "role")
            _unique(s, Role, f"role - Duplicate entry found with name {r.name}", name=r.name)
        if "description" in ref:
            r.description = _text(ref["description"], "description")
        s.flush()
        return {"role": role_view(request, r)}
    return _write(request, _update)


@router.delete("/roles/{role_id}", status_code=204)
def delete_role(request: Request, role_id: str) -> Response:
    require_admin(request, "delete_role")

    def _delete(s):
        r = _get(s, Role, role_id, "role")
        for a in s.scalars(select(RoleAssignment).where(RoleAssignment.role_id == r.id)):
            tokens.revoke_where(s, user_id=a.user_id, project_id=a.project_id)
        s.delete(r)
    _write(request, _delete)
    return Response(status_code=204)


# --- role assignments -----------------------------------------------------------------------------------------

def _grant_parts(s, project_id: str, user_id: str, role_id: str | None = None) -> None:
    _get(s, Project, project_id, "project")
    _get(s, User, user_id, "user")
    if role_id is not None:
        _get(s, Role, role_id, "role")


@router.get("/projects/{project_id}/users/{user_id}/roles")
def list_grants(request: Request, project_id: str, user_id: str) -> Json:
    _self_or_admin(request, "list_grants", user_id)

    def _list(s):
        _grant_parts(s, project_id, user_id)
        return [role_view(request, s.get(Role, r["id"])) for r in tokens.project_roles(s, user_id, project_id)]
    return _collection(request, "roles", _read(request, _list))


@router.put("/projects/{project_id}/users/{user_id}/roles/{role_id}", status_code=204)
def create_grant(request: Request, project_id: str, user_id: str, role_id: str) -> Response:
    require_admin(request, "create_grant")

    def _grant(s):
        _grant_parts(s, project_id, user_id, role_id)
        if s.get(RoleAssignment, (user_id, project_id, role_id)) is None:
            s.add(RoleAssignment(user_id=user_id, project_id=project_id, role_id=role_id))
    _write(request, _grant)
    return Response(status_code=204)


@router.head("/projects/{project_id}/users/{user_id}/roles/{role_id}")
def check_grant(request: Request, project_id: str, user_id: str, role_id: str) -> Response:
    _self_or_admin(request, "check_grant", user_id)

    def _check(s):
        _grant_parts(s, project_id, user_id, role_id)
        if s.get(RoleAssignment, (user_id, project_id, role_id)) is None:
            raise not_found("role assignment", role_id)
    _read(request, _check)
    return Response(status_code=204)


@router.delete("/projects/{project_id}/users/{user_id}/roles/{role_id}", status_code=204)
def revoke_grant(request: Request, project_id: str, user_id: str, role_id: str) -> Response:
    """Removing a role revokes the user's tokens on that project (their role snapshot is stale)."""
    require_admin(request, "revoke_grant")

    def _revoke(s):
        _grant_parts(s, project_id, user_id, role_id)
        grant = s.get(RoleAssignment, (user_id, project_id, role_id))
        if grant is None:
            raise not_found("role assignment", role_id)
        s.delete(grant)
        tokens.revoke_where(s, user_id=user_id, project_id=project_id)
    _write(request, _revoke)
    return Response(status_code=204)


def _assignment_view(request: Request, s, a: RoleAssignment, names: bool) -> Json:
    role, user, project = {"id": a.role_id}, {"id": a.user_id}, {"id": a.project_id}
    if names:
        r, u, p = s.get(Role, a.role_id), s.get(User, a.user_id), s.get(Project, a.project_id)
        udom, pdom = s.get(Domain, u.domain_id), s.get(Domain, p.domain_id)
        role["name"] = r.name
        user.update(name=u.name, domain={"id": udom.id, "name": udom.name})
        project.update(name=p.name, domain={"id": pdom.id, "name": pdom.name})
    return {"role": role, "user": user, "scope": {"project": project},
            "links": {"assignment": _link(request, f"projects/{a.project_id}/users/{a.user_id}/roles/{a.role_id}")}}


@router.get("/role_assignments")
def list_role_assignments(request: Request) -> Json:
    """Filters: user.id, scope.project.id, role.id (group and domain/system scopes never match here)."""
    params = request.query_params
    _self_or_admin(request, "list_role_assignments", params.get("user.id"))
    if any(k in params for k in ("group.id", "scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to")):
        return _collection(request, "role_assignments", [])
    names = "include_names" in params and (params["include_names"] == "" or _truthy(params["include_names"]))

    def _list(s):
        q = select(RoleAssignment).order_by(RoleAssignment.project_id, RoleAssignment.user_id)
        for key, column in (("user.id", RoleAssignment.user_id), ("scope.project.id", RoleAssignment.project_id),
                            ("role.id", RoleAssignment.role_id)):
            if key in params:
                q = q.where(column == params[key])
        return [_assignment_view(request, s, a, names) for a in s.scalars(q)]
    return _collection(request, "role_assignments", _read(request, _list))
