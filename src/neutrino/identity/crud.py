"""One generic Keystone collection (`/v3/<plural>` and `/v3/<plural>/{<kind>_id}`): list, create, show, update and
delete over a model with id, name and description. Domains, projects, users and roles subclass it and supply only
what differs (their view, extra checks, what a write revokes)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy import select

from neutrino.identity.bootstrap import DEFAULT_DOMAIN_ID, new_id
from neutrino.identity.errors import KeystoneError, not_found
from neutrino.identity.fields import truthy, valid_bool, valid_name, valid_text
from neutrino.identity.http import Json, collection, member, read, require_admin, write
from neutrino.db.identity import Domain


def fetch(s, model, ident: str, kind: str):
    """The row with this id; 404 in Keystone's words when there is none (ids are strings; anything else is none)."""
    obj = s.get(model, ident) if isinstance(ident, str) else None
    if obj is None:
        raise not_found(kind, ident)
    return obj


@dataclass(frozen=True)
class Field:
    """A settable column besides name: `check(session, value)` validates a given value; `default` is what create
    checks when the body leaves the field out."""
    check: Callable[[Any, Any], Any]
    default: Any = None


DESCRIPTION = Field(lambda s, v: valid_text(v, "description"))
ENABLED = Field(lambda s, v: valid_bool(v, "enabled"), default=True)


class Collection:
    kind: str                       # body member, error wording and policy action suffix: "project"
    plural: str                     # path and collection key: "projects"
    model: type
    scoped = False                  # lives in a domain (domain_id column; names unique per domain)
    fields: ClassVar[dict[str, Field]] = {}   # settable columns besides name, checked in this order
    duplicate: str                  # 409 wording, formatted with name and domain_id

    def view(self, request: Request, obj) -> Json:
        raise NotImplementedError

    # --- hooks: what differs between collections -----------------------------------------------------------

    def filters(self, params) -> list:
        """WHERE clauses of a list: name, domain_id (scoped) and enabled (when the model has it)."""
        where = []
        if "name" in params:
            where.append(self.model.name == params["name"])
        domain_id = self.domain_filter(params)
        if self.scoped and domain_id is not None:
            where.append(self.model.domain_id == domain_id)
        if "enabled" in self.fields and "enabled" in params:
            where.append(self.model.enabled.is_(truthy(params["enabled"])))
        return where

    def domain_filter(self, params) -> str | None:
        return params.get("domain_id")

    def owner(self, s, ref: Json) -> str:
        """The domain a new member of a scoped collection goes in (404 when it does not exist)."""
        domain_id = ref.get("domain_id") or DEFAULT_DOMAIN_ID
        fetch(s, Domain, domain_id, "domain")
        return domain_id

    def new_id(self, ref: Json) -> str:
        return new_id()

    def prepare_create(self, ref: Json) -> Json:
        """Checks made before the transaction; extra column values for the new row."""
        return {}

    def prepare_update(self, ref: Json) -> Json:
        """Checks made before the transaction; extra column values to set."""
        return {}

    def updated(self, s, obj, ref: Json) -> None:
        """After an update was applied, inside its transaction (e.g. revoke tokens it invalidates)."""

    def deleting(self, s, obj) -> None:
        """Before a delete, inside its transaction (may refuse it)."""

    def authorize_show(self, request: Request, ident: str) -> None:
        require_admin(request, f"get_{self.kind}")

    # --- the five handlers ---------------------------------------------------------------------------------

    def _ident(self, request: Request) -> str:
        return request.path_params[f"{self.kind}_id"]

    def _unique(self, s, name: str, domain_id: str | None) -> None:
        where = {"name": name, **({"domain_id": domain_id} if self.scoped else {})}
        if s.scalar(select(self.model).filter_by(**where)) is not None:
            message = self.duplicate.format(name=name, domain_id=domain_id)
            raise KeystoneError(409, f"Conflict occurred attempting to store {message}.")

    def list(self, request: Request) -> Json:
        require_admin(request, f"list_{self.plural}")
        where = self.filters(request.query_params)

        def _list(s):
            rows = s.scalars(select(self.model).where(*where).order_by(self.model.name))
            return [self.view(request, obj) for obj in rows]
        return collection(request, self.plural, read(request, _list))

    def create(self, request: Request, body: Json = Body(...)) -> Json:
        require_admin(request, f"create_{self.kind}")
        ref = member(body, self.kind)
        extra = self.prepare_create(ref)

        def _create(s):
            name = valid_name(ref.get("name"), self.kind)
            owner = {"domain_id": self.owner(s, ref)} if self.scoped else {}
            self._unique(s, name, owner.get("domain_id"))
            values = {field: spec.check(s, ref.get(field, spec.default)) for field, spec in self.fields.items()}
            obj = self.model(id=self.new_id(ref), name=name, **owner, **values, **extra)
            s.add(obj)
            s.flush()
            return {self.kind: self.view(request, obj)}
        return write(request, _create)

    def show(self, request: Request) -> Json:
        ident = self._ident(request)
        self.authorize_show(request, ident)
        return {self.kind: read(request, lambda s: self.view(request, fetch(s, self.model, ident, self.kind)))}

    def update(self, request: Request, body: Json = Body(...)) -> Json:
        ident = self._ident(request)
        require_admin(request, f"update_{self.kind}")
        ref = member(body, self.kind)
        extra = self.prepare_update(ref)

        def _update(s):
            obj = fetch(s, self.model, ident, self.kind)
            if "name" in ref and ref["name"] != obj.name:
                obj.name = valid_name(ref["name"], self.kind)
                self._unique(s, obj.name, getattr(obj, "domain_id", None))
            for field, spec in self.fields.items():
                if field in ref:
                    setattr(obj, field, spec.check(s, ref[field]))
            for column, value in extra.items():
                setattr(obj, column, value)
            self.updated(s, obj, ref)
            s.flush()
            return {self.kind: self.view(request, obj)}
        return write(request, _update)

    def delete(self, request: Request) -> Response:
        ident = self._ident(request)
        require_admin(request, f"delete_{self.kind}")

        def _delete(s):
            obj = fetch(s, self.model, ident, self.kind)
            self.deleting(s, obj)
            s.delete(obj)
        write(request, _delete)
        return Response(status_code=204)

    def routes(self, router: APIRouter) -> None:
        path, item = f"/{self.plural}", f"/{self.plural}/{{{self.kind}_id}}"
        router.add_api_route(path, self.list, methods=["GET"])
        router.add_api_route(path, self.create, methods=["POST"], status_code=201)
        router.add_api_route(item, self.show, methods=["GET"])
        router.add_api_route(item, self.update, methods=["PATCH"])
        router.add_api_route(item, self.delete, methods=["DELETE"], status_code=204)
