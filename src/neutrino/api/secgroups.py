"""Security groups and security group rules: attribute maps with Neutron's converters and error types."""
from __future__ import annotations

import ipaddress

from neutrino.api.attrs import (PROJECT_ATTRS, REQUIRED, STD_ATTRS, Attr, as_int, boolean, nullable, one_of, show,
                                string, typed, uuid_str)
from neutrino.api.controller import Resource
from neutrino.core import secgroups
from neutrino.errors import bad_request, conflict


@typed({"type": "string", "maxLength": 255})
def group_name(name, v):
    """Any name but `default` (the project's own default group is made by the service)."""
    v = string(255)(name, v)
    if v.lower() == secgroups.DEFAULT_NAME:
        raise conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
    return v


@typed({"anyOf": [{"type": "string", "maxLength": 16}, {"type": "integer", "minimum": 0, "maximum": 255},
                  {"type": "null"}]})
def protocol(name, v):
    """A protocol name (lower-cased) or a number 0-255 kept as a string; None or 'any' means every protocol."""
    if v is None or (isinstance(v, str) and v.lower() == "any"):
        return None
    number = as_int(v)
    if number is not None:
        if 0 <= number <= 255:
            return str(number)
    elif isinstance(v, str) and v.lower() in secgroups.PROTOCOLS:
        return v.lower()
    names = [None, *secgroups.PROTOCOLS]
    raise bad_request(f"Security group rule protocol {show(v)} not supported. Only protocol values {names} and "
                      "integer representations [0 to 255] are supported.", "SecurityGroupRuleInvalidProtocol")


@typed({"anyOf": [{"type": "integer", "minimum": 0, "maximum": 65535}, {"type": "null"}]})
def port(name, v):
    if v is None:
        return None
    number = as_int(v)
    if number is not None and 0 <= number <= 65535:
        return number
    raise bad_request(f"Invalid value for port {show(v)}", "SecurityGroupInvalidPortValue")


@typed({"enum": list(secgroups.ETHERTYPES)})
def ethertype(name, v):
    for e in secgroups.ETHERTYPES:
        if isinstance(v, str) and v.lower() == e.lower():
            return e
    raise bad_request(f"Security group rule for ethertype '{show(v)}' not supported. Allowed values are "
                      f"{list(secgroups.ETHERTYPES)}.", "SecurityGroupRuleInvalidEtherType")


@typed({"anyOf": [{"type": "string", "maxLength": 64}, {"type": "null"}]})
def ip_prefix(name, v):
    """An address or CIDR, stored as its network (10.0.0.5 -> 10.0.0.5/32, 10.0.0.5/24 -> 10.0.0.0/24)."""
    if v is None or v == "":
        return None
    try:
        if not isinstance(v, str) or len(v) > 64:
            raise ValueError
        return str(ipaddress.ip_network(v.strip(), strict=False))
    except ValueError:
        raise bad_request(f"Invalid CIDR {show(v)} given as IP prefix.", "InvalidCIDR") from None


SECURITY_GROUP = Resource("security_group", "security-groups", secgroups, delete=secgroups.delete_group, attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "name": Attr(default="", convert=group_name),
    "stateful": Attr(default=True, convert=boolean),
    "shared": Attr(post=False, put=False),
}, readonly=("security_group_rules",), before_list=secgroups.before_list)

_R = secgroups.T_RULE.c
SECURITY_GROUP_RULE = Resource(
    "security_group_rule", "security-group-rules", secgroups.RULES, delete=secgroups.delete_rule, taggable=False,
    attrs={
        **PROJECT_ATTRS,
        "description": Attr(put=False, default="", convert=string(255)),
        "security_group_id": Attr(put=False, default=REQUIRED, convert=uuid_str),
        "direction": Attr(put=False, default=REQUIRED, convert=one_of("ingress", "egress")),
        "ethertype": Attr(put=False, default="IPv4", convert=ethertype),
        "protocol": Attr(put=False, default=None, convert=protocol),
        "port_range_min": Attr(put=False, default=None, convert=port),
        "port_range_max": Attr(put=False, default=None, convert=port),
        "remote_ip_prefix": Attr(put=False, default=None, convert=ip_prefix),
        "remote_group_id": Attr(put=False, default=None, convert=nullable(string(255))),   # unknown: 404
        "remote_address_group_id": Attr(put=False, default=None, convert=nullable(uuid_str)),
    },
    readonly=("belongs_to_default_sg", "normalized_cidr"),
    sql_filters={"security_group_id": _R.security_group_id, "direction": _R.direction, "ethertype": _R.ethertype,
                 "remote_group_id": _R.remote_group_id,
                 "remote_address_group_id": _R.remote_address_group_id})

RESOURCES = [SECURITY_GROUP, SECURITY_GROUP_RULE]
