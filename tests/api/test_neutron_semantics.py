"""Neutron's semantics where upstream's API tests (tempest, neutron-tempest-plugin) found neutrino different: each
case as Neutron answers it."""
from urllib.parse import parse_qs, urlparse

from tests.api.apifix_l3 import floatingip, seed
from tests.api.test_networks import err, mknet, mksub
from tests.api.test_ports import mkport


def _v6(c, net_id, cidr="2001:db8:1::/64", mode="slaac"):
    r = c.post("/v2.0/subnets", json={"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 6,
                                                 "ipv6_ra_mode": mode, "ipv6_address_mode": mode}})
    assert r.status_code == 201, r.text
    return r.json()["subnet"]


def test_router_routes_null_is_empty_list(client):
    r = client.post("/v2.0/routers", json={"router": {"name": "r"}}).json()["router"]
    out = client.put(f"/v2.0/routers/{r['id']}", json={"router": {"routes": None}})
    assert out.status_code == 200 and out.json()["router"]["routes"] == []


def test_subnets_filter_by_network_sharing(client):
    shared, private = mknet(client, shared=True), mknet(client)
    s1, s2 = mksub(client, shared["id"]), mksub(client, private["id"], cidr="10.1.0.0/24")
    ids = lambda q: {x["id"] for x in client.get(f"/v2.0/subnets?{q}").json()["subnets"]}   # noqa: E731
    assert ids("shared=False") == {s2["id"]} and ids("shared=True") == {s1["id"]}
    assert "shared" not in client.get(f"/v2.0/subnets/{s1['id']}").json()["subnet"]


def test_pagination_links_as_neutron(client):
    for i in range(4):
        mknet(client, name=f"n{i}")

    def page(url):
        body = client.get(url).json()
        links = {lk["rel"]: parse_qs(urlparse(lk["href"]).query) for lk in body.get("networks_links", [])}
        return [n["id"] for n in body["networks"]], links

    first, links = page("/v2.0/networks?limit=2")
    assert set(links) == {"next", "previous"} and links["previous"]["page_reverse"] == ["True"]
    assert links["next"]["marker"] == [first[-1]] and links["previous"]["marker"] == [first[0]]
    second, links = page(f"/v2.0/networks?limit=2&marker={first[-1]}")
    assert "next" in links                                  # a full page links on, even the last one
    third, links = page(f"/v2.0/networks?limit=2&marker={second[-1]}")
    assert third == [] and set(links) == {"previous"}
    back, links = page(f"/v2.0/networks?limit=2&marker={second[0]}&page_reverse=True")
    assert back == first and "page_reverse" not in links["next"]


def test_network_owner_sets_mac_others_do_not(client, project_client):
    owner, other = project_client("p1"), project_client("p2")
    net = mknet(owner)
    mksub(owner, net["id"])
    assert mkport(owner, net["id"], mac_address="fa:16:3e:00:00:01")["mac_address"] == "fa:16:3e:00:00:01"
    port = mkport(owner, net["id"])
    err(owner.put(f"/v2.0/ports/{port['id']}", json={"port": {"mac_address": "fa:16:3e:00:00:02"}}), 403)
    shared = mknet(client, shared=True)
    mksub(client, shared["id"])
    for attrs in ({"mac_address": "fa:16:3e:00:00:03"}, {"port_security_enabled": False},
                  {"allowed_address_pairs": [{"ip_address": "10.0.0.9"}]}):
        err(other.post("/v2.0/ports", json={"port": {"network_id": shared["id"], **attrs}}), 403)
    mine = mkport(other, shared["id"])
    err(other.put(f"/v2.0/ports/{mine['id']}", json={"port": {"port_security_enabled": False}}), 403)
    err(other.put(f"/v2.0/ports/{mine['id']}", json={"port": {"allowed_address_pairs": []}}), 403)
    assert other.put(f"/v2.0/ports/{mine['id']}", json={"port": {"name": "ok"}}).status_code == 200


