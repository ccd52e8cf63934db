"""The JSON response of every HTTP front-end (network API, agent protocol, topology page): orjson, no model layer."""
from __future__ import annotations

import orjson
from fastapi.responses import Response


def json_response(data, status: int = 200) -> Response:
    return Response(content=orjson.dumps(data), status_code=status, media_type="application/json")
