"""Metering labels and rules (Neutron's metering API, admin-managed) and the counters agents read from the qrouter
namespaces. A label applies to every router of its project, or to every router when shared; `counters` is what a
metrics endpoint or a CLI view reads."""
from __future__ import annotations

import ipaddress
from types import SimpleNamespace

from sqlalchemy import delete, insert, or_, select

from neutrino.context import Context
from neutrino.core import common
from neutrino.db import models
from neutrino.db import services as m
from neutrino.errors import Forbidden, bad_request, conflict

T = m.MeteringLabel.__table__
T_RULE = m.MeteringLabelRule.__table__
T_COUNT = m.MeteringCounter.__table__
T_ROUTER = models.Router.__table__
RULE_FIELDS = ("id", "metering_label_id", "direction", "remote_ip_prefix", "source_ip_prefix",
               "destination_ip_prefix", "excluded")


def _admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise Forbidden(f"(rule:{action}) is disallowed by policy")


# --- labels ---------------------------------------------------------------------------------------------------------

def scope(ctx: Context):
    return None if ctx.is_admin else T.c.project_id == ctx.project_id


def get(s, ctx: Context, label_id: str):
    return common.get_visible(s, T, label_id, ctx, "MeteringLabel")


def create(s, ctx: Context, data: dict, settings) -> str:
    _admin(ctx, "create_metering_label")
    row = common.new_row(ctx, data)
    row.update(name=data.get("name", ""), shared=data.get("shared", False))
    s.execute(insert(T), row)
    return row["id"]


def update(s, ctx: Context, row, data: dict, settings) -> None:
    _admin(ctx, "update_metering_label")
    common.touch(s, T, row.id, data)


def delete_label(s, ctx: Context, row) -> None:
    _admin(ctx, "delete_metering_label")
    s.execute(delete(T_COUNT).where(T_COUNT.c.label_id == row.id))
    s.execute(delete(T_RULE).where(T_RULE.c.metering_label_id == row.id))
    s.execute(delete(T).where(T.c.id == row.id))


def render(s, ctx: Context, rows) -> list[dict]:
    return [{"id": r.id, "name": r.name, "shared": r.shared, **common.std(r)} for r in rows]


# --- rules ----------------------------------------------------------------------------------------------------------

def rule_scope(ctx: Context):
    return None if ctx.is_admin else T_RULE.c.project_id == ctx.project_id


def get_rule(s, ctx: Context, rule_id: str):
    return common.get_visible(s, T_RULE, rule_id, ctx, "MeteringLabelRule")


def _overlaps(a: str, b: str) -> bool:
    na, nb = ipaddress.ip_network(a), ipaddress.ip_network(b)
    return na.version == nb.version and na.overlaps(nb)


def create_rule(s, ctx: Context, data: dict, settings) -> str:
    """Neutron's checks: remote_ip_prefix (legacy) excludes source/destination prefixes, at least one prefix is
    given, and remote prefixes of one label, direction and exclusion do not overlap."""
    _admin(ctx, "create_metering_label_rule")
    label = get(s, ctx, data["metering_label_id"])
    remote = data.get("remote_ip_prefix")
    src, dst = data.get("source_ip_prefix"), data.get("destination_ip_prefix")
    if remote and (src or dst):
        raise bad_request("Cannot use 'remote-ip-prefix' in conjunction with 'source-ip-prefix' or "
                          "'destination-ip-prefix'.", "MeteringLabelRuleInvalidPrefixes")
    if not (remote or src or dst):
        raise bad_request("You must define at least one of the following parameters 'remote_ip_prefix', or "
                          "'source_ip_prefix' or 'destination_ip_prefix'.", "MeteringLabelRuleInvalidPrefixes")
    direction = data.get("direction", "ingress")
    excluded = data.get("excluded", False)
    if remote:
        same = s.execute(select(T_RULE.c.remote_ip_prefix).where(
            T_RULE.c.metering_label_id == label.id, T_RULE.c.direction == direction,
            T_RULE.c.excluded == excluded, T_RULE.c.remote_ip_prefix.is_not(None))).scalars()
        if any(_overlaps(remote, other) for other in same):
            raise conflict("MeteringLabelRuleOverlaps",
                           f"Metering label rule with remote_ip_prefix {remote} overlaps another.")
    rid = data.get("id") or common.new_id()
    s.execute(insert(T_RULE).values(id=rid, project_id=label.project_id, metering_label_id=label.id,
                                    direction=direction, remote_ip_prefix=remote, source_ip_prefix=src,
                                    destination_ip_prefix=dst, excluded=excluded))
    return rid


