"""Request plumbing shared by the identity routes: the app's Database and Settings (`request.app.state`), who is
calling and whether they may act, one transaction per read or write, and Keystone's link/collection/body shapes.

Callers are authenticated by the same seam as the network API (neutrino.identity.seam)."""
from __future__ import annotations

from typing import Any

from fastapi import Request

from neutrino.identity.seam import authenticate
from neutrino.context import Context
from neutrino.identity import tokens
from neutrino.identity.errors import bad, forbidden

Json = dict[str, Any]


def database(request: Request):
    return request.app.state.db


def settings(request: Request):
    return request.app.state.settings


def caller(request: Request) -> Context:
    return authenticate(request.headers, settings(request), database(request))


def require_admin(request: Request, action: str) -> Context:
    ctx = caller(request)
    if not ctx.is_admin:
        raise forbidden(action)
    return ctx


def self_or_admin(request: Request, action: str, user_id: str | None) -> Context:
    ctx = caller(request)
    if not ctx.is_admin and (user_id is None or ctx.user_id != user_id):
        raise forbidden(action)
    return ctx


def read(request: Request, fn, *args):
    return database(request).run(fn, *args)


def write(request: Request, fn, *args):
    """Run an identity write; cached token validations are dropped afterwards since it may revoke some."""
    try:
        return database(request).run(fn, *args)
    finally:
        tokens.forget()


def link(request: Request, path: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/v3/{path}"


def collection(request: Request, key: str, items: list) -> Json:
    return {key: items, "links": {"self": str(request.url), "previous": None, "next": None}}


def member(body: Json, key: str) -> Json:
    value = body.get(key)
    if not isinstance(value, dict):
        raise bad(f"Expecting to find {key} in the request body.")
    return value
