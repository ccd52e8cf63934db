"""Summarises a tempest subunit stream: passed / failed / skipped per module, the pass rate over the tests that ran,
and every failure's reason (the traceback's last line), grouped with the tests it failed.

Usage: conformance_report.py RESULTS.subunit  (runs in the conformance venv: subunit, testtools)."""
from __future__ import annotations

import collections
import re
import sys

import subunit
import testtools

WORKER_TAG = re.compile(r"\[.*\]$")


def read(path: str) -> tuple[dict[str, tuple[str, str]], int]:
    """test id -> (status, details text), and how many tests the run listed (a class skipped as a whole reports
    one skip for all of its tests)."""
    out: dict[str, tuple[str, str]] = {}
    listed = set()

    def on_test(test: dict) -> None:
        if test["status"] == "exists":
            listed.add(test["id"])
        if test["status"] in ("exists", "inprogress", None):
            return
        details = "".join(v.as_text() for k, v in test["details"].items() if k in ("traceback", "reason"))
        out[test["id"]] = (test["status"], details)

    with open(path, "rb") as f:
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout").run(result)
        result.stopTestRun()
    return out, len(listed)


def module_of(test_id: str) -> str:
    """`tempest.api.network.test_ports.PortsTestJSON.test_x[..]` -> `tempest.api.network.test_ports`; setUpClass
    failures (`setUpClass (module.Class)`) count for their module."""
    m = re.match(r"\w+Class \(([\w.]+)\)", test_id)
    name = m.group(1) if m else WORKER_TAG.sub("", test_id)
    parts = name.split(".")
    return ".".join(parts[:-2]) if not m else ".".join(parts[:-1])


def reason_of(details: str) -> str:
    lines = [ln.strip() for ln in details.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Failure|Conflict|BadRequest|NotFound|Forbidden|Unauthorized|"
                    r"Mismatch|InvalidCredentials|TimeoutException|ServerFault|UnexpectedResponseCode|"
                    r"MismatchError)\b", ln) or ln.startswith(("Details:", "testtools.matchers")):
            return ln[:300]
    return (lines[-1] if lines else "(no details)")[:300]


def main(path: str) -> None:
    results, listed = read(path)
    per_module: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures: dict[str, list[str]] = collections.defaultdict(list)
    for test_id, (status, details) in results.items():
        kind = {"success": "passed", "fail": "failed", "skip": "skipped", "xfail": "passed",
                "uxsuccess": "failed"}.get(status, status)
        per_module[module_of(test_id)][kind] += 1
        if kind == "failed":
            failures[reason_of(details)].append(WORKER_TAG.sub("", test_id))
    width = max((len(m) for m in per_module), default=10)
    print(f"\n{'module':<{width}}  passed  failed  skipped")
    total: collections.Counter = collections.Counter()
    for module in sorted(per_module):
        c = per_module[module]
        total.update(c)
        print(f"{module:<{width}}  {c['passed']:>6}  {c['failed']:>6}  {c['skipped']:>7}")
    ran = total["passed"] + total["failed"]
    print(f"{'total':<{width}}  {total['passed']:>6}  {total['failed']:>6}  {total['skipped']:>7}")
    print(f"\nfailures by reason ({total['failed']}):")
    for reason, tests in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        print(f"\n  [{len(tests)}] {reason}")
        for t in sorted(tests):
            print(f"      {t}")
    rate = 100.0 * total["passed"] / ran if ran else 0.0
    print(f"\npass rate: {total['passed']} passed of {ran} that ran ({rate:.1f} %), {total['skipped']} skipped; "
          f"{total['passed']} passed of the {listed} tests listed")


if __name__ == "__main__":
    main(sys.argv[1])
