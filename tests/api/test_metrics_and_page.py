"""/metrics (Prometheus text, parsed back with prometheus_client's parser) and the page's HTTP side: served open,
its hood and trace answers behind the API's auth and policy, bad input a clear 400."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(client) -> dict[tuple, float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def value(found: dict, name: str, **labels) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def test_requests_are_counted_by_route_template_method_and_status(client):
    net = client.post("/v2.0/networks", json={"network": {"name": "n1"}}).json()["network"]
    for _ in range(3):
        assert client.get("/v2.0/networks").status_code == 200
    assert client.get(f"/v2.0/networks/{net['id']}").status_code == 200
    assert client.get("/v2.0/networks/no-such-id").status_code == 404
    assert client.get("/v2.0/no-such-collection").status_code == 404
    found = samples(client)
    count = "neutrino_http_request_duration_seconds_count"
    assert value(found, count, method="GET", route="/v2.0/networks", status="200") == 3
    assert value(found, count, method="GET", route="/v2.0/networks/{id}", status="200") == 1
    assert value(found, count, method="GET", route="/v2.0/networks/{id}", status="404") == 1
    assert value(found, count, method="POST", route="/v2.0/networks", status="201") == 1
    assert value(found, count, method="GET", route="unmatched", status="404") == 1
    assert not [k for k in found if net["id"] in str(k)], "ids must not become label values"
    client.request("BREW", "/v2.0/networks")
    assert value(samples(client), count, method="other", route="/v2.0/networks", status="405") == 1
    assert value(found, "neutrino_db_query_duration_seconds_count") > 0


def test_objects_per_type_and_revision_come_from_the_database(client):
    for name in ("a", "b"):
        client.post("/v2.0/networks", json={"network": {"name": name}})
    found = samples(client)
    assert value(found, "neutrino_objects", type="network") == 2
    assert value(found, "neutrino_objects", type="port") == 0
    assert value(found, "neutrino_revision") >= 2


def _report(client, host: str, body: dict):
    r = client.post(f"/agent/v1/hosts/{host}/report", json={"agent": {"l2": "ovs", "roles": ["l2"]}, **body})
    assert r.status_code == 200, r.text
    return r.json()["revision"]


def test_agent_figures_are_relayed_with_the_host_and_the_revision_lag(client):
    rev = _report(client, "h1", {})
    client.post("/v2.0/networks", json={"network": {"name": "moves-the-revision"}})
    _report(client, "h1", {"revision": rev, "metrics": {
        "syncs": {"l2": 3, "firewall": 3}, "sync_last_seconds": {"l2": 0.25}, "drift": {"firewall": 1},
        "errors": {"l2": 2}, "daemon_starts": {"ovs-vswitchd": 1}, "ports": {"up": 4, "down": 1}}})
    found = samples(client)
    revision = value(found, "neutrino_revision")
    assert value(found, "neutrino_view_revision_lag", host="h1") == revision - rev > 0
    assert value(found, "neutrino_agent_syncs_total", host="h1", driver="l2") == 3
    assert value(found, "neutrino_agent_sync_last_seconds", host="h1", driver="l2") == 0.25
    assert value(found, "neutrino_agent_drift_repairs_total", host="h1", driver="firewall") == 1
    assert value(found, "neutrino_agent_driver_errors_total", host="h1", driver="l2") == 2
    assert value(found, "neutrino_agent_daemon_starts_total", host="h1", daemon="ovs-vswitchd") == 1
    assert value(found, "neutrino_agent_ports", host="h1", state="down") == 1


def test_garbage_in_an_agent_report_never_breaks_the_scrape(client):
    _report(client, "h2", {"revision": "x", "metrics": {"syncs": {"l2": "many", "l3": True, "dhcp": 2},
                                                        "ports": [1, 2], "unknown": {"a": 1}}})
    _report(client, "h3", {"metrics": ["not", "an", "object"]})
    found = samples(client)
    assert value(found, "neutrino_agent_syncs_total", host="h2", driver="dhcp") == 2
    assert value(found, "neutrino_agent_syncs_total", host="h2", driver="l2") is None
    assert value(found, "neutrino_view_revision_lag", host="h3") is not None


def test_page_and_its_files_are_served_without_a_token(client):
    page = client.get("/ui", headers={"X-Project-Id": "p1", "X-Auth-Token": "garbage"})
    assert page.status_code == 200 and "cytoscape.min.js" in page.text
    lib = client.get("/ui/static/cytoscape.min.js")
    assert lib.status_code == 200 and "Cytoscape Consortium" in lib.text[:300]
    assert client.get("/ui/static/..%2Fsource.py").status_code == 404
    assert client.get("/ui/static/nothing.js").status_code == 404


def test_hood_of_another_projects_port_is_not_found_before_any_kernel_is_read(client, project_client):
    _report(client, "somewhere-else", {})
    net = project_client("p1").post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
    port = client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "project_id": "p1", "name": "vm9",
                                                     "binding:host_id": "somewhere-else"}}).json()["port"]
    for ref in (port["id"], "vm9"):
        r = project_client("p2").get(f"/ui/hood/{ref}")
        assert r.status_code == 404, r.text
        assert r.json()["NeutronError"]["message"] == f"no port, router or network {ref!r}"     # nothing more
    mine = project_client("p1").get(f"/ui/hood/{port['id']}")
    assert mine.status_code == 503          # visible, but that host's kernel is not on this machine
    assert "not on this server's machine" in mine.json()["NeutronError"]["message"]


def test_trace_rejects_bad_input_with_400(client):
    assert client.get("/ui/trace", params={"src": "external", "dst": "10.0.0.3", "proto": "tcp",
                                           "port": "ssh"}).status_code == 400
    r = client.get("/ui/trace", params={"src": "external", "dst": "10.0.0.3", "proto": "gre"})
    assert r.status_code == 400 and "protocol" in r.json()["NeutronError"]["message"]
    assert client.get("/ui/trace", params={"src": "external"}).status_code == 400


def test_trace_to_another_projects_address_is_not_found(client, project_client):
    net = client.post("/v2.0/networks", json={"network": {"name": "n", "project_id": "p1"}}).json()["network"]
    client.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4,
                                                  "project_id": "p1"}})
    port = client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "project_id": "p1"}}).json()["port"]
    address = port["fixed_ips"][0]["ip_address"]
    r = project_client("p2").get("/ui/trace", params={"src": "external", "dst": address, "proto": "icmp"})
    assert r.status_code == 404 and r.json()["NeutronError"]["message"] == f"no port or floating IP {address!r}"


def test_trace_to_ones_own_router_gateway_and_outside_addresses_is_allowed(client, project_client):
    ext = client.post("/v2.0/networks", json={"network": {"name": "public", "router:external": True}}).json()
    client.post("/v2.0/subnets", json={"subnet": {"network_id": ext["network"]["id"], "cidr": "172.24.4.0/24",
                                                  "ip_version": 4}})
    p1 = project_client("p1")
    router = p1.post("/v2.0/routers", json={"router": {"name": "r", "external_gateway_info": {
        "network_id": ext["network"]["id"]}}}).json()["router"]
    gateway = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    for address in (gateway, "192.0.2.1"):
        r = p1.get("/ui/trace", params={"src": "external", "dst": address, "proto": "icmp"})
        assert r.status_code != 404, r.text         # allowed; no host kernel here to walk (503)
    assert project_client("p2").get("/ui/trace", params={"src": "external", "dst": gateway}).status_code == 404


def test_hosts_summary_is_for_admins(client, project_client):
    rev = _report(client, "h1", {})
    client.post("/v2.0/networks", json={"network": {"name": "moves-the-revision"}})
    _report(client, "h1", {"revision": rev, "metrics": {"drift": {"firewall": 2}, "errors": {"l2": 1}}})
    got = client.get("/ui/hosts").json()["h1"]
    assert got["lag"] > 0 and got["drift"] == 2 and got["errors"] == 1
    assert project_client("p1").get("/ui/hosts").status_code == 403


def test_metering_counters_the_agents_report_are_on_metrics(client):
    conf = {"l2": "linuxbridge", "firewall": "nftables", "roles": ["l2", "l3"]}
    client.post("/agent/v1/hosts/h1/report", json={"agent": conf})
    rt = client.post("/v2.0/routers", json={"router": {"name": "r", "project_id": "pa"}}).json()["router"]
    lbl = client.post("/v2.0/metering/metering-labels",
                      json={"metering_label": {"name": "web", "project_id": "pa"}}).json()["metering_label"]
    counted = {rt["id"]: {lbl["id"]: {"packets": 4, "bytes": 4112}}}
    assert client.post("/agent/v1/hosts/h1/report", json={"agent": conf, "metering": counted}).status_code == 200
    found = samples(client)
    where = {"label": "web", "label_id": lbl["id"], "router_id": rt["id"], "host": "h1", "project_id": "pa"}
    assert value(found, "neutrino_metering_packets_total", **where) == 4
    assert value(found, "neutrino_metering_bytes_total", **where) == 4112


def test_the_page_looks_for_a_hosts_bridges_where_its_agent_said_they_are(client, app):
    from neutrino.ui.source import ServerWhere
    r = client.post("/agent/v1/hosts/h1/report", json={"agent": {
        "l2": "linuxbridge", "roles": ["l2"], "bridge_mappings": {"ext": "br-ext0"}}})
    assert r.status_code == 200, r.text
    where = ServerWhere(app.state.db, app.state.settings, None)
    assert where.bridge_mappings("h1") == {"ext": "br-ext0"}
    assert where.bridge_mappings("h2") is None          # no agent there: the lab's public:br-ex