def test_foreign_project_id_is_a_bad_request(project_client):
    c = project_client("p1")
    err(c.post("/v2.0/networks", json={"network": {"name": "x", "project_id": "p2"}}), 400)


def test_auto_address_subnets_always_give_an_address(client):
    net = mknet(client)
    v4 = mksub(client, net["id"])
    slaac, stateless = _v6(client, net["id"]), _v6(client, net["id"], "2001:db8:2::/64", "dhcpv6-stateless")
    port = mkport(client, net["id"], fixed_ips=[{"subnet_id": v4["id"]}])
    assert {ip["subnet_id"] for ip in port["fixed_ips"]} == {v4["id"], slaac["id"], stateless["id"]}
    err(client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": slaac["id"], "ip_address": "2001:db8:1::99"}]}}), 400, "AllocationOnAutoAddressSubnet")
    # deleting an auto-address subnet takes its addresses off the ports instead of refusing
    assert client.delete(f"/v2.0/subnets/{slaac['id']}").status_code == 204
    left = client.get(f"/v2.0/ports/{port['id']}").json()["port"]["fixed_ips"]
    assert {ip["subnet_id"] for ip in left} == {v4["id"], stateless["id"]}
    err(client.delete(f"/v2.0/subnets/{v4['id']}"), 409, "SubnetInUse")


def test_security_groups_on_a_port(client):
    net = mknet(client)
    mksub(client, net["id"])
    sg = lambda **kw: client.post("/v2.0/security-groups", json={   # noqa: E731
        "security_group": {"name": "g", **kw}}).json()["security_group"]["id"]
    full, stateless = sg(), sg(stateful=False)
    err(client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "security_groups": [full, stateless]}}),
        409, "SecurityGroupConflict")
    err(client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "security_groups": [full, full]}}), 400)
    err(client.post("/v2.0/security-group-rules", json={"security_group_rule": {
        "security_group_id": full, "direction": "ingress", "remote_group_id": "not-a-uuid"}}), 404)


def test_mtu_limits(client):
    small = mknet(client, mtu=67)
    assert small["mtu"] == 67
    err(client.post("/v2.0/subnets", json={"subnet": {"network_id": small["id"], "cidr": "10.0.0.0/24",
                                                      "ip_version": 4}}), 409)
    err(client.post("/v2.0/networks", json={"network": {"mtu": 1451}}), 400)      # vxlan: 1500 less the overhead
    net = mknet(client, mtu=1280)
    _v6(client, net["id"])
    err(client.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 1279}}), 409)
    assert client.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 1400}}).status_code == 200


def test_subnetpool_prefix_lengths_are_strings(client):
    pool = client.post("/v2.0/subnetpools", json={"subnetpool": {"name": "p", "prefixes": ["10.10.0.0/16"],
                                                                 "min_prefixlen": "24"}}).json()["subnetpool"]
    shown = client.get(f"/v2.0/subnetpools/{pool['id']}").json()["subnetpool"]
    assert (shown["min_prefixlen"], shown["default_prefixlen"], shown["max_prefixlen"]) == ("24", "24", "32")
    loose = client.post("/v2.0/subnetpools", json={"subnetpool": {"name": "q", "prefixes": ["10.11.12.13/24"]}})
    assert loose.json()["subnetpool"]["prefixes"] == ["10.11.12.0/24"]          # host bits dropped, as Neutron


def test_ipv6_default_pool_is_the_whole_subnet(client):
    net = mknet(client)
    r = client.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "2001:db8::/64",
                                                      "ip_version": 6}}).json()["subnet"]
    assert r["allocation_pools"] == [{"start": "2001:db8::2", "end": "2001:db8::ffff:ffff:ffff:ffff"}]
    _v6(client, net["id"], "2001:db8:1::/64")
    availability = client.get(f"/v2.0/network-ip-availabilities/{net['id']}")     # past 64 bits: still JSON
    assert availability.json()["network_ip_availability"]["total_ips"] == 2 * (2 ** 64 - 2)


