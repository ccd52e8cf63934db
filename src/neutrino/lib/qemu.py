"""QEMU guests: one virtio-net NIC on an existing tap device and nothing else on the network (-nodefaults, no
user-mode networking), a serial console written to a log file, started detached inside a network namespace (where
its tap lives) and stopped by pid. KVM is used when a bounded probe shows it boots; TCG otherwise."""
from __future__ import annotations

import os
import time

from neutrino.lib import proc

QEMU = "qemu-system-x86_64"
MEMORY_MB = 256
KVM_PROBE_SECONDS = 15
PROBE_MARK = "Linux version"            # the kernel's first line on the serial console


def argv(kernel: str, initrd: str, tap: str, mac: str, console_log: str, accel: str, name: str,
         memory_mb: int = MEMORY_MB) -> list[str]:
    """The command line of a guest booting kernel + initrd with its NIC on tap (MAC = the port's)."""
    return [QEMU, "-name", name, "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-machine", f"q35,accel={accel}", "-cpu", "max" if accel == "tcg" else "host", "-smp", "1",
            "-m", str(memory_mb), "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 panic=-1",
            "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net0,mac={mac}",
            "-serial", f"file:{console_log}", "-monitor", "none"]


def start(args: list[str], netns: str, pidfile: str, log: str) -> int:
    """Run QEMU detached in netns (pid file written by us: the pid is QEMU's own); its pid."""
    return proc.spawn(args, netns=netns, log=log, pidfile=pidfile)


def probe_kvm(kernel: str, workdir: str, timeout: float = KVM_PROBE_SECONDS) -> tuple[bool, str]:
    """(KVM usable, why): boot the kernel under KVM with no disk and no NIC and wait, bounded, for its first console
    line; an open /dev/kvm is not enough (guests can hang there without a word)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "no /dev/kvm"
    os.makedirs(workdir, exist_ok=True)
    log = os.path.join(workdir, "kvm-probe.console")
    open(log, "w").close()
    args = [QEMU, "-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-machine", "q35,accel=kvm",
            "-cpu", "host", "-m", "128", "-kernel", kernel, "-append", "console=ttyS0 panic=-1",
            "-serial", f"file:{log}", "-monitor", "none"]
    pid = proc.spawn(args, log=os.path.join(workdir, "kvm-probe.log"))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with open(log, errors="replace") as f:
                if PROBE_MARK in f.read():
                    return True, f"a kernel printed under KVM within {timeout:.0f} s"
            if not proc.pid_alive(pid) or _exited(pid):
                return False, "QEMU with KVM exited: " + _tail(os.path.join(workdir, "kvm-probe.log"))
            time.sleep(0.2)
        return False, f"no console output under KVM within {timeout:.0f} s"
    finally:
        proc.stop(pid)


def _exited(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def _tail(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read().strip().splitlines()[-1][:200]
    except (OSError, IndexError):
        return "no output"
