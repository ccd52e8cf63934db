"""Attribute maps: what each resource accepts on POST/PUT, its defaults, and converters that turn user input into
clean values or a clear 400 (nothing is stored for bad input).

Every converter also carries the JSON Schema of what it accepts (`conv.schema`): the OpenAPI document is generated
from these same maps, so what is documented is what is validated. Converters are linear in their input, and error
messages show at most a short prefix of the rejected value."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from neutrino.errors import Forbidden, bad_request, show
from neutrino.text import CONTROL, CONTROL_BUT_WHITESPACE, canonical_uuid

REQUIRED = object()
UNSET = object()


INT_MIN, INT_MAX = -2 ** 31, 2 ** 31 - 1     # what an Integer column holds on every database
MAX_LIST = 1000                               # any list attribute without a tighter limit
ASCII_INT = re.compile(r"\s*[-+]?[0-9]{1,20}\s*", re.ASCII)


@dataclass(frozen=True)
class Limit:
    """A cap on a list attribute's length, read from Settings (Neutron's option of the same name)."""
    setting: str
    type_name: str
    message: str                    # formatted with {quota}


@dataclass(frozen=True)
class Attr:
    post: bool = True
    put: bool = True
    default: Any = UNSET            # REQUIRED, UNSET (no default; core decides) or a value
    convert: Callable[[str, Any], Any] | None = None
    admin_write: bool = False       # only admins may set it (policy: 403 for others)
    limit: Limit | None = None


def invalid(name: str, value: Any, why: str):
    return bad_request(f"Invalid input for {show(name)}. Reason: {why}.", "HTTPBadRequest")


def typed(schema: dict):
    """Attach the JSON Schema of what a converter accepts."""
    def deco(fn):
        fn.schema = schema
        return fn
    return deco


def schema_of(conv) -> dict:
    return getattr(conv, "schema", {}) if conv else {}


# --- converters: (name, value) -> clean value ---------------------------------------------------------------------

def string(max_len: int = 255, text: bool = False):
    """A string of at most max_len characters without control characters (`text`: tabs and newlines allowed)."""
    bad_chars = CONTROL_BUT_WHITESPACE if text else CONTROL

    @typed({"type": "string", "maxLength": max_len})
    def conv(name, v):
        if v is None:
            raise invalid(name, v, "'None' is not a valid string")
        if not isinstance(v, str):
            raise invalid(name, v, f"'{show(v)}' is not a valid string")
        if len(v) > max_len:
            raise invalid(name, v, f"'{show(v)}' exceeds maximum length of {max_len}")
        if bad_chars.search(v):
            raise invalid(name, v, f"'{show(v)}' contains control characters")
        return v
    return conv


def nullable(conv):
    @typed({"anyOf": [schema_of(conv), {"type": "null"}]})
    def wrapped(name, v):
        return None if v is None else conv(name, v)
    return wrapped


@typed({"type": "boolean"})
def boolean(name, v):
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
        return v.lower() in ("true", "1")
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise invalid(name, v, f"'{show(v)}' cannot be converted to boolean")


def as_int(v) -> int | None:
    """A JSON integer, or (as Neutron converts them) a string of at most 20 ASCII digits; else None, so neither
    '²' nor 5,000 digits ever reach int()."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and ASCII_INT.fullmatch(v):
        return int(v)
    return None


def integer(lo: int = INT_MIN, hi: int = INT_MAX):
    """An integer (as_int) within [lo, hi]."""
    @typed({"type": "integer", "minimum": lo, "maximum": hi})
    def conv(name, v):
        i = as_int(v)
        if i is None:
            raise invalid(name, v, f"'{show(v)}' is not an integer")
        if not lo <= i <= hi:
            raise invalid(name, v, f"'{show(v)}' is not in range {lo} through {hi}")
        return i
    return conv


@typed({"type": "string", "format": "uuid"})
def uuid_str(name, v):
    out = canonical_uuid(v)
    if out is None:
        raise invalid(name, v, f"'{show(v)}' is not a valid UUID")
    return out


