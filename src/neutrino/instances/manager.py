"""Instances as the API sees them: a port (device_owner compute:nova, a fresh device_id, named after the instance,
dns_name = its hostname as Nova sets it) made in one cloud of the lab's clouds.yaml (`demo` unless told), bound to an
emulated host with the admin cloud, optionally with a floating IP on `public`; plus the guest (instances.guest).
Every step finds what exists first, so `create` is idempotent. What that cloud cannot see but the admin can is named
in the error, with the fix."""
from __future__ import annotations

import re
import time
import uuid

from dataclasses import dataclass
from typing import Callable

from neutrino import names
from neutrino.errors import NeutrinoError
from neutrino.instances import guest, vm
from neutrino.lab.clouds import DEFAULT_CLOUD, cloud_name, connect, project_cloud
from neutrino.lab.paths import Lab
from neutrino.lab.processes import agent_token, server_answers, server_sockets
from neutrino.sync.client import ServerUnavailable, SyncClient

DEVICE_OWNER = "compute:nova"
KINDS = ("namespace", vm.KIND)
EXTERNAL_NETWORK = "public"


class InstanceError(NeutrinoError):
    """An instance could not be created or found."""
    code = 400


@dataclass
class Clouds:
    """The cloud instances act in (`user`, named `cloud`) and the admin cloud (port binding, hints), connected once."""
    user: object
    admin: object
    cloud: str = DEFAULT_CLOUD

    @classmethod
    def of(cls, lab: Lab, cloud: str = DEFAULT_CLOUD, server: int | None = None) -> "Clouds":
        """Through the given server of the lab, else the first one that answers."""
        if server is None:
            settings = lab.load()
            server = next((i for i in range(1, settings.servers + 1) if server_answers(lab, settings, i)), 1)
        return cls(user=connect(lab, cloud_name(cloud, server)), admin=connect(lab, cloud_name("admin", server)),
                   cloud=cloud)


def hostname(name: str) -> str:
    """The instance's hostname from its name, as Nova sanitizes it (and so the port's dns_name)."""
    host = re.sub(r"[^\w.-]+", "", re.sub(r"[ _.]", "-", name), flags=re.ASCII).lower().strip(".-")[:63].rstrip("-")
    return host or "server"


def _project_name(clouds: Clouds) -> str:
    return clouds.user.config.get_auth_args().get("project_name") or clouds.user.current_project_id


def _invisible(lab: Lab, clouds: Clouds, kind: str, name: str, project_id: str, share: str = "") -> InstanceError:
    """The error for an object that exists but not for this cloud's project: whose it is and how to use it."""
    project = clouds.admin.identity.find_project(project_id)
    owner = project.name if project else project_id
    cloud = project_cloud(lab, owner)
    use = f"--os-cloud {cloud}" if cloud else f"a cloud of project {owner} (add one to {lab.clouds_yaml})"
    fix = f"use {use}, or {share}" if share else f"use {use}"
    return InstanceError(f"{kind} {name!r} exists in project {owner!r} but is not visible to project "
                         f"{_project_name(clouds)!r} (cloud {clouds.cloud}): {fix}")


def find_network(lab: Lab, clouds: Clouds, network: str):
    net = clouds.user.network.find_network(network)
    if net is not None:
        return net
    other = clouds.admin.network.find_network(network)
    if other is None:
        raise InstanceError(f"no network {network!r} (openstack --os-cloud {clouds.cloud} network list)")
    raise _invisible(lab, clouds, "network", network, other.project_id,
                     f"share it: openstack --os-cloud admin network set --share {network}")


def find_security_group(lab: Lab, clouds: Clouds, group: str):
    project = clouds.user.current_project_id
    sg = clouds.user.network.find_security_group(group, project_id=project)
    if sg is not None:
        return sg
    found = [g for g in clouds.admin.network.security_groups() if group in (g.id, g.name)]
    if not found:
        raise InstanceError(f"no security group {group!r} (openstack --os-cloud {clouds.cloud} security group list)")
    raise _invisible(lab, clouds, "security group", group, found[0].project_id,
                     f"make one of that name in project {_project_name(clouds)!r}")


