"""Hypothesis strategies for the fuzzers: values drawn from the JSON Schemas of the OpenAPI document (mostly valid
requests), and hostile JSON (wrong types, unicode digits, control characters, huge numbers, deep nesting)."""
from __future__ import annotations

from hypothesis import strategies as st

NASTY_STRINGS = ["", "²", "٣٠٠٠", "a\x00b", "\x1b[31m", "9" * 40, "-1", "1e400", "x" * 300, "../../etc",
                 "00000000-0000-0000-0000-000000000000", "10.0.0.0/33", "::/200", "fa:16:3e:zz:00:00", "None",
                 "true", "revision_number=1", "é" * 10, "\ud7ff", "0x10", " 5 "]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(NASTY_STRINGS),
                    st.text(max_size=20))
HOSTILE = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=12)


def from_schema(schema: dict, depth: int = 0) -> st.SearchStrategy:
    """A value for a JSON Schema of the shapes the document uses (type/enum/anyOf/array/object, bounds, formats)."""
    if depth > 6:
        return st.none()
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema and "type" not in schema:
        return st.one_of([from_schema(s, depth + 1) for s in schema["anyOf"]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, depth + 1) for k in kind])
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2 ** 31)), schema.get("maximum", 2 ** 31 - 1))
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "uuid":
            return st.uuids().map(str)
        if "anyOf" in schema or fmt in ("ipv4", "ipv6"):
            return st.ip_addresses().map(str)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(max_size=min(schema.get("maxLength", 40), 40))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), depth + 1), max_size=min(schema.get("maxItems", 3), 3))
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries({k: from_schema(v, depth + 1) for k, v in props.items() if k in required},
                                     optional={k: from_schema(v, depth + 1) for k, v in props.items()
                                               if k not in required})
    return SCALARS


def request_schema(operation: dict) -> dict | None:
    body = operation.get("requestBody")
    return body["content"]["application/json"]["schema"] if body else None
