"""The one exception base: every failure the API reports is a NeutrinoError with Neutron's type name and code."""
from __future__ import annotations

from typing import Any

import orjson

SHOWN = 64          # characters of a rejected value quoted in an error message


def show(v: Any) -> str:
    """A rejected value as quoted in a message: JSON (or the text itself), cut to SHOWN characters."""
    if isinstance(v, str):
        text = v
    else:
        try:
            text = orjson.dumps(v).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = type(v).__name__
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


class NeutrinoError(Exception):
    """Base of all neutrino errors; `code` is the HTTP status the API answers with."""

    code = 500
    type_name: str | None = None

    def __init__(self, message: str = "", detail: str = ""):
        super().__init__(message)
        self.message = message or self.__class__.__doc__ or self.__class__.__name__
        self.detail = detail

    @property
    def type(self) -> str:
        return self.type_name or self.__class__.__name__

    def body(self) -> dict:
        return {"NeutronError": {"type": self.type, "message": self.message, "detail": self.detail}}


class BadRequest(NeutrinoError):
    """Bad request."""
    code = 400
    type_name = "HTTPBadRequest"


class Unauthorized(NeutrinoError):
    """The request you have made requires authentication."""
    code = 401
    type_name = "HTTPUnauthorized"


class Forbidden(NeutrinoError):
    code = 403
    type_name = "PolicyNotAuthorized"


class NotFound(NeutrinoError):
    code = 404


class Conflict(NeutrinoError):
    code = 409


class OverQuota(Conflict):
    type_name = "OverQuota"


class PreconditionFailed(NeutrinoError):
    code = 412
    type_name = "RevisionNumberConstraintFailed"


class RequestTimeout(NeutrinoError):
    """The request body did not arrive in time."""
    code = 408
    type_name = "HTTPRequestTimeout"


class RequestTooLarge(NeutrinoError):
    """Request is too large."""
    code = 413
    type_name = "HTTPRequestEntityTooLarge"


class UnsupportedMediaType(NeutrinoError):
    """The request body must be JSON (Content-Type: application/json)."""
    code = 415
    type_name = "HTTPUnsupportedMediaType"


class ServiceUnavailable(NeutrinoError):
    code = 503


class DeadlineExceeded(ServiceUnavailable):
    """The request took longer than the server's per-request deadline; nothing of it was stored."""
    type_name = "RequestDeadlineExceeded"


class KernelError(NeutrinoError):
    """A kernel or helper-program call failed; raised only by neutrino.lib.

    Callers tell failures apart by these attributes, never by the message text: `errno` is the kernel's error
    number (a netlink answer, a system call), `returncode` and `stderr` a helper program's exit status and error
    output; each is None when the failure did not come with one."""
    code = 500

    def __init__(self, message: str = "", detail: str = "", *, errno: int | None = None,
                 returncode: int | None = None, stderr: str | None = None):
        super().__init__(message, detail)
        self.errno = errno
        self.returncode = returncode
        self.stderr = stderr


def not_found(kind: str, ident: str) -> NotFound:
    """Neutron's `<Kind>NotFound` with its usual message, e.g. NetworkNotFound."""
    words = {"SecurityGroupRule": "Security group rule", "SecurityGroup": "Security group",
             "FloatingIP": "Floating IP", "PortForwarding": "Port forwarding",
             "QosPolicy": "QoS policy", "AddressGroup": "Address group", "MeteringLabel": "Metering label",
             "MeteringLabelRule": "Metering label rule"}.get(kind, kind)
    err = NotFound(f"{words} {show(ident)} could not be found.")
    err.type_name = f"{kind}NotFound"
    return err


def conflict(type_name: str, message: str) -> Conflict:
    err = Conflict(message)
    err.type_name = type_name
    return err


def bad_request(message: str, type_name: str = "HTTPBadRequest") -> BadRequest:
    err = BadRequest(message)
    err.type_name = type_name
    return err
