"""`/v3/projects`: flat projects in a domain (parent_id is the domain; projects acting as domains are refused).
Disabling a project revokes its tokens; a user may read only the project their token is scoped to."""
from __future__ import annotations

from fastapi import Request
from sqlalchemy import false, select

from neutrino.identity import tokens
from neutrino.identity.bootstrap import DEFAULT_DOMAIN_ID
from neutrino.identity.crud import DESCRIPTION, ENABLED, Collection, fetch
from neutrino.identity.errors import bad, forbidden
from neutrino.identity.fields import truthy
from neutrino.identity.http import Json, caller, link
from neutrino.db.identity import Domain, Project, RoleAssignment


class Projects(Collection):
    kind, plural, model, scoped = "project", "projects", Project, True
    fields = {"description": DESCRIPTION, "enabled": ENABLED}
    duplicate = "project - it is not permitted to have two projects with the same name in the same domain : {name}"

    def view(self, request: Request, p: Project) -> Json:
        return {"id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description,
                "enabled": p.enabled, "parent_id": p.domain_id, "is_domain": False, "tags": [], "options": {},
                "links": {"self": link(request, f"projects/{p.id}")}}

    def filters(self, params) -> list:
        return [false()] if truthy(params.get("is_domain")) else super().filters(params)

    def domain_filter(self, params) -> str | None:
        return params.get("domain_id") or params.get("parent_id") or None

    def prepare_create(self, ref: Json) -> Json:
        if ref.get("is_domain"):
            raise bad("Projects acting as domains are not supported; create a domain instead.")
        return {}

    def owner(self, s, ref: Json) -> str:
        domain_id = ref.get("domain_id") or ref.get("parent_id") or DEFAULT_DOMAIN_ID
        fetch(s, Domain, domain_id, "domain")
        if ref.get("parent_id") and ref["parent_id"] != domain_id:
            raise bad("Nested projects are not supported: parent_id must be the project's domain.")
        return domain_id

    def updated(self, s, p: Project, ref: Json) -> None:
        if "enabled" in ref and not p.enabled:
            tokens.revoke_where(s, project_id=p.id)

    def authorize_show(self, request: Request, ident: str) -> None:
        ctx = caller(request)
        if not ctx.is_admin and ctx.project_id != ident:
            raise forbidden("get_project")


PROJECTS = Projects()


def user_projects(s, request: Request, user_id: str) -> list[Json]:
    """Views of the projects the user holds any role on, by name."""
    rows = s.scalars(select(Project).join(RoleAssignment, RoleAssignment.project_id == Project.id)
                     .where(RoleAssignment.user_id == user_id).distinct().order_by(Project.name)).all()
    return [PROJECTS.view(request, p) for p in rows]
