"""A real VM in the seed's lab (one QEMU boot for the whole module): `neutrino instance create vmq --kind vm` on
`private` with a floating IP, a user key and user data. It gets its lease from dnsmasq, its hostname and keys from
the metadata service, runs its user data, answers ssh with the injected key on its floating IP from the emulated
host, reaches the outside (br-ex 172.24.4.1) through the router's SNAT, is plugged tap -> qbr -> qvb/qvo as the seed
page shows, survives an agent restart, cannot take over another port's IP by ARP, and goes cleanly on delete.
"""
from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

import pytest

from neutrino import names
from neutrino.instances import vm
from neutrino.lib import proc
from labfix import need, neutrino

pytestmark = pytest.mark.kernel
need(("ovsdb-server", "ovs-vswitchd", "dnsmasq", "busybox", "dhclient", "iptables", "qemu-system-x86_64", "ssh",
      "ssh-keygen", "conntrack", "dpkg-deb"))
if not os.path.exists(vm.vmimage.KERNEL_DEBS) or not os.listdir(vm.vmimage.KERNEL_DEBS):
    pytest.skip("no Debian kernel package for the VM image (scripts/setup.sh)", allow_module_level=True)

NAME = "vmq"
USER_DATA = "#!/bin/sh\necho \"user data ran as $(id -u)\" > /root/user-data.out\n"


