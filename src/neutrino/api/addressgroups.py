"""Address groups on the generic controller, plus their two actions `add_addresses` / `remove_addresses`."""
from __future__ import annotations

from fastapi import APIRouter, Request

from neutrino.api.attrs import (PROJECT_ATTRS, STD_ATTRS, Attr, invalid, ip_or_cidr, list_of, loose_cidr,
                                string)
from neutrino.api.controller import Resource, json_response, read_json, write, writer
from neutrino.core import addressgroups
from neutrino.errors import bad_request

_addresses = list_of(ip_or_cidr)      # the actions take a bare address as its /32 (/128), as Neutron's plugin

ADDRESS_GROUP = Resource("address_group", "address-groups", addressgroups, delete=addressgroups.delete_group, attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "name": Attr(default="", convert=string(255)),
    "addresses": Attr(put=False, default=[], convert=list_of(loose_cidr)),   # a prefix length is required
})


def _addresses_body(body) -> list[str]:
    if not isinstance(body, dict) or "addresses" not in body:
        raise bad_request("Resource body required: expected 'addresses'.")
    extra = set(body) - {"addresses"}
    if extra:
        raise invalid("address_group", body, f"Unrecognized attribute(s) '{', '.join(sorted(extra))}'")
    return _addresses("addresses", body["addresses"])


def _action(adding: bool):
    async def action(request: Request, gid: str):
        writer(request.state.ctx)
        addresses = _addresses_body(await read_json(request))

        def tx(s, ctx):
            addressgroups.change(s, ctx, addressgroups.get(s, ctx, gid), addresses, adding)
            return addressgroups.render(s, ctx, [addressgroups.get(s, ctx, gid)])[0]
        return json_response({"address_group": await write(request, tx)})
    return action


def add_routes(router: APIRouter) -> None:
    """Before the collection's catch-all route."""
    router.add_api_route("/v2.0/address-groups/{gid}/add_addresses", _action(True), methods=["PUT"])
    router.add_api_route("/v2.0/address-groups/{gid}/remove_addresses", _action(False), methods=["PUT"])
