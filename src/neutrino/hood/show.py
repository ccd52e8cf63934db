"""Rendering a hood report (hood.collect) with rich: one table per section in the seed page's order; drift in red."""
from __future__ import annotations

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

MARK = {"ok": "[green]✓[/green]", "missing": "[red]missing[/red]", "extra": "[red]extra[/red]"}


def _realizes(r: dict) -> str:
    parts = []
    for k, v in r.items():
        vals = v if isinstance(v, list) else [v]
        parts.append(f"{k} " + ", ".join(str(x) for x in vals))
    return escape("; ".join(parts))


def _style(state: str) -> str:
    return "" if state == "ok" else "red"


def render(report: dict) -> Group:
    obj = report["object"]
    title = f"{obj['kind']} {obj['id']}" + (f" ({obj['name']})" if obj.get("name") else "")
    where = f"host {report['host']}" + (f", namespace {report['host_ns']}" if report.get("host_ns") else "")
    parts: list = [Text.from_markup(f"[bold]{escape(title)}[/bold] on {escape(where)}, view revision "
                                    f"{report.get('revision')}")]
    api = report.get("api")
    if api:
        parts.append(Text.from_markup("[dim]API:[/dim] " + escape(", ".join(f"{k} {v}" for k, v in api.items()))))
    for section in report["sections"]:
        table = Table(title=section["title"], title_justify="left", show_lines=False, expand=False)
        table.add_column("", no_wrap=True)
        table.add_column("kernel object", overflow="fold")
        table.add_column("detail", overflow="fold")
        table.add_column("realizes", overflow="fold")
        for it in section["items"] or [{"name": "(nothing)", "state": "ok", "detail": "", "realizes": {}}]:
            table.add_row(MARK[it["state"]], Text(it["name"], style=_style(it["state"])), escape(it["detail"]),
                          _realizes(it["realizes"]))
            for r in it.get("rules", []):
                counters = f"[{r['packets']}:{r['bytes']}]"
                table.add_row(MARK[r["state"]] if r["state"] != "ok" else "",
                              Text(f"  {counters} {r['rule']}", style=_style(r["state"]) or "dim"), "",
                              _realizes(r.get("realizes", {})))
        parts.append(table)
    drift = report.get("drift", 0)
    parts.append(Text.from_markup("[green]kernel matches the view[/green]" if not drift else
                                  f"[red]{drift} difference(s) between the view and the kernel[/red]"))
    return Group(*parts)
