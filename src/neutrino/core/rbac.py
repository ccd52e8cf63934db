"""RBAC policies: the one place that says who may use another project's network, security group, subnet pool,
address scope or QoS policy. `shared` and `router:external` visibility are views over these rows (a `*` target is everyone).

A policy that a project depends on (its ports on the network, its routers' gateways, its subnets from the pool…)
cannot be removed or retargeted away from it: 409 RbacPolicyInUse, as Neutron.
"""
from __future__ import annotations

from sqlalchemy import delete, insert, select

from neutrino.context import Context
from neutrino.core import common, quotas
from neutrino.db import models as m
from neutrino.db import services
from neutrino.errors import Forbidden, bad_request, conflict, not_found

T = m.RbacPolicy.__table__
SHARED, EXTERNAL = "access_as_shared", "access_as_external"
NETWORK_ACTIONS = (SHARED, EXTERNAL)
WILDCARD = "*"
# object type -> (table, actions it supports)
OBJECTS = {"network": (m.Network.__table__, NETWORK_ACTIONS),
           "security_group": (m.SecurityGroup.__table__, (SHARED,)),
           "subnetpool": (m.SubnetPool.__table__, (SHARED,)),
           "address_scope": (m.AddressScope.__table__, (SHARED,)),
           "qos_policy": (services.QosPolicy.__table__, (SHARED,))}
# kinds on Neutron's RBAC object mixin (QoS policies): the owner's own use counts as a dependant too, and retargeting
# a policy is judged as removing it (the new target does not count), unlike networks' and pools' checks
OBJECT_MIXIN = ("qos_policy",)


# --- who may use what -----------------------------------------------------------------------------------------------

def granted_ids(kind: str, project: str | None, actions: tuple[str, ...] = (SHARED,)):
    """SQL: ids of the objects of `kind` granted to `project` (by name or by `*`) through one of `actions`."""
    return select(T.c.object_id).where(T.c.object_type == kind, T.c.action.in_(actions),
                                       T.c.target_project.in_([WILDCARD, project or ""]))


def visible_clause(table, kind: str, ctx: Context, actions: tuple[str, ...] = (SHARED,)):
    """SQL clause for the rows of `table` a caller may list (None = all, for admins)."""
    if ctx.is_admin:
        return None
    return (table.c.project_id == ctx.project_id) | table.c.id.in_(granted_ids(kind, ctx.project_id, actions))


def is_granted(s, kind: str, obj_id: str, project: str | None, actions: tuple[str, ...] = (SHARED,)) -> bool:
    return s.execute(granted_ids(kind, project, actions).where(T.c.object_id == obj_id).limit(1)).first() is not None


def usable(s, ctx: Context, kind: str, row, action: str = SHARED) -> bool:
    """May the caller use this object (attach a port to it, a router gateway, a subnet from it…)?"""
    return ctx.is_admin or row.project_id == ctx.project_id or is_granted(s, kind, row.id, ctx.project_id, (action,))


def get_visible(s, kind: str, rid, ctx: Context, label: str, actions: tuple[str, ...] = (SHARED,)):
    """The row if the caller owns it, is admin, or is granted one of `actions`; 404 otherwise."""
    table = OBJECTS[kind][0]
    row = s.execute(common.by_id(table), {"id": rid}).first() if isinstance(rid, str) else None
    if row is None or not (ctx.is_admin or row.project_id == ctx.project_id
                           or is_granted(s, kind, row.id, ctx.project_id, actions)):
        raise not_found(label, rid)
    return row


def shared_to(s, kind: str, ids: list[str], project: str | None, action: str = SHARED) -> set[str]:
    """Of `ids`, those shared with `project` (the `shared` attribute as the caller sees it)."""
    rows = common.in_chunks(s, lambda c: granted_ids(kind, project, (action,)).where(T.c.object_id.in_(c)), ids)
    return {r[0] for r in rows}


# --- the `shared` / `router:external` switches ----------------------------------------------------------------------

def _wildcard(s, kind: str, obj_id: str, action: str):
    return s.execute(select(T).where(T.c.object_type == kind, T.c.object_id == obj_id, T.c.action == action,
                                     T.c.target_project == WILDCARD)).first()


def set_wildcard(s, kind: str, obj: dict | object, action: str, on: bool, in_use_error=None) -> None:
    """Add or remove the `*` policy behind `shared`/`router:external`; removing checks dependants first."""
    obj_id, owner = (obj["id"], obj["project_id"]) if isinstance(obj, dict) else (obj.id, obj.project_id)
    current = _wildcard(s, kind, obj_id, action)
    if on and current is None:
        s.execute(insert(T).values(id=common.new_id(), project_id=owner, object_type=kind, object_id=obj_id,
                                   action=action, target_project=WILDCARD))
    elif not on and current is not None:
        check_release(s, current, owner, in_use_error)
        s.execute(delete(T).where(T.c.id == current.id))


