"""HTTP side of the page: the page and its static files (open: it logs in through Keystone itself), the revision
stream it redraws on, and the hood and trace answers (same auth as the API: X-Auth-Token).

GET /ui                         the page
GET /ui/static/{file}           its script, style and the vendored graph library (cytoscape, pinned)
GET /ui/events                  server-sent events: `revision` whenever the global revision (what agents watch) moves
GET /ui/hosts                    admin: per host, its agent's view revision lag, drift repairs and errors
GET /ui/hood/{ref}              `neutrino hood --json` of an instance, port, router or network
GET /ui/trace?src&dst&proto&port  `neutrino trace --json`
Both with ?as=html: what the terminal shows (the CLI's own rendering, exported by rich as HTML) for the page.
"""
from __future__ import annotations

import asyncio
import io
import os
import time

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from rich.console import Console

from neutrino.core import common
from neutrino.errors import BadRequest, Forbidden, NotFound
from neutrino.hood.where import hood_report, trace_flow
from neutrino.responses import json_response
from neutrino.ui.source import ServerWhere

router = APIRouter()
STATIC = os.path.join(os.path.dirname(__file__), "static")
FILES = {name: os.path.join(STATIC, name) for name in sorted(os.listdir(STATIC))}
KEEPALIVE = 15.0
HTML_WIDTH = 300     # no folding: the pre scrolls sideways, rules stay on one line as in `iptables -S`


def _html(*renderables) -> HTMLResponse:
    console = Console(record=True, width=HTML_WIDTH, file=io.StringIO(), highlight=False)
    for r in renderables:
        console.print(r)
    return HTMLResponse(console.export_html(inline_styles=True, code_format='<pre class="term">{code}</pre>'))


def _where(request: Request):
    app = request.app.state
    return ServerWhere(app.db, app.settings, request.state.ctx)


@router.get("/ui")
async def page():
    return FileResponse(FILES["index.html"], headers={"Cache-Control": "no-cache"})


@router.get("/ui/static/{name}")
async def static(name: str):
    if name not in FILES:
        raise NotFound(f"The resource could not be found: /ui/static/{name}")
    return FileResponse(FILES[name])


@router.get("/ui/events")
async def events(request: Request):
    """One `revision` event now and after every change; a comment line keeps idle connections open."""
    app = request.app.state

    async def stream():
        last, quiet_since = None, time.monotonic()
        with app.metrics.watch("ui"):
            while not await request.is_disconnected():
                rev = await app.db.call(common.revision)
                if rev != last:
                    last, quiet_since = rev, time.monotonic()
                    yield f"event: revision\ndata: {rev}\n\n"
                elif time.monotonic() - quiet_since > KEEPALIVE:
                    quiet_since = time.monotonic()
                    yield ": idle\n\n"
                await app.notifier.wait(1.0)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/ui/hosts")
async def hosts(request: Request):
    if not request.state.ctx.is_admin:
        raise Forbidden("Hosts and agents are for admins.")
    app = request.app.state
    return json_response(app.metrics.hosts(await app.db.call(common.revision)))


@router.get("/ui/hood/{ref}")
async def hood(request: Request, ref: str, as_: str = Query("json", alias="as")):
    from neutrino.hood.show import render
    where = _where(request)
    report = await asyncio.to_thread(hood_report, where, ref)
    return _html(render(report)) if as_ == "html" else json_response(report)


@router.get("/ui/trace")
async def trace(request: Request, src: str, dst: str, proto: str = "icmp", port: str = "",
                as_: str = Query("json", alias="as")):
    from neutrino.hood.trace import render
    try:
        number = int(port) if port.strip() else None
    except ValueError:
        raise BadRequest(f"port must be a number, not {port!r}") from None
    where = _where(request)
    result = await asyncio.to_thread(trace_flow, where, src, dst, proto, number)
    return _html(*render(result)) if as_ == "html" else json_response(result.to_dict())
