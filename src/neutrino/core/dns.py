"""Internal DNS as Neutron's dns-integration defines it: a port's `dns_name` and the `dns_assignment` derived from it.

The server's `dns_domain` setting decides: with Neutron's default `openstacklocal.` the feature is off and every fixed
IP is known as `host-<ip with dashes>` (dns_name is stored but unused); with any other domain a port's dns_name is its
hostname on every fixed IP, fully qualified with that domain. The DHCP agent's dnsmasq serves the same names.
"""
from __future__ import annotations

import re

from neutrino.errors import BadRequest

DISABLED_DOMAIN = "openstacklocal."
FQDN_MAX_LEN = 255
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)


def _domain(dns_domain: str) -> str:
    """The configured domain with its trailing dot ("" when none)."""
    return "" if not dns_domain else dns_domain if dns_domain.endswith(".") else dns_domain + "."


def enabled(dns_domain: str) -> bool:
    """Whether ports' dns_name is used: a domain is configured and it is not `openstacklocal.`."""
    return _domain(dns_domain) not in ("", DISABLED_DOMAIN)


def generated(ip_address: str) -> str:
    return "host-" + ip_address.replace(".", "-").replace(":", "-")


def hostname(dns_name: str, ip_address: str, dns_domain: str) -> str:
    """The name one fixed IP is known by (without a trailing dot)."""
    return dns_name.rstrip(".") if dns_name and enabled(dns_domain) else generated(ip_address)


def assignment(dns_name: str, fixed_ips: list[dict], dns_domain: str) -> list[dict]:
    """`dns_assignment`: hostname, ip_address and fqdn (trailing dot) of each fixed IP."""
    domain = _domain(dns_domain)
    out = []
    for f in fixed_ips:
        if dns_name and enabled(dns_domain):
            host = dns_name
            fqdn = dns_name if dns_name.endswith(".") else f"{dns_name}.{domain}"
        else:
            host = generated(f["ip_address"])
            fqdn = f"{host}.{domain}" if domain else host
        out.append({"hostname": host, "ip_address": f["ip_address"], "fqdn": fqdn})
    return out


def validate(dns_name: str, dns_domain: str) -> None:
    """Neutron's checks of a port's dns_name: DNS labels (1-63 of letters, digits and inner hyphens), a TLD that is not
    all digits, the length of the qualified name, and a FQDN that ends with the configured domain."""
    if not dns_name:
        return
    trimmed = dns_name[:-1] if dns_name.endswith(".") else dns_name
    if len(trimmed) > FQDN_MAX_LEN:
        raise BadRequest(f"Invalid input for dns_name. Reason: '{dns_name}' exceeds the {FQDN_MAX_LEN} character "
                         f"FQDN limit.")
    labels = trimmed.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise BadRequest(f"Invalid input for dns_name. Reason: '{dns_name}' not a valid PQDN or FQDN. Reason: "
                             f"Name '{label}' must be 1-63 characters long, each of which can only be alphanumeric "
                             f"or a hyphen, and may not start or end with a hyphen.")
    if len(labels) > 1 and labels[-1].isdigit():
        raise BadRequest(f"Invalid input for dns_name. Reason: '{dns_name}' not a valid PQDN or FQDN. Reason: "
                         f"TLD '{labels[-1]}' must not be all numeric.")
    if not enabled(dns_domain):
        return
    domain = _domain(dns_domain)
    if dns_name.endswith("."):
        if not dns_name.endswith("." + domain):
            raise BadRequest(f"The dns_name passed is a FQDN. Its higher level labels must be equal to the dns_domain "
                             f"option of the server, that has been set to '{domain}'. It must also include one or "
                             f"more valid DNS labels to the left of '{domain}'")
    elif len(dns_name) + len(domain) + 1 > FQDN_MAX_LEN:
        raise BadRequest(f"The dns_name passed is a PQDN and its size is '{len(dns_name)}'. The dns_domain option of "
                         f"the server is set to {domain}, with a length of '{len(domain)}'. When the two are "
                         f"concatenated to form a FQDN (with a '.' at the end), the resulting length exceeds the "
                         f"maximum size of '{FQDN_MAX_LEN}'")
