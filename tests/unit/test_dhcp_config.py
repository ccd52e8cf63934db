"""The dnsmasq command line and config files the DHCP driver writes for a view's DHCP network."""
from __future__ import annotations

import os

from neutrino.agent.dhcp import addn_hosts_file, dnsmasq_argv, dropped_hosts, hosts_file, opts_file, stale_leases
from neutrino.lib import dnsmasq

D = "/state/dhcp/net1"


def _subnet(sid, cidr, version=4, gateway=None, **kw):
    s = {"id": sid, "network_id": "net1", "cidr": cidr, "ip_version": version, "gateway_ip": gateway,
         "enable_dhcp": True, "dns_nameservers": [], "host_routes": [], "allocation_pools": [],
         "ipv6_ra_mode": None, "ipv6_address_mode": None}
    s.update(kw)
    return s


def _host(port, mac, ip, sid, name=None, extra=None):
    return {"port_id": port, "mac_address": mac, "ip_address": ip, "subnet_id": sid,
            "hostname": name or "host-" + ip.replace(".", "-").replace(":", "-"), "extra_dhcp_opts": extra or []}


def _net(subnets, hosts, fixed=(), **kw):
    n = {"network_id": "net1", "port_id": "dhcpport-0000", "ns_device": "tapdhcpport-0", "device": "ns-dhcpport-0",
         "mac_address": "fa:16:3e:00:00:02", "fixed_ips": list(fixed), "mtu": 1450, "domain": "openstacklocal",
         "subnets": subnets, "hosts": hosts, "isolated_metadata": False}
    n.update(kw)
    return n


V4 = _subnet("s4", "10.0.0.0/24", gateway="10.0.0.1")


def test_argv_is_neutrons():
    argv = dnsmasq_argv(_net([V4], []), D)
    assert argv[0] == "dnsmasq"
    for opt in ("--no-hosts", "--no-resolv", f"--pid-file={D}/pid", f"--dhcp-hostsfile={D}/host",
                f"--addn-hosts={D}/addn_hosts", f"--dhcp-optsfile={D}/opts", f"--dhcp-leasefile={D}/leases",
                "--interface=tapdhcpport-0", "--except-interface=lo", "--bind-dynamic", "--port=53",
                "--dhcp-range=set:subnet-s4,10.0.0.0,static,255.255.255.0,86400s",
                "--dhcp-option-force=option:mtu,1450", "--dhcp-lease-max=256", "--domain=openstacklocal"):
        assert opt in argv, opt
    assert not any(a.startswith("--enable-ra") for a in argv)


def test_argv_skips_subnets_without_dhcp_and_caps_lease_max():
    off = _subnet("off", "10.9.0.0/24", enable_dhcp=False)
    big = _subnet("big", "10.0.0.0/7")
    argv = dnsmasq_argv(_net([off, big], []), D)
    assert not any("subnet-off" in a for a in argv)
    assert "--dhcp-lease-max=16777216" in argv


