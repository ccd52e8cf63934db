"""Password hashing: salted scrypt (memory-hard, ~40 ms here) with the parameters stored in the hash string,
so they can be raised later without invalidating existing hashes; comparison in constant time."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAXMEM, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$key` (salt and key base64)."""
    salt = os.urandom(SALT_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(_derive(password, salt, N, R, P))}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`. With no stored hash (unknown user, no password set) the same work
    is done against a throwaway salt, so a failed login takes as long whether or not the user exists."""
    try:
        scheme, n, r, p, salt, key = (stored or "").split("$")
        if scheme != SCHEME:
            raise ValueError(scheme)
        expected = base64.b64decode(key)
        derived = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        _derive(password, b"\0" * SALT_BYTES, N, R, P)
        return False
    return hmac.compare_digest(derived, expected)
