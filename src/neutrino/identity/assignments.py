"""Role assignments: a user's roles on a project (`/v3/projects/{p}/users/{u}/roles[/{r}]`) and the
`/v3/role_assignments` listing. Revoking a role revokes the user's tokens on that project (their role snapshot is
stale)."""
from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy import select

from neutrino.identity import tokens
from neutrino.identity.crud import fetch
from neutrino.identity.errors import not_found
from neutrino.identity.fields import truthy
from neutrino.identity.http import Json, collection, link, read, require_admin, self_or_admin, write
from neutrino.db.identity import Domain, Project, Role, RoleAssignment, User
from neutrino.identity.roles import ROLES


def _grant_parts(s, project_id: str, user_id: str, role_id: str | None = None) -> None:
    fetch(s, Project, project_id, "project")
    fetch(s, User, user_id, "user")
    if role_id is not None:
        fetch(s, Role, role_id, "role")


def list_grants(request: Request, project_id: str, user_id: str) -> Json:
    self_or_admin(request, "list_grants", user_id)

    def _list(s):
        _grant_parts(s, project_id, user_id)
        return [ROLES.view(request, s.get(Role, r["id"])) for r in tokens.project_roles(s, user_id, project_id)]
    return collection(request, "roles", read(request, _list))


def create_grant(request: Request, project_id: str, user_id: str, role_id: str) -> Response:
    require_admin(request, "create_grant")

    def _grant(s):
        _grant_parts(s, project_id, user_id, role_id)
        if s.get(RoleAssignment, (user_id, project_id, role_id)) is None:
            s.add(RoleAssignment(user_id=user_id, project_id=project_id, role_id=role_id))
    write(request, _grant)
    return Response(status_code=204)


def check_grant(request: Request, project_id: str, user_id: str, role_id: str) -> Response:
    self_or_admin(request, "check_grant", user_id)

    def _check(s):
        _grant_parts(s, project_id, user_id, role_id)
        if s.get(RoleAssignment, (user_id, project_id, role_id)) is None:
            raise not_found("role assignment", role_id)
    read(request, _check)
    return Response(status_code=204)


def revoke_grant(request: Request, project_id: str, user_id: str, role_id: str) -> Response:
    require_admin(request, "revoke_grant")

    def _revoke(s):
        _grant_parts(s, project_id, user_id, role_id)
        grant = s.get(RoleAssignment, (user_id, project_id, role_id))
        if grant is None:
            raise not_found("role assignment", role_id)
        s.delete(grant)
        tokens.revoke_where(s, user_id=user_id, project_id=project_id)
    write(request, _revoke)
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
            "links": {"assignment": link(request, f"projects/{a.project_id}/users/{a.user_id}/roles/{a.role_id}")}}


def list_role_assignments(request: Request) -> Json:
    """Filters: user.id, scope.project.id, role.id (group and domain/system scopes never match here)."""
    params = request.query_params
    self_or_admin(request, "list_role_assignments", params.get("user.id"))
    if any(k in params for k in ("group.id", "scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to")):
        return collection(request, "role_assignments", [])
    names = "include_names" in params and (params["include_names"] == "" or truthy(params["include_names"]))

    def _list(s):
        q = select(RoleAssignment).order_by(RoleAssignment.project_id, RoleAssignment.user_id)
        for key, column in (("user.id", RoleAssignment.user_id), ("scope.project.id", RoleAssignment.project_id),
                            ("role.id", RoleAssignment.role_id)):
            if key in params:
                q = q.where(column == params[key])
        return [_assignment_view(request, s, a, names) for a in s.scalars(q)]
    return collection(request, "role_assignments", read(request, _list))

