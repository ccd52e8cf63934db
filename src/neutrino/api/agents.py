"""Server side of the agent protocol: host views by long-poll, reports (heartbeat, realized state), metadata.

GET  /agent/v1/hosts/{host}/view?since=REV&wait=30   waits until the global revision passes REV, then the view
POST /agent/v1/hosts/{host}/report                   registers/heartbeats the agent, clears provisioning blocks
GET  /agent/v1/metering                              metering counters per label and router, as agents reported
GET  /agent/v1/metadata/{path}                       answers for the port behind X-Forwarded-For (proxied)
PUT  /agent/v1/instances/{device_id}                 the compute side's hostname, keys and user data of an instance
"""
from __future__ import annotations

import asyncio
import hmac
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select, update

from neutrino.api.attrs import Attr, any_dict, string, validate_body
from neutrino.api import changes
from neutrino.api.controller import json_response, read_json
from neutrino.context import Context
from neutrino.core import agents, binding, common, metadata, metering, scheduling, views
from neutrino.db import models as m
from neutrino.db import notify
from neutrino.db.engine import DEADLINE as DB_DEADLINE
from neutrino.sync.schema import unchanged_view
from neutrino.errors import Unauthorized, bad_request

router = APIRouter()
T_AGENT = m.Agent.__table__
T_PORT = m.Port.__table__
T_FIP = m.FloatingIP.__table__
T_ROUTER = m.Router.__table__
MAX_WAIT = 60.0
POLL = 1.0          # while the LISTEN connection is down, re-read the revision this often: other servers commit


def _check_token(request: Request) -> None:
    want = request.app.state.settings.agent_token
    got = request.headers.get("x-auth-token") or ""
    if want and not hmac.compare_digest(got, want):
        raise Unauthorized("Invalid agent token.")


@router.get("/agent/v1/hosts/{host}/view")
async def view(request: Request, host: str, since: int = 0, wait: float = 0):
    """The host's view once a change after `since` touches it (api/changes.py), else "unchanged" at the deadline."""
    _check_token(request)
    app = request.app.state
    hub = app.changes
    notify.listen(app)
    deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT)
    w = hub.watch(host, since)
    try:
        while True:
            w.event.clear()                  # before reading the revision: a change published after it wakes us
            current = hub.latest if hub.exact else await app.db.call(common.revision)
            if hub.due(host, since, current):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                hub.answered(host, current)
                return json_response(unchanged_view(host, current))
            try:
                await asyncio.wait_for(w.event.wait(), left if hub.listening else min(left, POLL))
            except asyncio.TimeoutError:
                pass
            DB_DEADLINE.set(time.monotonic() + app.settings.request_deadline)   # waiting is not working
    finally:
        hub.unwatch(w)
    out = await app.db.call(views.compile_view, host, app.settings)
    hub.answered(host, out["revision"], changes.view_keys(out))
    return json_response(out)


def _without_server(conf: dict | None) -> dict:
    """An agent's configuration but the server it watches (a fail-over changes no view)."""
    return {k: v for k, v in (conf or {}).items() if k != "server"}


def _upsert_agents(s, host: str, conf: dict) -> bool:
    """One row per agent type the host runs (L2 + one per role); True when a row is new or was dead."""
    l2_type = agents.L2_TYPES.get(conf.get("l2", "ovs"), agents.L2_TYPES["ovs"])
    wanted = {l2_type: f"neutrino-{conf.get('l2', 'ovs')}-agent"}
    for role in conf.get("roles", []):
        if role in agents.ROLE_TYPES:
            wanted[agents.ROLE_TYPES[role]] = f"neutrino-{role}-agent"
    t = common.now()
    changed = False
    for atype, binary in wanted.items():
        row = s.execute(select(T_AGENT).where(T_AGENT.c.host == host, T_AGENT.c.agent_type == atype)).first()
        if row is None:
            s.execute(T_AGENT.insert().values(id=common.new_id(), host=host, agent_type=atype, binary=binary,
                                              topic="N/A", admin_state_up=True, configurations=conf, created_at=t,
                                              started_at=t, heartbeat_timestamp=t))
            changed = True
        else:
            if not agents.alive(row) or _without_server(row.configurations) != _without_server(conf):
                changed = True
            s.execute(update(T_AGENT).where(T_AGENT.c.id == row.id).values(heartbeat_timestamp=t,
                                                                            configurations=conf))
    return changed


