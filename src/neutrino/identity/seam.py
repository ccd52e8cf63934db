"""The auth seam of the network API and the identity routes: turn a request's headers into a Context, by the
configured mode.

- a static admin token (settings.admin_token) is always accepted as admin (`--os-auth-type admin_token`);
- `noauth`: project from X-Project-Id (roles from X-Roles), admin when no project is given;
- `keystone`: tokens issued by the built-in identity service (neutrino.identity);
- `external`: tokens validated against an external Keystone (GET /v3/auth/tokens with our service token).
"""
from __future__ import annotations

import hmac

from neutrino.context import Context
from neutrino.errors import Unauthorized
from neutrino.identity.external import validate_external
from neutrino.identity.tokens import validate

NOAUTH_PROJECT = "admin"


def authenticate(headers, settings, db) -> Context:
    token = headers.get("x-auth-token")
    if settings.admin_token and token and hmac.compare_digest(token, settings.admin_token):
        return Context.admin(headers.get("x-project-id") or NOAUTH_PROJECT)
    if settings.auth == "noauth":
        project = headers.get("x-project-id")
        if not project:
            return Context.admin(NOAUTH_PROJECT)
        roles = [r.strip() for r in (headers.get("x-roles") or "member,reader").split(",") if r.strip()]
        return Context(project_id=project, roles=roles, is_admin="admin" in roles)
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    if settings.auth == "keystone":
        ctx = validate(db, token)
    elif settings.auth == "external":
        ctx = validate_external(settings, token)
    else:
        ctx = None
    if ctx is None:
        raise Unauthorized("The request you have made requires authentication.")
    return ctx
