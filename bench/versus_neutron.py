"""neutrino beside OpenStack Neutron, in one sitting: the anchor's own client (../shared/anchors/neutron/bench.py,
the same workload and HTTP client for both) against a running Neutron, then against neutrino started here with each
worker count asked for; prints every row with both figures and neutrino's ratio (how many times faster), with the
load average around each run (the machine is shared: compare within one sitting only).

    python bench/versus_neutron.py --neutron-url http://127.0.0.1:13696 [--workers 1,2] [--out DIR]
    python bench/versus_neutron.py --neutron-json neutron.json        # a Neutron run of this sitting, made before

Neutron itself is started by the anchor's run.sh (see its README). The table's verdict is each row against 50x.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import httpx

from api import start_server

HERE = os.path.dirname(os.path.abspath(__file__))
ANCHOR = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "anchors", "neutron", "bench.py"))  # ../shared of the root
GOAL = 50
QUOTAS = {"quota": {k: -1 for k in ("network", "subnet", "port", "router", "floatingip", "security_group",
                                    "security_group_rule")}}
# (label, result section, field, higher is better)
ROWS = [("port create, sequential, /s", "ports_create_seq", "per_s", True),
        ("port create, 8 threads, /s", "ports_create_conc", "per_s", True),
        ("GET 1000 ports, median ms", "ports_list", "median_ms", False),
        ("GET one port, median ms", "port_get", "median_ms", False),
        ("router + gateway, ms", "fips_create_seq", "router_create_ms", False),
        ("floating IP create, /s", "fips_create_seq", "per_s", True),
        ("SG rule create, /s", "sg_rules_create_seq", "per_s", True),
        ("port delete, /s", "ports_delete_seq", "per_s", True)]


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def run_anchor(anchor: str, url: str, label: str, out: str) -> dict:
    """One run of the anchor's client; its JSON plus the load average before and after."""
    before = load()
    subprocess.run([sys.executable, anchor, url, "--label", label, "--json", out, "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    with open(out) as f:
        result = json.load(f)
    if result.get("error"):
        sys.exit(f"{label}: {result['error']}")
    result["load"] = f"{before} -> {load()}"
    return result


def run_neutrino(anchor: str, workers: int, out: str) -> dict:
    proc, url, state = start_server(workers)
    try:
        httpx.put(f"{url}/v2.0/quotas/benchproject", json=QUOTAS).raise_for_status()
        return run_anchor(anchor, url, f"neutrino, {workers} worker(s)", out)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(state, ignore_errors=True)


def ratio(neutron: float, ours: float, higher: bool) -> float:
    return (ours / neutron if higher else neutron / ours) if neutron and ours else 0.0


def table(neutron: dict, ours: list[dict]) -> None:
    head = f"{'':<30}{'neutron':>10}" + "".join(f"{r['label'].removeprefix('neutrino, '):>22}" for r in ours)
    print(head)
    for label, section, field, higher in ROWS:
        n = neutron["results"][section][field]
        cells = []
        for r in ours:
            v = r["results"][section][field]
            x = ratio(n, v, higher)
            cells.append(f"{v:>9.1f} {x:>6.0f}x{'' if x >= GOAL else ' <':<4}")
        print(f"{label:<30}{n:>10.1f}" + "".join(f"{c:>22}" for c in cells))
    print(f"{'load average (1/5/15 min)':<30}")
    for r in [neutron, *ours]:
        print(f"  {r['label']}: {r['load']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--neutron-url", help="a running Neutron (the anchor's run.sh): benchmarked first")
    src.add_argument("--neutron-json", help="the anchor's JSON of a Neutron run from this sitting")
    ap.add_argument("--workers", default="1,2", help="neutrino worker counts to run, in order")
    ap.add_argument("--anchor", default=ANCHOR, help="the anchor's bench.py")
    ap.add_argument("--out", help="directory for the JSON results (default: a temporary one)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="versus-neutron-")
    os.makedirs(out, exist_ok=True)
    if args.neutron_url:
        neutron = run_anchor(args.anchor, args.neutron_url, "neutron", os.path.join(out, "neutron.json"))
    else:
        with open(args.neutron_json) as f:
            neutron = json.load(f)
        neutron.setdefault("load", "(not recorded)")
    ours = []
    for w in (int(x) for x in args.workers.split(",")):
        ours.append(run_neutrino(args.anchor, w, os.path.join(out, f"neutrino-w{w}.json")))
        time.sleep(1)
    table(neutron, ours)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
