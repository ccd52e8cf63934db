"""Lab naming and settings: ids derived from the state dir keep labs apart and let `down` find only its own."""
from neutrino.lab.paths import Lab, LabSettings


def test_lab_id_is_stable_and_differs_per_state_dir(tmp_path):
    a, b = Lab(str(tmp_path / "a")), Lab(str(tmp_path / "b"))
    assert Lab(str(tmp_path / "a")).id == a.id != b.id
    assert a.host_ns("host1") == f"nl{a.id}-host1"
    assert a.guest_ns("vm1") == f"nl{a.id}-vm-vm1"
    assert a.owns_ns(a.underlay_ns) and not a.owns_ns(b.host_ns("host1")) and not a.owns_ns("qrouter-x")


def test_settings_round_trip(tmp_path):
    lab = Lab(str(tmp_path))
    assert not lab.exists()
    settings = LabSettings(hosts=3, l2="linuxbridge", firewall="nftables", port=1234, identity_port=1235,
                           instances={"vm1": {"port_id": "p", "host": "host2", "fip_id": None}})
    lab.save(settings)
    assert lab.exists() and lab.load() == settings
    assert lab.url(settings) == "http://127.0.0.1:1234"
    assert lab.identity_url(settings) == "http://127.0.0.1:1235/v3"
