"""VM benchmark, inside a temporary `neutrino up` lab (emulated host, no uplink; never the root namespace).

    python bench/vm.py [--vms 3]

For each of N VMs (`instance create --kind vm` with a floating IP, one after another, each deleted after): seconds
from QEMU's start to the guest's DHCP lease, to its metadata, to "ready" (sshd up; all three as the guest reports
them on its console), and to the first command answered over ssh with the lab's key from inside the emulated host;
p50 and max over the N, with the accelerator QEMU used (KVM or TCG).
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time

from neutrino.instances import manager, vm
from neutrino.seed import lifecycle
from neutrino.lab.paths import Lab
from neutrino.lib import proc, ssh

MILESTONES = (("lease", "lease "), ("metadata", "metadata "), ("ready", "ready"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def line(name: str, value: str) -> None:
    print(f"  {name:<44} {value}", flush=True)


def boot(lab: Lab, clouds: manager.Clouds, name: str) -> dict[str, float]:
    """Seconds from QEMU's start to each milestone of one VM (its console watched while `create` runs)."""
    started: list[float] = []
    result: dict = {}
    creating = threading.Thread(target=lambda: result.update(manager.create(
        lab, name, "private", security_groups=["default"], floating_ip=True, clouds=clouds, kind=vm.KIND,
        progress=lambda msg: started.append(time.monotonic()) if "QEMU pid" in msg and not started else None)))
    creating.start()
    seen: dict[str, float] = {}
    while creating.is_alive() or len(seen) < len(MILESTONES):
        said = vm.reports(lab, name)
        for key, prefix in MILESTONES:
            if key not in seen and any(s.startswith(prefix) for s in said):
                seen[key] = time.monotonic()
        if not creating.is_alive() and not result:
            raise SystemExit(f"{name} did not boot; see {vm.console_log(lab, name)}")
        time.sleep(0.05)
    creating.join()
    argv = ssh.argv(vm.lab_key(lab)[0], result["floating_ips"][0], ["true"])
    while proc.run(argv, netns=lab.host_ns("host1"), check=False, timeout=30).returncode != 0:
        time.sleep(0.1)
    seen["ssh"] = time.monotonic()
    return {k: t - started[0] for k, t in seen.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=3)
    args = parser.parse_args()
    state_dir = tempfile.mkdtemp(prefix="nl-benchvm-")
    lab = Lab(state_dir)
    try:
        lifecycle.up(lab, port=free_port(), identity_port=free_port(), say=lambda _m: None)
        clouds = manager.Clouds.of(lab)
        runs = []
        for i in range(args.vms):
            runs.append(boot(lab, clouds, f"bench{i}"))
            manager.delete(lab, f"bench{i}", clouds)
        print(f"VM boot, {args.vms} VMs, QEMU with {vm.known_accel(lab)['accel'].upper()} "
              f"({vm.known_accel(lab)['why']})")
        for key in ("lease", "metadata", "ready", "ssh"):
            values = [r[key] for r in runs]
            line(f"QEMU start → {key}", f"p50 {statistics.median(values):.1f} s, max {max(values):.1f} s")
    finally:
        lifecycle.down(lab, say=lambda _m: None)
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    main()
