"""The one exception base: every failure the API reports is a NeutrinoError with Neutron's type name and code."""


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


class ServiceUnavailable(NeutrinoError):
    code = 503


class KernelError(NeutrinoError):
    """A kernel or helper-program call failed; raised only by neutrino.lib."""
    code = 500


def not_found(kind: str, ident: str) -> NotFound:
    """Neutron's `<Kind>NotFound` with its usual message, e.g. NetworkNotFound."""
    words = {"SecurityGroupRule": "Security group rule", "SecurityGroup": "Security group",
             "FloatingIP": "Floating IP", "PortForwarding": "Port forwarding",
             "QosPolicy": "QoS policy", "AddressGroup": "Address group", "MeteringLabel": "Metering label",
             "MeteringLabelRule": "Metering label rule"}.get(kind, kind)
    err = NotFound(f"{words} {ident} could not be found.")
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
