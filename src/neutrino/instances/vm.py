"""The kernel side of a VM instance: a QEMU guest (instances.vmimage's image) whose virtio NIC is the port's
`tap<id>` in its emulated host, plugged as Nova plugs it (instances.tap: the agent then hybrid-plugs the tap,
qbr/qvb/qvo on OVS or the brq bridge on linuxbridge). QEMU runs inside the emulated host's namespace, where the tap
lives, with no other network; it is detached from the CLI and the agent, so an agent restart leaves it running.
The guest reports each boot step on its serial console (`neutrino-guest: ...`), kept as console.log in the
instance's directory; the lab reaches it by ssh with the lab's key, from inside the emulated host.
"""
from __future__ import annotations

import json
import os
import re
import time

from neutrino import names
from neutrino.errors import NeutrinoError
from neutrino.instances import tap, vmimage
from neutrino.lab.paths import Lab
from neutrino.lab.processes import owned_pid, stop_pidfile
from neutrino.lib import ip, qemu, ssh

KIND = "vm"
MARK = "neutrino-guest: "
BOOT_TIMEOUT = 240          # TCG on a busy machine; a quiet one boots to sshd in well under a minute


class VmError(NeutrinoError):
    """A VM could not be started or reached."""
    code = 400


def _dir(lab: Lab, name: str) -> str:
    return lab.instance_dir(name)


def console_log(lab: Lab, name: str) -> str:
    return os.path.join(_dir(lab, name), "console.log")


def _pidfile(lab: Lab, name: str) -> str:
    return os.path.join(_dir(lab, name), "qemu.pid")


def lab_key(lab: Lab) -> tuple[str, str]:
    """(private key path, public key text) of the lab's ssh key, injected into every VM through the metadata."""
    path = lab.path("ssh", "id_ed25519")
    return path, ssh.ensure_key(path)


def accel(lab: Lab) -> dict:
    """{"accel": "kvm"|"tcg", "why": ...}: probed once per lab (bounded; KVM only when a kernel boots under it)."""
    path = lab.path("vm-accel.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        pass
    ok, why = qemu.probe_kvm(vmimage.ensure_image().kernel, lab.path("kvm-probe"))
    found = {"accel": "kvm" if ok else "tcg", "why": why}
    with open(path, "w") as f:
        json.dump(found, f)
    return found


def known_accel(lab: Lab) -> dict | None:
    """The probe's result when a VM was started in this lab, else None (no probe is run for `status`)."""
    try:
        with open(lab.path("vm-accel.json")) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def pid(lab: Lab, name: str) -> int | None:
    return owned_pid(_pidfile(lab, name), console_log(lab, name))


def alive(lab: Lab, name: str) -> bool:
    return pid(lab, name) is not None


def start(lab: Lab, name: str, host: str, port_id: str) -> int:
    """Tap plugged and bound to host (port ACTIVE), then QEMU on it; the pid (the running one when there is)."""
    running = pid(lab, name)
    if running is not None:
        return running
    plugged = tap.plug(lab, port_id, host)
    image = vmimage.ensure_image()
    os.makedirs(_dir(lab, name), exist_ok=True)
    log = console_log(lab, name)
    open(log, "w").close()
    args = qemu.argv(image.kernel, image.initrd, plugged["device"], plugged["mac_address"], log,
                     accel(lab)["accel"], name)
    return qemu.start(args, lab.host_ns(host), _pidfile(lab, name), os.path.join(_dir(lab, name), "qemu.log"))


def console(lab: Lab, name: str) -> str:
    try:
        with open(console_log(lab, name), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def reports(lab: Lab, name: str) -> list[str]:
    """What the guest said of its boot steps, in order ("lease 10.0.0.5/24", "hostname vm1", ..., "ready")."""
    return [line.split(MARK, 1)[1].strip() for line in console(lab, name).splitlines() if MARK in line]


def wait_ready(lab: Lab, name: str, timeout: float = BOOT_TIMEOUT) -> list[str]:
    """The guest's reports once it says "ready" (sshd up); VmError when QEMU dies or the deadline passes."""
    deadline = time.monotonic() + timeout
    while "ready" not in (said := reports(lab, name)):
        if not alive(lab, name):
            raise VmError(f"QEMU of {name} exited; see {console_log(lab, name)}")
        if time.monotonic() > deadline:
            raise VmError(f"{name} not ready within {timeout:.0f} s (it said: {said}); see {console_log(lab, name)}")
        time.sleep(0.2)
    return said


def address(lab: Lab, name: str) -> str | None:
    """The IPv4 address the guest's DHCP client configured, as it reported it."""
    for said in reports(lab, name):
        m = re.match(r"lease (\d+\.\d+\.\d+\.\d+)/", said)
        if m:
            return m.group(1)
    return None


def ssh_route(lab: Lab, host: str, network_id: str, fixed_ip: str, floating_ip: str | None) -> tuple[str, str]:
    """(namespace, address) to ssh from: the emulated host to the floating IP, else its qdhcp- namespace (inside
    the host, on the VM's network) to the fixed IP, as an operator does without a floating IP."""
    if floating_ip:
        return lab.host_ns(host), floating_ip
    return names.qdhcp(network_id), fixed_ip


def unplug(lab: Lab, name: str, host: str, port_id: str) -> None:
    """Stop QEMU by its pid, then delete the tap in the host (the agent unplugs qbr/qvb/qvo as the tap goes)."""
    stop_pidfile(_pidfile(lab, name), console_log(lab, name))
    ns = lab.host_ns(host)
    if ip.netns_exists(ns):
        ip.delete_link(names.tap(port_id), ns)
