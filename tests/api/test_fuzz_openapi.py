"""The OpenAPI document against the running API (what schemathesis does, in-process and bounded): every operation
of /openapi.json is called with path parameters of existing objects and bodies drawn from its request schema;
no answer may be >= 500, every status must be one the document declares (or its `default`), and every JSON
answer must validate against the declared schema."""
from __future__ import annotations

import re

import jsonschema
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neutrino.api.app import create_app
from neutrino.config import Settings
from neutrino.db.engine import Database
from neutrino.identity.bootstrap import bootstrap
from tests.api.schemagen import from_schema, request_schema
from tests.api.test_no_500 import _world

CONFORMANCE = settings(max_examples=400, deadline=None, database=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
METHODS = ("get", "post", "put", "delete", "head")


def operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in sorted(doc["paths"].items()) for method, op in item.items()
            if method in METHODS]


def test_the_document_is_valid_openapi_31_with_valid_schemas(tmp_path):
    doc = _doc(tmp_path)
    assert doc["openapi"] == "3.1.0" and len(operations(doc)) > 60
    for path, method, op in operations(doc):
        for schema in [request_schema(op) or {}, *[r.get("content", {}).get("application/json", {}).get("schema", {})
                                                   for r in op["responses"].values()]]:
            jsonschema.Draft202012Validator.check_schema(schema)


def _doc(tmp_path) -> dict:
    settings_ = Settings(state_dir=str(tmp_path), auth="keystone", admin_password="pw", admin_token="tok")
    db = Database(f"sqlite:///{tmp_path}/d.db")
    db.setup()
    with TestClient(create_app(settings_, db)) as c:
        return c.get("/openapi.json").json()


def _keystone_client(tmp_path):
    settings_ = Settings(state_dir=str(tmp_path), auth="keystone", admin_password="pw", admin_token="tok")
    db = Database(f"sqlite:///{tmp_path}/k.db")
    db.setup()
    bootstrap(db, settings_)
    return TestClient(create_app(settings_, db), headers={"X-Auth-Token": "tok"})


def test_every_operation_answers_as_documented(tmp_path):
    with _keystone_client(tmp_path) as client:
        world = _world(client)
        doc = client.get("/openapi.json").json()
        ops = operations(doc)
        ids = {k: v["id"] for k, v in world.items() if isinstance(v, dict) and "id" in v}
        seen = {"calls": 0, "ops": set()}

        def fill(path: str, draw) -> str:
            """Path parameters: the id of an existing object of that collection (or a made-up one)."""
            collection = path.split("/")[2] if path.startswith("/v2.0/") else ""
            def value(m):
                known = ids.get(collection) if m.group(1) == "id" else None
                made_up = st.uuids().map(str) | st.just("default")
                return draw(st.just(known) | made_up if known else made_up)
            return re.sub(r"\{(\w+)\}", value, path)

        @CONFORMANCE
        @given(st.data())
        def one(data):
            path, method, op = data.draw(st.sampled_from(ops))
            if method == "delete" and "{" not in path:
                return
            url = fill(path, data.draw)
            if method == "delete" and url.split("/")[-1] in ids.values():
                url = url.rsplit("/", 1)[0] + "/" + str(data.draw(st.uuids()))     # keep the world alive
            schema = request_schema(op)
            body = data.draw(from_schema(schema)) if schema is not None else None
            r = client.request(method.upper(), url, json=body)
            seen["calls"] += 1
            seen["ops"].add((path, method))
            what = f"{method.upper()} {url} {str(body)[:200]} -> {r.status_code} {r.text[:300]}"
            assert r.status_code < 500, what
            spec = op["responses"].get(str(r.status_code)) or op["responses"].get("default")
            assert spec is not None, f"undocumented status: {what}"
            schema_out = spec.get("content", {}).get("application/json", {}).get("schema")
            if schema_out is not None and r.status_code < 300 and r.content:
                errors = list(jsonschema.Draft202012Validator(schema_out).iter_errors(r.json()))
                assert not errors, f"schema violation: {what}: {errors[0].message[:300]}"
            elif r.status_code >= 400 and method != "head":
                jsonschema.validate(r.json(), op["responses"]["default"]["content"]["application/json"]["schema"])

        one()
        print(f"\n{seen['calls']} calls over {len(seen['ops'])} of {len(ops)} operations: 0 server errors, "
              "0 schema violations")
