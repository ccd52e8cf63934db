"""The outermost layer of every request (plain ASGI, one per request, no extra task): a request id on every response
(`X-Openstack-Request-Id`, as Neutron), one access log line, the per-request deadline, Neutron's request size limit
(413), JSON-only bodies (415) and no writes from another site's page (403: a web page cannot post a form, text or
a bare body to a noauth server on 127.0.0.1; browsers name the page in Origin / Sec-Fetch-Site), a deadline for
the body to arrive (408), and containment of the unexpected: a 500 with the traceback logged under the request id,
on a connection that stays usable."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid

from neutrino.api.controller import json_response
from neutrino.db.engine import DEADLINE
from neutrino.errors import Forbidden, NeutrinoError, RequestTimeout, RequestTooLarge, UnsupportedMediaType

LOG = logging.getLogger("neutrino.api")
ACCESS = logging.getLogger("neutrino.access")
BODY_METHODS = ("POST", "PUT", "PATCH")
WRITE_METHODS = (*BODY_METHODS, "DELETE")
SEEN = (b"content-length", b"content-type", b"transfer-encoding", b"origin", b"host", b"sec-fetch-site")
INTERNAL = "Request Failed: internal server error while processing your request."


def error_body(path: str, code: int, type_name: str, message: str) -> dict:
    """NeutronError, or Keystone's error shape under /v3."""
    if path.startswith("/v3"):
        return {"error": {"code": code, "title": type_name.removeprefix("HTTP"), "message": message}}
    return {"NeutronError": {"type": type_name, "message": message, "detail": ""}}


def _headers(scope) -> dict[bytes, bytes]:
    return {k: v for k, v in scope["headers"] if k in SEEN}


def _cross_site(h: dict[bytes, bytes]) -> bool:
    """A browser's request made by another site's page (clients other than browsers send neither header)."""
    if h.get(b"sec-fetch-site", b"").lower() in (b"cross-site", b"same-site"):
        return True
    origin = h.get(b"origin")
    return origin is not None and origin.split(b"://", 1)[-1].lower() != h.get(b"host", b"").lower()


def refusal(scope, max_body: int) -> NeutrinoError | None:
    """What is wrong with a request before its body is read: a write from another site's page, too large, or a body
    that is not JSON."""
    if scope["method"] not in WRITE_METHODS:
        return None
    h = _headers(scope)
    if scope["path"].startswith("/v2.0") and _cross_site(h):
        return Forbidden("Cross-site request refused: the Networking API takes writes from its clients and its own "
                         "page only.")
    if scope["method"] not in BODY_METHODS:
        return None
    length = h.get(b"content-length", b"").strip()
    if length and (not length.isdigit() or len(length) > 12):
        return RequestTooLarge("Invalid Content-Length.")
    if length and int(length) > max_body:
        return RequestTooLarge(f"Request is too large: the limit is {max_body} bytes.")
    if (length and int(length) > 0) or b"transfer-encoding" in h:
        media = h.get(b"content-type", b"").split(b";")[0].strip().lower()
        # no Content-Type at all is JSON, as Neutron reads it (tempest sends If-Match updates without one)
        if media and media != b"application/json" and not (media.startswith(b"application/")
                                                            and media.endswith(b"+json")):
            return UnsupportedMediaType(f"Unsupported Content-Type '{media.decode('latin-1')[:64]}': the request "
                                        "body must be application/json.")
    return None


class RequestMiddleware:
    def __init__(self, app, settings):
        self.app, self.settings = app, settings

    def _limited(self, receive):
        """receive() that fails past the body size limit (chunked bodies have no Content-Length) or when the body
        takes longer than the header timeout to arrive."""
        seen = 0
        limit, timeout = self.settings.max_request_body_size, self.settings.header_timeout

        async def wrapped():
            nonlocal seen
            try:
                async with asyncio.timeout(timeout):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout("The request body did not arrive in time.") from None
            seen += len(message.get("body", b""))
            if seen > limit:
                raise RequestTooLarge(f"Request is too large: the limit is {limit} bytes.")
            return message
        return wrapped

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = f"req-{uuid.uuid4()}"
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500
        started = False
        rid_header = (b"x-openstack-request-id", rid.encode())

        async def send_with_id(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        token = DEADLINE.set(time.monotonic() + self.settings.request_deadline)
        try:
            refused = refusal(scope, self.settings.max_request_body_size)
            if refused is not None:
                await self._answer(scope, receive, send_with_id, refused.code, refused.type, refused.message)
            elif scope["method"] in BODY_METHODS:
                await self.app(scope, self._limited(receive), send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            LOG.exception("unexpected error in %s %s [%s]", scope["method"], scope["path"], rid)
            if not started:
                await self._answer(scope, receive, send_with_id, 500, "HTTPInternalServerError", INTERNAL)
        finally:
            DEADLINE.reset(token)
            ms = (time.perf_counter() - start) * 1000
            ctx = state.get("ctx")
            project = ctx.project_id if ctx is not None else "-"
            ACCESS.info("%s %s %s %.1fms project=%s %s", scope["method"], scope["path"], status, ms, project, rid,
                        extra={"method": scope["method"], "path": scope["path"], "status": status,
                               "ms": round(ms, 1), "project": project, "request_id": rid})

    @staticmethod
    async def _answer(scope, receive, send, code: int, type_name: str, message: str) -> None:
        await json_response(error_body(scope["path"], code, type_name, message), code)(scope, receive, send)
