"""Keystone's error shape (`{"error": {"code", "title", "message"}}`) and the route class that answers every
failure of the identity router in it, so Keystone clients read our errors as they read Keystone's."""
from __future__ import annotations

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError

from neutrino.errors import NeutrinoError

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
          500: "Internal Server Error", 503: "Service Unavailable"}
AUTH_FAILED = "The request you have made requires authentication."


class KeystoneError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"code": self.code, "title": TITLES.get(self.code, "Error"),
                                       "message": self.message}}, status_code=self.code)


def not_found(kind: str, ident: str) -> KeystoneError:
    return KeystoneError(404, f"Could not find {kind}: {ident}.")


def bad(message: str) -> KeystoneError:
    return KeystoneError(400, message)


def forbidden(action: str) -> KeystoneError:
    return KeystoneError(403, f"You are not authorized to perform the requested action: identity:{action}.")


class KeystoneRoute(APIRoute):
    """Answers every failure of this router in Keystone's error shape (routers cannot carry exception handlers)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def keystone_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except KeystoneError as e:
                return e.response()
            except RequestValidationError:
                return bad("Expecting to find a JSON object in the request body.").response()
            except NeutrinoError as e:
                return KeystoneError(e.code, e.message).response()
            except IntegrityError:
                return KeystoneError(409, "Conflict occurred attempting to store the object.").response()
        return keystone_errors
