"""Property-based fuzzing (hypothesis) of every collection and member of the Networking API, as a careless or
hostile client: bodies drawn from the OpenAPI request schemas, then mutated with hostile JSON; odd query strings,
If-Match headers and content types. Properties: no answer >= 500, every 4xx a NeutronError, and a rejected write
stores nothing (the whole database reads the same before and after). Bounded: a few hundred examples."""
from __future__ import annotations

import hashlib
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from neutrino.api.app import RESOURCES
from neutrino.db import models
from tests.api.schemagen import HOSTILE, NASTY_STRINGS, from_schema, request_schema
from tests.api.test_no_500 import _world

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
QUERY_KEYS = ["limit", "marker", "sort_key", "sort_dir", "fields", "page_reverse", "name", "id", "tags",
              "not-tags", "fixed_ips", "status", "x"]


def snapshot(app) -> str:
    """A digest of every row of every table: equal before and after a rejected write."""
    h = hashlib.sha256()
    with app.state.db.session() as s:
        for table in models.Base.metadata.sorted_tables:
            rows = sorted(map(repr, s.execute(select(table)).all()))
            h.update(f"{table.name}:{rows}".encode())
    return h.hexdigest()


def check(r, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        err = r.json()["NeutronError"]
        assert set(err) == {"type", "message", "detail"}, what
        assert len(r.content) < 2000, f"{what}: {len(r.content)}-byte error"


@st.composite
def body_for(draw, res, schema: dict):
    """A body from the schema (often valid), then sometimes one attribute replaced by hostile JSON."""
    body = draw(from_schema(schema))
    inner = body.get(res.singular) if isinstance(body, dict) else None
    if isinstance(inner, dict) and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(res.attrs)))
        inner[key] = draw(HOSTILE)
    elif draw(st.integers(0, 9)) == 0:
        body = draw(HOSTILE)
    return body


@st.composite
def requests(draw, doc: dict, world: dict):
    res = draw(st.sampled_from(RESOURCES))
    member_id = world.get(res.path, {}).get("id") or draw(st.uuids().map(str))
    rid = draw(st.one_of(st.just(member_id), st.sampled_from(NASTY_STRINGS).map(lambda s: quote(s, safe=""))))
    coll, member = f"/v2.0/{res.path}", f"/v2.0/{res.path}/{rid}"
    kind = draw(st.sampled_from(["list", "show", "create", "update", "delete"]))
    headers = {"Content-Type": draw(st.sampled_from(["application/json"] * 9 + ["text/plain"]))}
    if draw(st.integers(0, 9)) == 0:
        headers["If-Match"] = draw(st.sampled_from(["revision_number=1", "²".encode(), "revision_number=" + "9" * 300,
                                                    "x"]))
    if kind == "list":
        query = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), st.sampled_from(NASTY_STRINGS)), max_size=3))
        return "GET", coll, query, None, headers
    if kind == "show":
        return "GET", member, [], None, headers
    if kind == "delete":
        if rid == member_id and res.path in world:        # keep the world: delete only what does not exist
            member = f"{coll}/{draw(st.uuids())}"
        return "DELETE", member, [], None, headers
    if kind == "create":
        return "POST", coll, [], draw(body_for(res, request_schema(doc["paths"][coll]["post"]))), headers
    return "PUT", member, [], draw(body_for(res, request_schema(doc["paths"][f"{coll}/{{id}}"]["put"]))), headers


def test_fuzz_every_collection_and_member(app, client):
    world = _world(client)
    doc = client.get("/openapi.json").json()
    counts = {"sent": 0, "rejected_writes": 0}

    @FUZZ
    @given(requests(doc, world))
    def one(req):
        method, path, query, body, headers = req
        before = snapshot(app) if method != "GET" else None
        r = client.request(method, path, params=query, json=body, headers=headers)
        check(r, f"{method} {path} {query} {str(body)[:200]}")
        counts["sent"] += 1
        if before is not None and 400 <= r.status_code < 500:
            counts["rejected_writes"] += 1
            assert snapshot(app) == before, f"{method} {path} was rejected ({r.status_code}) but stored something"

    one()
    print(f"\n{counts['sent']} fuzzed requests, {counts['rejected_writes']} rejected writes stored nothing")
