"""iptables state owned by neutrino, applied as deltas with one `iptables-restore --noflush` per change.

A caller describes, for one table of one namespace, the chains it owns (all starting with `prefix`) with their
rules, and the jump rules it wants at the top of built-in chains. `apply` reads `iptables-save`, compares chain by
chain, and rewrites only the chains whose rules differ, creates missing ones and deletes owned chains that are no
longer wanted. Rules must be written the way `iptables-save` prints them (e.g. `-s 10.0.0.3/32`, `-p tcp -m tcp
--dport 22`), otherwise they would be rewritten every time; tests check that a second apply changes nothing.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from neutrino.lib import proc

BUILTIN = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
}


@dataclass
class TableState:
    """Desired state of the owned part of one table."""
    table: str
    chains: dict[str, list[str]] = field(default_factory=dict)   # owned chain -> rules (without "-A CHAIN")
    jumps: dict[str, list[str]] = field(default_factory=dict)    # built-in chain -> rules that lead into ours


def _binaries(ipv: int) -> tuple[str, str]:
    return ("iptables-save", "iptables-restore") if ipv == 4 else ("ip6tables-save", "ip6tables-restore")


def save(table: str, ns: str | None = None, ipv: int = 4, counters: bool = False) -> str:
    argv = [_binaries(ipv)[0], "-t", table] + (["-c"] if counters else [])
    return proc.output(argv, netns=ns)


def parse(text: str) -> dict[str, list[str]]:
    """iptables-save text of one table -> chain -> rule specs (without "-A CHAIN"), in order."""
    chains: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            name, _, rest = line[3:].partition(" ")
            chains.setdefault(name, []).append(rest)
    return chains


def _mentions(rule: str, prefix: str) -> bool:
    return any(tok.startswith(prefix) for tok in shlex.split(rule))


def plan(current: dict[str, list[str]], want: TableState, prefix: str) -> list[str]:
    """The iptables-restore lines (without *table/COMMIT) that turn current into want; [] when equal."""
    lines: list[str] = []
    owned_now = {c for c in current if c.startswith(prefix)}
    new = [c for c in want.chains if c not in current]
    lines += [f":{c} - [0:0]" for c in new]
    for chain, rules in want.chains.items():
        if current.get(chain) != rules:
            if chain in current:
                lines.append(f"-F {chain}")
            lines += [f"-A {chain} {r}" for r in rules]
    for chain in BUILTIN.get(want.table, ()):
        ours = [r for r in current.get(chain, []) if _mentions(r, prefix)]
        wanted = want.jumps.get(chain, [])
        if ours != wanted:
            lines += [f"-D {chain} {r}" for r in ours]
            lines += [f"-I {chain} {i} {r}" for i, r in enumerate(wanted, 1)]
    stale = sorted(owned_now - set(want.chains))
    lines += [f"-F {c}" for c in stale]
    lines += [f"-X {c}" for c in stale]
    return lines


def apply(want: TableState, prefix: str, ns: str | None = None, ipv: int = 4,
          current_text: str | None = None) -> list[str]:
    """Make the table match `want` for chains starting with prefix; returns the lines applied ([] = no change)."""
    current = parse(current_text if current_text is not None else save(want.table, ns, ipv))
    lines = plan(current, want, prefix)
    if lines:
        batch = "\n".join([f"*{want.table}", *lines, "COMMIT", ""])
        proc.run([_binaries(ipv)[1], "--noflush"], netns=ns, input=batch)
    return lines


def remove_all(table: str, prefix: str, ns: str | None = None, ipv: int = 4) -> list[str]:
    """Delete every chain and jump owned under prefix in a table."""
    return apply(TableState(table), prefix, ns=ns, ipv=ipv)
