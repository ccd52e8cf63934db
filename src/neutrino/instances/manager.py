"""Instances as the API sees them: a port (device_owner compute:nova, a fresh device_id, named after the instance)
made with the demo cloud, bound to an emulated host with the admin cloud, optionally with a floating IP on
`public`; plus the guest (instances.guest). Every step finds what exists first, so `create` is idempotent."""
from __future__ import annotations

import time
import uuid

from dataclasses import dataclass
from typing import Callable

from neutrino.errors import NeutrinoError
from neutrino.instances import guest
from neutrino.lab.clouds import cloud_name, connect
from neutrino.lab.paths import Lab
from neutrino.lab.processes import agent_token, server_answers, server_sockets
from neutrino.sync.client import ServerUnavailable, SyncClient

DEVICE_OWNER = "compute:nova"
EXTERNAL_NETWORK = "public"


class InstanceError(NeutrinoError):
    """An instance could not be created or found."""
    code = 400


@dataclass
class Clouds:
    """The demo cloud (owner of instances) and the admin cloud (port binding), connected once."""
    demo: object
    admin: object

    @classmethod
    def of(cls, lab: Lab, server: int | None = None) -> "Clouds":
        """Through the given server of the lab, else the first one that answers."""
        if server is None:
            settings = lab.load()
            server = next((i for i in range(1, settings.servers + 1) if server_answers(lab, settings, i)), 1)
        return cls(demo=connect(lab, cloud_name("demo", server)), admin=connect(lab, cloud_name("admin", server)))


def find_port(clouds: Clouds, name: str):
    found = list(clouds.demo.network.ports(name=name, device_owner=DEVICE_OWNER))
    return found[0] if found else None


def _port(clouds: Clouds, name: str, network, security_groups: list[str]):
    port = find_port(clouds, name)
    if port is not None:
        return port
    project = clouds.demo.current_project_id
    sg_ids = [clouds.demo.network.find_security_group(g, ignore_missing=False, project_id=project).id
              for g in security_groups]
    kw = {"security_group_ids": sg_ids} if sg_ids else {}
    return clouds.demo.network.create_port(network_id=network.id, name=name, device_owner=DEVICE_OWNER,
                                           device_id=str(uuid.uuid4()), **kw)


def _floating_ip(clouds: Clouds, port):
    found = list(clouds.demo.network.ips(port_id=port.id))
    if found:
        return found[0]
    public = clouds.demo.network.find_network(EXTERNAL_NETWORK, ignore_missing=False)
    return clouds.demo.network.create_ip(floating_network_id=public.id, port_id=port.id)


