"""The HTTP application: Neutron v2.0 on one app (plus the Keystone subset under /v3 and the agent protocol)."""
from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from neutrino.api import (addressgroups, admin, extensions, ipavailability, meta, metering, networks,
                          openapi, ports, qos, rbac, routers, secgroups)
from neutrino.api.controller import Controller, json_response
from neutrino.api.middleware import RequestMiddleware
from neutrino.core import quotas
from neutrino.errors import NeutrinoError, NotFound, show
from neutrino.identity.seam import authenticate
from neutrino.identity.routes import router as identity_router
from neutrino.metrics.server import Metrics, MetricsMiddleware
from neutrino.metrics.server import router as metrics_router
from neutrino.api.changes import Hub
from neutrino.api.agents import router as agents_router
from neutrino.ui.routes import router as ui_router

LOG = logging.getLogger(__name__)
OPEN_PATHS = ("/", "/v2.0", "/v2.0/", "/v3", "/v3/", "/healthz", "/openapi.json", "/metrics", "/ui")
OPEN_PREFIXES = ("/v3/", "/agent/", "/ui/static/")


RESOURCES = [ports.PORT, networks.NETWORK, networks.SUBNET, networks.SUBNETPOOL, networks.ADDRESS_SCOPE,
             rbac.RBAC_POLICY, *secgroups.RESOURCES, *routers.RESOURCES, qos.POLICY, addressgroups.ADDRESS_GROUP,
             *metering.RESOURCES]


class Notifier:
    """Wakes this process's page event streams right after its own commits (they also re-read the revision every
    second); agents' watches are woken by the change hub (api/changes.py), on every server."""

    def __init__(self):
        self.cond: asyncio.Condition | None = None

    def notify(self) -> None:
        if self.cond is None:
            return
        loop = asyncio.get_running_loop()
        loop.create_task(self._wake())

    async def _wake(self):
        async with self.cond:
            self.cond.notify_all()

    async def wait(self, timeout: float) -> None:
        if self.cond is None:
            self.cond = asyncio.Condition()
        async with self.cond:
            try:
                await asyncio.wait_for(self.cond.wait(), timeout)
            except asyncio.TimeoutError:
                pass


class AuthMiddleware:
    """Puts the caller's Context in request.state.ctx (plain ASGI: no per-request task machinery)."""

    def __init__(self, app, settings, db):
        self.app, self.settings, self.db = app, settings, db

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope["path"]
            if path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES):
                try:
                    ctx = authenticate(Headers(scope=scope), self.settings, self.db)
                except NeutrinoError as e:
                    await json_response(e.body(), e.code)(scope, receive, send)
                    return
                scope.setdefault("state", {})["ctx"] = ctx
        await self.app(scope, receive, send)


class CollectionDispatch:
    """Collections' lists and items (`/v2.0/{collection}[.json]`, `/v2.0/{collection}/{id}`) straight to their
    controller, ahead of the router: its matching and FastAPI's layers cost as much as reading a port. Any other
    path (actions, sub-collections, tags) goes on to the router, which serves these paths the same way."""

    def __init__(self, app, controllers: dict[str, Controller]):
        self.app = app
        self.controllers = {f"/v2.0/{path}": c for path, c in controllers.items()}

    def _match(self, path: str):
        if not path.startswith("/v2.0/"):
            return None, None
        head, sep, tail = path.rpartition("/")
        if "." in tail and tail.endswith(".json"):
            base = path[:-5]
            if base in self.controllers:
                return self.controllers[base], ".json"
        if path in self.controllers:
            return self.controllers[path], ""
        if tail and head in self.controllers:
            return self.controllers[head], sep + tail
        return None, None

    async def __call__(self, scope, receive, send):
        controller, rest = self._match(scope["path"]) if scope["type"] == "http" else (None, None)
        if controller is None:
            await self.app(scope, receive, send)
            return
        scope["endpoint"], scope["path_params"] = controller.dispatch, {"rest": rest}
        try:
            response = await controller.dispatch(Request(scope, receive))
        except NeutrinoError as e:
            response = neutrino_error(e)
        except StarletteHTTPException as e:
            response = http_error(scope["path"], e)
        await response(scope, receive, send)


def neutrino_error(exc: NeutrinoError):
    if exc.code >= 500:
        LOG.error("internal error: %s", exc.message)
    return json_response(exc.body(), exc.code)


def http_error(path: str, exc: StarletteHTTPException):
    if exc.status_code == 404:
        err = NotFound(f"The resource could not be found: {show(path)}")
        err.type_name = "HTTPNotFound"
        return json_response(err.body(), 404)
    if exc.status_code == 405:
        return json_response({"NeutronError": {"type": "HTTPMethodNotAllowed", "detail": "",
                                               "message": "The method is not allowed for this resource."}}, 405)
    return json_response({"NeutronError": {"type": "HTTPError", "message": str(exc.detail), "detail": ""}},
                         exc.status_code)


def create_app(settings, db) -> FastAPI:
    app = FastAPI(title="neutrino", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.db = db
    app.state.resources = RESOURCES
    quotas.set_defaults(settings.quotas)
    notifier = Notifier()
    app.state.notifier = notifier
    app.state.notify = notifier.notify
    app.state.changes = Hub()

    app.state.metrics = Metrics(db)

    controllers = {res.path: Controller(res, settings) for res in RESOURCES}
    app.add_middleware(CollectionDispatch, controllers=controllers)
    app.add_middleware(AuthMiddleware, settings=settings, db=db)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)     # outside auth: times refusals too
    app.add_middleware(RequestMiddleware, settings=settings)      # added last: the outermost

    @app.exception_handler(NeutrinoError)
    async def _neutrino_error(_request, exc: NeutrinoError):
        return neutrino_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return http_error(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request, exc: RequestValidationError):
        return json_response({"NeutronError": {"type": "HTTPBadRequest", "message": str(exc.errors()[:1]),
                                               "detail": ""}}, 400)

    router = APIRouter()
    routers.add_routes(router)          # router actions before the routers collection's catch-all route
    qos.add_routes(router)              # QoS rules before the policies collection's
    addressgroups.add_routes(router)
    for controller in controllers.values():
        controller.routes(router)
    meta.add_routes(router)
    openapi.add_routes(router)
    extensions.add_routes(router)
    ipavailability.add_routes(router)
    admin.add_routes(router)
    mounted = [router, identity_router] if settings.auth == "keystone" else [router]
    mounted += [agents_router, metrics_router, ui_router]
    for r in mounted:
        app.include_router(r)
    app.state.metrics.learn(*mounted)
    return app
