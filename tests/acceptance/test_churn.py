"""Instances that come and go all day, in the default lab (OVS + iptables): a bounded soak of create/delete cycles on
a shared /28 by several projects (freed addresses go to new MACs at once), then the leases files, hood and the
kernel are checked for leftovers; plus the lab CLI around it (--os-cloud, the error for a network another project
owns, a fixed IP change and `instance renew`, `neutrino restart`, state dirs that are missing)."""
from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import pytest
import yaml

from neutrino.instances import guest, manager
from neutrino.lab.clouds import connect
from neutrino.lib import dnsmasq, ovs, proc
from labfix import down_leaves_nothing, free_port, need, neutrino, running_lab

pytestmark = pytest.mark.kernel
NEEDED = ("ovsdb-server", "ovs-vswitchd", "dnsmasq", "dhcp_release", "busybox", "dhclient", "iptables", "ipset", "ping",
          "nsenter")
need(NEEDED)

CYCLES = int(os.environ.get("NEUTRINO_SOAK_CYCLES", 300))     # instance create/delete cycles in the soak
PROJECTS = ("demo", "soak-a", "soak-b")
MAX_ALIVE = 5                # each project keeps 1-2 alive: 3..5 at any time
NET, CIDR = "churn", "10.28.0.0/28"


@pytest.fixture(scope="module")
def world(before):
    yield from running_lab("nl-churn-")


def add_project_cloud(world, name: str) -> None:
    """A project with a member user, and a cloud for it in the lab's clouds.yaml (as a user would add one)."""
    admin = connect(world.lab, "admin")
    project = admin.identity.create_project(name=name, domain_id="default")
    password = f"{name}-pw"
    user = admin.identity.create_user(name=name, password=password, default_project_id=project.id,
                                      domain_id="default")
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
    with open(world.lab.clouds_yaml) as f:
        doc = yaml.safe_load(f)
    cloud = dict(doc["clouds"]["demo"], auth={**doc["clouds"]["demo"]["auth"], "username": name,
                                              "password": password, "project_name": name})
    doc["clouds"][name] = cloud
    with open(world.lab.clouds_yaml, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)


@pytest.fixture(scope="module")
def churn_net(world):
    """The shared /28 every project churns on, icmp allowed into each project's default group; its id."""
    admin = connect(world.lab, "admin")
    net = admin.network.create_network(name=NET, is_shared=True)
    admin.network.create_subnet(network_id=net.id, ip_version=4, cidr=CIDR, name=f"{NET}-subnet")
    for name in PROJECTS:
        if name != "demo":
            add_project_cloud(world, name)
            user = connect(world.lab, name)
            sg = user.network.find_security_group("default", project_id=user.current_project_id)
            user.network.create_security_group_rule(security_group_id=sg.id, direction="ingress",
                                                    ethertype="IPv4", protocol="icmp")
    dhcp_active = lambda: [p.status for p in admin.network.ports(network_id=net.id,  # noqa: E731
                                                                 device_owner="network:dhcp")]
    assert wait_for(dhcp_active, ["ACTIVE"]) == ["ACTIVE"]
    return net.id


def kernel_state(world) -> dict[str, set[str]]:
    """What the emulated host holds that ports and groups make: devices, br-int ports, iptables chains, ipsets."""
    ns = world.lab.host_ns("host1")
    sh = lambda *argv: proc.output(list(argv), netns=ns)  # noqa: E731
    devices = {line.split(":")[1].strip().split("@")[0] for line in sh("ip", "-o", "link").splitlines()}
    chains = {line.split()[0][1:] for line in sh("iptables-save", "-t", "filter").splitlines() if line.startswith(":")}
    ports = sh("ovs-vsctl", f"--db={ovs.db_url(world.lab.ovs_rundir('host1'))}", "list-ports", "br-int")
    return {"devices": devices, "br-int": set(ports.split()), "chains": chains,
            "ipsets": set(sh("ipset", "list", "-n").split())}


def leases(world, network_id: str) -> set[tuple[str, str]]:
    found, _ = dnsmasq.leases(os.path.join(world.lab.host_dir("host1"), "dhcp", network_id))
    return {(lease.mac, lease.ip_address) for lease in found}


