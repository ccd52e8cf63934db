"""One generic controller for every Neutron collection: list/show/create(bulk)/update/delete and the tags API.

A resource module describes itself with a `Resource` (attribute map + core functions); the controller does the
HTTP side: envelopes, validation, policy for writes, If-Match, list semantics, and one transaction per request that
also bumps the global revision agents watch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from sqlalchemy import select

from neutrino.api import changes, listing
from neutrino.api.attrs import Attr, string, validate_body
from neutrino.core import common, scheduling
from neutrino.db import notify
from neutrino.errors import BadRequest, Forbidden, NotFound, bad_request
from neutrino.responses import json_response

MAX_TAGS = 50
MAX_DEPTH = 32          # nesting of a request body (Neutron's bodies need 4)


@dataclass
class Resource:
    singular: str                 # "security_group"
    path: str                     # "security-groups"
    core: ModuleType              # create/update/get/render/scope + delete function
    attrs: dict[str, Attr]
    delete: Callable
    readonly: tuple[str, ...] = ()   # further attributes shown (and filterable) but not writable
    taggable: bool = True
    plural: str = ""
    sql_filters: dict = field(default_factory=dict)   # API attr -> column or fn(values) -> clause, pushed into SQL
    reschedule: bool = False      # writes may create DHCP/router work: run the scheduler in the same transaction
    before_list: Callable | None = None   # (s, ctx, filters) run first in a list's transaction (default SG)
    render_settings: tuple[str, ...] = ()  # server settings core.render takes as keywords (ports: dns_domain)
    precise: bool = False         # its writes name every view they change (core.common.affects): wake only those
    tags_path: str = ""           # Neutron's tag API names some collections otherwise (QoS policies: "policies")
    render_listed: bool = False   # core.render takes `listed=`, a list's select (it reads related rows by it)

    def __post_init__(self):
        self.plural = self.plural or self.path.replace("-", "_")
        self.known = set(self.attrs) | set(self.readonly) | {"id", "tenant_id", "project_id", "tags",
                                                               "created_at", "updated_at", "revision_number"}


def too_deep(value, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed body nests deeper than limit (iterative: a 1,000-deep body costs no recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                return True
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


async def read_json(request: Request):
    raw = await request.body()
    if not raw:
        raise bad_request("Request body is empty.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("Malformed request body") from None
    if too_deep(body):
        raise BadRequest(f"Malformed request body: nested deeper than {MAX_DEPTH} levels")
    return body


async def list_response(request, plural: str, known: set[str], items_of):
    """A list response for a collection outside the generic controller (sub-collections): items_of(session) gives
    every visible item; filters, sorting, paging and fields apply as on any collection."""
    app = request.app.state
    pairs = list(request.query_params.multi_items())
    q = listing.parse(pairs, known, app.settings.pagination_max_limit)
    items = listing.apply_filters(await app.db.call(items_of), q.filters)
    page = listing.sort_and_page(items, q)
    body = {plural: listing.select_fields(page, q.fields)}
    more = listing.links(str(request.url).split("?")[0], pairs, page, q)
    if more:
        body[f"{plural}_links"] = more
    return json_response(body)


def writer(ctx) -> None:
    if ctx.is_reader_only:
        raise Forbidden("This action is disallowed by policy for a reader.")


async def write(request: Request, fn: Callable, reschedule: bool = False, precise: bool = False):
    """fn(session, ctx) in one transaction (on the database's writer thread) that also runs the scheduler (when
    writes may create DHCP/router work) and records the change (api/changes.py); then the agents it concerns are
    woken, on every server — all of them unless `precise` (fn's core names every view it changes). Callers check
    `writer` before parsing the body."""
    app, ctx = request.app.state, request.state.ctx

    def tx(s):
        out = fn(s, ctx)
        if reschedule:
            scheduling.schedule(s, app.settings)
        return out, changes.record(s, precise)

    out, change = await app.db.call(tx, write=True)
    notify.committed(app, change)
    return out


class Controller:
    def __init__(self, res: Resource, settings):
        self.res = res
        self.render_kw = {name: getattr(settings, name) for name in res.render_settings}

    # --- helpers --------------------------------------------------------------------------------------------------
    def _one(self, s, ctx, rid):
        return self.res.core.get(s, ctx, rid)

    def _render_one(self, s, ctx, rid):
        row = self._one(s, ctx, rid)
        return self._render(s, ctx, [row])[0]

    def _render(self, s, ctx, rows, listed=None) -> list[dict]:
        if listed is not None and self.res.render_listed:
            return self.res.core.render(s, ctx, rows, listed=listed, **self.render_kw)
        return self.res.core.render(s, ctx, rows, **self.render_kw)

    def _list(self, s, ctx, q: listing.ListQuery):
        if self.res.before_list is not None:
            self.res.before_list(s, ctx, q.filters)
        table = self.res.core.T
        stmt = select(table)
        clause = self.res.core.scope(ctx)
        if clause is not None:
            stmt = stmt.where(clause)
        rest = {}
        for key, vals in q.filters.items():
            col = self.res.sql_filters.get(key)
            if col is None and key in ("id", "name", "project_id", "tenant_id") and key != "tenant_id":
                col = table.c[key]
            if key == "tenant_id":
                col = table.c.project_id
            if callable(col):
                stmt = stmt.where(col(vals))
            elif col is not None:
                stmt = stmt.where(col.in_(vals))
            else:
                rest[key] = vals
        rows = s.execute(stmt).all()
        items = self._render(s, ctx, rows, stmt)
        return listing.apply_filters(items, rest)

    # --- handlers -------------------------------------------------------------------------------------------------
    async def list(self, request: Request):
        app = request.app.state
        ctx = request.state.ctx
        pairs = list(request.query_params.multi_items())
        q = listing.parse(pairs, self.res.known, app.settings.pagination_max_limit)
        items = await app.db.call(self._list, ctx, q, lean=self.res.before_list is None)   # it may write
        page = listing.sort_and_page(items, q)
        body = {self.res.plural: listing.select_fields(page, q.fields)}
        links = listing.links(str(request.url).split("?")[0], pairs, page, q)
        if links:
            body[f"{self.res.plural}_links"] = links
        return json_response(body)

    async def show(self, request: Request, rid: str):
        ctx = request.state.ctx
        fields = [f for k, v in request.query_params.multi_items() if k == "fields" for f in v.split(",")]
        item = await request.app.state.db.read_here(self._render_one, ctx, rid)
        return json_response({self.res.singular: listing.select_fields([item], fields)[0]})

    async def create(self, request: Request):
        ctx = request.state.ctx
        writer(ctx)
        body = await read_json(request)
        app = request.app.state
        res = self.res
        if isinstance(body, dict) and res.plural in body and isinstance(body[res.plural], list):
            items = [validate_body(res.attrs, i.get(res.singular, i) if isinstance(i, dict) else i, res.singular,
                                   True, ctx, app.settings) for i in body[res.plural]]
            bulk = True
        elif isinstance(body, dict) and res.singular in body:
            items = [validate_body(res.attrs, body[res.singular], res.singular, True, ctx, app.settings)]
            bulk = False
        else:
            raise bad_request(f"Resource body required: expected '{res.singular}' or '{res.plural}'.")

        def tx(s, ctx):
            ids = [res.core.create(s, ctx, data, app.settings) for data in items]
            return self._render(s, ctx, [self._one(s, ctx, i) for i in ids])

        out = await write(request, tx, res.reschedule, res.precise)
        return json_response({res.plural: out} if bulk else {res.singular: out[0]}, 201)

    async def update(self, request: Request, rid: str):
        ctx = request.state.ctx
        writer(ctx)
        body = await read_json(request)
        app = request.app.state
        res = self.res
        if not isinstance(body, dict) or res.singular not in body:
            raise bad_request(f"Resource body required: expected '{res.singular}'.")
        data = validate_body(res.attrs, body[res.singular], res.singular, False, ctx, app.settings)
        if_match = request.headers.get("if-match")

        def tx(s, ctx):
            row = self._one(s, ctx, rid)
            common.check_if_match(row, if_match)
            res.core.update(s, ctx, row, data, app.settings)
            return self._render_one(s, ctx, rid)

        out = await write(request, tx, res.reschedule, res.precise)
        return json_response({res.singular: out})

    async def delete(self, request: Request, rid: str):
        writer(request.state.ctx)
        if_match = request.headers.get("if-match")

        def tx(s, ctx):
            row = self._one(s, ctx, rid)
            common.check_if_match(row, if_match)
            self.res.delete(s, ctx, row)

        await write(request, tx, self.res.reschedule, self.res.precise)
        return Response(status_code=204)

    # --- tags -----------------------------------------------------------------------------------------------------
    async def _tags_tx(self, request: Request, rid: str, change: Callable[[list[str]], list[str]] | None):
        """The resource's tags; with `change`, replaced by change(tags) in a write transaction."""
        if change is None:
            def read(s):
                self._one(s, request.state.ctx, rid)            # 404 unless the caller sees the resource
                return common.tags_of(s, [rid])[rid]
            return await request.app.state.db.call(read)
        writer(request.state.ctx)

        def tx(s, ctx):
            row = self._one(s, ctx, rid)
            common.require_owner(ctx, row, f"update_{self.res.singular}_tags")
            new = change(common.tags_of(s, [rid])[rid])
            if len(set(new)) > MAX_TAGS:
                raise bad_request(f"Number of tags exceeds the limit of {MAX_TAGS}.", "TagsLimitExceeded")
            common.set_tags(s, rid, new)
            common.touch(s, self.res.core.T, rid)
            return sorted(set(new))

        return await write(request, tx)

    @staticmethod
    def _tag(tag: str) -> str:
        return string(255)("tag", tag)

    async def tags_get(self, request: Request, rid: str):
        return json_response({"tags": await self._tags_tx(request, rid, None)})

    async def tags_put(self, request: Request, rid: str):
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
            raise bad_request("Invalid input for tags. Reason: a list of tags is required.", "InvalidInput")
        new = [self._tag(t) for t in body["tags"]]
        return json_response({"tags": await self._tags_tx(request, rid, lambda _old: new)})

    async def tags_post(self, request: Request, rid: str):
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
            raise bad_request("Invalid input for tags. Reason: a list of tags is required.", "InvalidInput")
        new = [self._tag(t) for t in body["tags"]]
        return json_response({"tags": await self._tags_tx(request, rid, lambda old: old + new)}, 201)

    async def tags_delete_all(self, request: Request, rid: str):
        await self._tags_tx(request, rid, lambda _old: [])
        return Response(status_code=204)

    def _tag_not_found(self, rid: str, tag: str) -> NotFound:
        err = NotFound(f"Tag {tag} could not be found for {self.res.singular} {rid}.")
        err.type_name = "TagNotFound"
        return err

    async def tag_check(self, request: Request, rid: str, tag: str):
        if tag not in await self._tags_tx(request, rid, None):
            raise self._tag_not_found(rid, tag)
        return Response(status_code=204)

    async def tag_put(self, request: Request, rid: str, tag: str):
        tag = self._tag(tag)
        await self._tags_tx(request, rid, lambda old: old + [tag])
        return Response(status_code=201)

    async def tag_delete(self, request: Request, rid: str, tag: str):
        def change(old):
            if tag not in old:
                raise self._tag_not_found(rid, tag)
            return [t for t in old if t != tag]
        await self._tags_tx(request, rid, change)
        return Response(status_code=204)

    async def dispatch(self, request: Request):
        """Every path of the collection in one route: `""`/`.json` (list, create), `/{id}`, `/{id}/tags[/{tag}]`.

        One route per collection instead of fourteen keeps route matching off the profile of every request."""
        rest, method = request.path_params["rest"], request.method
        if rest in ("", ".json"):
            handler = {"GET": self.list, "POST": self.create}.get(method)
            args: tuple = ()
        elif rest.startswith("/"):
            parts = rest[1:].split("/")
            rid = parts[0].removesuffix(".json")
            if len(parts) == 1:
                handler = {"GET": self.show, "PUT": self.update, "DELETE": self.delete}.get(method)
                args = (rid,)
            else:
                handler, args = self._tags_handler(parts, method)
        else:
            raise StarletteHTTPException(404)
        if handler is None:
            raise StarletteHTTPException(405)
        return await handler(request, *args)

    def _tags_handler(self, parts: list[str], method: str) -> tuple[Callable | None, tuple]:
        """The handler of `{id}/tags` or `{id}/tags/{tag}` (parts split from the path); 404 for any other path."""
        rid = parts[0].removesuffix(".json")
        if self.res.taggable and len(parts) == 2 and parts[1] == "tags":
            return {"GET": self.tags_get, "PUT": self.tags_put, "POST": self.tags_post,
                    "DELETE": self.tags_delete_all}.get(method), (rid,)
        if self.res.taggable and len(parts) == 3 and parts[1] == "tags":
            return {"GET": self.tag_check, "PUT": self.tag_put, "DELETE": self.tag_delete}.get(method), (rid, parts[2])
        raise StarletteHTTPException(404)

    async def dispatch_tags(self, request: Request):
        """`/v2.0/{tags_path}/{id}/tags[/{tag}]`: the tag API under the name Neutron's tag extension gives the collection."""
        handler, args = self._tags_handler(request.path_params["rest"].split("/"), request.method)
        if handler is None:
            raise StarletteHTTPException(405)
        return await handler(request, *args)

    def routes(self, router: APIRouter) -> None:
        router.routes.append(Route(f"/v2.0/{self.res.path}{{rest:path}}", self.dispatch,
                                   methods=["GET", "POST", "PUT", "DELETE"]))
        if self.res.tags_path:
            router.routes.append(Route(f"/v2.0/{self.res.tags_path}/{{rest:path}}", self.dispatch_tags,
                                       methods=["GET", "POST", "PUT", "DELETE"]))
