"""The lab's clouds.yaml (clouds `admin` and `demo`, Keystone v3 password auth; `admin-serverN`/`demo-serverN` for
the other servers of a lab of several) and openstacksdk connections to it.

Users point the `openstack` CLI at it with `export OS_CLIENT_CONFIG_FILE=<state>/clouds.yaml`; the lab itself
drives the API through the same file, as any client would.
"""
from __future__ import annotations

import os

import yaml

from neutrino.lab.paths import Lab, LabSettings, NoLab
from neutrino.lab.processes import LabError, admin_password

REGION = "RegionOne"
CLOUDS = ("admin", "demo")
DEFAULT_CLOUD = "demo"


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


def _clouds(lab: Lab) -> dict[str, dict]:
    """The clouds the lab's clouds.yaml defines (the lab writes admin and demo; users may add their own)."""
    try:
        with open(lab.clouds_yaml) as f:
            return (yaml.safe_load(f) or {}).get("clouds") or {}
    except FileNotFoundError:
        return {}


def project_cloud(lab: Lab, project_name: str) -> str | None:
    """A cloud of the lab's clouds.yaml that acts in project_name, if one does."""
    return next((n for n, c in sorted(_clouds(lab).items())
                 if (c.get("auth") or {}).get("project_name") == project_name), None)


def connect(lab: Lab, cloud: str):
    """An openstacksdk Connection for one of the lab's clouds (imported lazily: the SDK is slow to import)."""
    try:
        import openstack.config
        import openstack.connection
    except ImportError as e:
        raise LabError("the lab talks to its servers with openstacksdk, which is not installed: "
                    "pip install 'neutrino[lab]'") from e

    known = sorted(_clouds(lab.require()))
    if cloud not in known:
        raise NoLab(f"no cloud {cloud!r} in {lab.clouds_yaml} (clouds: {', '.join(known)}); add it there, as for "
                    f"the openstack CLI, or pick one of those with --os-cloud / OS_CLOUD")
    config = openstack.config.OpenStackConfig(config_files=[lab.clouds_yaml], secure_files=[], vendor_files=[])
    return openstack.connection.Connection(config=config.get_one(cloud=cloud))


def page_link(lab: Lab, settings: LabSettings, server: int = 1) -> str:
    """The web page of one server, signed in to the demo project: a fresh token in the URL's fragment (browsers do
    not send a fragment to the server, so it stays out of request lines and logs)."""
    token = connect(lab, cloud_name("demo", server)).auth_token
    return f"http://127.0.0.1:{settings.server_port(server)}/ui#token={token}"