def delete_for(s, obj_id: str) -> None:
    """The object is gone: so are its policies."""
    s.execute(delete(T).where(T.c.object_id == obj_id))


# --- dependants -----------------------------------------------------------------------------------------------------

def _bound_projects(s, kind: str, action: str, obj_id: str) -> set[str]:
    """Projects whose resources rely on access to the object through `action`."""
    port, sub, pool = m.Port.__table__, m.Subnet.__table__, m.SubnetPool.__table__
    if kind == "network" and action == SHARED:
        stmt = select(port.c.project_id).where(port.c.network_id == obj_id)
    elif kind == "network":
        router, fip = m.Router.__table__, m.FloatingIP.__table__
        gw = select(router.c.project_id).join(port, port.c.id == router.c.gw_port_id).where(port.c.network_id == obj_id)
        stmt = gw.union(select(fip.c.project_id).where(fip.c.floating_network_id == obj_id))
    elif kind == "security_group":
        bind = m.PortSecurityGroup.__table__
        stmt = select(port.c.project_id).join(bind, bind.c.port_id == port.c.id).where(
            bind.c.security_group_id == obj_id)
    elif kind == "subnetpool":
        stmt = select(sub.c.project_id).where(sub.c.subnetpool_id == obj_id)
    elif kind == "qos_policy":
        net, qnet, qport = m.Network.__table__, services.QosNetworkBinding.__table__, services.QosPortBinding.__table__
        stmt = select(net.c.project_id).join(qnet, qnet.c.network_id == net.c.id).where(
            qnet.c.policy_id == obj_id).union(select(port.c.project_id).join(
                qport, qport.c.port_id == port.c.id).where(qport.c.policy_id == obj_id))
    else:
        stmt = select(pool.c.project_id).where(pool.c.address_scope_id == obj_id)
    return {r[0] for r in s.execute(stmt) if r[0]}


def check_release(s, policy, owner: str, in_use_error=None, new_target: str | None = None) -> None:
    """Removing `policy` (or moving it off its target to `new_target`) must leave every dependent project still
    granted."""
    target = policy.target_project
    exempt = set() if policy.object_type in OBJECT_MIXIN else {owner}
    if target in exempt:
        return
    others = {r[0] for r in s.execute(select(T.c.target_project).where(
        T.c.object_type == policy.object_type, T.c.object_id == policy.object_id, T.c.action == policy.action,
        T.c.id != policy.id))}
    if new_target and policy.object_type not in OBJECT_MIXIN:
        others.add(new_target)
    if WILDCARD in others:
        return
    bound = _bound_projects(s, policy.object_type, policy.action, policy.object_id) - exempt
    losing = bound - others if target == WILDCARD else bound & {target}
    if losing:
        raise in_use_error or conflict(
            "RbacPolicyInUse", f"RBAC policy on object {policy.object_id} cannot be removed because other objects "
                               f"depend on it.\nDetails: tenant_id={target}")


# --- the rbac-policies collection -----------------------------------------------------------------------------------

def scope(ctx: Context):
    return None if ctx.is_admin else T.c.project_id == ctx.project_id


def get(s, ctx: Context, rid: str):
    return common.get_visible(s, T, rid, ctx, "RbacPolicy")


def _owned_object(s, ctx: Context, kind: str, obj_id: str):
    """The object a policy is about; only its owner (or an admin) may share it (400, as Neutron's callbacks)."""
    table = OBJECTS[kind][0]
    row = s.execute(common.by_id(table), {"id": obj_id}).first()
    if row is None or not (ctx.is_admin or row.project_id == ctx.project_id
                           or is_granted(s, kind, obj_id, ctx.project_id, OBJECTS[kind][1])):
        raise bad_request(f"Invalid input for operation: {kind} {obj_id} could not be found.", "InvalidInput")
    if not ctx.is_admin and row.project_id != ctx.project_id:
        raise bad_request(f"Invalid input for operation: Only admins can manipulate policies on {kind}s they do "
                          "not own.", "InvalidInput")
    return row


def _no_wildcard_for_users(ctx: Context, target: str, action: str) -> None:
    if target == WILDCARD and not ctx.is_admin:
        raise Forbidden(f"(rule:{action}_rbac_policy:target_tenant) is disallowed by policy")


def _duplicate(s, kind: str, obj_id: str, action: str, target: str, exclude: str | None = None) -> None:
    stmt = select(T.c.id).where(T.c.object_type == kind, T.c.object_id == obj_id, T.c.action == action,
                                T.c.target_project == target)
    if exclude:
        stmt = stmt.where(T.c.id != exclude)
    if s.execute(stmt).first():
        raise conflict("DuplicateRbacPolicy", "An RBAC policy already exists with those values.")