def test_empty_floatingip_update_disassociates(client):
    world = seed(client, client)
    port = mkport(client, world.private["id"])
    fip = floatingip(client, world.public["id"], port_id=port["id"]).json()["floatingip"]
    kept = client.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {"description": "d"}})
    assert kept.json()["floatingip"]["port_id"] == port["id"]
    cleared = client.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {}}).json()["floatingip"]
    assert cleared["port_id"] is None and cleared["router_id"] is None


def test_external_network_delete_takes_its_free_floating_ips(client):
    world = seed(client, client)
    free = floatingip(client, world.public["id"]).json()["floatingip"]
    port = mkport(client, world.private["id"])
    used = floatingip(client, world.public["id"], port_id=port["id"]).json()["floatingip"]
    err(client.delete(f"/v2.0/networks/{world.public['id']}"), 409, "NetworkInUse")
    assert client.get(f"/v2.0/floatingips/{used['id']}").status_code == 200
    client.put(f"/v2.0/floatingips/{used['id']}", json={"floatingip": {"port_id": None}})
    client.put(f"/v2.0/routers/{world.router['id']}", json={"router": {"external_gateway_info": None}})
    assert client.delete(f"/v2.0/networks/{world.public['id']}").status_code == 204
    err(client.get(f"/v2.0/floatingips/{free['id']}"), 404)
    assert client.get("/v2.0/floatingips").json()["floatingips"] == []


def test_subnet_external_network_is_advertised(project_client):
    aliases = {e["alias"] for e in project_client("p1").get("/v2.0/extensions").json()["extensions"]}
    assert "subnet-external-network" in aliases


def test_subnet_create_and_delete_bump_network_revision(client):
    net = mknet(client)
    sub = mksub(client, net["id"])
    before = client.get(f"/v2.0/networks/{net['id']}").json()["network"]["revision_number"]
    assert before > net["revision_number"]
    client.delete(f"/v2.0/subnets/{sub['id']}")
    assert client.get(f"/v2.0/networks/{net['id']}").json()["network"]["revision_number"] > before


def test_router_held_gateway_cannot_move(client):
    net = mknet(client)
    sub = mksub(client, net["id"])
    router = client.post("/v2.0/routers", json={"router": {"name": "r"}}).json()["router"]
    client.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    err(client.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"gateway_ip": "10.0.0.254"}}), 409,
        "GatewayIpInUse")
    assert client.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"name": "x"}}).status_code == 200


def test_unbound_port_stays_down_when_dhcp_is_ready(client):
    net = mknet(client)
    mksub(client, net["id"])
    conf = {"l2": "ovs", "firewall": "iptables", "roles": ["l2", "dhcp"]}
    client.post("/agent/v1/hosts/h1/report", json={"agent": conf})
    port = mkport(client, net["id"])
    client.post("/agent/v1/hosts/h1/report", json={"agent": conf, "dhcp_ready": [port["id"]]})
    assert client.get(f"/v2.0/ports/{port['id']}").json()["port"]["status"] == "DOWN"


def test_members_filter_by_provider_attributes(client, project_client):
    member = project_client("p1")
    vlan = mknet(client, project_id="p1", **{"provider:network_type": "vlan", "provider:physical_network": "phys"})
    mknet(client, project_id="p1")
    assert vlan["provider:segmentation_id"] == 1                  # the lowest free VLAN of the physical network
    for q in ("provider:network_type=vlan", "provider:physical_network=phys",
              "provider:segmentation_id=1&provider:network_type=vlan"):
        found = member.get(f"/v2.0/networks?{q}").json()["networks"]
        assert [n["id"] for n in found] == [vlan["id"]] and "provider:network_type" not in found[0]


def test_if_match_with_a_negative_revision_is_stale(client):
    net = mknet(client)
    r = client.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "x"}},
                   headers={"If-Match": "revision_number=-1"})
    err(r, 412)