def _apply_report(s, host: str, body: dict, settings) -> int:
    conf = body.get("agent") or {}
    if not isinstance(conf, dict):
        raise bad_request("agent must be an object")
    changed = _upsert_agents(s, host, conf)
    if changed:
        common.affects(s, changes.AGENTS, f"host:{host}")
        scheduling.schedule(s, settings, host)
    reported = body.get("ports") or {}
    dhcp_ready = {(pid, binding.DHCP) for pid in body.get("dhcp_ready") or []}
    mine = dict(s.execute(select(T_PORT.c.id, T_PORT.c.status).where(T_PORT.c.host_id == host)).all()
                ) if reported else {}        # a bare heartbeat (1000 agents: 33/s) reads no port
    blocks = binding.blocked(s, {*reported, *(pid for pid, _ in dhcp_ready)})
    for pid, ok in reported.items():
        if pid not in mine:
            continue
        if ok and ((pid, binding.L2) in blocks or mine[pid] != "ACTIVE"):    # blocked, or back up from DOWN
            binding.clear(s, pid, binding.L2)
        elif not ok and mine[pid] == "ACTIVE":
            s.execute(update(T_PORT).where(T_PORT.c.id == pid).values(status="DOWN"))
    for pid, entity in sorted(dhcp_ready & blocks):       # a DHCP entry for a port on any host
        binding.clear(s, pid, entity)
    _set_status(s, T_FIP, {fid: "ACTIVE" if ok else "DOWN" for fid, ok in (body.get("floatingips") or {}).items()})
    _set_status(s, T_ROUTER, {rid: "ACTIVE" if ok else "ERROR" for rid, ok in (body.get("routers") or {}).items()},
                T_ROUTER.c.host == host)
    metering.record(s, host, body.get("metering") or {})
    if not changed:
        return common.revision(s), None
    change = changes.record(s, precise=True)
    return change.revision, change


def _set_status(s, table, wanted: dict[str, str], *where) -> None:
    """Write the statuses that differ: a report names every floating IP and router of its host each time, and one
    read spares a host with 1000 floating IPs 1000 updates per report."""
    have = dict(common.in_chunks(s, lambda c: select(table.c.id, table.c.status).where(table.c.id.in_(c)), wanted))
    for oid, status in sorted(wanted.items()):
        if oid in have and have[oid] != status:
            s.execute(update(table).where(table.c.id == oid, *where).values(status=status))


@router.post("/agent/v1/hosts/{host}/report")
async def report(request: Request, host: str):
    _check_token(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("report must be an object")
    app = request.app.state
    rev, change = await app.db.call(_apply_report, host, body, app.settings, write=True)
    app.metrics.agent_report(host, body)
    if change is not None:
        notify.committed(app, change)
    return json_response({"revision": rev})


@router.get("/agent/v1/metering")
async def metering_counters(request: Request):
    _check_token(request)
    return json_response({"metering": await request.app.state.db.call(metering.counters)})


_INSTANCE = {"hostname": Attr(convert=string(255)), "user_data": Attr(convert=string(65535, text=True)),
             "public_keys": Attr(convert=lambda n, v: {string(255)(n, k): string(16384, text=True)(n, x)
                                                       for k, x in any_dict(n, v).items()})}


@router.put("/agent/v1/instances/{device_id}")
async def instance_put(request: Request, device_id: str):
    """The lab's compute side records an instance's hostname, keys and user data for the metadata service."""
    _check_token(request)
    body = validate_body(_INSTANCE, await read_json(request), "instance", False, Context.admin())
    await request.app.state.db.call(metadata.set_instance, device_id, body.get("hostname", ""),
                                    body.get("public_keys", {}), body.get("user_data", ""), write=True)
    return json_response({"instance": {"device_id": device_id, **body}})


@router.delete("/agent/v1/instances/{device_id}")
async def instance_delete(request: Request, device_id: str):
    _check_token(request)
    await request.app.state.db.call(metadata.delete_instance, device_id, write=True)
    return Response(status_code=204)


@router.get("/agent/v1/metadata/{path:path}")
async def metadata_get(request: Request, path: str):
    _check_token(request)
    h = request.headers
    source = (h.get("x-forwarded-for") or "").split(",")[0].strip()
    status, ctype, body = await request.app.state.db.call(
        metadata.answer, path, source, h.get("x-neutrino-router-id"), h.get("x-neutrino-network-id"))
    return Response(content=body, status_code=status, media_type=ctype)
