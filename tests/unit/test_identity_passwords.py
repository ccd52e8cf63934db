"""Password hashing: salted scrypt, parameters kept in the hash, constant-time verification."""
from neutrino.identity.passwords import N, hash_password, verify_password


def test_right_password_verifies_and_wrong_does_not():
    stored = hash_password("s3cret")
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret ", stored)
    assert not verify_password("", stored)


def test_each_hash_is_salted():
    a, b = hash_password("same"), hash_password("same")
    assert a != b
    assert verify_password("same", a) and verify_password("same", b)


def test_hash_records_a_slow_work_factor():
    scheme, n, r, p, salt, key = hash_password("x").split("$")
    assert scheme == "scrypt" and int(n) >= 2**14 and int(n) == N and int(r) == 8 and int(p) == 1
    assert "x" not in (salt, key)


def test_missing_or_garbage_hash_never_verifies():
    for stored in (None, "", "plain", "md5$1$2$3$4$5", "scrypt$16384$8$1$!!$??"):
        assert not verify_password("plain", stored)


def test_hash_made_with_other_parameters_still_verifies():
    import base64
    import hashlib
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(b"pw", salt=salt, n=2**12, r=8, p=1, dklen=32)
    stored = f"scrypt${2**12}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
    assert verify_password("pw", stored)
    assert not verify_password("pW", stored)
