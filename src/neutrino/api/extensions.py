"""`/v2.0/extensions`: only aliases whose attributes and behaviour neutrino really implements."""
from fastapi import APIRouter, Request

from neutrino.api.controller import json_response
from neutrino.errors import NotFound

UPDATED = "2025-01-01T00:00:00-00:00"
EXTENSIONS = {
    "address-group": "Support address group",
    "agent": "The agent management extension.",
    "address-scope": "Address scopes extension.",
    "allowed-address-pairs": "Provides allowed address pairs",
    "binding": "Expose port bindings of a virtual port to external application",
    "default-subnetpools": "Provides ability to mark and use a subnetpool as the default.",
    "dns-integration": "Provides integration with DNS.",
    "empty-string-filtering": "Allow filtering by attributes with empty string value",
    "external-net": "Adds external network attribute to network resource.",
    "ext-gw-mode": "Extension of the router abstraction for specifying whether SNAT should occur on the external "
                   "gateway",
    "extra_dhcp_opt": "Extra options configuration for DHCP.",
    "extraroute": "Extra routes configuration for L3 router",
    "extraroute-atomic": "Edit extra routes of a router on server side by atomically adding/removing extra routes",
    "fip-port-details": "Add port_details attribute to Floating IP resource",
    "filter-validation": "Provides validation on filtered attributes.",
    "floating-ip-port-forwarding": "Provides floating IP port forwarding.",
    "ip-substring-filtering": "Provides IP address substring filtering when listing ports",
    "metering": "Neutron Metering extension.",
    "metering_source_and_destination_fields": "Provides source and destination IP prefix fields for the metering "
                                              "label rules",
    "network-ip-availability": "Provides IP availability data for each network and subnet.",
    "network-ip-availability-details": "Provides IP availability details split by subnet CIDR and allocation "
                                       "pools.",
    "net-mtu": "Provides MTU attribute for a network resource.",
    "net-mtu-writable": "Provides a writable MTU attribute for a network resource.",
    "pagination": "Extension that indicates that pagination is enabled.",
    "port-security": "Provides port security",
    "project-id": "Extension that indicates that project_id is enabled.",
    "provider": "Expose mapping of virtual networks to physical networks",
    "qos": "The Quality of Service extension.",
    "qos-bw-limit-direction": "Allow to configure QoS bandwidth limit rule with specific direction: ingress or "
                              "egress",
    "qos-bw-minimum-ingress": "Allow to configure QoS minumum bandwidth rule with ingress direction.",
    "qos-default": "Expose the QoS default policy per project",
    "qos-port-network-policy": "Adds a new read-only attribute qos_network_policy_id to the port resource",
    "qos-rule-type-details": "Expose details about QoS rule types supported by loaded backend drivers",
    "quota_details": "Expose functions for quotas usage statistics per project",
    "quotas": "Expose functions for quotas management per project",
    "rbac-address-scope": "Add RBAC support for address scope",
    "rbac-policies": "Allows creation and modification of policies that control tenant access to resources.",
    "rbac-security-groups": "Add RBAC support for security groups",
    "rbac-subnetpool": "Add RBAC support for subnetpool",
    "revision-if-match": "Extension indicating that If-Match based on revision_number is supported.",
    "router": "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external "
              "networks via a NAT gateway.",
    "security-group": "The security groups extension.",
    "security-groups-remote-address-group": "Add new security group rule parameter remote_address_group_id",
    "sorting": "Extension that indicates that sorting is enabled.",
    "standard-attr-description": "Extension to add descriptions to standard attributes",
    "standard-attr-revisions": "This extension will display the revision number of neutron resources.",
    "standard-attr-tag": "Enables to set tag on resources with standard attribute.",
    "standard-attr-timestamp": "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
                               "standard attributes.",
    "stateful-security-group": "Indicates if the security group is stateful or not",
    "subnet_allocation": "Enables allocation of subnets from a subnet pool",
    "subnet-external-network": "Informs if the subnet is associated to a router:external network",
}


def _ext(alias: str, request: Request) -> dict:
    name = alias.replace("-", " ").replace("_", " ").title()
    return {"alias": alias, "name": name, "description": EXTENSIONS[alias], "updated": UPDATED, "links": []}


async def list_extensions(request: Request):
    return json_response({"extensions": [_ext(a, request) for a in sorted(EXTENSIONS)]})


async def show_extension(request: Request, alias: str):
    if alias not in EXTENSIONS:
        err = NotFound(f"Extension with alias {alias} does not exist")
        err.type_name = "ExtensionNotFound"
        raise err
    return json_response({"extension": _ext(alias, request)})


def add_routes(router: APIRouter) -> None:
    router.add_api_route("/v2.0/extensions", list_extensions, methods=["GET"])
    router.add_api_route("/v2.0/extensions.json", list_extensions, methods=["GET"])
    router.add_api_route("/v2.0/extensions/{alias}", show_extension, methods=["GET"])
