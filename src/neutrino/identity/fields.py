"""Checks of request fields and query flags, failing with Keystone's 400 messages."""
from __future__ import annotations

from typing import Any

from neutrino.errors import show
from neutrino.identity.errors import bad
from neutrino.identity.passwords import hash_password
from neutrino.text import CONTROL, CONTROL_BUT_WHITESPACE

FALSE = {"0", "false", "f", "no", "n", "off"}


def truthy(value: str | None) -> bool:
    return value is not None and value.lower() not in FALSE


def valid_name(value: Any, kind: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255 or CONTROL.search(value):
        raise bad(f"Invalid {kind} name: {show(value)!r}.")
    return value


def valid_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise bad(f"Invalid input for field '{field}': {show(value)!r} is not of type 'boolean'.")
    return value


def valid_text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 65535 or CONTROL_BUT_WHITESPACE.search(value):
        raise bad(f"Invalid input for field '{field}': {show(value)!r} is not a string without control characters.")
    return value


def password_hash(value: Any) -> str:
    """The hash of a new password (which must be a non-empty string)."""
    if not isinstance(value, str) or not value:
        raise bad("Invalid input for field 'password': a non-empty string is required.")
    return hash_password(value)
