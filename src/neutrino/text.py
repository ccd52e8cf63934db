"""Rules for user-supplied text shared by the network API, the identity routes and the service logic: control
characters are refused, and an id is a UUID in its canonical form."""
from __future__ import annotations

import re
import uuid

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_BUT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def canonical_uuid(value) -> str | None:
    """The canonical form of a UUID given as text, or None when it is not one."""
    try:
        if isinstance(value, str) and len(value) <= 64:
            return str(uuid.UUID(value))
    except ValueError:
        pass
    return None
