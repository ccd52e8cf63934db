"""Attribute maps: what each resource accepts on POST/PUT, its defaults, and converters that turn user input into
clean values or a clear 400 (nothing is stored for bad input)."""
from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from neutrino.errors import bad_request

REQUIRED = object()
UNSET = object()


@dataclass(frozen=True)
class Attr:
    post: bool = True
    put: bool = True
    default: Any = UNSET            # REQUIRED, UNSET (no default; core decides) or a value
    convert: Callable[[str, Any], Any] | None = None
    admin_write: bool = False       # only admins may set it (policy: 403 for others)


def invalid(name: str, value: Any, why: str):
    return bad_request(f"Invalid input for {name}. Reason: {why}.", "HTTPBadRequest")


# --- converters: (name, value) -> clean value ---------------------------------------------------------------------

def string(max_len: int = 255):
    def conv(name, v):
        if v is None:
            raise invalid(name, v, "'None' is not a valid string")
        if not isinstance(v, str):
            raise invalid(name, v, f"'{v}' is not a valid string")
        if len(v) > max_len:
            raise invalid(name, v, f"'{v[:40]}...' exceeds maximum length of {max_len}")
        return v
    return conv


def nullable(conv):
    def wrapped(name, v):
        return None if v is None else conv(name, v)
    return wrapped


def boolean(name, v):
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
        return v.lower() in ("true", "1")
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise invalid(name, v, f"'{v}' cannot be converted to boolean")


def integer(lo: int | None = None, hi: int | None = None):
    def conv(name, v):
        if isinstance(v, bool):
            raise invalid(name, v, f"'{v}' is not an integer")
        try:
            i = int(v) if isinstance(v, (int, str)) and str(v).strip().lstrip("-").isdigit() else None
        except ValueError:
            i = None
        if i is None:
            raise invalid(name, v, f"'{v}' is not an integer")
        if (lo is not None and i < lo) or (hi is not None and i > hi):
            raise invalid(name, v, f"'{i}' is not in range {lo} through {hi}")
        return i
    return conv


def uuid_str(name, v):
    try:
        if isinstance(v, str):
            return str(uuid.UUID(v))
    except ValueError:
        pass
    raise invalid(name, v, f"'{v}' is not a valid UUID")


def ip_address(name, v):
    try:
        if not isinstance(v, str):
            raise ValueError
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise invalid(name, v, f"'{v}' is not a valid IP address") from None


def cidr(name, v):
    """A network CIDR; host bits set are an error (as Neutron's validate_subnet)."""
    try:
        if not isinstance(v, str) or "/" not in v:
            raise ValueError
        net = ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise invalid(name, v, f"'{v}' is not a valid IP subnet") from None
    if str(net) != str(ipaddress.ip_network(v, strict=False)) or ipaddress.ip_interface(v).ip != net.network_address:
        raise invalid(name, v, f"'{v}' isn't a recognized IP subnet cidr, '{net}' is recommended")
    return str(net)


def ip_or_cidr(name, v):
    try:
        if not isinstance(v, str):
            raise ValueError
        return str(ipaddress.ip_network(v, strict=False)) if "/" in v else str(ipaddress.ip_address(v))
    except ValueError:
        raise invalid(name, v, f"'{v}' is neither a valid IP address nor a valid CIDR") from None


MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


def mac(name, v):
    if not isinstance(v, str) or not MAC_RE.match(v):
        raise invalid(name, v, f"'{v}' is not a valid MAC address")
    out = v.lower().replace("-", ":")
    first = int(out[:2], 16)
    if out in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff") or first & 1:
        raise invalid(name, v, f"'{v}' is not a valid unicast MAC address")
    return out


def one_of(*choices, lower: bool = False):
    def conv(name, v):
        val = v.lower() if lower and isinstance(v, str) else v
        if val not in choices:
            raise invalid(name, v, f"'{v}' is not in {list(c for c in choices if c is not None)}")
        return val
    return conv


def list_of(conv):
    def wrapped(name, v):
        if not isinstance(v, list):
            raise invalid(name, v, f"'{v}' is not a list")
        return [conv(name, x) for x in v]
    return wrapped


def unique_list_of(conv):
    def wrapped(name, v):
        out = list_of(conv)(name, v)
        if len(set(map(str, out))) != len(out):
            raise invalid(name, v, f"Duplicate items in the list: '{', '.join(map(str, v))}'")
        return out
    return wrapped


def dict_of(name_fields: dict[str, Callable], required: tuple[str, ...] = ()):
    """A dict with only known keys, each converted; required keys must be present."""
    def conv(name, v):
        if not isinstance(v, dict):
            raise invalid(name, v, f"'{v}' is not a dictionary")
        extra = set(v) - set(name_fields)
        if extra:
            raise invalid(name, v, f"Unrecognized attribute(s) '{', '.join(sorted(extra))}'")
        missing = [k for k in required if k not in v]
        if missing:
            raise invalid(name, v, f"'{', '.join(missing)}' is required")
        return {k: (name_fields[k](f"{name}:{k}", x)) for k, x in v.items()}
    return conv


def any_dict(name, v):
    if not isinstance(v, dict):
        raise invalid(name, v, f"'{v}' is not a dictionary")
    return v


def validate_body(attrs: dict[str, Attr], body: Any, resource: str, creating: bool, ctx) -> dict:
    """Check a POST/PUT body against the attribute map: unknown or read-only keys and bad values are 400s."""
    from neutrino.errors import Forbidden

    if not isinstance(body, dict):
        raise bad_request(f"Invalid input for {resource}. Reason: body is not a dictionary.")
    out = {}
    for key, value in body.items():
        attr = attrs.get(key)
        if attr is None:
            raise bad_request(f"Unrecognized attribute(s) '{key}'")
        if creating and not attr.post:
            raise bad_request(f"Attribute '{key}' not allowed in POST")
        if not creating and not attr.put:
            raise bad_request(f"Cannot update read-only attribute {key}")
        if attr.admin_write and not ctx.is_admin:
            raise Forbidden(f"(rule:{'create' if creating else 'update'}_{resource}:{key}) is disallowed by policy")
        out[key] = attr.convert(key, value) if attr.convert else value
    if creating:
        for key, attr in attrs.items():
            if key in out or not attr.post:
                continue
            if attr.default is REQUIRED:
                raise bad_request(f"Failed to parse request. Required attribute '{key}' not specified")
            if attr.default is not UNSET:
                out[key] = attr.default() if callable(attr.default) else attr.default
    # tenant_id and project_id are one attribute
    if "tenant_id" in out or "project_id" in out:
        t, p = out.pop("tenant_id", None), out.pop("project_id", None)
        if t and p and t != p:
            raise bad_request("'project_id' and 'tenant_id' do not match")
        proj = p or t
        if proj and ctx.project_id != proj and not ctx.is_admin:     # 400, as Neutron's API layer answers
            raise bad_request("Specifying 'project_id' or 'tenant_id' other than the authenticated project in "
                              "request requires admin privileges")
        out["project_id"] = proj
    return out


PROJECT_ATTRS = {"tenant_id": Attr(put=False, convert=string(255)), "project_id": Attr(put=False, convert=string(255))}
STD_ATTRS = {"description": Attr(default="", convert=string(255))}
