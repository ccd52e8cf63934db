"""QoS: policies on the generic controller; their rules (one sub-collection per rule type) and the rule types."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.routing import Route

from neutrino.api import listing
from neutrino.api.attrs import (PROJECT_ATTRS, REQUIRED, STD_ATTRS, Attr, boolean, int_choice, integer, one_of,
                                string, validate_body)
from neutrino.api.controller import Resource, json_response, list_response, read_json, write, writer
from neutrino.core import qos
from neutrino.errors import Forbidden, bad_request, not_found

POLICY = Resource("policy", "qos/policies", qos, delete=qos.delete_policy, plural="policies",
                  tags_path="policies", attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "name": Attr(default="", convert=string(255)),
    "shared": Attr(default=False, convert=boolean),
    "is_default": Attr(default=False, convert=boolean),
}, readonly=("rules",))

_kbps = integer(0, qos.MAX_INT)
_direction = one_of(*qos.DIRECTIONS)
RULE_ATTRS = {
    "bandwidth_limit": {"max_kbps": Attr(default=REQUIRED, convert=_kbps),
                        "max_burst_kbps": Attr(convert=_kbps), "direction": Attr(convert=_direction)},
    "dscp_marking": {"dscp_mark": Attr(default=REQUIRED,
                                       convert=int_choice(*qos.VALID_DSCP_MARKS))},
    "minimum_bandwidth": {"min_kbps": Attr(default=REQUIRED, convert=_kbps), "direction": Attr(convert=_direction)},
}


def _body(rule_type: str, body, creating: bool, ctx) -> dict:
    key = f"{rule_type}_rule"
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise bad_request(f"Resource body required: expected '{key}'.")
    return validate_body(RULE_ATTRS[rule_type], body[key], key, creating, ctx)


async def list_rules(request: Request, rule_type: str, pid: str):
    ctx = request.state.ctx
    collection = qos.RULE_TYPES[rule_type][0]
    known = {"id", *qos.RULE_TYPES[rule_type][1]}
    return await list_response(request, collection, known, lambda s: [
        qos.rule_dict(r, with_policy=False) for r in qos.list_rules(s, qos.get(s, ctx, pid), rule_type)])


async def show_rule(request: Request, rule_type: str, pid: str, rid: str):
    ctx = request.state.ctx
    fields = [f for k, v in request.query_params.multi_items() if k == "fields" for f in v.split(",")]
    item = await request.app.state.db.call(
        lambda s: qos.rule_dict(qos.get_rule(s, qos.get(s, ctx, pid), rule_type, rid), with_policy=False))
    return json_response({f"{rule_type}_rule": listing.select_fields([item], fields)[0]})


async def create_rule(request: Request, rule_type: str, pid: str):
    """Neutron checks the admin-only policy before it looks the policy up: a project gets 403, even for no policy."""
    writer(request.state.ctx)
    qos.admin_only(request.state.ctx, f"create_policy_{rule_type}_rule")
    data = _body(rule_type, await read_json(request), True, request.state.ctx)

    def tx(s, ctx):
        policy = qos.get(s, ctx, pid)
        return qos.rule_dict(qos.get_rule(s, policy, rule_type, qos.create_rule(s, ctx, policy, rule_type, data)),
                             with_policy=False)
    return json_response({f"{rule_type}_rule": await write(request, tx)}, 201)


async def update_rule(request: Request, rule_type: str, pid: str, rid: str):
    writer(request.state.ctx)
    data = _body(rule_type, await read_json(request), False, request.state.ctx)

    def tx(s, ctx):
        policy = qos.get(s, ctx, pid)
        qos.update_rule(s, ctx, policy, qos.get_rule(s, policy, rule_type, rid), data)
        return qos.rule_dict(qos.get_rule(s, policy, rule_type, rid), with_policy=False)
    return json_response({f"{rule_type}_rule": await write(request, tx)})


async def delete_rule(request: Request, rule_type: str, pid: str, rid: str):
    writer(request.state.ctx)

    def tx(s, ctx):
        policy = qos.get(s, ctx, pid)
        qos.delete_rule(s, ctx, policy, qos.get_rule(s, policy, rule_type, rid))
    await write(request, tx)
    return Response(status_code=204)


async def list_rule_types(request: Request):
    return await list_response(request, "rule_types", {"type", "all_supported", "all_rules"},
                         lambda _s: [{"type": t} for t in qos.RULE_TYPES])


async def show_rule_type(request: Request, rule_type: str):
    if not request.state.ctx.is_admin:
        raise Forbidden("(rule:get_rule_type) is disallowed by policy")
    if rule_type not in qos.RULE_TYPES:
        err = not_found("QosRuleType", rule_type)
        err.message = f"QoS rule type {rule_type} could not be found."
        raise err
    return json_response({"rule_type": qos.rule_type_details(rule_type)})


def _endpoint(fn, rule_type: str):
    async def endpoint(request: Request):
        return await fn(request, rule_type, **request.path_params)
    return endpoint


def add_routes(router: APIRouter) -> None:
    """Before the policies collection's catch-all route (which keeps /{id}/tags)."""
    for rule_type, (collection, _params) in qos.RULE_TYPES.items():
        p = f"/v2.0/qos/policies/{{pid}}/{collection}"
        for path, method, fn in ((p, "GET", list_rules), (p, "POST", create_rule), (p + "/{rid}", "GET", show_rule),
                                 (p + "/{rid}", "PUT", update_rule), (p + "/{rid}", "DELETE", delete_rule)):
            router.routes.append(Route(path, _endpoint(fn, rule_type), methods=[method]))
    router.add_api_route("/v2.0/qos/rule-types", list_rule_types, methods=["GET"])
    router.add_api_route("/v2.0/qos/rule-types/{rule_type}", show_rule_type, methods=["GET"])
