"""`/v3/domains`: a domain must be disabled before it may be deleted (deleting cascades to its projects and users)."""
from __future__ import annotations

from fastapi import Request

from neutrino.identity.bootstrap import new_id
from neutrino.identity.crud import DESCRIPTION, ENABLED, Collection
from neutrino.identity.errors import KeystoneError
from neutrino.identity.http import Json, link
from neutrino.db.identity import Domain


class Domains(Collection):
    kind, plural, model = "domain", "domains", Domain
    fields = {"description": DESCRIPTION, "enabled": ENABLED}
    duplicate = "domain - it is not permitted to have two domains with the same name: {name}"

    def view(self, request: Request, d: Domain) -> Json:
        return {"id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled, "tags": [],
                "options": {}, "links": {"self": link(request, f"domains/{d.id}")}}

    def new_id(self, ref: Json) -> str:
        """A domain may be created with the id the client chose."""
        return ref.get("id") or new_id()

    def deleting(self, s, d: Domain) -> None:
        if d.enabled:
            raise KeystoneError(403, "Cannot delete a domain that is enabled, please disable it first.")


DOMAINS = Domains()
