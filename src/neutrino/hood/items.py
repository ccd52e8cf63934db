"""The items of a hood report: a kernel object (wanted and/or present) with the API object it realizes, and an
object's rules with their counters, each in state ok, missing or extra."""
from __future__ import annotations

from neutrino.hood.ipt_eval import Table, parse

OK, MISSING, EXTRA = "ok", "missing", "extra"


def item(name: str, wanted: bool, present: bool, detail: str = "", realizes: dict | None = None,
         rules: list[dict] | None = None) -> dict:
    state = MISSING if wanted and not present else EXTRA if present and not wanted else OK
    out = {"name": name, "state": state, "detail": detail, "realizes": {k: v for k, v in (realizes or {}).items() if v}}
    if rules is not None:
        out["rules"] = rules
    return out


def section(title: str, items: list[dict]) -> dict:
    return {"title": title, "items": items}


def table(snap_tables: dict, name: str) -> Table:
    return parse(snap_tables.get(name, "")).get(name) or Table(name)


def compare_rules(live: list, wanted: list[str], origin: dict[str, dict] | None = None) -> list[dict]:
    """Live rules (with counters) in kernel order, then wanted rules the kernel lacks; each with its state."""
    origin = origin or {}
    out = []
    for r in live:
        out.append({"rule": r.line, "packets": r.packets, "bytes": r.bytes,
                    "state": OK if r.text in wanted else EXTRA, "realizes": origin.get(r.text, {})})
    have = {r.text for r in live}
    chain = live[0].chain if live else None
    for w in wanted:
        if w not in have:
            out.append({"rule": f"-A {chain} {w}" if chain else w, "packets": 0, "bytes": 0, "state": MISSING,
                        "realizes": origin.get(w, {})})
    return out
