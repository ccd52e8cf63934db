"""The JSON response of every HTTP front-end (network API, agent protocol, topology page): orjson, no model layer."""
from __future__ import annotations

import json

import orjson
from fastapi.responses import Response


def json_response(data, status: int = 200) -> Response:
    try:
        body = orjson.dumps(data)
    except TypeError:       # integers past 64 bits (IPv6 address counts): the standard library writes any size
        body = json.dumps(data, separators=(",", ":")).encode()
    return Response(content=body, status_code=status, media_type="application/json")
