"""Which watches a change wakes and when a view must be compiled (api/changes.py), without a server."""
from __future__ import annotations

from neutrino.api import changes
from neutrino.db import notify
from neutrino.api.changes import Hub
from neutrino.sync.schema import empty_view


def test_payload_round_trip_and_overflow_means_everything():
    assert notify.parse(notify.payload(7, frozenset({"net-a", "host:h1"}))) == (7, frozenset({"net-a", "host:h1"}))
    assert notify.parse(notify.payload(8, None)) == (8, None)
    many = frozenset(f"{i:036d}" for i in range(400))
    assert notify.parse(notify.payload(9, many)) == (9, None)


def test_view_keys_name_the_host_its_networks_groups_routers_dhcp_and_tunnel_peers():
    v = empty_view("h1", 3)
    v.update(networks={"n1": {}, "n2": {}}, security_groups={"sg1": {}}, remote_groups={"sg2": {}},
             routers=[{"id": "r1"}], dhcp=[{"network_id": "n2"}])
    assert changes.view_keys(v) == {"host:h1", "n1", "n2", "sg1", "members:sg2", "r1", "ports:n2"}
    v["tunnels"] = {"local_ip": "10.0.0.1", "peers": []}
    assert {changes.AGENTS, "ports:n1"} <= changes.view_keys(v)     # l2pop: every port of its networks


def test_a_view_this_server_did_not_serve_is_always_compiled():
    hub = Hub()
    assert hub.due("h1", 5, 5)                    # never served here (fail-over, restart)
    hub.answered("h1", 5, frozenset({"n1"}))
    assert not hub.due("h1", 5, 5)
    assert hub.due("h1", 4, 5)                    # the agent holds another revision (served by another server)


def test_only_changes_touching_the_view_make_it_due():
    hub = Hub()
    hub.answered("h1", 5, frozenset({"n1", "host:h1"}))
    hub.publish(6, frozenset({"n2"}))
    assert not hub.due("h1", 5, 6)
    hub.answered("h1", 6)                         # "unchanged" up to 6: same keys
    hub.publish(7, frozenset({"host:h1"}))
    assert hub.due("h1", 6, 7)
    hub.publish(8, None)
    assert hub.due("h1", 6, 8)


def test_a_revision_not_heard_of_or_older_than_the_log_is_assumed_to_matter():
    hub = Hub()
    hub.answered("h1", 5, frozenset({"n1"}))
    assert hub.due("h1", 5, 6)                    # committed (the DB says 6) but its NOTIFY not received yet
    hub.publish(6, frozenset({"n2"}))
    assert not hub.due("h1", 5, 6)
    hub.reset()                                   # the LISTEN connection was lost
    assert hub.due("h1", 5, 6)


def test_publish_wakes_matching_watches_only_and_once_per_revision():
    hub = Hub()
    hub.answered("h1", 1, frozenset({"n1"}))
    hub.answered("h2", 1, frozenset({"n2"}))
    w1, w2, w3 = hub.watch("h1", 1), hub.watch("h2", 1), hub.watch("h3", 0)
    hub.publish(2, frozenset({"n1"}))
    assert w1.event.is_set() and not w2.event.is_set() and w3.event.is_set()   # h3: keys unknown
    w1.event.clear()
    hub.publish(2, frozenset({"n1"}))             # the NOTIFY of our own commit, after the local publish
    assert not w1.event.is_set()
    hub.unwatch(w2)
    assert hub.watches == {w1, w3}