def update_rule(s, ctx: Context, row, data: dict, settings) -> None:
    err = Forbidden("Metering label rules cannot be updated.")
    err.code, err.type_name = 405, "HTTPMethodNotAllowed"
    raise err


def delete_rule(s, ctx: Context, row) -> None:
    _admin(ctx, "delete_metering_label_rule")
    s.execute(delete(T_RULE).where(T_RULE.c.id == row.id))


def render_rules(s, ctx: Context, rows) -> list[dict]:
    return [{**{k: getattr(r, k) for k in RULE_FIELDS}, "project_id": r.project_id, "tenant_id": r.project_id}
            for r in rows]


# --- what routers realize and what they counted -------------------------------------------------------------------

def labels_for_routers(s, routers: list) -> dict[str, list[dict]]:
    """router id -> [{"id", "name", "rules": [...]}]: the labels of its project and the shared ones, for the view."""
    projects = {r.project_id for r in routers}
    labels = s.execute(select(T).where(or_(T.c.shared.is_(True), T.c.project_id.in_(projects)))
                       .order_by(T.c.id)).all() if routers else []
    rules: dict[str, list[dict]] = {lb.id: [] for lb in labels}
    for r in common.in_chunks(s, lambda c: select(T_RULE).where(T_RULE.c.metering_label_id.in_(c))
                              .order_by(T_RULE.c.id), list(rules)):
        rules[r.metering_label_id].append({k: getattr(r, k) for k in RULE_FIELDS[2:]} | {"id": r.id})
    return {r.id: [{"id": lb.id, "name": lb.name, "rules": rules[lb.id]} for lb in labels
                   if lb.shared or lb.project_id == r.project_id] for r in routers}


def record(s, host: str, counted: dict) -> None:
    """Keep what an agent read: {router id: {label id: {"packets", "bytes"}}}, for routers hosted there and labels
    that still exist (a label deleted meanwhile is dropped)."""
    if not isinstance(counted, dict) or not counted:
        return
    mine = {rid for (rid,) in s.execute(select(T_ROUTER.c.id).where(T_ROUTER.c.host == host))}
    labels = {lid for (lid,) in s.execute(select(T.c.id))}
    now = common.now()
    for rid, per_label in counted.items():
        if rid not in mine or not isinstance(per_label, dict):
            continue
        s.execute(delete(T_COUNT).where(T_COUNT.c.router_id == rid))
        rows = [{"label_id": lid, "router_id": rid, "host": host, "packets": int(c.get("packets", 0)),
                 "bytes": int(c.get("bytes", 0)), "updated_at": now}
                for lid, c in per_label.items() if lid in labels and isinstance(c, dict)]
        if rows:
            s.execute(insert(T_COUNT), rows)


def counters(s, label_id: str | None = None) -> list[dict]:
    """Every (label, router) counter as last reported: the hook for a /metrics endpoint and the CLI view.
    Counters restart from 0 when a router's namespace is made anew (a Prometheus counter reset)."""
    stmt = select(T_COUNT, T.c.name, T.c.project_id).join(T, T.c.id == T_COUNT.c.label_id)
    if label_id:
        stmt = stmt.where(T_COUNT.c.label_id == label_id)
    return [{"label_id": r.label_id, "label_name": r.name, "project_id": r.project_id, "router_id": r.router_id,
             "host": r.host, "packets": r.packets, "bytes": r.bytes, "updated_at": common.fmt(r.updated_at)}
            for r in s.execute(stmt.order_by(T_COUNT.c.label_id, T_COUNT.c.router_id))]



# the rules' core functions, as the generic controller calls them
RULES = SimpleNamespace(T=T_RULE, get=get_rule, render=render_rules, scope=rule_scope, create=create_rule,
                        update=update_rule)
