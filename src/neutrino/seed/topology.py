"""The seed page's world, made through the API with openstacksdk as any client would: external `public`, the demo
project's `private` network, `router1`, ssh + icmp in the default group and `vm1` with a floating IP.

Idempotent: every object is looked up by name first and only what is missing is created.
"""
from __future__ import annotations

from typing import Callable

from neutrino.instances import manager
from neutrino.lab.paths import EXTERNAL_CIDR, EXTERNAL_GATEWAY, Lab

PUBLIC, PUBLIC_SUBNET = "public", "public-subnet"
PRIVATE, PRIVATE_SUBNET, PRIVATE_CIDR = "private", "private-subnet", "10.0.0.0/24"
ROUTER = "router1"
VM = "vm1"
SG_RULES = ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}, {"protocol": "icmp"})

Progress = Callable[[str], None]


def networks(clouds: manager.Clouds, say: Progress) -> dict:
    """public (+ subnet, DHCP off) as admin; private (+ subnet) in the demo project; their ids."""
    admin, demo = clouds.admin.network, clouds.user.network
    public = admin.find_network(PUBLIC)
    if public is None:
        public = admin.create_network(name=PUBLIC, is_router_external=True, provider_network_type="flat",
                                      provider_physical_network="public")
        say(f"network {PUBLIC} created (external, flat on physnet public)")
    pub_sub = admin.find_subnet(PUBLIC_SUBNET, network_id=public.id)
    if pub_sub is None:
        pool = EXTERNAL_CIDR.rsplit(".", 1)[0]
        pub_sub = admin.create_subnet(name=PUBLIC_SUBNET, network_id=public.id, ip_version=4, cidr=EXTERNAL_CIDR,
                                      gateway_ip=EXTERNAL_GATEWAY, is_dhcp_enabled=False,
                                      allocation_pools=[{"start": f"{pool}.2", "end": f"{pool}.254"}])
        say(f"subnet {PUBLIC_SUBNET} {EXTERNAL_CIDR} created")
    private = demo.find_network(PRIVATE)
    if private is None:
        private = demo.create_network(name=PRIVATE)
        say(f"network {PRIVATE} created")
    priv_sub = demo.find_subnet(PRIVATE_SUBNET, network_id=private.id)
    if priv_sub is None:
        priv_sub = demo.create_subnet(name=PRIVATE_SUBNET, network_id=private.id, ip_version=4, cidr=PRIVATE_CIDR)
        say(f"subnet {PRIVATE_SUBNET} {PRIVATE_CIDR} created")
    return {"public": public.id, "public_subnet": pub_sub.id, "private": private.id, "private_subnet": priv_sub.id}


def router(clouds: manager.Clouds, ids: dict, say: Progress) -> str:
    """router1 with its gateway on public and an interface on private-subnet; its id."""
    demo = clouds.user.network
    r = demo.find_router(ROUTER)
    if r is None:
        r = demo.create_router(name=ROUTER, external_gateway_info={"network_id": ids["public"]})
        say(f"router {ROUTER} created, gateway on {PUBLIC}")
    elif not r.external_gateway_info:
        r = demo.update_router(r, external_gateway_info={"network_id": ids["public"]})
    attached = any(ip.get("subnet_id") == ids["private_subnet"]
                   for p in demo.ports(device_id=r.id, device_owner="network:router_interface")
                   for ip in p.fixed_ips)
    if not attached:
        demo.add_interface_to_router(r, subnet_id=ids["private_subnet"])
        say(f"router {ROUTER} interface on {PRIVATE_SUBNET}")
    return r.id


def security_group(clouds: manager.Clouds, say: Progress) -> str:
    """The demo project's default group, with ingress tcp/22 and icmp from anywhere (IPv4); its id."""
    demo = clouds.user.network
    project = clouds.user.current_project_id
    sg = demo.find_security_group("default", ignore_missing=False, project_id=project)
    have = {(r.direction, r.ether_type, r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix)
            for r in demo.security_group_rules(security_group_id=sg.id)}
    for rule in SG_RULES:
        key = ("ingress", "IPv4", rule["protocol"], rule.get("port_range_min"), rule.get("port_range_max"),
               "0.0.0.0/0")
        if key not in have:
            demo.create_security_group_rule(security_group_id=sg.id, direction="ingress", ether_type="IPv4",
                                            remote_ip_prefix="0.0.0.0/0", **rule)
            say(f"default group: ingress {rule['protocol']}" + (f"/{rule['port_range_min']}"
                                                                 if "port_range_min" in rule else ""))
    return sg.id


def instance(lab: Lab, clouds: manager.Clouds, say: Progress, kind: str = "namespace") -> dict:
    """vm1 on private, default group, floating IP on public, bound to host1 (a namespace guest, or a QEMU VM)."""
    return manager.create(lab, VM, PRIVATE, security_groups=["default"], floating_ip=True, host="host1",
                          clouds=clouds, progress=say, kind=kind)
