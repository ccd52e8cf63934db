"""Helpers for the router / floating IP API tests: the seed's topology built through HTTP, and error assertions."""
from __future__ import annotations

from dataclasses import dataclass


def ok(resp, status: int = 200):
    assert resp.status_code == status, resp.text
    return resp.json()


def err(resp, status: int, type_name: str | None = None) -> str:
    """Assert a Neutron error of this status (and type); returns its message."""
    assert resp.status_code == status, resp.text
    body = resp.json()["NeutronError"]
    if type_name:
        assert body["type"] == type_name, body
    return body["message"]


def network(c, name: str, **extra) -> dict:
    return ok(c.post("/v2.0/networks", json={"network": {"name": name, **extra}}), 201)["network"]


def subnet(c, net_id: str, cidr: str, **extra) -> dict:
    return ok(c.post("/v2.0/subnets", json={"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 4,
                                                       **extra}}), 201)["subnet"]


def port(c, net_id: str, name: str = "", **extra) -> dict:
    return ok(c.post("/v2.0/ports", json={"port": {"network_id": net_id, "name": name, **extra}}), 201)["port"]


def router(c, name: str, **extra) -> dict:
    return ok(c.post("/v2.0/routers", json={"router": {"name": name, **extra}}), 201)["router"]


def add_subnet(c, router_id: str, subnet_id: str):
    return c.put(f"/v2.0/routers/{router_id}/add_router_interface", json={"subnet_id": subnet_id})


def remove_subnet(c, router_id: str, subnet_id: str):
    return c.put(f"/v2.0/routers/{router_id}/remove_router_interface", json={"subnet_id": subnet_id})


def floatingip(c, net_id: str, **extra):
    return c.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": net_id, **extra}})


@dataclass
class Seed:
    public: dict
    public_sub: dict
    private: dict
    private_sub: dict
    router: dict


def seed(admin, tenant) -> Seed:
    """The seed page's world: external `public` 172.24.4.0/24 (flat on physnet "public", made by the admin),
    the tenant's `private` 10.0.0.0/24 and `router1` with its gateway on public and an interface on private."""
    public = network(admin, "public", **{"router:external": True, "provider:network_type": "flat",
                                         "provider:physical_network": "public"})
    public_sub = subnet(admin, public["id"], "172.24.4.0/24", name="public-subnet", enable_dhcp=False)
    private = network(tenant, "private")
    private_sub = subnet(tenant, private["id"], "10.0.0.0/24", name="private-subnet")
    r = router(tenant, "router1", external_gateway_info={"network_id": public["id"]})
    ok(add_subnet(tenant, r["id"], private_sub["id"]))
    return Seed(public, public_sub, private, private_sub, r)
