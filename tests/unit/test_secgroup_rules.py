"""Security group rule logic without a database: converters, Neutron's validation and normalization, duplicates."""
import pytest

from neutrino.api import secgroups as api
from neutrino.core.secgroups import normalize_rule, protocol_number, rule_key
from neutrino.errors import BadRequest, Conflict


def rule(**kw):
    base = {"direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
            "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None,
            "remote_address_group_id": None}
    base.update(kw)
    return base


@pytest.mark.parametrize("given,expected", [
    ("TCP", "tcp"), ("udp", "udp"), ("icmpv6", "icmpv6"), ("ipv6-icmp", "ipv6-icmp"), ("6", "6"), (6, "6"),
    ("0", "0"), (255, "255"), ("any", None), ("ANY", None), (None, None),
])
def test_protocol_converter_accepts_names_and_numbers(given, expected):
    assert api.protocol("protocol", given) == expected


@pytest.mark.parametrize("given", ["tcpx", "256", -1, 300, "", True, 1.5, ["tcp"]])
def test_protocol_converter_refuses_unknown(given):
    with pytest.raises(BadRequest) as e:
        api.protocol("protocol", given)
    assert e.value.type == "SecurityGroupRuleInvalidProtocol"


@pytest.mark.parametrize("given,expected", [("22", 22), (22, 22), (0, 0), ("65535", 65535), (None, None)])
def test_port_converter(given, expected):
    assert api.port("port_range_min", given) == expected


@pytest.mark.parametrize("given", [65536, "-1", "x", True, 2.5])
def test_port_converter_refuses(given):
    with pytest.raises(BadRequest) as e:
        api.port("port_range_min", given)
    assert e.value.type == "SecurityGroupInvalidPortValue"


def test_ethertype_is_case_insensitive():
    assert api.ethertype("ethertype", "ipv6") == "IPv6"
    with pytest.raises(BadRequest) as e:
        api.ethertype("ethertype", "IPv5")
    assert e.value.type == "SecurityGroupRuleInvalidEtherType"


@pytest.mark.parametrize("given,expected", [
    ("10.0.0.5", "10.0.0.5/32"), ("10.0.0.5/24", "10.0.0.0/24"), ("2001:DB8::1/64", "2001:db8::/64"),
    ("::/0", "::/0"), ("", None), (None, None),
])
def test_ip_prefix_normalized(given, expected):
    assert api.ip_prefix("remote_ip_prefix", given) == expected


@pytest.mark.parametrize("given", ["10.0.0.0/33", "nope", 5])
def test_ip_prefix_invalid(given):
    with pytest.raises(BadRequest) as e:
        api.ip_prefix("remote_ip_prefix", given)
    assert e.value.type == "InvalidCIDR"


def test_group_name_default_is_refused_in_any_case():
    assert api.group_name("name", "web") == "web"
    with pytest.raises(Conflict) as e:
        api.group_name("name", "Default")
    assert e.value.type == "SecurityGroupDefaultAlreadyExists"


@pytest.mark.parametrize("ethertype,given,expected", [
    ("IPv6", "icmp", "ipv6-icmp"), ("IPv6", "icmpv6", "ipv6-icmp"), ("IPv6", "1", "58"),
    ("IPv4", "icmp", "icmp"), ("IPv4", "1", "1"), ("IPv6", "tcp", "tcp"),
])
def test_legacy_ipv6_icmp_made_canonical(ethertype, given, expected):
    assert normalize_rule(rule(ethertype=ethertype, protocol=given))["protocol"] == expected


@pytest.mark.parametrize("kw,error", [
    (dict(port_range_min=22, port_range_max=22), "SecurityGroupProtocolRequiredWithPorts"),
    (dict(protocol="tcp", port_range_min=30, port_range_max=20), "SecurityGroupInvalidPortRange"),
    (dict(protocol="tcp", port_range_min=22), "SecurityGroupInvalidPortRange"),
    (dict(protocol="udp", port_range_min=0, port_range_max=10), "SecurityGroupInvalidPortValue"),
    (dict(protocol="icmp", port_range_min=256), "SecurityGroupInvalidIcmpValue"),
    (dict(protocol="icmp", port_range_min=8, port_range_max=300), "SecurityGroupInvalidIcmpValue"),
    (dict(protocol="icmp", port_range_max=0), "SecurityGroupMissingIcmpType"),
    (dict(protocol="gre", port_range_min=1, port_range_max=2), "SecurityGroupInvalidProtocolForPort"),
    (dict(remote_ip_prefix="::/0"), "SecurityGroupRuleParameterConflict"),
    (dict(ethertype="IPv6", remote_ip_prefix="10.0.0.0/8"), "SecurityGroupRuleParameterConflict"),
    (dict(protocol="ipv6-icmp"), "SecurityGroupEthertypeConflictWithProtocol"),
    (dict(protocol="58"), "SecurityGroupEthertypeConflictWithProtocol"),
    (dict(remote_ip_prefix="10.0.0.0/8", remote_group_id="a"), "SecurityGroupRemoteGroupAndRemoteIpPrefix"),
])
def test_invalid_rules(kw, error):
    with pytest.raises(BadRequest) as e:
        normalize_rule(rule(**kw))
    assert e.value.type == error


@pytest.mark.parametrize("kw", [
    dict(protocol="tcp", port_range_min=22, port_range_max=22), dict(protocol="sctp", port_range_min=1,
                                                                     port_range_max=65535),
    dict(protocol="132", port_range_min=5, port_range_max=6), dict(protocol="icmp", port_range_min=8),
    dict(protocol="icmp", port_range_min=0, port_range_max=0), dict(protocol="icmp"),
    dict(ethertype="IPv6", protocol="ipv6-icmp", port_range_min=128, port_range_max=0),
])
def test_valid_rules(kw):
    assert normalize_rule(rule(**kw))["protocol"] == kw["protocol"]


def test_protocol_number():
    assert [protocol_number(p) for p in ("tcp", "6", "icmpv6", None)] == [6, 6, 58, None]


def test_rule_key_equates_names_numbers_and_anywhere_prefixes():
    assert rule_key(rule(protocol="tcp", port_range_min=22, port_range_max=22)) == \
        rule_key(rule(protocol="6", port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0"))
    assert rule_key(rule(ethertype="IPv6")) == rule_key(rule(ethertype="IPv6", remote_ip_prefix="::/0"))
    assert rule_key(rule(protocol="tcp")) != rule_key(rule(protocol="udp"))
    assert rule_key(rule()) != rule_key(rule(direction="egress"))
    assert rule_key(rule(remote_ip_prefix="10.0.0.0/8")) != rule_key(rule())
