"""Shared pieces of the service logic: ids, timestamps, standard attributes, tags, the global revision, lookups."""
from __future__ import annotations

import uuid
from collections import namedtuple
from datetime import datetime, timezone

from sqlalchemy import Column, Table, bindparam, delete, insert, select, update

from neutrino.context import Context
from neutrino.db import models as m
from neutrino.errors import Forbidden, PreconditionFailed, bad_request, not_found

T_META = m.Meta.__table__
T_TAGS = m.Tag.__table__


def now() -> datetime:
    """UTC, naive, with microseconds: rows keep creation order (rules apply in the order they were made)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def fmt(dt: datetime | None) -> str | None:
    """Neutron's timestamp format, whole seconds: YYYY-MM-DDTHH:MM:SSZ."""
    return dt.isoformat()[:19] + "Z" if dt else None        # [:19]: faster than timespec= (2000 in a list)


def new_id() -> str:
    return str(uuid.uuid4())


_BUMP = update(T_META).where(T_META.c.id == 1).values(revision=T_META.c.revision + 1).returning(T_META.c.revision)


def bump(s) -> int:
    """Bump the global revision in this transaction (agents long-poll on it); returns the new value."""
    rev = s.execute(_BUMP).scalar()
    if rev is None:
        s.execute(insert(T_META).values(id=1, revision=1))
        rev = 1
    s.info["bumped"] = rev
    return rev


def affects(s, *keys: str) -> None:
    """Name what this transaction changes for agents ("host:NAME", "ports:NETWORK_ID", "members:GROUP_ID", ...:
    api/changes.py), so only the agents whose views depend on one of them are woken. A write that names nothing
    wakes all."""
    s.info.setdefault("affects", set()).update(k for k in keys if k)


def affects_all(s) -> None:
    """This transaction changes what agents see in a way no key names (scheduling, floating IPs): wake all."""
    s.info["affects_all"] = True


def affected(s) -> frozenset[str] | None:
    """The keys this transaction named, or None for "every agent"."""
    keys = s.info.get("affects")
    return None if keys is None or s.info.get("affects_all") else frozenset(keys)


def revision(s) -> int:
    return s.execute(select(T_META.c.revision).where(T_META.c.id == 1)).scalar() or 0


def std(row) -> dict:
    """Standard attributes of a row as Neutron shows them."""
    return {"project_id": row.project_id, "tenant_id": row.project_id, "description": row.description,
            "created_at": fmt(row.created_at), "updated_at": fmt(row.updated_at),
            "revision_number": row.revision_number}


def new_row(ctx: Context, data: dict) -> dict:
    """Values for a new resource row: id, owner, description and timestamps."""
    t = now()
    return {"id": data.get("id") or new_id(), "project_id": data.get("project_id") or ctx.project_id or "",
            "description": data.get("description", ""), "created_at": t, "updated_at": t, "revision_number": 0}


_TOUCH: dict = {}


def touch(s, table, rid: str, values: dict | None = None) -> None:
    """Update a row and bump its revision_number and updated_at (every change is a new revision)."""
    if not values:             # the common case (a group's rules changed, ...): one statement per table, built once
        stmt = _TOUCH.get(table.name)
        if stmt is None:
            stmt = _TOUCH[table.name] = update(table).where(table.c.id == bindparam("_rid")).values(
                updated_at=bindparam("_now"), revision_number=table.c.revision_number + 1)
        s.execute(stmt, {"_rid": rid, "_now": now()})
        return
    vals = dict(values)
    vals.update(updated_at=now(), revision_number=table.c.revision_number + 1)
    s.execute(update(table).where(table.c.id == rid).values(**vals))


def check_if_match(row, if_match: str | None) -> None:
    """If-Match: revision_number=N (or just N) must equal the row's revision, else 412."""
    if not if_match:
        return
    want = if_match.removeprefix("revision_number=").strip().strip('"')
    digits = want.removeprefix("-")       # any integer: -1 is simply stale (412), as Neutron answers it
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 19):
        raise bad_request("If-Match header is only supported in the form revision_number=<integer>.")
    if int(want) != row.revision_number:
        raise PreconditionFailed(f"Constrained to {want}, but current revision is {row.revision_number}")


