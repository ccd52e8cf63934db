"""The collections' direct dispatch (api/app.py CollectionDispatch) takes exactly the requests the router would give
the collection's catch-all route, with the same `rest`: everything else (actions, sub-collections) still reaches
its own route."""
from __future__ import annotations

from starlette.routing import Match

from neutrino.api.app import CollectionDispatch

ID = "0b5d7f2e-5b7e-4f43-9a55-2d2f6b0c1a11"


def _dispatch(app) -> CollectionDispatch:
    layer = app.build_middleware_stack()
    while not isinstance(layer, CollectionDispatch):
        layer = layer.app
    return layer


def _routes(routes):
    """The app's routes in the order the router tries them (included routers flattened)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from _routes(inner.routes) if inner is not None else (route,)


def _routed(app, path: str, method: str):
    """(endpoint, rest) of the first route that fully matches, as the router picks it."""
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    for route in _routes(app.router.routes):
        match, child = route.matches(scope)
        if match == Match.FULL:
            return child.get("endpoint"), child.get("path_params", {}).get("rest")
    return None, None


def test_direct_dispatch_takes_what_the_router_gives_the_collection(app):
    dispatch = _dispatch(app)
    paths = [f"/v2.0/{r.path}{tail}" for r in app.state.resources
             for tail in ("", ".json", "/", f"/{ID}", f"/{ID}.json", f"/{ID}/tags", f"/{ID}/tags/t1",
                          f"/{ID}/add_router_interface", f"/{ID}/port_forwardings", f"/{ID}/bandwidth_limit_rules",
                          f"/{ID}/add_addresses", "x")]
    paths += ["/v2.0/qos/rule-types", "/v2.0/qos/rule-types/dscp_marking", "/v2.0/network-ip-availabilities",
              "/v2.0/quotas/p1", "/v2.0/extensions", "/v2.0/ports/a/b"]
    taken = 0
    for path in paths:
        for method in ("GET", "POST", "PUT", "DELETE"):
            controller, rest = dispatch._match(path)
            endpoint, routed_rest = _routed(app, path, method)
            if controller is None:       # then the router gives it no collection's list or item
                assert getattr(endpoint, "__name__", "") != "dispatch" or not (
                    routed_rest in ("", ".json") or len(routed_rest) > 1 and routed_rest.count("/") == 1), (path, method)
                continue
            taken += 1
            assert endpoint == controller.dispatch and routed_rest == rest, (path, method, endpoint, routed_rest)
    assert taken >= len(app.state.resources) * 4 * 4