def wait_for(what, want, timeout: float = 20):
    """what() once it equals want, or its last value at the deadline."""
    deadline = time.monotonic() + timeout
    while (got := what()) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


class Soak:
    """One thread per project creating and deleting instances; each new instance must get its lease, resolve a live
    instance (any project's) by name and ping it."""

    def __init__(self, world):
        self.lab = world.lab
        self.lock = threading.Lock()
        self.live: dict[str, str] = {}           # instance name -> its address, while it may be checked against
        self.slots = threading.Semaphore(MAX_ALIVE)
        self.stop = threading.Event()            # set when the test ends early (failure, timeout): threads finish
        self.created = 0
        self.failures: list[str] = []
        self.latency: list[float] = []
        self.addresses = collections.Counter()

    def check(self, name: str) -> None:
        """Resolve and ping another live instance from the new one (under the lock: the peer cannot go meanwhile)."""
        with self.lock:
            peers = [(n, a) for n, a in self.live.items() if n != name]
            if not peers:
                return
            peer, address = peers[self.created % len(peers)]
            ns = self.lab.guest_ns(name)
            out = proc.run(["busybox", "nslookup", peer], netns=ns, check=False).stdout
            failed = len(self.failures)
            if f"Address: {address}" not in out.split("Name:", 1)[-1]:
                self.failures.append(f"{name} resolved {peer} as: {out!r}, want {address}")
            if proc.run(["ping", "-c1", "-W2", peer], netns=ns, check=False).returncode != 0:
                self.failures.append(f"{name} cannot ping {peer} ({address})")
            if len(self.failures) > failed:
                self.failures.append(self.diagnose(name, address))

    def diagnose(self, name: str, peer_address: str) -> str:
        """What the host and guest held when a check failed, and whether the guest could ping within 10 s more."""
        ns = self.lab.guest_ns(name)
        t0 = time.monotonic()
        while proc.run(["ping", "-c1", "-W1", peer_address], netns=ns, check=False).returncode != 0:
            if time.monotonic() - t0 > 10:
                break
        later = time.monotonic() - t0
        hood = subprocess.run([sys.executable, "-m", "neutrino.cli.main", "hood", name],
                              env={**os.environ, "NEUTRINO_STATE_DIR": self.lab.state_dir, "COLUMNS": "200"},
                              capture_output=True, text=True, timeout=60)
        neigh = proc.run(["ip", "neigh"], netns=ns, check=False).stdout
        addrs = proc.run(["ip", "-br", "addr"], netns=ns, check=False).stdout
        return (f"{name}: ping of {peer_address} {'works' if later <= 10 else 'still fails'} after {later:.1f} s; "
                f"guest addr {addrs!r} neigh {neigh!r}; hood exit {hood.returncode}:\n{hood.stdout[-3000:]}")

    def project(self, cloud: str, cycles: int, network_id: str) -> None:
        clouds = manager.Clouds.of(self.lab, cloud)
        mine: list[str] = []
        try:
            for i in range(cycles):
                if not self.slot():
                    return
                name = f"{cloud}-{i:03d}"
                t0 = time.monotonic()
                summary = manager.create(self.lab, name, network_id, clouds=clouds)
                self.latency.append(time.monotonic() - t0)
                address = guest.address(self.lab, name)
                if address is None or address not in summary["fixed_ips"]:
                    self.failures.append(f"{name}: guest has {address}, port {summary['fixed_ips']}")
                self.addresses[address] += 1
                mine.append(name)
                self.check(name)
                with self.lock:
                    self.live[name] = address
                    self.created += 1
                if len(mine) == 2:
                    self.remove(clouds, mine.pop(0))
        except Exception as e:  # noqa: BLE001 - the failure is reported by the test, which joins the threads
            self.failures.append(f"{cloud}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=-6)}")
            self.stop.set()

    def slot(self) -> bool:
        """Wait for room under MAX_ALIVE; False when the soak is stopping."""
        while not self.stop.is_set():
            if self.slots.acquire(timeout=0.5):
                return True
        return False

    def remove(self, clouds, name: str) -> None:
        with self.lock:
            self.live.pop(name, None)
        manager.delete(self.lab, name, clouds)
        self.slots.release()


