"""Quotas and agents: the two admin-facing collections that are not standard resources."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import delete, select, update

from neutrino.api.attrs import Attr, boolean, integer, string, validate_body
from neutrino.api.controller import json_response, read_json, writer
from neutrino.core import agents, common, quotas
from neutrino.db import models as m
from neutrino.errors import Forbidden, bad_request, not_found

T_AGENT = m.Agent.__table__
QUOTA_ATTRS = {k: Attr(convert=integer(-1)) for k in quotas.DEFAULTS}
# python-openstackclient sends these with `quota set`: check_limit refuses a limit below current usage
QUOTA_FLAGS = {"check_limit": Attr(convert=boolean), "force": Attr(convert=boolean)}
AGENT_ATTRS = {"admin_state_up": Attr(convert=boolean), "description": Attr(convert=string(255))}


def _quota_ctx(request: Request, project_id: str, write: bool = False):
    ctx = request.state.ctx
    if write:
        writer(ctx)
    if not ctx.is_admin and (write or project_id != ctx.project_id):
        raise Forbidden("(rule:update_quota) is disallowed by policy" if write else
                        "(rule:get_quota) is disallowed by policy")
    return ctx


async def quota_list(request: Request):
    ctx = request.state.ctx
    db = request.app.state.db

    def tx(s):
        projects = quotas.projects_with_quotas(s) if ctx.is_admin else [ctx.project_id]
        return [{"project_id": p, "tenant_id": p, **quotas.limits(s, p)} for p in projects]
    return json_response({"quotas": await db.call(tx)})


async def quota_show(request: Request, project_id: str):
    _quota_ctx(request, project_id)
    return json_response({"quota": await request.app.state.db.call(quotas.limits, project_id)})


async def quota_default(request: Request, project_id: str):
    return json_response({"quota": dict(quotas.DEFAULTS)})


async def quota_details(request: Request, project_id: str):
    _quota_ctx(request, project_id)
    return json_response({"quota": await request.app.state.db.call(quotas.details, project_id)})


async def quota_update(request: Request, project_id: str):
    ctx = _quota_ctx(request, project_id, write=True)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
        raise bad_request("Resource body required: expected 'quota'.")
    values = validate_body({**QUOTA_ATTRS, **QUOTA_FLAGS}, body["quota"], "quota", False, ctx)
    check = values.pop("check_limit", False)
    values.pop("force", None)
    db = request.app.state.db

    def tx(s):
        if check:
            quotas.check_limits(s, project_id, values)
        quotas.update(s, project_id, values)
        return quotas.limits(s, project_id)
    return json_response({"quota": await db.call(tx, write=True)})


async def quota_delete(request: Request, project_id: str):
    _quota_ctx(request, project_id, write=True)
    await request.app.state.db.call(quotas.reset, project_id, write=True)
    return Response(status_code=204)


def _render_agent(row, down_time: int) -> dict:
    return {"id": row.id, "agent_type": row.agent_type, "binary": row.binary, "host": row.host, "topic": row.topic,
            "admin_state_up": row.admin_state_up, "alive": agents.alive(row, down_time),
            "configurations": row.configurations or {}, "created_at": common.fmt(row.created_at),
            "started_at": common.fmt(row.started_at), "heartbeat_timestamp": common.fmt(row.heartbeat_timestamp),
            "description": row.description, "resources_synced": None,
            "availability_zone": None if row.agent_type in agents.L2_TYPES.values() else "nova"}


async def agent_list(request: Request):
    ctx = request.state.ctx
    app = request.app.state
    if not ctx.is_admin:
        return json_response({"agents": []})
    filters = dict(request.query_params)

    def tx(s):
        return [_render_agent(r, app.settings.agent_down_time)
                for r in s.execute(select(T_AGENT).order_by(T_AGENT.c.host, T_AGENT.c.agent_type))]
    items = await app.db.call(tx)
    for key in ("host", "agent_type", "binary", "id"):
        if key in filters:
            items = [i for i in items if i[key] == filters[key]]
    return json_response({"agents": items})


def _agent_row(s, ctx, agent_id):
    row = s.execute(select(T_AGENT).where(T_AGENT.c.id == agent_id)).first()
    if row is None or not ctx.is_admin:
        raise not_found("Agent", agent_id)
    return row


async def agent_show(request: Request, agent_id: str):
    app = request.app.state
    row = await app.db.call(_agent_row, request.state.ctx, agent_id)
    return json_response({"agent": _render_agent(row, app.settings.agent_down_time)})


async def agent_update(request: Request, agent_id: str):
    ctx = request.state.ctx
    writer(ctx)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("agent"), dict):
        raise bad_request("Resource body required: expected 'agent'.")
    values = validate_body(AGENT_ATTRS, body["agent"], "agent", False, ctx, request.app.state.settings)
    app = request.app.state

    def tx(s):
        _agent_row(s, ctx, agent_id)
        s.execute(update(T_AGENT).where(T_AGENT.c.id == agent_id).values(**values))
        return _agent_row(s, ctx, agent_id)
    row = await app.db.call(tx, write=True)
    return json_response({"agent": _render_agent(row, app.settings.agent_down_time)})


async def agent_delete(request: Request, agent_id: str):
    ctx = request.state.ctx
    writer(ctx)

    def tx(s):
        _agent_row(s, ctx, agent_id)
        s.execute(delete(T_AGENT).where(T_AGENT.c.id == agent_id))
    await request.app.state.db.call(tx, write=True)
    return Response(status_code=204)


def add_routes(router: APIRouter) -> None:
    q = "/v2.0/quotas"
    router.add_api_route(q, quota_list, methods=["GET"])
    router.add_api_route(q + "/{project_id}/default", quota_default, methods=["GET"])
    router.add_api_route(q + "/{project_id}/details.json", quota_details, methods=["GET"])
    router.add_api_route(q + "/{project_id}/details", quota_details, methods=["GET"])
    router.add_api_route(q + "/{project_id}", quota_show, methods=["GET"])
    router.add_api_route(q + "/{project_id}", quota_update, methods=["PUT"])
    router.add_api_route(q + "/{project_id}", quota_delete, methods=["DELETE"])
    a = "/v2.0/agents"
    router.add_api_route(a, agent_list, methods=["GET"])
    router.add_api_route(a + "/{agent_id}", agent_show, methods=["GET"])
    router.add_api_route(a + "/{agent_id}", agent_update, methods=["PUT"])
    router.add_api_route(a + "/{agent_id}", agent_delete, methods=["DELETE"])