def find_port(clouds: Clouds, name: str):
    found = list(clouds.user.network.ports(name=name, device_owner=DEVICE_OWNER))
    return found[0] if found else None


def _missing(lab: Lab, clouds: Clouds, name: str) -> InstanceError:
    """No instance of that name in this cloud's project: say whose it is when another project has it."""
    other = list(clouds.admin.network.ports(name=name, device_owner=DEVICE_OWNER))
    if other:
        return _invisible(lab, clouds, "instance", name, other[0].project_id)
    return InstanceError(f"no instance {name!r}")


def _port(lab: Lab, clouds: Clouds, name: str, network, security_groups: list[str]):
    port = find_port(clouds, name)
    if port is not None:
        return port
    if list(clouds.admin.network.ports(name=name, device_owner=DEVICE_OWNER)):
        raise InstanceError(f"instance name {name!r} is taken in this lab (maybe by another project): instance names "
                            f"name their guest namespaces ({lab.guest_ns(name)}), so they are unique per lab")
    sg_ids = [find_security_group(lab, clouds, g).id for g in security_groups]
    kw = {"security_group_ids": sg_ids} if sg_ids else {}
    return clouds.user.network.create_port(network_id=network.id, name=name, device_owner=DEVICE_OWNER,
                                           device_id=str(uuid.uuid4()), dns_name=hostname(name), **kw)


def _floating_ip(clouds: Clouds, port):
    found = list(clouds.user.network.ips(port_id=port.id))
    if found:
        return found[0]
    public = clouds.user.network.find_network(EXTERNAL_NETWORK, ignore_missing=False)
    return clouds.user.network.create_ip(floating_network_id=public.id, port_id=port.id)


def wait_active(clouds: Clouds, port_id: str, timeout: float = 30) -> bool:
    """True once the port is ACTIVE (L2, firewall and DHCP entry in place on its host)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if clouds.user.network.get_port(port_id).status == "ACTIVE":
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
           public_keys: dict[str, str] | None = None, progress: Callable[[str], None] = lambda _msg: None,
           kind: str = "namespace") -> dict:
    """Port + binding + metadata + guest + DHCP + tcp/22 service (+ floating IP); the instance's summary.
    kind "vm": the guest is a QEMU VM on the port's tap, booted until its sshd answers (see instances.vm)."""
    settings = lab.load()
    if host not in [lab.host_name(i) for i in range(1, settings.hosts + 1)]:
        raise InstanceError(f"no emulated host {host!r} in this lab")
    if kind not in KINDS:
        raise InstanceError(f"unknown instance kind {kind!r} (one of {', '.join(KINDS)})")
    known = settings.instances.get(name, {}).get("kind", kind)
    if known != kind:
        raise InstanceError(f"instance {name} exists as a {known}")
    clouds = clouds or Clouds.of(lab)
    net = find_network(lab, clouds, network)
    port = _port(lab, clouds, name, net, security_groups or [])
    keys = dict(public_keys or {})
    if kind == vm.KIND:
        keys.setdefault("neutrino-lab", vm.lab_key(lab)[1])
    _compute_side(lab, "PUT", port.device_id, {"hostname": hostname(name), "public_keys": keys,
                                                "user_data": user_data})
    if kind == vm.KIND:
        return _create_vm(lab, name, host, port, clouds, floating_ip, progress)
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
    _remember(lab, name, port, host, fip, "namespace")
    progress(f"{name} is {guest.address(lab, name)}" + (f", floating IP {fip.floating_ip_address}" if fip else ""))
    return summary(lab, name, clouds)


def _remember(lab: Lab, name: str, port, host: str, fip, kind: str) -> None:
    with lab.edit() as settings:
        settings.instances[name] = {"port_id": port.id, "device_id": port.device_id, "host": host,
                                    "fip_id": fip.id if fip else None, "kind": kind}


