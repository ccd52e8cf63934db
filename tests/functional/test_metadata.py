"""The metadata proxy on the real kernel: guest curl -> REDIRECT -> listener in the namespace -> server on a UDS."""
from __future__ import annotations

import json
import socketserver
import threading
import uuid
from http.server import BaseHTTPRequestHandler

import pytest

from netfix_l3 import l2_hosts, lab, router, view  # noqa: F401 - lab and l2_hosts are fixtures
from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.metadata import MetadataProxy
from neutrino.lib import ip, proc

pytestmark = pytest.mark.kernel
URL = "http://169.254.169.254/openstack/latest/meta_data.json"


class Upstream(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Stands in for the neutrino server's metadata endpoint; remembers what it was asked."""
    daemon_threads = True

    def __init__(self, path: str):
        self.seen: list[tuple[str, dict]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(h):
                headers: dict[str, list[str]] = {}
                for k, v in h.headers.items():
                    headers.setdefault(k.lower(), []).append(v)
                self.seen.append((h.path, headers))
                found = h.path.endswith("meta_data.json")
                body = json.dumps({"uuid": "vm1"}).encode() if found else b"not here"
                h.send_response(200 if found else 404)
                h.send_header("Content-Type", "application/json" if found else "text/plain")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)

            def log_message(h, *args):
                pass

        super().__init__(path, Handler)


@pytest.fixture
def upstream(tmp_path):
    srv = Upstream(str(tmp_path / "server.sock"))
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def proxy(upstream, tmp_path):
    p = MetadataProxy(HostConfig(host="host1", state_dir=str(tmp_path), server=f"unix:{upstream.server_address}",
                                 token="agent-secret"))
    yield p
    p.cleanup()


def curl(ns: str, url: str = URL, *headers: str) -> tuple[int, str]:
    argv = ["curl", "-s", "-m", "5", "-w", "\n%{http_code}"]
    for h in headers:
        argv += ["-H", h]
    out = proc.run([*argv, url], netns=ns, check=False).stdout
    body, _, code = out.rpartition("\n")
    return int(code or 0), body


def test_guest_reaches_server_through_router(lab, upstream, proxy):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    r = router()
    lab.sync(r)
    result = proxy.sync(view(r))
    assert result.routers == {r["id"]: True} and result.changed
    assert not proxy.sync(view(r)).changed
    code, body = curl(g1, URL, "x-forwarded-for: 6.6.6.6", "X-NEUTRINO-ROUTER-ID: forged",
                      "X-Auth-Token: forged", "X-Neutrino-Network-ID: forged")
    assert (code, json.loads(body)) == (200, {"uuid": "vm1"})
    path, headers = upstream.seen[-1]
    assert path == "/agent/v1/metadata/openstack/latest/meta_data.json"
    assert headers["x-forwarded-for"] == ["10.0.0.3"]
    assert headers["x-neutrino-router-id"] == [r["id"]]
    assert headers["x-auth-token"] == ["agent-secret"]
    assert "x-neutrino-network-id" not in headers
    assert curl(g1, "http://169.254.169.254/latest/nothing")[0] == 404


def test_listener_follows_router_namespace(lab, upstream, proxy):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    r = router()
    lab.sync(r)
    proxy.sync(view(r))
    assert curl(g1)[0] == 200
    lab.sync()                      # the router namespace is deleted and made again under the same name
    lab.sync(r)
    assert proxy.sync(view(r)).changed
    assert curl(g1)[0] == 200
    assert proxy.sync(view()).changed
    assert proxy.listening() == {}
    code, _ = curl(g1)
    assert code == 0     # connection refused: nothing listens on 9697 any more


def test_isolated_network_served_from_qdhcp(lab, upstream, proxy):
    net = str(uuid.uuid4())
    dhcp_ns = names.qdhcp(net)
    lab.namespaces.append(dhcp_ns)
    guest = f"{lab.host}-g3"
    lab.namespaces.append(guest)
    ip.ensure_netns(dhcp_ns)
    ip.ensure_netns(guest)
    ip.ensure_veth("tapdhcp", "eth0", netns=dhcp_ns, peer_netns=guest)
    ip.ensure_addresses("eth0", ["10.0.2.3/24"], guest)
    ip.ensure_route("169.254.169.254/32", guest, gateway="10.0.2.2")
    dhcp = {"network_id": net, "isolated_metadata": True}
    # The listener comes before the address exists (the DHCP driver adds it): it must still bind.
    assert proxy.sync(view(dhcp=[dhcp])).changed
    ip.ensure_addresses("tapdhcp", ["10.0.2.2/24", "169.254.169.254/32"], dhcp_ns)
    code, body = curl(guest, URL, "X-Forwarded-For: 6.6.6.6")
    assert (code, json.loads(body)) == (200, {"uuid": "vm1"})
    _, headers = upstream.seen[-1]
    assert headers["x-neutrino-network-id"] == [net]
    assert headers["x-forwarded-for"] == ["10.0.2.3"]
    assert "x-neutrino-router-id" not in headers


def test_server_down_gives_bad_gateway(lab, tmp_path):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    r = router()
    lab.sync(r)
    p = MetadataProxy(HostConfig(host="host1", state_dir=str(tmp_path), server=f"unix:{tmp_path}/absent.sock"))
    try:
        p.sync(view(r))
        assert curl(g1)[0] == 502
    finally:
        p.cleanup()
