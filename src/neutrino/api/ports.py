"""Ports: attribute map wired to the generic controller."""
from neutrino.api.attrs import (PROJECT_ATTRS, REQUIRED, STD_ATTRS, Attr, Limit, any_dict, boolean, dict_of,
                                int_choice, ip_address, ip_or_cidr, list_of, mac, nullable, one_of, string, typed,
                                unique_list_of, uuid_str)
from neutrino.api.controller import Resource
from neutrino.core import ports

_fixed_ip = dict_of({"subnet_id": uuid_str, "ip_address": ip_address})
_pair = dict_of({"ip_address": ip_or_cidr, "mac_address": mac}, required=("ip_address",))
_dhcp_opt = dict_of({"opt_name": string(64), "opt_value": nullable(string(255)),
                     "ip_version": int_choice(4, 6)}, required=("opt_name",))
VNIC = ("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
        "remote-managed", "vdpa")
FIXED_IPS = Limit("max_fixed_ips_per_port", "InvalidInput",
                  "Invalid input for operation: Exceeded maximum amount of fixed ips per port.")
PAIRS = Limit("max_allowed_address_pair", "AllowedAddressPairExhausted",
              "The number of allowed address pair exceeds the maximum {quota}.")
_host = string(255)


@typed({"anyOf": [_host.schema, {"type": "null"}]})
def host_id(name, v):
    """binding:host_id: null unbinds (stored as "")."""
    return "" if v is None else _host(name, v)


PORT = Resource("port", "ports", ports, delete=ports.delete_port, precise=True, attrs={
    **PROJECT_ATTRS, **STD_ATTRS,
    "network_id": Attr(put=False, default=REQUIRED, convert=uuid_str),
    "name": Attr(default="", convert=string(255)),
    "admin_state_up": Attr(default=True, convert=boolean),
    "mac_address": Attr(convert=mac),
    "fixed_ips": Attr(convert=list_of(_fixed_ip), limit=FIXED_IPS),
    "device_id": Attr(default="", convert=string(255)),
    "device_owner": Attr(default="", convert=string(255)),
    "security_groups": Attr(convert=lambda n, v: [] if v is None else unique_list_of(uuid_str)(n, v)),
    "port_security_enabled": Attr(convert=boolean),
    "allowed_address_pairs": Attr(convert=list_of(_pair), limit=PAIRS),
    "extra_dhcp_opts": Attr(convert=list_of(_dhcp_opt)),
    "dns_name": Attr(convert=string(255)),
    "binding:host_id": Attr(convert=host_id, admin_write=True),
    "binding:vnic_type": Attr(convert=one_of(*VNIC)),
    "binding:profile": Attr(convert=any_dict, admin_write=True),
    "qos_policy_id": Attr(convert=nullable(uuid_str)),
}, readonly=("status", "binding:vif_type", "binding:vif_details", "dns_assignment", "ip_allocation",
             "resource_request", "qos_network_policy_id"), render_settings=("dns_domain",), render_listed=True,
    sql_filters={"network_id": ports.T.c.network_id, "device_id": ports.T.c.device_id,
                 "device_owner": ports.T.c.device_owner, "mac_address": ports.T.c.mac_address,
                 "binding:host_id": ports.T.c.host_id, "status": ports.T.c.status})