@pytest.mark.timeout(900)
def test_churn_soak(world, churn_net):
    """≥300 create/delete cycles, 3-5 instances alive, three projects on one /28; then nothing is left over."""
    before = kernel_state(world)
    soak = Soak(world)
    t0 = time.monotonic()
    threads = [threading.Thread(target=soak.project, args=(p, CYCLES // len(PROJECTS), churn_net))
               for p in PROJECTS]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        soak.stop.set()
        for t in threads:
            t.join()
    elapsed = time.monotonic() - t0
    lat = sorted(soak.latency)
    print(f"\nchurn soak: {soak.created} instances in {elapsed:.0f} s; create (port → lease → service) p50 "
          f"{lat[len(lat) // 2]:.2f} s p99 {lat[int(len(lat) * 0.99)]:.2f} s; {len(soak.addresses)} addresses "
          f"reused {sum(soak.addresses.values()) - len(soak.addresses)} times")
    assert soak.failures == []
    assert soak.created == CYCLES
    assert sum(soak.addresses.values()) - len(soak.addresses) > CYCLES / 2        # freed addresses were reused

    admin = connect(world.lab, "admin")
    alive = list(admin.network.ports(network_id=churn_net, device_owner=manager.DEVICE_OWNER))
    assert len(alive) == len(PROJECTS) == len(soak.live)
    want = {(p.mac_address, p.fixed_ips[0]["ip_address"]) for p in alive}
    assert wait_for(lambda: leases(world, churn_net), want) == want             # only the live ports
    neutrino("hood", next(iter(soak.live)), state_dir=world.state_dir)          # exit status 1 = drift
    neutrino("hood", churn_net, state_dir=world.state_dir)

    for p in alive:
        manager.delete(world.lab, p.name, manager.Clouds.of(world.lab, "admin"))
    assert wait_for(lambda: leases(world, churn_net), set()) == set()
    assert wait_for(lambda: kernel_state(world), before) == before               # no device, chain or set left


def test_os_cloud_and_the_network_another_project_owns(world, churn_net):
    admin = connect(world.lab, "admin")
    net = admin.network.create_network(name="admins-own")
    admin.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.29.0.0/28")
    refused = neutrino("instance", "create", "x1", "--network", "admins-own", state_dir=world.state_dir, check=False)
    assert refused.returncode == 1
    said = " ".join(refused.stdout.split())
    assert "network 'admins-own' exists in project 'admin' but is not visible to project 'demo'" in said, said
    assert "--os-cloud admin" in said and "network set --share admins-own" in said
    assert not list(admin.network.ports(name="x1"))                             # nothing made

    env = {**os.environ, "NEUTRINO_STATE_DIR": world.state_dir, "OS_CLOUD": "admin", "COLUMNS": "200"}
    made = subprocess.run([sys.executable, "-m", "neutrino.cli.main", "instance", "create", "x1", "--network",
                           "admins-own", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stdout + made.stderr
    port = next(iter(admin.network.ports(name="x1")))
    assert port.project_id == admin.current_project_id and port.dns_name == "x1"
    assert port.dns_assignment[0]["fqdn"] == "x1.lab.internal."
    assert "x1" not in neutrino("instance", "list", state_dir=world.state_dir).stdout         # demo's list
    assert "x1" in neutrino("instance", "list", "--os-cloud", "admin", state_dir=world.state_dir).stdout
    hidden = neutrino("instance", "show", "x1", state_dir=world.state_dir, check=False)
    assert hidden.returncode == 1 and "--os-cloud admin" in " ".join(hidden.stdout.split())
    out = neutrino("instance", "exec", "--os-cloud", "admin", "x1", "--", "nslookup", "x1", state_dir=world.state_dir)
    assert "Address: 10.29.0." in out.stdout.split("Name:", 1)[1]                # its own lease's resolver
    assert neutrino("instance", "exec", "x1", "--", "cat", "/etc/resolv.conf",
                    state_dir=world.state_dir).stdout.split() == ["search", "lab.internal", "nameserver", "10.29.0.2"]
    unknown = neutrino("instance", "list", "--os-cloud", "nope", state_dir=world.state_dir, check=False)
    assert unknown.returncode == 1 and "no cloud 'nope'" in unknown.stdout
    neutrino("instance", "delete", "x1", "--os-cloud", "admin", state_dir=world.state_dir)


def test_fixed_ip_change_releases_the_lease_and_the_guest_renews_to_the_new_address(world):
    demo = connect(world.lab, "demo")
    neutrino("instance", "create", "mover", "--network", "private", state_dir=world.state_dir)
    port = next(iter(demo.network.ports(name="mover")))
    old = port.fixed_ips[0]["ip_address"]
    demo.network.update_port(port, fixed_ips=[{"subnet_id": port.fixed_ips[0]["subnet_id"],
                                               "ip_address": "10.0.0.200"}])
    lease = lambda: {ip for mac, ip in leases(world, world.private.id) if mac == port.mac_address}  # noqa: E731
    assert wait_for(lease, set()) == set()                                      # the old lease is released
    out = neutrino("instance", "renew", "mover", state_dir=world.state_dir).stdout
    assert "mover is 10.0.0.200" in out, out
    assert guest.address(world.lab, "mover") == "10.0.0.200" != old
    assert wait_for(lease, {"10.0.0.200"}) == {"10.0.0.200"}
    neutrino("instance", "delete", "mover", state_dir=world.state_dir)


def test_restart_each_component_in_place(world):
    lab = world.lab
    server, agent = lab.path("server.pid"), os.path.join(lab.host_dir("host1"), "agent.pid")
    pids = {f: int(open(f).read()) for f in (server, agent)}
    out = neutrino("restart", "agent", "--host", "host1", state_dir=world.state_dir).stdout
    assert "agent on host1 restarted" in out and "server" not in out
    assert int(open(agent).read()) != pids[agent] and int(open(server).read()) == pids[server]
    assert not proc.cmdline(pids[agent])
    neutrino("restart", "server", state_dir=world.state_dir)
    assert int(open(server).read()) != pids[server] and not proc.cmdline(pids[server])
    assert neutrino("instance", "exec", "vm1", "--", "ping", "-c1", "-W2", "10.0.0.1",
                    state_dir=world.state_dir).returncode == 0
    neutrino("hood", "vm1", state_dir=world.state_dir)                         # the restarts left no drift
    bad = neutrino("restart", "agent", "--host", "host7", state_dir=world.state_dir, check=False)
    assert bad.returncode == 1 and "no emulated host 'host7'" in bad.stdout


def test_state_dirs_that_are_missing(world):
    with tempfile.TemporaryDirectory(prefix="nt-state-") as tmp:
        missing = os.path.join(tmp, "a", "b")
        for cmd in (("instance", "list"), ("instance", "exec", "vm1", "--", "true"), ("restart", "agent")):
            res = neutrino(*cmd, state_dir=missing, check=False)
            assert res.returncode == 1 and f"no lab in {missing}" in " ".join(res.stdout.split()), res.stdout
            assert "Traceback" not in res.stdout + res.stderr and not os.path.exists(missing)
        fresh = os.path.join(tmp, "new", "server")             # a server makes its state dir, private
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "neutrino.cli.main", "server", "--state-dir", fresh, "--port",
                                   str(port), "--identity-port", str(port), "--auth", "noauth"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: os.path.exists(os.path.join(fresh, "neutrino.db")), True)
            assert os.stat(fresh).st_mode & 0o777 == 0o700
        finally:
            server.terminate()
            server.wait(timeout=30)
        blocker = os.path.join(tmp, "file")
        open(blocker, "w").close()
        for cmd in (("server", "--state-dir", os.path.join(blocker, "x"), "--port", "1"),
                    ("agent", "--host", "h", "--server", "unix:/nonexistent", "--state-dir", blocker)):
            res = subprocess.run([sys.executable, "-m", "neutrino.cli.main", *cmd], capture_output=True, text=True,
                                 timeout=30)
            assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
            assert "state dir" in res.stderr and ("not a directory" in res.stderr), res.stderr


def test_down_leaves_nothing_behind(world, before):
    down_leaves_nothing(world, before)
