"""Metering labels and label rules (Neutron's metering API) on the generic controller."""
from __future__ import annotations

from neutrino.api.attrs import (PROJECT_ATTRS, REQUIRED, STD_ATTRS, Attr, boolean, cidr, nullable, one_of, string,
                                uuid_str)
from neutrino.api.controller import Resource
from neutrino.core import metering

LABEL = Resource("metering_label", "metering/metering-labels", metering, delete=metering.delete_label,
                 plural="metering_labels", taggable=False, attrs={
                     **PROJECT_ATTRS, **STD_ATTRS,
                     "name": Attr(default="", convert=string(255)),
                     "shared": Attr(put=False, default=False, convert=boolean),
                 })

_R = metering.T_RULE.c
LABEL_RULE = Resource(
    "metering_label_rule", "metering/metering-label-rules", metering.RULES, delete=metering.delete_rule,
    plural="metering_label_rules", taggable=False, attrs={
        **PROJECT_ATTRS,
        "metering_label_id": Attr(put=False, default=REQUIRED, convert=uuid_str),
        "direction": Attr(put=False, default="ingress", convert=one_of("ingress", "egress")),
        "remote_ip_prefix": Attr(put=False, convert=nullable(cidr)),
        "source_ip_prefix": Attr(put=False, convert=nullable(cidr)),
        "destination_ip_prefix": Attr(put=False, convert=nullable(cidr)),
        "excluded": Attr(put=False, default=False, convert=boolean),
    }, sql_filters={"metering_label_id": _R.metering_label_id, "direction": _R.direction})

RESOURCES = [LABEL, LABEL_RULE]
