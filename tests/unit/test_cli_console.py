"""CLI output in pipes and logs: rows do not wrap at rich's 80-column default for a non-terminal."""
from __future__ import annotations

import io

from rich.table import Table

from neutrino.cli.console import make_console


def test_a_wide_row_stays_on_one_line_in_a_pipe(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    table = Table("kernel object", "rule")
    rule = "-A neutron-openvswi-i89134c8b-1 -p tcp -m tcp --dport 22 -j RETURN " + "-m comment x" * 10
    table.add_row("neutron-openvswi-i89134c8b-1", rule)
    make_console(out).print(table)
    lines = out.getvalue().splitlines()
    assert any(rule in line for line in lines)
    assert len(lines) == 5          # top, header, separator, the row, bottom


def test_columns_still_wins_when_set(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console(io.StringIO()).width == 100