def _create_vm(lab: Lab, name: str, host: str, port, clouds: Clouds, floating_ip: bool, progress) -> dict:
    """Tap + binding, QEMU, floating IP; then wait for the guest to say it is ready (lease, metadata, sshd)."""
    _remember(lab, name, port, host, None, vm.KIND)
    pid = vm.start(lab, name, host, port.id)
    progress(f"{name}: QEMU pid {pid} ({vm.accel(lab)['accel']}) on {names.tap(port.id)} in {host}, console "
             f"{vm.console_log(lab, name)}")
    fip = _floating_ip(clouds, port) if floating_ip else None
    _remember(lab, name, port, host, fip, vm.KIND)
    said = vm.wait_ready(lab, name)
    progress(f"{name}: " + "; ".join(said))
    return summary(lab, name, clouds)


def kind_of(lab: Lab, name: str) -> str:
    return lab.load().instances.get(name, {}).get("kind", "namespace")


def remove_guest(lab: Lab, name: str) -> None:
    """Stop the instance's guest, whatever its kind, and remove its NIC (veth, or tap + QEMU)."""
    local = lab.load().instances.get(name, {})
    if local.get("kind") == vm.KIND:
        vm.unplug(lab, name, local["host"], local["port_id"])
    else:
        guest.unplug(lab, name)


def summary(lab: Lab, name: str, clouds: Clouds | None = None) -> dict:
    """What the API and the kernel say about one instance."""
    clouds = clouds or Clouds.of(lab)
    port = find_port(clouds, name)
    if port is None:
        raise _missing(lab, clouds, name)
    fips = list(clouds.user.network.ips(port_id=port.id))
    local = lab.load().instances.get(name, {})
    is_vm = local.get("kind") == vm.KIND
    return {"name": name, "kind": local.get("kind", "namespace"), "id": port.device_id, "port_id": port.id,
            "status": port.status,
            "host": clouds.admin.network.get_port(port.id).binding_host_id or local.get("host"), "mac_address": port.mac_address,
            "fixed_ips": [f["ip_address"] for f in port.fixed_ips],
            "floating_ips": [f.floating_ip_address for f in fips], "network_id": port.network_id,
            "security_group_ids": list(port.security_group_ids or []),
            **(_vm_fields(lab, name) if is_vm else {"guest_netns": lab.guest_ns(name)}),
            "guest_address": (vm if is_vm else guest).address(lab, name),
            "guest_alive": (vm if is_vm else guest).alive(lab, name)}


def _vm_fields(lab: Lab, name: str) -> dict:
    return {"qemu_pid": vm.pid(lab, name), "accel": (vm.known_accel(lab) or {}).get("accel"),
            "console_log": vm.console_log(lab, name)}


def list_all(lab: Lab, clouds: Clouds | None = None) -> list[dict]:
    clouds = clouds or Clouds.of(lab)
    names = sorted({p.name for p in clouds.user.network.ports(device_owner=DEVICE_OWNER) if p.name})
    return [summary(lab, n, clouds) for n in names]


def delete(lab: Lab, name: str, clouds: Clouds | None = None) -> None:
    """Floating IPs, port and guest; what is already gone is skipped."""
    clouds = clouds or Clouds.of(lab)
    port = find_port(clouds, name)
    if port is None and (name not in lab.load().instances and not guest.alive(lab, name)
                         or list(clouds.admin.network.ports(name=name, device_owner=DEVICE_OWNER))):
        raise _missing(lab, clouds, name)
    remove_guest(lab, name)         # a VM's QEMU and tap go first, while its port still exists
    if port is not None:
        for fip in list(clouds.user.network.ips(port_id=port.id)):
            clouds.user.network.delete_ip(fip, ignore_missing=True)
        clouds.user.network.delete_port(port, ignore_missing=True)
        _compute_side(lab, "DELETE", port.device_id)
    with lab.edit() as settings:
        settings.instances.pop(name, None)
