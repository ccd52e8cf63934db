"""Trusting an external Keystone: validate a user's token as keystonemiddleware does (GET /v3/auth/tokens with our
service token in X-Auth-Token and the user's in X-Subject-Token), caching the answer for a few seconds."""
from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime, timezone

import httpx

from neutrino.context import Context
from neutrino.errors import ServiceUnavailable
from neutrino.identity.tokens import CACHE_SECONDS, context_for, digest

TIMEOUT = 5.0

_cache: dict[str, tuple[float, Context]] = {}
_client: list[httpx.Client] = []
_lock = threading.Lock()


def _http() -> httpx.Client:
    with _lock:
        if not _client:
            _client.append(httpx.Client(timeout=TIMEOUT))
        return _client[0]


def parse_token(body: dict) -> tuple[Context, float] | None:
    """(Context, seconds left) from a Keystone token body; None when it is not project-scoped."""
    token = body.get("token") or {}
    project, user = token.get("project"), token.get("user") or {}
    if not project or not project.get("id"):
        return None
    ctx = context_for(project["id"], project.get("name"), user.get("id"), user.get("name"),
                      [r["name"] for r in token.get("roles") or [] if r.get("name")])
    expires = datetime.fromisoformat(token["expires_at"])
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    return ctx, (expires - datetime.now(timezone.utc)).total_seconds()


def validate_external(settings, token: str) -> Context | None:
    """Context for a token the external Keystone accepts, None when it does not (404); 503 when it cannot be
    reached or refuses our service token."""
    key = digest(token)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit and hit[0] > now:
        return dataclasses.replace(hit[1], roles=list(hit[1].roles))
    url = f"{settings.external_keystone_url.rstrip('/')}/auth/tokens"
    try:
        r = _http().get(url, params={"nocatalog": "1"},
                        headers={"X-Auth-Token": settings.service_token or "", "X-Subject-Token": token})
    except httpx.HTTPError as e:
        raise ServiceUnavailable(f"identity service unreachable: {e}") from e
    if r.status_code == 404:
        _cache.pop(key, None)
        return None
    if r.status_code in (401, 403):
        raise ServiceUnavailable("the identity service rejected our service token")
    if r.status_code != 200:
        raise ServiceUnavailable(f"identity service answered {r.status_code} validating a token")
    parsed = parse_token(r.json())
    if parsed is None or parsed[1] <= 0:
        return None
    ctx, left = parsed
    if len(_cache) > 10000:
        _cache.clear()
    _cache[key] = (now + min(CACHE_SECONDS, left), ctx)
    return dataclasses.replace(ctx, roles=list(ctx.roles))
