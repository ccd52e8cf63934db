"""The topology page in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium), against the
seed page's lab: opened by the link `neutrino up` prints (signed in to demo), the lab's objects drawn, a port
created through the API drawn without a reload, vm1's hood on a click on its node, and a trace from the outside."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import time

import httpx
import pytest

from neutrino import names
from labfix import need, neutrino

pytestmark = pytest.mark.kernel
need(("ovsdb-server", "ovs-vswitchd", "dnsmasq", "busybox", "dhclient", "iptables", "nsenter", "chromium",
      "chromedriver"))

from selenium import webdriver                               # noqa: E402 - after the skip for missing programs
from selenium.webdriver.chrome.service import Service        # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By                  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1600,1000")
WAIT = 30          # generous: the page asks the kernel for hood and trace on a busy machine
LIVE = 2.0         # the promise: a new object is drawn within 2 s of the API's answer


@pytest.fixture(scope="module")
def world(seed_world):
    return seed_world


@pytest.fixture(scope="module")
def browser(world):
    profile = tempfile.mkdtemp(prefix="nl-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(world, browser):
    """The page opened by the link `neutrino up` printed, once its graph has vm1."""
    link = re.search(r"Topology page \(signed in to the demo project\): (\S+)", world.up_output).group(1)
    browser.get(link)
    WebDriverWait(browser, WAIT).until(lambda d: "vm1" in " ".join(labels(d)))
    browser.execute_script("window.loadedOnce = true")      # gone if the page reloads
    return browser


def labels(driver) -> list[str]:
    return driver.execute_script("return window.cy ? cy.nodes().map(n => n.data('label')) : []")


def label_of(driver, first_line: str) -> str | None:
    return next((lbl for lbl in labels(driver) if lbl.split("\n")[0] == first_line), None)


def test_link_signs_in_to_demo_and_keeps_the_token_out_of_the_address(page):
    assert page.find_element(By.ID, "who").text == "demo in project demo"
    assert "token" not in page.current_url


def test_status_prints_a_fresh_signed_in_link(world):
    out = neutrino("status", state_dir=world.state_dir).stdout
    url = f"http://127.0.0.1:{world.lab.load().port}/ui#token="
    assert f"topology page (signed in to the demo project): {url}" in out
    token = out.split(url)[1].split()[0]
    r = httpx.get(f"http://127.0.0.1:{world.lab.load().port}/v2.0/networks", headers={"X-Auth-Token": token})
    assert r.status_code == 200 and {"public", "private"} <= {n["name"] for n in r.json()["networks"]}


def test_page_shows_the_lab(world, page):
    assert "FIP " + world.fip in label_of(page, "vm1")
    assert label_of(page, "router1") and label_of(page, "public") and label_of(page, "private")
    assert page.execute_script("return cy.getElementById(arguments[0]).data('status')", world.vm_port.id) == "ACTIVE"
    text = page.find_element(By.ID, "inventory").text
    assert f"instance vm1 [ACTIVE] {world.vm_port.fixed_ips[0]['ip_address']}, floating IP {world.fip}" in text


def test_a_port_created_through_the_api_appears_without_reload(world, page):
    port = world.demo.network.create_port(network_id=world.private.id, name="vm2", device_owner="compute:nova")
    created = time.monotonic()
    try:
        WebDriverWait(page, LIVE, poll_frequency=0.05).until(lambda d: label_of(d, "vm2"))
        print(f"vm2 drawn {time.monotonic() - created:.2f} s after the API answered")
        assert port.fixed_ips[0]["ip_address"] in label_of(page, "vm2")
        assert page.execute_script("return window.loadedOnce") is True
    finally:
        world.demo.network.delete_port(port)
    WebDriverWait(page, WAIT).until(lambda d: label_of(d, "vm2") is None)


def test_clicking_vm1_shows_its_hood(world, page):
    graph = page.find_element(By.ID, "graph")
    x, y = page.execute_script("const p = cy.getElementById(arguments[0]).renderedPosition(); return [p.x, p.y]",
                               world.vm_port.id)
    size = graph.size
    ActionChains(page).move_to_element_with_offset(graph, int(x - size["width"] / 2),
                                                   int(y - size["height"] / 2)).click().perform()
    hood = page.find_element(By.ID, "hood")
    WebDriverWait(page, WAIT).until(lambda d: "kernel matches the view" in hood.text or "difference" in hood.text)
    assert page.find_element(By.ID, "hood-title").text == "Under the hood: vm1"
    assert names.qvo(world.vm_port.id) in hood.text
    assert names.sg_chain("i", world.vm_port.id) in hood.text
    assert "--dport 22 -j RETURN" in hood.text


def test_ids_in_the_hood_link_to_their_objects(world, page):
    hood = page.find_element(By.ID, "hood")
    link = next(a for a in hood.find_elements(By.CSS_SELECTOR, "a.object") if a.text == world.private.id)
    link.click()
    WebDriverWait(page, WAIT).until(lambda d: d.find_element(By.ID, "hood-title").text == "Under the hood: private")
    WebDriverWait(page, WAIT).until(lambda d: f"network {world.private.id}" in hood.text)
    assert names.qdhcp(world.private.id) in hood.text


@pytest.mark.parametrize("port,verdict", [(22, "DELIVERED"), (2323, "DROPPED")])
def test_trace_from_outside_to_the_floating_ip(world, page, port, verdict):
    Select(page.find_element(By.ID, "trace-src")).select_by_value("external")
    for field, value in (("trace-dst", world.fip), ("trace-port", str(port))):
        box = page.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    Select(page.find_element(By.ID, "trace-proto")).select_by_value("tcp")
    page.find_element(By.CSS_SELECTOR, "#trace button[type=submit]").click()
    out = page.find_element(By.ID, "trace-out")
    head = f"trace external → {world.fip} tcp/{port}"
    WebDriverWait(page, WAIT).until(lambda d: head in out.text and ("DELIVERED" in out.text or "DROPPED" in out.text))
    assert f"{verdict} at" in out.text
    if verdict == "DELIVERED":
        assert f"at {names.tap(world.vm_port.id)}" in out.text


def test_sign_out_then_in_as_admin_through_the_keystone_form_shows_hosts_and_agents(world, page):
    page.find_element(By.ID, "logout").click()
    form = page.find_element(By.ID, "login")
    WebDriverWait(page, WAIT).until(lambda d: form.is_displayed())

    def sign_in(password: str) -> None:
        for name, text in (("user", "admin"), ("password", password), ("project", "admin")):
            box = form.find_element(By.NAME, name)
            box.clear()
            box.send_keys(text)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    sign_in("wrong")
    WebDriverWait(page, WAIT).until(lambda d: "wrong" in d.find_element(By.ID, "login-error").text)
    with open(world.lab.path("admin-password")) as f:
        sign_in(f.read().strip())
    WebDriverWait(page, WAIT).until(lambda d: (label_of(d, "host1") or "").count("✓") >= 2)
    assert page.find_element(By.ID, "who").text == "admin in project admin"
    host = label_of(page, "host1")
    assert "view lag" in host and "✗" not in host



def _without_counters(x):
    if isinstance(x, dict):
        return {k: _without_counters(v) for k, v in x.items() if k not in ("packets", "bytes")}
    if isinstance(x, list):
        return [_without_counters(v) for v in x]
    return x


@pytest.mark.parametrize("ref", ["vm1", "router1", "private"])
def test_page_and_cli_answer_with_the_same_hood(world, ref):
    cli = json.loads(neutrino("hood", ref, "--json", state_dir=world.state_dir).stdout)
    r = httpx.get(f"http://127.0.0.1:{world.lab.load().port}/ui/hood/{ref}",
                  headers={"X-Auth-Token": world.admin.auth_token}, timeout=60)
    assert r.status_code == 200, r.text
    assert _without_counters(r.json()) == _without_counters(cli)
    assert cli["api"]["name"] == ref and cli["drift"] == 0


def test_page_and_cli_answer_with_the_same_trace(world):
    cli = neutrino("trace", "external", world.fip, "--proto", "tcp", "--port", "2323", "--json",
                   state_dir=world.state_dir, check=False)
    assert cli.returncode == 2, cli.stderr                  # dropped
    r = httpx.get(f"http://127.0.0.1:{world.lab.load().port}/ui/trace", timeout=60,
                  params={"src": "external", "dst": world.fip, "proto": "tcp", "port": "2323"},
                  headers={"X-Auth-Token": world.demo.auth_token})
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(cli.stdout) and r.json()["verdict"] == "dropped"
