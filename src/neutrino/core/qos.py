"""QoS policies and their rules with Neutron's semantics: admin-managed policies visible to their project and to
those an RBAC policy shares them with (`shared` is the `*` one), bandwidth_limit and minimum_bandwidth rules per
direction, one dscp_marking rule, a default policy per project for its new networks, and the policy of a port (its
own, else its network's for ports that are not the network's own)."""
from __future__ import annotations

from sqlalchemy import delete, insert, select

from neutrino.context import Context
from neutrino.core import common, rbac
from neutrino.db import services as m
from neutrino.errors import Forbidden, conflict, not_found

T = m.QosPolicy.__table__
T_RULE = m.QosRule.__table__
T_PORT = m.QosPortBinding.__table__
T_NET = m.QosNetworkBinding.__table__
T_DEFAULT = m.QosDefault.__table__

VALID_DSCP_MARKS = (0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 44, 46, 48, 56)
DIRECTIONS = ("egress", "ingress")
# rule type -> (collection in the API, its parameters)
RULE_TYPES = {"bandwidth_limit": ("bandwidth_limit_rules", ("max_kbps", "max_burst_kbps", "direction")),
              "dscp_marking": ("dscp_marking_rules", ("dscp_mark",)),
              "minimum_bandwidth": ("minimum_bandwidth_rules", ("min_kbps", "direction"))}
KINDS = {"bandwidth_limit": "BandwidthLimitRule", "dscp_marking": "DscpMarkingRule",
         "minimum_bandwidth": "MinimumBandwidthRule"}
MAX_INT = 2 ** 31 - 1


def rule_type_details(rule_type: str) -> dict:
    """GET /qos/rule-types/{type}: the one driver (the agent's tc and iptables mangle) and what it accepts."""
    values = {"max_kbps": {"start": 0, "end": MAX_INT}, "max_burst_kbps": {"start": 0, "end": MAX_INT},
              "min_kbps": {"start": 0, "end": MAX_INT}, "direction": list(DIRECTIONS),
              "dscp_mark": list(VALID_DSCP_MARKS)}
    params = [{"parameter_name": p, "parameter_type": "range" if isinstance(values[p], dict) else "choices",
               "parameter_values": values[p]} for p in RULE_TYPES[rule_type][1]]
    return {"type": rule_type, "drivers": [{"name": "neutrino", "supported_parameters": params}]}


# --- policies -------------------------------------------------------------------------------------------------------

def scope(ctx: Context):
    return rbac.visible_clause(T, "qos_policy", ctx)


def get(s, ctx: Context, policy_id: str):
    return rbac.get_visible(s, "qos_policy", policy_id, ctx, "QosPolicy")


def admin_only(ctx: Context, action: str) -> None:
    """Neutron's policy: QoS policies and rules are managed by admins; projects use them."""
    if not ctx.is_admin:
        raise Forbidden(f"(rule:{action}) is disallowed by policy")


def _set_default(s, project_id: str, policy_id: str, is_default: bool) -> None:
    current = s.execute(select(T_DEFAULT.c.policy_id).where(T_DEFAULT.c.project_id == project_id)).scalar()
    if is_default:
        if current and current != policy_id:
            raise conflict("QoSPolicyDefaultAlreadyExists", f"A default QoS policy exists for project {project_id}.")
        if not current:
            s.execute(insert(T_DEFAULT).values(project_id=project_id, policy_id=policy_id))
    elif current == policy_id:
        s.execute(delete(T_DEFAULT).where(T_DEFAULT.c.project_id == project_id))


def create(s, ctx: Context, data: dict, settings) -> str:
    admin_only(ctx, "create_policy")
    row = common.new_row(ctx, data)
    row.update(name=data.get("name", ""))
    s.execute(insert(T), row)
    rbac.set_wildcard(s, "qos_policy", row, rbac.SHARED, data.get("shared", False))
    _set_default(s, row["project_id"], row["id"], data.get("is_default", False))
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    admin_only(ctx, "update_policy")
    if "is_default" in data:
        _set_default(s, row.project_id, row.id, data["is_default"])
    if "shared" in data:     # unsharing a policy that other projects' (or its own) networks and ports use: 409
        rbac.set_wildcard(s, "qos_policy", row, rbac.SHARED, data["shared"])
    common.touch(s, T, row.id, {k: v for k, v in data.items() if k in ("name", "description")})


