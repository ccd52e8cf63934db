"""`/v3/users`, plus self-service password change and the user's projects. A new password, or disabling the user,
revokes every token of the user; a user may read itself without the admin role."""
from __future__ import annotations

from typing import Any

from fastapi import Body, Request, Response

from neutrino.identity import tokens
from neutrino.identity.crud import DESCRIPTION, ENABLED, Collection, Field, fetch
from neutrino.identity.errors import AUTH_FAILED, KeystoneError, bad
from neutrino.identity.fields import password_hash
from neutrino.identity.http import Json, collection, link, member, read, self_or_admin, write
from neutrino.db.identity import Project, User
from neutrino.identity.passwords import verify_password
from neutrino.identity.projects import user_projects


def _default_project(s, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or s.get(Project, value) is None:
        raise bad(f"Invalid default_project_id: project {value!r} does not exist.")
    return value


class Users(Collection):
    kind, plural, model, scoped = "user", "users", User, True
    fields = {"description": DESCRIPTION, "email": Field(lambda s, v: v),
              "default_project_id": Field(_default_project), "enabled": ENABLED}
    duplicate = "user - Duplicate entry found with name {name} at domain ID {domain_id}."

    def view(self, request: Request, u: User) -> Json:
        view = {"id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
                "password_expires_at": None, "options": {}, "links": {"self": link(request, f"users/{u.id}")}}
        if u.default_project_id:
            view["default_project_id"] = u.default_project_id
        if u.description:
            view["description"] = u.description
        if u.email:
            view["email"] = u.email
        return view

    def prepare_create(self, ref: Json) -> Json:
        return {"password_hash": password_hash(ref["password"])} if ref.get("password") is not None else {}

    def prepare_update(self, ref: Json) -> Json:
        return {"password_hash": password_hash(ref["password"])} if "password" in ref else {}

    def updated(self, s, u: User, ref: Json) -> None:
        if "password" in ref or not u.enabled:
            tokens.revoke_where(s, user_id=u.id)

    def authorize_show(self, request: Request, ident: str) -> None:
        self_or_admin(request, "get_user", ident)


USERS = Users()


def change_password(request: Request, user_id: str, body: Json = Body(...)) -> Response:
    """Self-service: the original password must be right; every token of the user is revoked."""
    ref = member(body, "user")
    original = ref.get("original_password")
    stored = read(request, lambda s: fetch(s, User, user_id, "user").password_hash)
    if not isinstance(original, str) or not verify_password(original, stored):
        raise KeystoneError(401, AUTH_FAILED)
    new_hash = password_hash(ref.get("password"))

    def _change(s):
        fetch(s, User, user_id, "user").password_hash = new_hash
        tokens.revoke_where(s, user_id=user_id)
    write(request, _change)
    return Response(status_code=204)


def list_user_projects(request: Request, user_id: str) -> Json:
    self_or_admin(request, "list_user_projects", user_id)

    def _list(s):
        fetch(s, User, user_id, "user")
        return user_projects(s, request, user_id)
    return collection(request, "projects", read(request, _list))

