"""Writes tempest.conf for a running `neutrino up` lab from what its server advertises.

Usage: conformance_conf.py STATE_DIR TEMPEST_CONF [advertised|all]. The lab's clouds.yaml gives the Keystone URL and the admin
account; tempest provisions its own accounts through that Keystone (dynamic credentials: a fresh project with a
member user per test class, a second one for `alt`, reader users where a test asks for them), so tests of one class
never see another's resources. The API extensions, the external network and the network types come from the API.
"""
from __future__ import annotations

import configparser
import sys

import httpx
import yaml

# Tests that cannot pass without services neutrino is not (compute, image, volume, DNS, load balancer).
NO_SERVICES = ("nova", "glance", "cinder", "swift", "designate", "heat", "octavia", "placement")


def admin_session(clouds_yaml: str) -> tuple[dict, httpx.Client, str]:
    with open(clouds_yaml) as f:
        auth = yaml.safe_load(f)["clouds"]["admin"]["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"], "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}}}}
    r = httpx.post(f"{auth['auth_url']}/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    catalog = r.json()["token"]["catalog"]
    network = next(e["url"] for s in catalog if s["type"] == "network" for e in s["endpoints"]
                   if e["interface"] == "public")
    client = httpx.Client(base_url=network.rstrip("/") + "/v2.0",
                          headers={"X-Auth-Token": r.headers["X-Subject-Token"]}, timeout=30)
    return auth, client, network


def main(state_dir: str, conf_path: str, which: str = "advertised") -> None:
    """which: "advertised" (the tests of what the server says it has) or "all" (every test, as if it had all)."""
    auth, api, endpoint = admin_session(f"{state_dir}/clouds.yaml")
    extensions = sorted(e["alias"] for e in api.get("/extensions").json()["extensions"]) if which != "all" else ["all"]
    public = next(n for n in api.get("/networks", params={"router:external": "True"}).json()["networks"])
    conf = configparser.ConfigParser()
    conf.read(conf_path)
    values = {
        "DEFAULT": {"log_dir": state_dir, "log_file": "tempest.log", "debug": "false"},
        "auth": {"use_dynamic_credentials": "true", "create_isolated_networks": "false",
                 "admin_username": auth["username"], "admin_password": auth["password"],
                 "admin_project_name": auth["project_name"], "admin_domain_name": "Default",
                 "default_credentials_domain_name": "Default", "tempest_roles": "member"},
        "identity": {"uri_v3": auth["auth_url"], "auth_version": "v3", "region": "RegionOne",
                     "disable_ssl_certificate_validation": "true"},
        "identity-feature-enabled": {"api_v2": "false", "api_v3": "true"},
        "service_available": {**{s: "false" for s in NO_SERVICES}, "neutron": "true"},
        "network": {"public_network_id": public["id"], "floating_network_name": public["name"],
                    "project_network_cidr": "10.100.0.0/16", "project_network_mask_bits": "28",
                    "project_network_v6_cidr": "2001:db8::/48", "project_network_v6_mask_bits": "64",
                    "project_networks_reachable": "false", "shared_physical_network": "false",
                    "endpoint_type": "publicURL", "region": "RegionOne",
                    "build_timeout": "60", "build_interval": "1"},     # status waits: bounded, not 300 s each
        "network-feature-enabled": {"api_extensions": ",".join(extensions), "ipv6": "true",
                                    "ipv6_subnet_attributes": "true", "port_security": "true",
                                    "floating_ips": "true"},
        "neutron_plugin_options": {"available_type_drivers": "flat,vlan,vxlan,geneve,local",
                                   "provider_vlans": "physnet1", "specify_floating_ip_address_available": "true",
                                   "max_networks_per_project": "0"},
        "validation": {"run_validation": "false"},
    }
    for section, items in values.items():
        if section != "DEFAULT" and not conf.has_section(section):
            conf.add_section(section)
        for k, v in items.items():
            conf.set(section, k, v)
    with open(conf_path, "w") as f:
        conf.write(f)
    print(f"tempest.conf: extensions {which} ({len(extensions)}) at {endpoint}, public network {public['name']}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