def delete_policy(s, ctx: Context, row) -> None:
    admin_only(ctx, "delete_policy")
    for table, kind, col in ((T_PORT, "port", T_PORT.c.port_id), (T_NET, "network", T_NET.c.network_id)):
        user = s.execute(select(col).where(table.c.policy_id == row.id).limit(1)).scalar()
        if user:
            raise conflict("QosPolicyInUse", f"QoS Policy {row.id} is used by {kind} {user}.")
    s.execute(delete(T_DEFAULT).where(T_DEFAULT.c.policy_id == row.id))
    s.execute(delete(T_RULE).where(T_RULE.c.qos_policy_id == row.id))
    common.delete_tags(s, row.id)
    rbac.delete_for(s, row.id)
    s.execute(delete(T).where(T.c.id == row.id))


def rule_dict(r, with_policy: bool = True) -> dict:
    out = {"id": r.id, **{p: getattr(r, p) for p in RULE_TYPES[r.type][1]}}
    if with_policy:
        out.update(qos_policy_id=r.qos_policy_id, type=r.type)
    return out


def render(s, ctx: Context, rows) -> list[dict]:
    ids = [r.id for r in rows]
    rules: dict[str, list[dict]] = {i: [] for i in ids}
    for r in common.in_chunks(s, lambda c: select(T_RULE).where(T_RULE.c.qos_policy_id.in_(c))
                              .order_by(T_RULE.c.type, T_RULE.c.direction, T_RULE.c.id), ids):
        rules[r.qos_policy_id].append(rule_dict(r))
    defaults = {p for (p,) in common.in_chunks(s, lambda c: select(T_DEFAULT.c.policy_id)
                                               .where(T_DEFAULT.c.policy_id.in_(c)), ids)}
    tags = common.tags_of(s, ids)
    shared = rbac.shared_to(s, "qos_policy", ids, ctx.project_id)
    return [{"id": r.id, "name": r.name, "shared": r.id in shared, "is_default": r.id in defaults, "rules": rules[r.id],
             "tags": tags[r.id], **common.std(r)} for r in rows]


# --- rules ----------------------------------------------------------------------------------------------------------

def get_rule(s, policy, rule_type: str, rule_id: str):
    row = s.execute(select(T_RULE).where(T_RULE.c.id == rule_id, T_RULE.c.qos_policy_id == policy.id,
                                         T_RULE.c.type == rule_type)).first() if isinstance(rule_id, str) else None
    if row is None:
        err = not_found(f"QoS{KINDS[rule_type]}", rule_id)
        err.message = f"{KINDS[rule_type]} {rule_id} for policy {policy.id} could not be found."
        raise err
    return row


def list_rules(s, policy, rule_type: str) -> list:
    return s.execute(select(T_RULE).where(T_RULE.c.qos_policy_id == policy.id, T_RULE.c.type == rule_type)
                     .order_by(T_RULE.c.id)).all()


def _check_rule(s, policy, rule_type: str, values: dict, rule_id: str | None) -> None:
    """One rule per type and direction; a minimum may not exceed the maximum of the same direction
    (Neutron's check_bandwidth_rule_conflict)."""
    others = [r for r in s.execute(select(T_RULE).where(T_RULE.c.qos_policy_id == policy.id)).all()
              if r.id != rule_id]
    direction = values.get("direction", "")
    for r in others:
        if r.type == rule_type and r.direction == direction:
            raise conflict("QoSRulesConflict", f"Rule {rule_type} conflicts with rule {r.id} which already exists "
                                               f"in QoS Policy {policy.id}.")
    pairs = {"bandwidth_limit": ("minimum_bandwidth", "max_kbps", "min_kbps"),
             "minimum_bandwidth": ("bandwidth_limit", "min_kbps", "max_kbps")}
    if rule_type not in pairs:
        return
    other_type, mine, theirs = pairs[rule_type]
    for r in others:
        if r.type == other_type and r.direction == direction:
            lo, hi = (values[mine], getattr(r, theirs)) if rule_type == "minimum_bandwidth" else \
                (getattr(r, theirs), values[mine])
            if lo > hi:
                raise conflict("QoSRuleParameterConflict",
                               f"Unable to add the rule with value {values[mine]} to the policy {policy.id} as the "
                               f"existing rule of type {other_type} restricts the bandwidth to {getattr(r, theirs)}.")


