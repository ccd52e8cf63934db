"""`/v3/roles`: global roles only (domain-specific roles are refused). Deleting a role revokes the tokens of every
user on every project it was assigned on, since their role snapshot is stale."""
from __future__ import annotations

from fastapi import Request
from sqlalchemy import select

from neutrino.identity import tokens
from neutrino.identity.crud import DESCRIPTION, Collection
from neutrino.identity.errors import bad
from neutrino.identity.http import Json, link
from neutrino.db.identity import Role, RoleAssignment


class Roles(Collection):
    kind, plural, model = "role", "roles", Role
    fields = {"description": DESCRIPTION}
    duplicate = "role - Duplicate entry found with name {name}"

    def view(self, request: Request, r: Role) -> Json:
        return {"id": r.id, "name": r.name, "domain_id": None, "description": r.description or None,
                "options": {}, "links": {"self": link(request, f"roles/{r.id}")}}

    def prepare_create(self, ref: Json) -> Json:
        if ref.get("domain_id"):
            raise bad("Domain-specific roles are not supported.")
        return {}

    def deleting(self, s, r: Role) -> None:
        for a in s.scalars(select(RoleAssignment).where(RoleAssignment.role_id == r.id)):
            tokens.revoke_where(s, user_id=a.user_id, project_id=a.project_id)


ROLES = Roles()
