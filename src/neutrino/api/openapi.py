"""`GET /openapi.json`: an OpenAPI 3.1 document of the Networking API built from the attribute maps the API validates
with (every converter carries the JSON Schema of what it accepts), plus the identity subset (from its routes).

Request bodies are exact (unknown attributes are refused, as the API refuses them); response objects are typed
loosely (a value's JSON type, or null), since responses show stored values rather than what a client may send."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.utils import get_openapi

from neutrino.api import addressgroups, admin, qos, routers
from neutrino.api.attrs import REQUIRED, Attr, schema_of
from neutrino.api.controller import MAX_TAGS, Resource, json_response
from neutrino.core import qos as qos_core
from neutrino.identity.routes import router as identity_router

ERROR = {"type": "object", "required": ["NeutronError"], "properties": {"NeutronError": {
    "type": "object", "required": ["type", "message", "detail"],
    "properties": {"type": {"type": "string"}, "message": {"type": "string"}, "detail": {"type": "string"}}}}}
KEYSTONE_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "title", "message"],
    "properties": {"code": {"type": "integer"}, "title": {"type": "string"}, "message": {"type": "string"}}}}}
STD_FIELDS = ("id", "tenant_id", "project_id", "created_at", "updated_at", "revision_number", "tags")
LIST_PARAMS = [("limit", {"type": "integer", "minimum": 0}), ("marker", {"type": "string"}),
               ("sort_key", {"type": "string"}), ("sort_dir", {"enum": ["asc", "desc"]}),
               ("page_reverse", {"type": "boolean"}), ("fields", {"type": "string"})]


def loose(schema: dict) -> dict:
    """The response-side schema of a request schema: the same JSON type(s), null allowed, no value constraints."""
    if "anyOf" in schema and "type" not in schema:
        return {"anyOf": [loose(s) for s in schema["anyOf"]]}
    kind = schema.get("type")
    if kind is None:
        return {}
    kinds = [kind] if isinstance(kind, str) else list(kind)
    out: dict = {"type": list(dict.fromkeys([*kinds, "null"]))}
    if kind == "array" and schema.get("items"):
        out["items"] = loose(schema["items"])
    return out


def body_schema(attrs: dict[str, Attr], creating: bool) -> dict:
    props = {k: schema_of(a.convert) for k, a in attrs.items() if (a.post if creating else a.put)}
    out = {"type": "object", "properties": props, "additionalProperties": False}
    required = [k for k, a in attrs.items() if creating and a.default is REQUIRED]
    if required:
        out["required"] = required
    return out


def object_schema(attrs: dict[str, Attr], readonly: tuple[str, ...] = (), std: tuple[str, ...] = STD_FIELDS) -> dict:
    props = {k: loose(schema_of(a.convert)) for k, a in attrs.items()}
    props.update({k: {} for k in readonly})
    props.update({k: props.get(k, {}) for k in std})
    return {"type": "object", "required": ["id"], "properties": props}


def envelope(key: str, schema: dict) -> dict:
    return {"type": "object", "required": [key], "properties": {key: schema}}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def op(summary: str, ok: int | None, response: dict | None = None, body: dict | None = None,
       params: list | None = None) -> dict:
    out: dict = {"summary": summary, "responses": {"default": {"description": "NeutronError", **_json(ERROR)}}}
    if ok is not None:
        out["responses"][str(ok)] = {"description": "success", **(_json(response) if response else {})}
    if body is not None:
        out["requestBody"] = {"required": True, **_json(body)}
    if params:
        out["parameters"] = params
    return out


def path_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def query_params(known: set[str]) -> list[dict]:
    return [{"name": n, "in": "query", "required": False, "schema": s} for n, s in LIST_PARAMS] + \
        [{"name": k, "in": "query", "required": False, "schema": {"type": "string"}} for k in sorted(known)
         if k not in ("tags",)]


def resource_paths(res: Resource) -> dict:
    obj = object_schema(res.attrs, res.readonly)
    create = body_schema(res.attrs, True)
    single = envelope(res.singular, obj)
    coll, member = f"/v2.0/{res.path}", f"/v2.0/{res.path}/{{id}}"
    one_or_bulk = {"anyOf": [envelope(res.singular, create),
                             envelope(res.plural, {"type": "array", "items": envelope(res.singular, create)})]}
    paths = {
        coll: {"get": op(f"List {res.plural}", 200, envelope(res.plural, {"type": "array", "items": obj}),
                         params=query_params(res.known)),
               "post": op(f"Create a {res.singular} (or several)", 201,
                          {"anyOf": [single, envelope(res.plural, {"type": "array", "items": obj})]}, one_or_bulk)},
        member: {"parameters": [path_param("id")],
                 "get": op(f"Show a {res.singular}", 200, single),
                 "put": op(f"Update a {res.singular}", 200, single,
                           envelope(res.singular, body_schema(res.attrs, False))),
                 "delete": op(f"Delete a {res.singular}", 204)},
    }
    if res.taggable:
        tags = {"type": "array", "items": {"type": "string", "maxLength": 255}, "maxItems": MAX_TAGS}
        paths[member + "/tags"] = {
            "parameters": [path_param("id")],
            "get": op("List tags", 200, envelope("tags", tags)),
            "put": op("Replace tags", 200, envelope("tags", tags), envelope("tags", tags)),
            "delete": op("Remove all tags", 204)}
        paths[member + "/tags/{tag}"] = {
            "parameters": [path_param("id"), path_param("tag")],
            "get": op("Check a tag", 204), "put": op("Add a tag", 201), "delete": op("Remove a tag", 204)}
    return paths


def sub_paths(coll: str, params: list[str], member_param: str, singular: str, plural: str,
              attrs: dict[str, Attr]) -> dict:
    """A collection under another object (port forwardings, QoS rules): list, create, show, update, delete."""
    obj = object_schema(attrs, std=("id",))
    member = f"{coll}/{{{member_param}}}"
    return {coll: {"parameters": [path_param(p) for p in params],
                   "get": op(f"List {plural}", 200, envelope(plural, {"type": "array", "items": obj})),
                   "post": op(f"Create a {singular}", 201, envelope(singular, obj),
                              envelope(singular, body_schema(attrs, True)))},
            member: {"parameters": [path_param(p) for p in (*params, member_param)],
                     "get": op(f"Show a {singular}", 200, envelope(singular, obj)),
                     "put": op(f"Update a {singular}", 200, envelope(singular, obj),
                               envelope(singular, body_schema(attrs, False))),
                     "delete": op(f"Delete a {singular}", 204)}}


def extra_paths() -> dict:
    """What the generic controller does not serve: router and address group actions, port forwardings, QoS rules,
    quotas, agents, extensions."""
    r = "/v2.0/routers/{id}"
    any_obj = {"type": "object"}
    routes = envelope("router", {"type": "object", "properties": {"routes": schema_of(routers.ROUTE_LIST)},
                                 "required": ["routes"], "additionalProperties": False})
    iface = {"type": "object", "properties": {"subnet_id": {"type": "string"}, "port_id": {"type": "string"}}}
    paths = {f"{r}/{action}": {"parameters": [path_param("id")], "put": op(action, 200, any_obj, body)}
             for action, body in (("add_router_interface", iface), ("remove_router_interface", iface),
                                  ("add_extraroutes", routes), ("remove_extraroutes", routes))}
    paths.update(sub_paths("/v2.0/floatingips/{id}/port_forwardings", ["id"], "pid", "port_forwarding",
                           "port_forwardings", routers.PF_ATTRS))
    for rule_type, (collection, _params) in qos_core.RULE_TYPES.items():
        paths.update(sub_paths(f"/v2.0/qos/policies/{{pid}}/{collection}", ["pid"], "rid", f"{rule_type}_rule",
                               collection, qos.RULE_ATTRS[rule_type]))
    paths["/v2.0/qos/rule-types"] = {"get": op("List QoS rule types", 200, envelope("rule_types", {"type": "array"}))}
    paths["/v2.0/qos/rule-types/{rule_type}"] = {"parameters": [path_param("rule_type")],
                                                 "get": op("Show a QoS rule type", 200, envelope("rule_type", any_obj))}
    addresses = {"type": "object", "properties": {"addresses": schema_of(addressgroups.ADDRESS_GROUP.attrs[
        "addresses"].convert)}, "required": ["addresses"], "additionalProperties": False}
    for action in ("add_addresses", "remove_addresses"):
        paths[f"/v2.0/address-groups/{{gid}}/{action}"] = {"parameters": [path_param("gid")],
                                                          "put": op(action, 200, envelope("address_group", any_obj),
                                                                    addresses)}
    quota = {"type": "object", "properties": {k: {"type": "integer"} for k in admin.QUOTA_ATTRS}}
    q = "/v2.0/quotas/{project_id}"
    paths["/v2.0/quotas"] = {"get": op("List quotas", 200, envelope("quotas", {"type": "array", "items": quota}))}
    paths[q] = {"parameters": [path_param("project_id")], "get": op("Show a project's quota", 200,
                                                                   envelope("quota", quota)),
                "put": op("Update a project's quota", 200, envelope("quota", quota),
                          envelope("quota", body_schema(admin.QUOTA_ATTRS, False))),
                "delete": op("Reset a project's quota", 204)}
    for sub in ("default", "details"):
        paths[f"{q}/{sub}"] = {"parameters": [path_param("project_id")],
                               "get": op(f"Quota {sub}", 200, envelope("quota", any_obj))}
    agent = {"type": "object", "required": ["id"]}
    paths["/v2.0/agents"] = {"get": op("List agents", 200, envelope("agents", {"type": "array", "items": agent}))}
    paths["/v2.0/agents/{id}"] = {"parameters": [path_param("id")],
                                  "get": op("Show an agent", 200, envelope("agent", agent)),
                                  "put": op("Update an agent", 200, envelope("agent", agent),
                                            envelope("agent", body_schema(admin.AGENT_ATTRS, False))),
                                  "delete": op("Delete an agent", 204)}
    avail = "/v2.0/network-ip-availabilities"
    paths[avail] = {"get": op("List IP availabilities", 200, envelope("network_ip_availabilities",
                                                                     {"type": "array"}))}
    paths[avail + "/{network_id}"] = {"parameters": [path_param("network_id")],
                                      "get": op("Show a network's IP availability", 200,
                                                envelope("network_ip_availability", any_obj))}
    paths["/v2.0/extensions"] = {"get": op("List extensions", 200, envelope("extensions", {"type": "array"}))}
    paths["/v2.0/extensions/{alias}"] = {"parameters": [path_param("alias")],
                                         "get": op("Show an extension", 200, envelope("extension", any_obj))}
    paths["/"] = {"get": op("API versions", 200, envelope("versions", {"type": "array"}))}
    paths["/v2.0/"] = {"get": op("Resources of v2.0", 200, envelope("resources", {"type": "array"}))}
    return paths


def identity_paths() -> dict:
    """The Keystone v3 subset, from its routes (its bodies are Keystone's, checked by its handlers)."""
    doc = get_openapi(title="identity", version="3.14", routes=identity_router.routes)
    for item in doc["paths"].values():
        for operation in item.values():
            operation["responses"] = {code: {"description": r.get("description", "")}
                                      for code, r in operation.get("responses", {}).items() if code != "422"}
            operation["responses"]["default"] = {"description": "Keystone error", **_json(KEYSTONE_ERROR)}
            if "requestBody" in operation:
                operation["requestBody"] = {"required": True, **_json({"type": "object"})}
    return doc["paths"]


def document(resources: list[Resource], with_identity: bool) -> dict:
    paths: dict = {}
    for res in resources:
        paths.update(resource_paths(res))
    paths.update(extra_paths())
    if with_identity:
        paths.update(identity_paths())
    return {"openapi": "3.1.0",
            "info": {"title": "neutrino: OpenStack Networking API v2.0" + (" and Identity v3" if with_identity
                                                                          else ""),
                     "version": "2.0"},
            "paths": paths,
            "components": {"securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}},
            "security": [{"token": []}]}


async def openapi_json(request: Request):
    app = request.app.state
    if getattr(app, "openapi_doc", None) is None:
        app.openapi_doc = document(app.resources, app.settings.auth == "keystone")
    return json_response(app.openapi_doc)


def add_routes(router: APIRouter) -> None:
    router.add_api_route("/openapi.json", openapi_json, methods=["GET"])