@typed({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
def ip_address(name, v):
    try:
        if not isinstance(v, str) or len(v) > 64:
            raise ValueError
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise invalid(name, v, f"'{show(v)}' is not a valid IP address") from None


@typed({"type": "string", "maxLength": 64})
def loose_cidr(name, v):
    """A CIDR with its prefix length; host bits are dropped (Neutron's validate_subnet lets them through)."""
    try:
        if not isinstance(v, str) or "/" not in v or len(v) > 64:
            raise ValueError
        return str(ipaddress.ip_network(v, strict=False))
    except ValueError:
        raise invalid(name, v, f"'{show(v)}' isn't a recognized IP subnet cidr") from None


@typed({"type": "string", "maxLength": 64})
def cidr(name, v):
    """A network CIDR; host bits set are an error (as Neutron's validate_subnet)."""
    try:
        if not isinstance(v, str) or "/" not in v or len(v) > 64:
            raise ValueError
        net = ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise invalid(name, v, f"'{show(v)}' is not a valid IP subnet") from None
    if ipaddress.ip_interface(v).ip != net.network_address:
        raise invalid(name, v, f"'{show(v)}' isn't a recognized IP subnet cidr, '{net}' is recommended")
    return str(net)


@typed({"type": "string", "maxLength": 64})
def ip_or_cidr(name, v):
    try:
        if not isinstance(v, str) or len(v) > 64:
            raise ValueError
        return str(ipaddress.ip_network(v, strict=False)) if "/" in v else str(ipaddress.ip_address(v))
    except ValueError:
        raise invalid(name, v, f"'{show(v)}' is neither a valid IP address nor a valid CIDR") from None


MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


@typed({"type": "string", "pattern": MAC_RE.pattern})
def mac(name, v):
    if not isinstance(v, str) or not MAC_RE.match(v):
        raise invalid(name, v, f"'{show(v)}' is not a valid MAC address")
    out = v.lower().replace("-", ":")
    first = int(out[:2], 16)
    if out in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff") or first & 1:
        raise invalid(name, v, f"'{show(v)}' is not a valid unicast MAC address")
    return out


def one_of(*choices, lower: bool = False):
    @typed({"enum": list(choices)})
    def conv(name, v):
        val = v.lower() if lower and isinstance(v, str) else v
        if isinstance(val, (list, dict)) or val not in choices:
            raise invalid(name, v, f"'{show(v)}' is not in {list(c for c in choices if c is not None)}")
        return val
    return conv


def int_choice(*choices):
    """An integer (as `integer` accepts it) that must be one of choices (ip_version)."""
    as_int, pick = integer(), one_of(*choices)
    return typed({"enum": list(choices)})(lambda name, v: pick(name, as_int(name, v)))


def list_of(conv, max_items: int = MAX_LIST):
    @typed({"type": "array", "items": schema_of(conv), "maxItems": max_items})
    def wrapped(name, v):
        if not isinstance(v, list):
            raise invalid(name, v, f"'{show(v)}' is not a list")
        if len(v) > max_items:
            raise invalid(name, v, f"more than {max_items} items")
        return [conv(name, x) for x in v]
    return wrapped


def unique_list_of(conv):
    listed = list_of(conv)

    @typed({**listed.schema, "uniqueItems": True})
    def wrapped(name, v):
        out = listed(name, v)
        seen: set[str] = set()
        for item in out:
            key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
            if key in seen:
                raise invalid(name, v, f"Duplicate items in the list: '{show(item)}'")
            seen.add(key)
        return out
    return wrapped


def dict_of(name_fields: dict[str, Callable], required: tuple[str, ...] = ()):
    """A dict with only known keys, each converted; required keys must be present."""
    schema = {"type": "object", "properties": {k: schema_of(c) for k, c in name_fields.items()},
              "additionalProperties": False}
    if required:
        schema["required"] = list(required)

    @typed(schema)
    def conv(name, v):
        if not isinstance(v, dict):
            raise invalid(name, v, f"'{show(v)}' is not a dictionary")
        extra = set(v) - set(name_fields)
        if extra:
            raise invalid(name, v, f"Unrecognized attribute(s) '{show(', '.join(sorted(extra)))}'")
        missing = [k for k in required if k not in v]
        if missing:
            raise invalid(name, v, f"'{', '.join(missing)}' is required")
        return {k: (name_fields[k](f"{name}:{k}", x)) for k, x in v.items()}
    return conv


@typed({"type": "object"})
def any_dict(name, v):
    if not isinstance(v, dict):
        raise invalid(name, v, f"'{show(v)}' is not a dictionary")
    return v



def validate_body(attrs: dict[str, Attr], body: Any, resource: str, creating: bool, ctx, settings=None) -> dict:
    """Check a POST/PUT body against the attribute map: unknown or read-only keys and bad values are 400s, lists
    past their limit (from `settings`) too."""
    if not isinstance(body, dict):
        raise bad_request(f"Invalid input for {resource}. Reason: body is not a dictionary.")
    out = {}
    for key, value in body.items():
        attr = attrs.get(key)
        if attr is None:
            raise bad_request(f"Unrecognized attribute(s) '{show(key)}'")
        if creating and not attr.post:
            raise bad_request(f"Attribute '{key}' not allowed in POST")
        if not creating and not attr.put:
            raise bad_request(f"Cannot update read-only attribute {key}")
        if attr.admin_write and not ctx.is_admin:
            raise Forbidden(f"(rule:{'create' if creating else 'update'}_{resource}:{key}) is disallowed by policy")
        if attr.limit and settings is not None and isinstance(value, list):
            check_limit(attr.limit, value, settings)
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


def check_limit(limit: Limit, value: list, settings) -> None:
    quota = getattr(settings, limit.setting)
    if len(value) > quota:
        raise bad_request(limit.message.format(quota=quota), limit.type_name)


PROJECT_ATTRS = {"tenant_id": Attr(put=False, convert=string(255)), "project_id": Attr(put=False, convert=string(255))}
STD_ATTRS = {"description": Attr(default="", convert=string(255, text=True))}
