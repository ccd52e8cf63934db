"""dns-integration on ports: dns_name checks and dns_assignment, with Neutron's default domain and with a real one."""
import pytest
from fastapi.testclient import TestClient

from neutrino.api.app import create_app
from neutrino.config import Settings
from neutrino.db.engine import Database
from tests.api.test_networks import err, mknet, mksub
from tests.api.test_ports import mkport


@pytest.fixture
def domain_client(tmp_path, db_url):
    """Admin client of a server whose dns_domain is example.org. (dns-integration in effect)."""
    db = Database(db_url)
    db.setup()
    settings = Settings(state_dir=str(tmp_path), auth="noauth", admin_token="admintoken", dns_domain="example.org.")
    with TestClient(create_app(settings, db)) as c:
        yield c
    db.engine.dispose()


def test_openstacklocal_names_every_address_by_ip(client):
    """Neutron's default domain turns the feature off: dns_name is kept but each address is host-<ip>."""
    n = mknet(client)
    mksub(client, n["id"])
    p = mkport(client, n["id"], dns_name="vm1", fixed_ips=[{"ip_address": "10.0.0.7"}])
    assert p["dns_name"] == "vm1"
    assert p["dns_assignment"] == [{"hostname": "host-10-0-0-7", "ip_address": "10.0.0.7",
                                    "fqdn": "host-10-0-0-7.openstacklocal."}]


def test_dns_name_is_the_hostname_of_every_fixed_ip(domain_client):
    c = domain_client
    n = mknet(c)
    mksub(c, n["id"])
    s6 = mksub(c, n["id"], cidr="fd00:1::/64", ip_version=6)
    p = mkport(c, n["id"], dns_name="vm1", fixed_ips=[{"ip_address": "10.0.0.7"}, {"subnet_id": s6["id"]}])
    v6 = p["fixed_ips"][1]["ip_address"]
    assert p["dns_assignment"] == [{"hostname": "vm1", "ip_address": "10.0.0.7", "fqdn": "vm1.example.org."},
                                   {"hostname": "vm1", "ip_address": v6, "fqdn": "vm1.example.org."}]
    q = c.put(f"/v2.0/ports/{p['id']}", json={"port": {"dns_name": "", "fixed_ips": [{"ip_address": "10.0.0.9"}]}})
    assert q.json()["port"]["dns_assignment"] == [{"hostname": "host-10-0-0-9", "ip_address": "10.0.0.9",
                                                   "fqdn": "host-10-0-0-9.example.org."}]
    fq = mkport(c, n["id"], dns_name="db.example.org.")
    assert fq["dns_assignment"][0]["fqdn"] == "db.example.org." and fq["dns_assignment"][0]["hostname"] == \
        "db.example.org."


@pytest.mark.parametrize("name", ["-vm", "vm-", "vm_1", "a" * 64, "vm..x", "vm.123", "db.other.org.",
                                  "x" * 250])
def test_bad_dns_names_are_refused_and_nothing_is_stored(domain_client, name):
    c = domain_client
    n = mknet(c)
    mksub(c, n["id"])
    err(c.post("/v2.0/ports", json={"port": {"network_id": n["id"], "dns_name": name}}), 400)
    assert c.get("/v2.0/ports").json()["ports"] == []
    p = mkport(c, n["id"], dns_name="ok")
    err(c.put(f"/v2.0/ports/{p['id']}", json={"port": {"dns_name": name}}), 400)
    assert c.get(f"/v2.0/ports/{p['id']}").json()["port"]["dns_name"] == "ok"