def create_rule(s, ctx: Context, policy, rule_type: str, data: dict) -> str:
    admin_only(ctx, f"create_policy_{rule_type}_rule")
    values = {p: data[p] for p in RULE_TYPES[rule_type][1] if p in data}
    if rule_type != "dscp_marking":
        values.setdefault("direction", "egress")
    if rule_type == "bandwidth_limit":
        values.setdefault("max_burst_kbps", 0)
    _check_rule(s, policy, rule_type, values, None)
    rid = data.get("id") or common.new_id()
    s.execute(insert(T_RULE).values(id=rid, qos_policy_id=policy.id, type=rule_type, **values))
    common.touch(s, T, policy.id)
    return rid


def update_rule(s, ctx: Context, policy, row, data: dict) -> None:
    admin_only(ctx, f"update_policy_{row.type}_rule")
    values = {**{p: getattr(row, p) for p in RULE_TYPES[row.type][1]}, **data}
    _check_rule(s, policy, row.type, values, row.id)
    s.execute(T_RULE.update().where(T_RULE.c.id == row.id).values(**data))
    common.touch(s, T, policy.id)


def delete_rule(s, ctx: Context, policy, row) -> None:
    admin_only(ctx, f"delete_policy_{row.type}_rule")
    s.execute(delete(T_RULE).where(T_RULE.c.id == row.id))
    common.touch(s, T, policy.id)


# --- ports and networks -----------------------------------------------------------------------------------------

def bind(s, ctx: Context, kind: str, object_id: str, policy_id: str | None) -> None:
    """Set (or with None clear) the policy of a port or network; the caller must see the policy."""
    table, col = (T_PORT, T_PORT.c.port_id) if kind == "port" else (T_NET, T_NET.c.network_id)
    if policy_id is not None:
        get(s, ctx, policy_id)
    s.execute(delete(table).where(col == object_id))
    if policy_id is not None:
        s.execute(insert(table).values({col.name: object_id, "policy_id": policy_id}))


def bind_new_network(s, ctx: Context, network_id: str, project_id: str, data: dict) -> None:
    """A new network takes the policy it names, else its project's default policy (qos-default)."""
    policy_id = data.get("qos_policy_id")
    if policy_id is None and "qos_policy_id" not in data:
        policy_id = s.execute(select(T_DEFAULT.c.policy_id).where(T_DEFAULT.c.project_id == project_id)).scalar()
        if policy_id:
            s.execute(insert(T_NET).values(network_id=network_id, policy_id=policy_id))
        return
    bind(s, ctx, "network", network_id, policy_id)


def policies_of(s, kind: str, ids: list[str]) -> dict[str, str | None]:
    """object id -> its own policy id (or None), for ports or networks."""
    table, col = (T_PORT, T_PORT.c.port_id) if kind == "port" else (T_NET, T_NET.c.network_id)
    out: dict[str, str | None] = {i: None for i in ids}
    for oid, pid in common.in_chunks(s, lambda c: select(col, table.c.policy_id).where(col.in_(c)), ids):
        out[oid] = pid
    return out


def effective(s, ports: list) -> dict[str, list[dict]]:
    """port id -> the rules that apply to it: its own policy's, else (for ports not owned by the network service)
    its network's; ports without a policy are left out."""
    own = policies_of(s, "port", [p.id for p in ports])
    net = policies_of(s, "network", sorted({p.network_id for p in ports}))
    which = {p.id: own[p.id] or (None if p.device_owner.startswith("network:") else net[p.network_id])
             for p in ports}
    rules: dict[str, list[dict]] = {}
    for r in common.in_chunks(s, lambda c: select(T_RULE).where(T_RULE.c.qos_policy_id.in_(c))
                              .order_by(T_RULE.c.type, T_RULE.c.direction),
                              sorted({v for v in which.values() if v})):
        rules.setdefault(r.qos_policy_id, []).append(rule_dict(r))
    return {pid: rules.get(pol, []) for pid, pol in which.items() if pol}