def wait_for(check, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            return found
        time.sleep(0.2)
    return found


@pytest.fixture(scope="module")
def vmq(seed_world, tmp_path_factory):
    """The VM, created once (booted until its sshd answers); deleted at the end by the last test."""
    d = tmp_path_factory.mktemp("vmq")
    key = str(d / "id_ed25519")
    proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
    (d / "user-data").write_text(USER_DATA)
    out = neutrino("instance", "create", NAME, "--kind", "vm", "--network", "private", "--floating-ip",
                   "--security-group", "default", "--key", f"tester={key}.pub", "--user-data", str(d / "user-data"),
                   "--json", state_dir=seed_world.state_dir, timeout=vm.BOOT_TIMEOUT + 60).stdout
    port = seed_world.admin.network.find_port(NAME)
    fip = next(iter(seed_world.demo.network.ips(port_id=port.id))).floating_ip_address
    yield {"world": seed_world, "port": port, "fip": fip, "key": key, "create": out}
    neutrino("instance", "delete", NAME, state_dir=seed_world.state_dir, check=False)


def _peek(p: subprocess.Popen) -> bytes:
    """What tcpdump said on stderr so far (it says "listening on" once its filter is in place)."""
    ready, _, _ = select.select([p.stderr], [], [], 0.2)
    return os.read(p.stderr.fileno(), 4096) if ready else b""


def vm_exec(v, command: str, check: bool = True) -> subprocess.CompletedProcess:
    return neutrino("instance", "exec", NAME, "--", command, state_dir=v["world"].state_dir, check=check)


def test_it_got_its_lease_from_dnsmasq(vmq):
    w, port = vmq["world"], vmq["port"]
    fixed = port.fixed_ips[0]["ip_address"]
    leases = os.path.join(w.lab.host_dir("host1"), "dhcp", w.private.id, "leases")
    assert wait_for(lambda: f"{port.mac_address} {fixed} " in open(leases).read())
    assert f"lease {fixed}/24" in vm.reports(w.lab, NAME)
    assert f"inet {fixed}/24" in vm_exec(vmq, "ip -4 addr show dev eth0").stdout
    assert port.mac_address in vm_exec(vmq, "cat /sys/class/net/eth0/address").stdout


def test_hostname_keys_and_user_data_come_from_the_metadata_service(vmq):
    said = vm.reports(vmq["world"].lab, NAME)
    assert "hostname vmq" in said and "public keys 2" in said and "user-data exit 0" in said
    assert vm_exec(vmq, "hostname").stdout.strip() == NAME
    keys = vm_exec(vmq, "cat /root/.ssh/authorized_keys").stdout
    with open(vmq["key"] + ".pub") as f:
        assert f.read().split()[1] in keys
    assert vm_exec(vmq, "cat /root/user-data.out").stdout.strip() == "user data ran as 0"


def test_ssh_on_the_floating_ip_from_the_emulated_host_with_the_injected_key(vmq):
    w = vmq["world"]
    out = w.shell("ssh", "-i", vmq["key"], "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                  "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", f"root@{vmq['fip']}",
                  "uname -r; cat /proc/1/comm")
    assert out.split() == [vm.vmimage.kernel_release(), "init"]     # a real guest kernel, not the host's


def test_it_reaches_the_outside_through_the_routers_nat(vmq):
    w, fixed = vmq["world"], vmq["port"].fixed_ips[0]["ip_address"]
    assert "1 packets received" in vm_exec(vmq, "ping -c1 -W5 172.24.4.1").stdout
    flows = w.shell("ip", "netns", "exec", names.qrouter(w.router.id), "conntrack", "-L", "-p", "icmp",
                    "-s", fixed, "-d", "172.24.4.1")
    assert re.search(rf"src={fixed} dst=172\.24\.4\.1 .* src=172\.24\.4\.1 dst={re.escape(vmq['fip'])} ", flows)


def test_the_seed_pages_commands_show_its_tap_qbr_qvb_qvo(vmq):
    w, port = vmq["world"], vmq["port"]
    tap = names.tap(port.id)
    assert "tun type tap" in w.shell("ip", "-d", "link", "show", tap)          # QEMU's NIC, not a veth
    in_qbr = w.shell("ip", "-br", "link", "show", "master", names.qbr(port.id))
    assert tap in in_qbr and names.qvb(port.id) in in_qbr
    assert names.qvo(port.id) in w.shell("ovs-vsctl", "list-ports", "br-int").split()
    assert names.sg_chain("i", port.id) in w.shell("iptables", "-S")


def test_hood_trace_status_and_list_treat_it_like_any_instance(vmq):
    w = vmq["world"]
    hood = neutrino("hood", NAME, state_dir=w.state_dir).stdout                # exit status 1 would mean drift
    assert names.tap(vmq["port"].id) in hood and names.qvo(vmq["port"].id) in hood
    trace = neutrino("trace", "external", vmq["fip"], "--proto", "tcp", "--port", "22", state_dir=w.state_dir).stdout
    assert f"DELIVERED at {names.tap(vmq['port'].id)}" in trace
    listed = neutrino("instance", "list", state_dir=w.state_dir).stdout
    assert re.search(rf"{NAME} .*vm .*ACTIVE .*{re.escape(vmq['fip'])} .*up", listed)
    assert re.search(r"VMs: QEMU with (KVM|TCG) \(", neutrino("status", state_dir=w.state_dir).stdout)
    assert "neutrino-guest: ready" in neutrino("instance", "console", NAME, state_dir=w.state_dir).stdout


def test_an_agent_restart_leaves_the_vm_running(vmq):
    w = vmq["world"]
    pid = vm.pid(w.lab, NAME)
    neutrino("restart", "agent", "--host", "host1", state_dir=w.state_dir)
    assert vm.pid(w.lab, NAME) == pid
    assert vm_exec(vmq, "hostname").stdout.strip() == NAME


def test_gratuitous_arp_for_another_ports_ip_does_not_reach_the_router(vmq):
    """A real guest kernel claims vm1's address (alias + busybox arping -U). The router's ARP cache would take it
    and lose it again as vm1 talks, so the check is on the wire: no ARP from the VM's MAC claiming vm1's address
    arrives on the router's qr- port."""
    w = vmq["world"]
    victim = w.vm_port.fixed_ips[0]["ip_address"]
    router_ns = names.qrouter(w.router.id)
    qr = re.search(r"^(qr-\S+?)(@\S+)?\s", w.shell("ip", "netns", "exec", router_ns, "ip", "-br", "link"), re.M).group(1)
    env = {**os.environ, "NEUTRINO_STATE_DIR": w.state_dir}
    sniff = subprocess.Popen([sys.executable, "-m", "neutrino.cli.main", "shell", "--", "ip", "netns", "exec", router_ns, "timeout", "30",
                              "tcpdump", "-l", "-n", "-e", "-c", "1", "-i", qr,
                              f"arp and ether src {vmq['port'].mac_address}"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: b"listening on" in _peek(sniff))
        vm_exec(vmq, f"ip addr add {victim}/32 dev eth0; arping -U -c 3 -I eth0 -s {victim} {victim}; "
                     f"ip addr del {victim}/32 dev eth0")
        out, _ = sniff.communicate(timeout=40)
    finally:
        sniff.kill()
    assert f"tell {victim}" not in out and f"{victim} is-at" not in out, out


def test_delete_stops_qemu_and_unplugs_the_tap(vmq):
    w, port = vmq["world"], vmq["port"]
    pid = vm.pid(w.lab, NAME)
    assert pid is not None
    neutrino("instance", "delete", NAME, state_dir=w.state_dir)
    assert not proc.pid_alive(pid)
    devices = (names.tap(port.id), names.qbr(port.id), names.qvb(port.id), names.qvo(port.id))
    assert wait_for(lambda: not any(d in w.shell("ip", "-br", "link") for d in devices))
    assert w.admin.network.find_port(port.id) is None