def tags_of(s, ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in ids}
    for rid, tag in in_chunks(s, lambda c: select(T_TAGS.c.resource_id, T_TAGS.c.tag).where(T_TAGS.c.resource_id.in_(c)),
                              ids):
        out[rid].append(tag)
    for v in out.values():
        v.sort()
    return out


def set_tags(s, rid: str, tags: list[str]) -> None:
    s.execute(delete(T_TAGS).where(T_TAGS.c.resource_id == rid))
    if tags:
        s.execute(insert(T_TAGS), [{"resource_id": rid, "tag": t} for t in sorted(set(tags))])


def delete_tags(s, rid: str) -> None:
    s.execute(delete(T_TAGS).where(T_TAGS.c.resource_id == rid))


def _chunks(items: list, n: int = 900):
    for i in range(0, len(items), n):
        yield items[i:i + n]


IDS = bindparam("ids", expanding=True)
_BUILT: dict = {}
_STABLE = (str, int, float, bool, type(None), Table, Column)


def in_chunks(s, stmt_for_chunk, ids) -> list:
    """Run a select per chunk of ids (SQLite caps bound parameters) and concatenate the rows. stmt_for_chunk(c)
    builds the select with `.in_(c)`; it is built once per call site (and the plain values it closes over), with an
    expanding parameter for c: building a select costs more than running it."""
    ids = list(ids)
    if not ids:
        return []
    stmt = _built(stmt_for_chunk)
    rows: list = []
    for chunk in _chunks(ids):
        rows.extend(s.execute(stmt, {"ids": chunk}).all())
    return rows


def _built(build):
    cells = tuple(c.cell_contents for c in build.__closure__ or ())
    if not all(isinstance(v, _STABLE) or (isinstance(v, tuple) and all(isinstance(x, _STABLE) for x in v))
               for v in cells):
        return build(IDS)
    key = (build.__code__, cells)
    stmt = _BUILT.get(key)
    if stmt is None:
        if len(_BUILT) > 4096:          # closures over host names or projects: bounded
            _BUILT.clear()
        stmt = _BUILT[key] = build(IDS)
    return stmt


_ROW_TYPES: dict = {}


def plain(rows) -> list:
    """Rows as plain named tuples, for rendering: reading a column of a SQLAlchemy Row by name costs several times
    more, and a list of 1000 ports reads 25 of them per row."""
    if not rows:
        return []
    fields = rows[0]._fields
    cls = _ROW_TYPES.get(fields)
    if cls is None:
        try:
            cls = _ROW_TYPES[fields] = namedtuple("Row", fields)
        except ValueError:      # a column named like a keyword: Rows as they are
            return rows
    return [cls._make(r) for r in rows]


def owned_or_admin(ctx: Context, row) -> bool:
    return ctx.is_admin or row.project_id == ctx.project_id


_BY_ID: dict = {}


def by_id(table):
    """`SELECT * FROM table WHERE id = :id`, built once per table (lookups by id are on every request)."""
    stmt = _BY_ID.get(table.name)
    if stmt is None:
        stmt = _BY_ID[table.name] = select(table).where(table.c.id == bindparam("id"))
    return stmt


def get_visible(s, table, rid: str, ctx: Context, kind: str, visible=owned_or_admin):
    """The row with this id if the caller may see it; 404 otherwise (never 403, so ids don't leak)."""
    row = s.execute(by_id(table), {"id": rid}).first() if isinstance(rid, str) else None
    if row is None or not visible(ctx, row):
        raise not_found(kind, rid)
    return row


def require_owner(ctx: Context, row, action: str) -> None:
    """Writes need ownership (or admin): visible-but-foreign rows (shared networks) answer 403/404 as Neutron."""
    if ctx.is_admin or row.project_id == ctx.project_id:
        return
    raise Forbidden(f"(rule:{action}) is disallowed by policy")
