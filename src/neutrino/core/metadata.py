"""The metadata service: answers a guest's request for its own instance only, identified by the source IP on
the router's (or isolated network's) networks, as OpenStack (`/openstack/...`) and EC2 (`/latest/meta-data/...`)."""
from __future__ import annotations

import json

from sqlalchemy import delete, insert, select

from neutrino.db import models as m

T_PORT = m.Port.__table__
T_IP = m.IPAllocation.__table__
T_FIP = m.FloatingIP.__table__
T_DATA = m.InstanceData.__table__
EC2_KEYS = ("ami-id", "hostname", "instance-id", "local-hostname", "local-ipv4", "public-hostname", "public-ipv4",
            "public-keys/", "placement/")


def set_instance(s, device_id: str, hostname: str, public_keys: dict[str, str], user_data: str) -> None:
    """What the compute side knows of an instance (Nova's part in OpenStack): served to that instance only."""
    s.execute(delete(T_DATA).where(T_DATA.c.device_id == device_id))
    s.execute(insert(T_DATA).values(device_id=device_id, hostname=hostname, public_keys=public_keys,
                                    user_data=user_data))


def delete_instance(s, device_id: str) -> None:
    s.execute(delete(T_DATA).where(T_DATA.c.device_id == device_id))


def _port_for(s, source: str, router_id: str | None, network_id: str | None):
    if router_id:
        nets = select(T_PORT.c.network_id).where(T_PORT.c.device_id == router_id,
                                                 T_PORT.c.device_owner == "network:router_interface")
    elif network_id:
        nets = select(T_PORT.c.network_id).where(T_PORT.c.network_id == network_id).limit(1)
    else:
        return None
    q = select(T_PORT).join(T_IP, T_IP.c.port_id == T_PORT.c.id).where(
        T_IP.c.ip_address == source, T_IP.c.network_id.in_(nets), ~T_PORT.c.device_owner.like("network:%"))
    return s.execute(q).first()


def _doc(s, port, source: str) -> dict:
    data = s.execute(select(T_DATA).where(T_DATA.c.device_id == port.device_id)).first()
    fip = s.execute(select(T_FIP.c.floating_ip_address).where(T_FIP.c.fixed_port_id == port.id,
                                                              T_FIP.c.fixed_ip_address == source)).scalar()
    hostname = (data.hostname if data and data.hostname else port.name) or "host-" + source.replace(".", "-")
    return {"uuid": port.device_id or port.id, "hostname": hostname, "name": hostname,
            "public_keys": dict(data.public_keys) if data else {}, "user_data": data.user_data if data else "",
            "project_id": port.project_id, "local_ipv4": source, "public_ipv4": fip or ""}


def _ec2(doc: dict, key: str) -> str | None:
    keys = list(doc["public_keys"])
    values = {"ami-id": "ami-00000001", "hostname": doc["hostname"], "instance-id": doc["uuid"],
              "local-hostname": doc["hostname"], "local-ipv4": doc["local_ipv4"],
              "public-hostname": doc["hostname"], "public-ipv4": doc["public_ipv4"],
              "public-keys": "\n".join(f"{i}={k}" for i, k in enumerate(keys)),
              "placement": "availability-zone", "placement/availability-zone": "nova"}
    if key.startswith("public-keys/") and key != "public-keys/":
        parts = key.split("/")
        idx = int(parts[1].split("=")[0]) if parts[1].split("=")[0].isdigit() else -1
        if 0 <= idx < len(keys):
            return "openssh-key" if len(parts) == 2 or not parts[2] else doc["public_keys"][keys[idx]]
        return None
    return values.get(key.rstrip("/"))


def answer(s, path: str, source: str, router_id: str | None, network_id: str | None) -> tuple[int, str, bytes]:
    """(status, content type, body) for one metadata request."""
    port = _port_for(s, source, router_id, network_id)
    if port is None:
        return 404, "text/plain", b"Not Found: no instance has this address here."
    doc = _doc(s, port, source)
    path = path.strip("/")
    text = "text/plain"
    if path in ("", "openstack"):
        return 200, text, b"latest\n" if path else b"latest\nopenstack\n"
    if path in ("openstack/latest", "openstack/latest/"):
        return 200, text, b"meta_data.json\nuser_data\nnetwork_data.json\n"
    if path == "openstack/latest/meta_data.json":
        body = {k: doc[k] for k in ("uuid", "hostname", "name", "public_keys", "project_id")}
        body.update({"launch_index": 0, "availability_zone": "nova", "meta": {}})
        return 200, "application/json", json.dumps(body).encode()
    if path == "openstack/latest/network_data.json":
        return 200, "application/json", json.dumps({"links": [], "networks": [], "services": []}).encode()
    if path in ("openstack/latest/user_data", "latest/user-data"):
        return (200, text, doc["user_data"].encode()) if doc["user_data"] else (404, text, b"Not Found")
    if path in ("latest", "latest/"):
        return 200, text, b"meta-data/\nuser-data\n"
    if path == "latest/meta-data":
        return 200, text, "\n".join(EC2_KEYS).encode()
    if path.startswith("latest/meta-data/"):
        value = _ec2(doc, path[len("latest/meta-data/"):])
        if value is not None:
            return 200, text, value.encode()
    return 404, text, b"Not Found"
