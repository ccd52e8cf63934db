"""Per-project quotas with Neutron's defaults; creating past a limit is 409 OverQuota."""
from __future__ import annotations

from sqlalchemy import bindparam, delete, func, insert, select

from neutrino.db import models as m
from neutrino.errors import BadRequest, OverQuota

NEUTRON_DEFAULTS = {"network": 100, "subnet": 100, "subnetpool": -1, "port": 500, "router": 10, "floatingip": 50,
                    "security_group": 10, "security_group_rule": 100, "rbac_policy": 10}
DEFAULTS = dict(NEUTRON_DEFAULTS)     # the server's defaults (its `quotas` setting, as Neutron's [quotas] quota_*)
TABLES = {"network": m.Network, "subnet": m.Subnet, "subnetpool": m.SubnetPool, "port": m.Port,
          "router": m.Router, "floatingip": m.FloatingIP, "security_group": m.SecurityGroup,
          "security_group_rule": m.SecurityGroupRule, "rbac_policy": m.RbacPolicy}
T = m.Quota.__table__


def set_defaults(overrides: dict[str, int]) -> None:
    """The server's default limits: Neutron's, with the configured ones over them (one server per process)."""
    unknown = set(overrides) - set(NEUTRON_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown quota resources: {', '.join(sorted(unknown))}")
    DEFAULTS.clear()
    DEFAULTS.update(NEUTRON_DEFAULTS, **overrides)


_LIMITS = select(T.c.resource, T.c.limit).where(T.c.project_id == bindparam("project"))
_USED = {res: select(func.count()).select_from(model.__table__).where(model.__table__.c.project_id ==
                                                                      bindparam("project"))
         for res, model in TABLES.items()}


def limits(s, project_id: str) -> dict[str, int]:
    out = dict(DEFAULTS)
    for res, lim in s.execute(_LIMITS, {"project": project_id}):
        out[res] = lim
    return out


def used(s, project_id: str, resource: str) -> int:
    return s.execute(_USED[resource], {"project": project_id}).scalar_one()


def check(s, project_id: str, resource: str, adding: int = 1) -> None:
    """Service-owned resources (project '': router gateways, floating IP ports) are not charged to anyone."""
    if not project_id:
        return
    lim = limits(s, project_id).get(resource, -1)
    if lim < 0:
        return
    if used(s, project_id, resource) + adding > lim:
        raise OverQuota(f"Quota exceeded for resources: ['{resource}'].")


def check_limits(s, project_id: str, values: dict[str, int]) -> None:
    """check_limit: a new limit may not be below what the project already uses: 400, as neutron-tempest-plugin's
    test_set_network_quota_lower_than_networks_amount expects of Neutron."""
    unders = [f"{res}={lim}" for res, lim in values.items()
              if lim >= 0 and res in TABLES and used(s, project_id, res) > lim]
    if unders:
        err = BadRequest(f"Change would make usage less than 0 for the following resources: {', '.join(unders)}.")
        err.type_name = "InvalidQuotaValue"
        raise err


def update(s, project_id: str, values: dict[str, int]) -> None:
    for res, lim in values.items():
        s.execute(delete(T).where(T.c.project_id == project_id, T.c.resource == res))
        s.execute(insert(T).values(project_id=project_id, resource=res, limit=lim))


def reset(s, project_id: str) -> None:
    s.execute(delete(T).where(T.c.project_id == project_id))


def projects_with_quotas(s) -> list[str]:
    return [r[0] for r in s.execute(select(T.c.project_id).distinct())]


def details(s, project_id: str) -> dict:
    lim = limits(s, project_id)
    return {res: {"limit": lim[res], "used": used(s, project_id, res) if res in TABLES else 0, "reserved": 0}
            for res in lim}