def wait_active(clouds: Clouds, port_id: str, timeout: float = 30) -> bool:
    """True once the port is ACTIVE (L2, firewall and DHCP entry in place on its host)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if clouds.demo.network.get_port(port_id).status == "ACTIVE":
            return True
        time.sleep(0.1)
    return False


def _compute_side(lab: Lab, method: str, device_id: str, body: dict | None = None) -> None:
    """Tell the server what Nova would know of the instance (hostname, keys, user data) for its metadata."""
    sockets = [f"unix:{sock}" for sock in server_sockets(lab, lab.load())]
    client = SyncClient(sockets, "", timeout=30)
    try:                                                # the first server of the lab that is up
        r = client.forward(method, f"/agent/v1/instances/{device_id}", json=body,
                           headers={"X-Auth-Token": agent_token(lab)})
    except ServerUnavailable as e:
        raise InstanceError(f"no server of the lab answers: {e}") from e
    finally:
        client.close()
    if r.status_code >= 400:
        raise InstanceError(f"the server refused the instance's metadata: {r.text}")


def create(lab: Lab, name: str, network: str, security_groups: list[str] | None = None, floating_ip: bool = False,
           host: str = "host1", clouds: Clouds | None = None, user_data: str = "",
           public_keys: dict[str, str] | None = None, progress: Callable[[str], None] = lambda _msg: None) -> dict:
    """Port + binding + metadata + guest + DHCP + tcp/22 service (+ floating IP); the instance's summary."""
    settings = lab.load()
    if host not in [lab.host_name(i) for i in range(1, settings.hosts + 1)]:
        raise InstanceError(f"no emulated host {host!r} in this lab")
    clouds = clouds or Clouds.of(lab)
    net = clouds.demo.network.find_network(network, ignore_missing=False)
    port = _port(clouds, name, net, security_groups or [])
    _compute_side(lab, "PUT", port.device_id, {"hostname": name, "public_keys": public_keys or {},
                                                "user_data": user_data})
    ready = guest.alive(lab, name) and guest.address(lab, name) is not None
    guest.plug(lab, name, host, port.id, port.mac_address, net.mtu)
    if clouds.admin.network.get_port(port.id).binding_host_id != host:     # binding:* is admin-only
        clouds.admin.network.update_port(port.id, binding_host_id=host)
        progress(f"port {port.id} bound to {host}, guest {lab.guest_ns(name)} plugged")
    fip = _floating_ip(clouds, port) if floating_ip else None
    if not ready:
        if not wait_active(clouds, port.id):
            progress(f"port {port.id} is not ACTIVE yet; trying DHCP anyway")
        if not guest.configure(lab, name):
            raise InstanceError(f"{name} got no DHCP lease (port {port.id}; see the agent log of {host})")
        guest.start_service(lab, name)
    settings = lab.load()
    settings.instances[name] = {"port_id": port.id, "device_id": port.device_id, "host": host,
                                "fip_id": fip.id if fip else None}
    lab.save(settings)
    progress(f"{name} is {guest.address(lab, name)}" + (f", floating IP {fip.floating_ip_address}" if fip else ""))
    return summary(lab, name, clouds)


def summary(lab: Lab, name: str, clouds: Clouds | None = None) -> dict:
    """What the API and the kernel say about one instance."""
    clouds = clouds or Clouds.of(lab)
    port = find_port(clouds, name)
    if port is None:
        raise InstanceError(f"no instance {name!r}")
    fips = list(clouds.demo.network.ips(port_id=port.id))
    local = lab.load().instances.get(name, {})
    return {"name": name, "id": port.device_id, "port_id": port.id, "status": port.status,
            "host": clouds.admin.network.get_port(port.id).binding_host_id or local.get("host"), "mac_address": port.mac_address,
            "fixed_ips": [f["ip_address"] for f in port.fixed_ips],
            "floating_ips": [f.floating_ip_address for f in fips], "network_id": port.network_id,
            "security_group_ids": list(port.security_group_ids or []), "guest_netns": lab.guest_ns(name),
            "guest_address": guest.address(lab, name), "guest_alive": guest.alive(lab, name)}


def list_all(lab: Lab, clouds: Clouds | None = None) -> list[dict]:
    clouds = clouds or Clouds.of(lab)
    names = sorted({p.name for p in clouds.demo.network.ports(device_owner=DEVICE_OWNER) if p.name})
    return [summary(lab, n, clouds) for n in names]


def delete(lab: Lab, name: str, clouds: Clouds | None = None) -> None:
    """Floating IPs, port and guest; what is already gone is skipped."""
    clouds = clouds or Clouds.of(lab)
    port = find_port(clouds, name)
    if port is None and name not in lab.load().instances and not guest.alive(lab, name):
        raise InstanceError(f"no instance {name!r}")
    if port is not None:
        for fip in list(clouds.demo.network.ips(port_id=port.id)):
            clouds.demo.network.delete_ip(fip, ignore_missing=True)
        clouds.demo.network.delete_port(port, ignore_missing=True)
        _compute_side(lab, "DELETE", port.device_id)
    guest.unplug(lab, name)
    settings = lab.load()
    if settings.instances.pop(name, None) is not None:
        lab.save(settings)
