"""The lab's clouds.yaml (clouds `admin` and `demo`, Keystone v3 password auth; `admin-serverN`/`demo-serverN` for
the other servers of a lab of several) and openstacksdk connections to it.

Users point the `openstack` CLI at it with `export OS_CLIENT_CONFIG_FILE=<state>/clouds.yaml`; the lab itself
drives the API through the same file, as any client would.
"""
from __future__ import annotations

import os

import yaml

from neutrino.lab.paths import Lab, LabSettings
from neutrino.lab.processes import admin_password

REGION = "RegionOne"
CLOUDS = ("admin", "demo")


def cloud_name(name: str, server: int = 1) -> str:
    """`demo` talks to the first server; `demo-server2` to the second (a lab of several servers)."""
    return name if server == 1 else f"{name}-server{server}"


def write_clouds_yaml(lab: Lab, settings: LabSettings) -> str:
    password = admin_password(lab)
    clouds = {cloud_name(name, i): {
        "auth": {"auth_url": lab.identity_url(settings, i), "username": name, "password": password,
                 "project_name": name, "user_domain_name": "Default", "project_domain_name": "Default"},
        "auth_type": "password", "region_name": REGION, "identity_api_version": 3, "interface": "public"}
        for i in range(1, settings.servers + 1) for name in CLOUDS}
    fd = os.open(lab.clouds_yaml, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump({"clouds": clouds}, f, sort_keys=False)
    return lab.clouds_yaml


def connect(lab: Lab, cloud: str):
    """An openstacksdk Connection for one of the lab's clouds (imported lazily: the SDK is slow to import)."""
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[lab.clouds_yaml], secure_files=[], vendor_files=[])
    return openstack.connection.Connection(config=config.get_one(cloud=cloud))