def create(s, ctx: Context, data: dict, settings) -> str:
    kind, action, target = data["object_type"], data["action"], data["target_tenant"]
    if action not in OBJECTS[kind][1]:
        raise bad_request(f"Action {action} for object type {kind} is not supported.", "InvalidActionForType")
    _no_wildcard_for_users(ctx, target, "create")
    obj = _owned_object(s, ctx, kind, data["object_id"])
    _duplicate(s, kind, obj.id, action, target)
    if kind == "subnetpool":
        _scope_reaches(s, obj.id, target)
    row = {"id": common.new_id(), "project_id": data.get("project_id") or ctx.project_id or "",
           "object_type": kind, "object_id": obj.id, "action": action, "target_project": target}
    quotas.check(s, row["project_id"], "rbac_policy")
    s.execute(insert(T), row)
    if kind == "network" and action == EXTERNAL and not obj.external:
        common.touch(s, OBJECTS[kind][0], obj.id, {"external": True})   # Neutron makes the network external
    else:
        _touch_object(s, kind, obj.id)
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    common.require_owner(ctx, row, "update_rbac_policy")
    target = data.get("target_tenant", row.target_project)
    if target == row.target_project:
        return
    _no_wildcard_for_users(ctx, target, "update")
    _duplicate(s, row.object_type, row.object_id, row.action, target, exclude=row.id)
    if row.object_type == "subnetpool":
        _scope_reaches(s, row.object_id, target)
    if target != WILDCARD:
        check_release(s, row, _owner(s, row), new_target=target)
    s.execute(T.update().where(T.c.id == row.id).values(target_project=target))
    _touch_object(s, row.object_type, row.object_id)


def _scope_reaches(s, pool_id: str, target: str) -> None:
    """A pool in an address scope is shared only with projects the scope is shared with (or owned by): 400."""
    scope_id = s.execute(select(m.SubnetPool.__table__.c.address_scope_id).where(
        m.SubnetPool.__table__.c.id == pool_id)).scalar()
    if not scope_id:
        return
    owner = s.execute(select(m.AddressScope.__table__.c.project_id).where(
        m.AddressScope.__table__.c.id == scope_id)).scalar()
    granted = {r[0] for r in s.execute(select(T.c.target_project).where(
        T.c.object_type == "address_scope", T.c.object_id == scope_id, T.c.action == SHARED))}
    if not ({WILDCARD, target} & granted or target == owner):
        raise bad_request(f"Failed to create RBAC policy on object {pool_id} because the address scope {scope_id} "
                          f"of the subnet pool is not shared with project {target}.", "RbacPolicyInitError")


def _touch_object(s, kind: str, obj_id: str) -> None:
    """A policy change is a new revision of the object it shares (agents and If-Match see it)."""
    table = OBJECTS[kind][0]
    if "revision_number" in table.c:
        common.touch(s, table, obj_id)


def _owner(s, policy) -> str:
    table = OBJECTS[policy.object_type][0]
    return s.execute(select(table.c.project_id).where(table.c.id == policy.object_id)).scalar() or ""


def unset_external(s, row) -> None:
    """router:external off (by the attribute, or when its last external policy goes): refused while routers or
    floating IPs use it; all external policies go."""
    port = m.Port.__table__
    gw = select(port.c.id).where(port.c.network_id == row.id,
                                 port.c.device_owner.in_(["network:router_gateway", "network:floatingip"]))
    if s.execute(gw.limit(1)).first():
        raise conflict("ExternalNetworkInUse", f"External network {row.id} cannot be updated, as it is used by one "
                                               "or more router gateways or floating IPs.")
    s.execute(delete(T).where(T.c.object_type == "network", T.c.object_id == row.id, T.c.action == EXTERNAL))
    common.touch(s, m.Network.__table__, row.id, {"external": False})


def delete_policy(s, ctx: Context, row) -> None:
    common.require_owner(ctx, row, "delete_rbac_policy")
    check_release(s, row, _owner(s, row))
    s.execute(delete(T).where(T.c.id == row.id))
    if row.object_type == "network" and row.action == EXTERNAL and not s.execute(select(T.c.id).where(
            T.c.object_id == row.object_id, T.c.action == EXTERNAL).limit(1)).first():
        net = m.Network.__table__                  # the last external policy gone: no longer external (Neutron)
        unset_external(s, s.execute(common.by_id(net), {"id": row.object_id}).first())
    else:
        _touch_object(s, row.object_type, row.object_id)


def render(s, ctx: Context, rows) -> list[dict]:
    return [{"id": r.id, "object_type": r.object_type, "object_id": r.object_id, "action": r.action,
             "target_tenant": r.target_project, "project_id": r.project_id, "tenant_id": r.project_id}
            for r in rows]