def test_argv_ipv6_modes():
    stateful = _subnet("sf", "fd00:1::/64", 6, ipv6_ra_mode="dhcpv6-stateful", ipv6_address_mode="dhcpv6-stateful")
    stateless = _subnet("sl", "fd00:2::/64", 6, ipv6_ra_mode="dhcpv6-stateless",
                        ipv6_address_mode="dhcpv6-stateless")
    slaac = _subnet("sa", "fd00:3::/64", 6, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    ext_slaac = _subnet("xs", "fd00:4::/64", 6, ipv6_address_mode="slaac")      # RAs come from elsewhere
    legacy = _subnet("lg", "fd00:5::/64", 6)
    short = _subnet("sh", "fd00:6::/56", 6)
    argv = dnsmasq_argv(_net([stateful, stateless, slaac, ext_slaac, legacy, short], []), D)
    ranges = [a for a in argv if a.startswith("--dhcp-range=")]
    assert ranges == ["--dhcp-range=set:subnet-sf,fd00:1::,static,64,86400s",
                      "--dhcp-range=set:subnet-sl,fd00:2::,ra-stateless,64,86400s",
                      "--dhcp-range=set:subnet-sa,fd00:3::,ra-only,64,86400s",
                      "--dhcp-range=set:subnet-lg,fd00:5::,static,64,86400s"]
    assert "--enable-ra" in argv and "--ra-param=tapdhcpport-0,0,0" in argv


def test_hosts_file_lines():
    v6 = _subnet("s6", "fd00::/64", 6, ipv6_address_mode="dhcpv6-stateful")
    slaac = _subnet("sa", "fd00:3::/64", 6, ipv6_address_mode="slaac")
    hosts = [_host("p1", "fa:16:3e:00:00:0a", "10.0.0.10", "s4", name="vm1"),
             _host("p2", "fa:16:3e:00:00:0b", "10.0.0.11", "s4", extra=[{"opt_name": "ntp-server",
                                                                         "opt_value": "10.0.0.5"}]),
             _host("p2", "fa:16:3e:00:00:0b", "fd00::b", "s6"),
             _host("p3", "fa:16:3e:00:00:0c", "fd00:3::c", "sa"),
             _host("p4", "fa:16:3e:00:00:0d", "10.5.0.1", "not-here")]
    assert hosts_file(_net([V4, v6, slaac], hosts)) == (
        "fa:16:3e:00:00:0a,vm1.openstacklocal,10.0.0.10\n"
        "fa:16:3e:00:00:0b,host-10-0-0-11.openstacklocal,10.0.0.11,set:port-p2\n"
        "fa:16:3e:00:00:0b,host-fd00--b.openstacklocal,[fd00::b],set:port-p2\n")


def test_addn_hosts_names_every_host_qualified_and_bare():
    hosts = [_host("p1", "fa:16:3e:00:00:0a", "10.0.0.10", "s4", name="vm1")]
    assert addn_hosts_file(_net([V4], hosts)) == "10.0.0.10\tvm1.openstacklocal vm1\n"


def test_opts_routes_router_and_dns():
    s = _subnet("s4", "10.0.0.0/24", gateway="10.0.0.1", dns_nameservers=["8.8.8.8", "1.1.1.1"],
                host_routes=[{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}])
    sib = _subnet("s5", "10.1.0.0/24", gateway=None)
    fixed = [{"subnet_id": "s4", "ip_address": "10.0.0.2", "prefixlen": 24, "cidr": "10.0.0.0/24",
              "gateway_ip": "10.0.0.1"}]
    lines = opts_file(_net([s, sib], [], fixed, isolated_metadata=True)).splitlines()
    routes = "192.168.0.0/16,10.0.0.254,169.254.169.254/32,10.0.0.2,10.1.0.0/24,0.0.0.0,0.0.0.0/0,10.0.0.1"
    assert lines[:4] == [
        "tag:subnet-s4,option:dns-server,8.8.8.8,1.1.1.1",
        f"tag:subnet-s4,option:classless-static-route,{routes}",
        f"tag:subnet-s4,249,{routes}",
        "tag:subnet-s4,option:router,10.0.0.1",
    ]
    # no gateway: an empty router option, so dnsmasq does not offer itself as the router
    assert lines[-1] == "tag:subnet-s5,option:router"
    assert "tag:subnet-s5,option:classless-static-route,10.0.0.0/24,0.0.0.0" in lines


def test_opts_explicit_default_host_route_wins():
    s = _subnet("s4", "10.0.0.0/24", gateway="10.0.0.1",
                host_routes=[{"destination": "0.0.0.0/0", "nexthop": "10.0.0.9"}])
    assert "tag:subnet-s4,option:classless-static-route,0.0.0.0/0,10.0.0.9" in opts_file(_net([s], [])).splitlines()


def test_opts_extra_dhcp_opts_per_port():
    extra = [{"opt_name": "tftp-server", "opt_value": "10.0.0.5", "ip_version": 4},
             {"opt_name": "66", "opt_value": "boot.example", "ip_version": 4},
             {"opt_name": "dns-server", "opt_value": "[fd00::53]", "ip_version": 6}]
    hosts = [_host("p1", "fa:16:3e:00:00:0a", "10.0.0.10", "s4", extra=extra),
             _host("p1", "fa:16:3e:00:00:0a", "10.0.0.11", "s4", extra=extra)]
    lines = opts_file(_net([V4], hosts)).splitlines()
    assert lines[-3:] == ["tag:port-p1,option:tftp-server,10.0.0.5", "tag:port-p1,66,boot.example",
                          "tag:port-p1,option6:dns-server,[fd00::53]"]


def test_running_ignores_a_pid_file_naming_another_process(tmp_path):
    (tmp_path / "pid").write_text(str(os.getpid()))      # alive, but not a dnsmasq of this directory
    assert dnsmasq.running(str(tmp_path)) is None
    (tmp_path / "pid").write_text("999999999")
    assert dnsmasq.running(str(tmp_path)) is None


def test_leases_file_and_the_stale_ones(tmp_path):
    """dnsmasq's leases file (IPv4 by MAC, a DUID line, then IPv6 by IAID); stale: the host entry is gone or moved."""
    (tmp_path / "leases").write_text(
        "1700000000 fa:16:3e:00:00:0a 10.0.0.10 host-10-0-0-10 *\n"
        "1700000000 FA:16:3E:00:00:0B 10.0.0.11 vm-b 01:fa:16:3e:00:00:0b\n"
        "1700000000 fa:16:3e:00:00:0c 10.0.0.12 * *\n"
        "duid 00:01:00:01:2c:00:00:01:fa:16:3e:00:00:02\n"
        "1700000000 1234 fd00::a host-fd00--a 00:03:00:01:fa:16:3e:00:00:0a\n"
        "1700000000 99 fd00::99 * 00:03:00:01:fa:16:3e:00:00:99\n")
    leases, duid = dnsmasq.leases(str(tmp_path))
    assert duid == "00:01:00:01:2c:00:00:01:fa:16:3e:00:00:02"
    assert leases[1] == dnsmasq.Lease("10.0.0.11", mac="fa:16:3e:00:00:0b", client_id="01:fa:16:3e:00:00:0b")
    assert leases[3] == dnsmasq.Lease("fd00::a", iaid="1234", client_id="00:03:00:01:fa:16:3e:00:00:0a")
    s4, s6 = _subnet("s4", "10.0.0.0/24"), _subnet("s6", "fd00::/64", 6, ipv6_address_mode="dhcpv6-stateful")
    net = _net([s4, s6], [_host("p1", "fa:16:3e:00:00:0a", "10.0.0.10", "s4"),
                          _host("p2", "fa:16:3e:00:00:0b", "10.0.0.13", "s4"),      # its fixed IP changed
                          _host("p1", "fa:16:3e:00:00:0a", "fd00:0::a", "s6")])      # written another way
    assert [lease.ip_address for lease in stale_leases(net, leases)] == ["10.0.0.11", "10.0.0.12", "fd00::99"]
    assert dnsmasq.leases(str(tmp_path / "none")) == ([], "")


def test_dropped_host_entries_are_released_without_the_leases_file():
    """A host entry that leaves the hosts file (port gone, MAC or address changed) is released even when dnsmasq's
    leases file was read empty (it truncates and rewrites the file on every lease change)."""
    s4 = _subnet("s4", "10.0.0.0/24")
    before = hosts_file(_net([s4], [_host("p1", "fa:16:3e:00:00:0a", "10.0.0.10", "s4"),
                                    _host("p2", "fa:16:3e:00:00:0b", "10.0.0.11", "s4"),
                                    _host("p3", "fa:16:3e:00:00:0c", "10.0.0.12", "s4")]))
    after = hosts_file(_net([s4], [_host("p2", "fa:16:3e:00:00:0b", "10.0.0.13", "s4"),      # moved
                                   _host("p3", "fa:16:3e:00:00:0c", "10.0.0.12", "s4"),      # unchanged
                                   _host("p4", "fa:16:3e:00:00:0d", "10.0.0.10", "s4")]))    # p1's address
    assert dropped_hosts(before, after) == [dnsmasq.Lease("10.0.0.10", mac="fa:16:3e:00:00:0a"),
                                            dnsmasq.Lease("10.0.0.11", mac="fa:16:3e:00:00:0b")]
    assert dropped_hosts("", after) == [] and dropped_hosts(after, after) == []
