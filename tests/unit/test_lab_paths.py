"""Lab naming and settings: ids derived from the state dir keep labs apart and let `down` find only its own."""
import os

import pytest

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


def test_state_dir_is_made_private_or_refused_with_the_reason(tmp_path):
    from neutrino.config import StateDirError, ensure_state_dir
    made = ensure_state_dir(str(tmp_path / "a" / "b"))
    assert os.stat(made).st_mode & 0o777 == 0o700
    (tmp_path / "file").write_text("")
    for path, reason in ((tmp_path / "file", "exists and is not a directory"),
                         (tmp_path / "file" / "x", "a parent of it is a file")):
        with pytest.raises(StateDirError, match=reason):
            ensure_state_dir(str(path))


def test_instance_hostname_is_sanitized_as_nova_does():
    from neutrino.instances.manager import hostname
    assert hostname("vm1") == "vm1"
    assert hostname("My_Web.Server 2") == "my-web-server-2"
    assert hostname("-ü-x-") == "x"
    assert hostname("___") == "server"
    assert len(hostname("a" * 100)) == 63
