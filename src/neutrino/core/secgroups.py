"""Security groups and rules with Neutron's semantics: the per-project `default` group (made on first use, race-safe),
rule validation and normalization (protocol names/numbers, port ranges, ICMP type/code, ethertype vs prefix),
duplicate detection, and bulk rendering with one query per related table."""
from __future__ import annotations

import ipaddress
from types import SimpleNamespace

from sqlalchemy import bindparam, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError

from neutrino.context import Context
from neutrino.core import addressgroups, common, quotas, rbac
from neutrino.db import models as m
from neutrino.errors import NeutrinoError, bad_request, conflict, not_found

T = m.SecurityGroup.__table__
T_RULE = m.SecurityGroupRule.__table__
T_DEFAULT = m.DefaultSecurityGroup.__table__
T_BIND = m.PortSecurityGroup.__table__

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"
ETHERTYPES = ("IPv4", "IPv6")
ANY_PREFIX = {"IPv4": "0.0.0.0/0", "IPv6": "::/0"}
# neutron_lib.constants.IP_PROTOCOL_MAP ("icmpv6" is the legacy name of ipv6-icmp)
PROTOCOLS = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4,
             "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
             "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
             "udplite": 136, "vrrp": 112}
PORT_PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite"}
ICMP_NUMBERS = (1, 58)
IPV6_ONLY_NUMBERS = (41, 43, 44, 58, 59, 60)


# --- pure rule logic ------------------------------------------------------------------------------------------------

def protocol_number(protocol: str | None) -> int | None:
    """'tcp' -> 6, '6' -> 6, None (any) -> None."""
    if protocol is None:
        return None
    return PROTOCOLS[protocol] if protocol in PROTOCOLS else int(protocol)


def normalize_rule(rule: dict) -> dict:
    """Check a converted rule body as Neutron's _validate_security_group_rule does and return it canonical:
    legacy IPv6 ICMP names become 'ipv6-icmp' (number 1 becomes 58), a port range needs a protocol that has ports,
    ICMP ranges are type/code, the prefix must match the ethertype, and only one kind of remote is allowed."""
    out = dict(rule)
    ethertype = out.setdefault("ethertype", "IPv4")
    proto = out.get("protocol")
    if ethertype == "IPv6" and proto in ("icmp", "icmpv6"):
        proto = "ipv6-icmp"
    elif ethertype == "IPv6" and proto == "1":
        proto = "58"
    out["protocol"] = proto
    pmin, pmax = out.get("port_range_min"), out.get("port_range_max")
    num = protocol_number(proto)
    if pmin is not None or pmax is not None:
        if proto is None:
            raise bad_request("Must also specify protocol if port range is given.",
                              "SecurityGroupProtocolRequiredWithPorts")
        if num in PORT_PROTOCOLS:
            if pmin == 0 or pmax == 0:
                raise bad_request("Invalid value for port 0", "SecurityGroupInvalidPortValue")
            if pmin is None or pmax is None or pmin > pmax:
                raise bad_request("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                                  "SecurityGroupInvalidPortRange")
        elif num in ICMP_NUMBERS:
            for attr, field, value in (("port_range_min", "type", pmin), ("port_range_max", "code", pmax)):
                if value is not None and not 0 <= value <= 255:
                    raise bad_request(f"Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255.",
                                      "SecurityGroupInvalidIcmpValue")
            if pmin is None:
                raise bad_request(f"ICMP code (port-range-max) {pmax} is provided but ICMP type (port-range-min) "
                                  "is missing.", "SecurityGroupMissingIcmpType")
        else:
            names = ", ".join(n.upper() for n in PORT_PROTOCOLS.values())
            raise bad_request(f"Invalid protocol {proto} for port range, only supported for {names} protocols.",
                              "SecurityGroupInvalidProtocolForPort")
    prefix = out.get("remote_ip_prefix")
    if prefix is not None and f"IPv{ipaddress.ip_network(prefix).version}" != ethertype:
        raise bad_request(f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                          "SecurityGroupRuleParameterConflict")
    if num in IPV6_ONLY_NUMBERS and ethertype == "IPv4":
        raise bad_request(f"Invalid ethertype {ethertype} for protocol {proto}.",
                          "SecurityGroupEthertypeConflictWithProtocol")
    if prefix is not None and out.get("remote_group_id"):
        raise bad_request("Only remote_ip_prefix or remote_group_id may be provided.",
                          "SecurityGroupRemoteGroupAndRemoteIpPrefix")
    if out.get("remote_address_group_id") and (prefix is not None or out.get("remote_group_id")):
        raise bad_request("Only one of remote_ip_prefix, remote_group_id and remote_address_group_id may be "
                          "provided.", "SecurityGroupMultipleRemoteEntites")
    return out


def rule_key(rule) -> tuple:
    """What makes two rules of a group the same: protocol by number, 'anywhere' prefixes equal to no prefix."""
    get = rule.get if isinstance(rule, dict) else lambda k: getattr(rule, k)
    prefix = get("remote_ip_prefix")
    return (get("direction"), get("ethertype"), protocol_number(get("protocol")), get("port_range_min"),
            get("port_range_max"), get("remote_group_id"), get("remote_address_group_id"),
            None if prefix in ANY_PREFIX.values() else prefix)


# --- groups ---------------------------------------------------------------------------------------------------------

def scope(ctx: Context):
    return rbac.visible_clause(T, "security_group", ctx)


def get(s, ctx: Context, sg_id: str):
    return rbac.get_visible(s, "security_group", sg_id, ctx, "SecurityGroup")


def _default_id(s, project_id: str) -> str | None:
    return s.execute(select(T_DEFAULT.c.security_group_id).where(T_DEFAULT.c.project_id == project_id)).scalar()


def _rule_row(project_id: str, sg_id: str, direction: str, ethertype: str, **extra) -> dict:
    row = common.new_row(Context(project_id=project_id), {})
    row.update(security_group_id=sg_id, direction=direction, ethertype=ethertype, protocol=None, port_range_min=None,
               port_range_max=None, remote_ip_prefix=None, remote_group_id=None, remote_address_group_id=None)
    row.update(extra)
    return row


def _insert_group(s, row: dict, default: bool) -> None:
    """The group row and Neutron's initial rules: egress anywhere (v4, v6); a default group also allows ingress
    from its own members."""
    s.execute(insert(T), row)
    rules = []
    for ethertype in ETHERTYPES:
        if default:
            rules.append(_rule_row(row["project_id"], row["id"], "ingress", ethertype, remote_group_id=row["id"]))
        rules.append(_rule_row(row["project_id"], row["id"], "egress", ethertype))
    if default:
        s.execute(insert(T_DEFAULT).values(project_id=row["project_id"], security_group_id=row["id"]))
    s.execute(insert(T_RULE), rules)


def ensure_default(s, project_id: str) -> str:
    """The project's `default` group id, made now if missing. Concurrent first uses race on the
    DefaultSecurityGroup primary key; the loser rolls back its savepoint and takes the winner's group."""
    found = _default_id(s, project_id)
    if found:
        return found
    row = common.new_row(Context(project_id=project_id), {"description": DEFAULT_DESCRIPTION})
    row.update(name=DEFAULT_NAME, stateful=True)
    try:
        with s.begin_nested():
            _insert_group(s, row, default=True)
    except IntegrityError:
        found = _default_id(s, project_id)
        if not found:
            raise
        return found
    return row["id"]


def before_list(s, ctx: Context, filters: dict) -> None:
    """Listing groups makes the caller's default group (or that of the project filtered on, for admins)."""
    wanted = (filters.get("project_id") or filters.get("tenant_id") or [None])[0]
    project = wanted if wanted and (ctx.is_admin or wanted == ctx.project_id) else ctx.project_id
    if project:
        ensure_default(s, project)


def check_ids(s, ctx: Context, ids: list[str]) -> list[str]:
    """The given group ids, deduplicated, if the caller may use them all (404 SecurityGroupNotFound otherwise) and
    they are all stateful or all stateless (409, as Neutron: one port cannot mix them)."""
    wanted = list(dict.fromkeys(ids))
    rows = common.in_chunks(s, lambda c: select(T.c.id, T.c.project_id, T.c.stateful).where(T.c.id.in_(c)),
                            [i for i in wanted if isinstance(i, str)])
    ok = {r.id: r.stateful for r in rows if rbac.usable(s, ctx, "security_group", r)}
    missing = [str(i) for i in wanted if i not in ok]
    if missing:
        raise not_found("SecurityGroup", ", ".join(missing))
    if len(set(ok.values())) > 1:
        raise conflict("SecurityGroupConflict", "Error Cannot apply both stateful and stateless security groups on "
                                                "the same port at the same time while attempting the operation.")
    return wanted


def _in_use(s, sg_id: str) -> bool:
    return s.execute(select(T_BIND.c.port_id).where(T_BIND.c.security_group_id == sg_id).limit(1)).first() is not None


def _in_use_error(sg_id: str):
    return conflict("SecurityGroupInUse", f"Security Group {sg_id} in use.")


def create(s, ctx: Context, data: dict, settings) -> str:
    row = common.new_row(ctx, data)
    project = row["project_id"]
    ensure_default(s, project)
    quotas.check(s, project, "security_group")
    quotas.check(s, project, "security_group_rule", adding=len(ETHERTYPES))
    row.update(name=data.get("name", ""), stateful=data.get("stateful", True))
    _insert_group(s, row, default=False)
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    common.require_owner(ctx, row, "update_security_group")
    if "name" in data and _default_id(s, row.project_id) == row.id:
        raise conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
    if "stateful" in data and data["stateful"] != row.stateful and _in_use(s, row.id):
        raise _in_use_error(row.id)
    common.touch(s, T, row.id, data)


def delete_group(s, ctx: Context, row) -> None:
    common.require_owner(ctx, row, "delete_security_group")
    if _in_use(s, row.id):
        raise _in_use_error(row.id)
    if not ctx.is_admin and _default_id(s, row.project_id) == row.id:
        raise conflict("SecurityGroupCannotRemoveDefault",
                       "Insufficient rights for removing default security group.")
    s.execute(delete(T_RULE).where(or_(T_RULE.c.security_group_id == row.id, T_RULE.c.remote_group_id == row.id)))
    s.execute(delete(T_DEFAULT).where(T_DEFAULT.c.security_group_id == row.id))
    common.delete_tags(s, row.id)
    rbac.delete_for(s, row.id)
    s.execute(delete(T).where(T.c.id == row.id))


def _default_groups(s, sg_ids) -> set[str]:
    rows = common.in_chunks(s, lambda c: select(T_DEFAULT.c.security_group_id)
                            .where(T_DEFAULT.c.security_group_id.in_(c)), list(set(sg_ids)))
    return {r[0] for r in rows}


def _rule_dict(r, defaults: set[str]) -> dict:
    return {"id": r.id, "security_group_id": r.security_group_id, "direction": r.direction,
            "ethertype": r.ethertype, "protocol": r.protocol, "port_range_min": r.port_range_min,
            "port_range_max": r.port_range_max, "remote_ip_prefix": r.remote_ip_prefix,
            "normalized_cidr": r.remote_ip_prefix, "remote_group_id": r.remote_group_id,
            "remote_address_group_id": r.remote_address_group_id,
            "belongs_to_default_sg": r.security_group_id in defaults, **common.std(r)}


def render(s, ctx: Context, rows) -> list[dict]:
    ids = [r.id for r in rows]
    rules: dict[str, list[dict]] = {i: [] for i in ids}
    defaults = _default_groups(s, ids)
    for rr in common.in_chunks(s, lambda c: select(T_RULE).where(T_RULE.c.security_group_id.in_(c)), ids):
        rules[rr.security_group_id].append(_rule_dict(rr, defaults))
    tags = common.tags_of(s, ids)
    shared = rbac.shared_to(s, "security_group", ids, ctx.project_id)
    return [{"id": r.id, "name": r.name, "stateful": r.stateful, "shared": r.id in shared,
             "security_group_rules": rules[r.id], "tags": tags[r.id], **common.std(r)} for r in rows]


# --- rules ----------------------------------------------------------------------------------------------------------

def rule_scope(ctx: Context):
    """A project sees its own rules and every rule of the groups it sees (its own, and those shared with it)."""
    if ctx.is_admin:
        return None
    return (T_RULE.c.project_id == ctx.project_id) | T_RULE.c.security_group_id.in_(select(T.c.id).where(scope(ctx)))


def get_rule(s, ctx: Context, rule_id: str):
    row = s.execute(common.by_id(T_RULE), {"id": rule_id}).first() if isinstance(rule_id, str) else None
    if row is not None and not common.owned_or_admin(ctx, row):
        row = s.execute(select(T_RULE).where(T_RULE.c.id == rule_id, rule_scope(ctx))).first()
    if row is None:
        raise not_found("SecurityGroupRule", rule_id)
    return row


_KIND = select(T_RULE).where(T_RULE.c.security_group_id == bindparam("sg"), T_RULE.c.direction == bindparam("direction"),
                             T_RULE.c.ethertype == bindparam("ethertype"))
_SAME_KIND_ANY_PORT = _KIND.where(T_RULE.c.port_range_min.is_(None))       # rules a new one may duplicate
_SAME_KIND = _KIND.where(T_RULE.c.port_range_min == bindparam("pmin"))


def create_rule(s, ctx: Context, data: dict, settings) -> str:
    rule = normalize_rule(data)
    if rule.get("remote_group_id") is not None:
        get(s, ctx, rule["remote_group_id"])
    if rule.get("remote_address_group_id"):
        addressgroups.get(s, ctx, rule["remote_address_group_id"])
    sg = get(s, ctx, rule["security_group_id"])
    common.require_owner(ctx, sg, "create_security_group_rule")    # a group shared with you is not yours to edit
    project = rule.get("project_id") or sg.project_id
    quotas.check(s, project, "security_group_rule")
    key = rule_key(rule)
    pmin = rule.get("port_range_min")
    kind = {"sg": sg.id, "direction": rule["direction"], "ethertype": rule["ethertype"]}
    same_kind = _SAME_KIND_ANY_PORT if pmin is None else _SAME_KIND
    for existing in s.execute(same_kind, kind if pmin is None else {**kind, "pmin": pmin}).all():
        if rule_key(existing) == key:
            raise conflict("SecurityGroupRuleExists",
                           f"Security group rule already exists. Rule id is {existing.id}.")
    row = common.new_row(Context(project_id=project), rule)
    row.update(security_group_id=sg.id, direction=rule["direction"], ethertype=rule["ethertype"],
               protocol=rule.get("protocol"), port_range_min=rule.get("port_range_min"),
               port_range_max=rule.get("port_range_max"), remote_ip_prefix=rule.get("remote_ip_prefix"),
               remote_group_id=rule.get("remote_group_id"),
               remote_address_group_id=rule.get("remote_address_group_id"))
    s.execute(insert(T_RULE), row)
    common.touch(s, T, sg.id)
    return row["id"]


def update_rule(s, ctx: Context, row, data: dict, settings) -> None:
    """Neutron has no rule update; every attribute is read-only and an empty update is refused the same way."""
    err = NeutrinoError("Security group rules cannot be updated.")
    err.code, err.type_name = 405, "HTTPMethodNotAllowed"
    raise err


def delete_rule(s, ctx: Context, row) -> None:
    if not common.owned_or_admin(ctx, row):
        common.require_owner(ctx, get(s, ctx, row.security_group_id), "delete_security_group_rule")
    s.execute(delete(T_RULE).where(T_RULE.c.id == row.id))
    common.touch(s, T, row.security_group_id)


def render_rules(s, ctx: Context, rows) -> list[dict]:
    defaults = _default_groups(s, [r.security_group_id for r in rows])
    return [_rule_dict(r, defaults) for r in rows]


# The rules collection's core, in the shape the generic controller expects of a core module.
RULES = SimpleNamespace(T=T_RULE, get=get_rule, scope=rule_scope, render=render_rules, create=create_rule,
                        update=update_rule)
