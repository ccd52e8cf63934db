"""iptables state owned by neutrino, applied as deltas with one `iptables-restore --noflush` per change.

A caller describes, for one table of one namespace, the chains it owns (all starting with `prefix`) with their
rules, and the jump rules it wants at the top of built-in chains. `apply` reads `iptables-save`, compares chain by
chain, and changes only the chains whose rules differ (a few rules inserted or deleted by number when that is
shorter than a rewrite; chains whose rule order does not matter get new rules on top, see TableState.free),
creates missing ones and deletes owned chains that are no longer wanted. `after` says what the table holds once a
plan is applied, so a caller may keep that instead of reading the table again. Rules must be written the way `iptables-save` prints them (e.g. `-s 10.0.0.3/32`, `-p tcp -m tcp --dport 22`), otherwise they
would be rewritten every time; tests check that a second apply changes nothing.
"""
from __future__ import annotations

import difflib
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from neutrino.lib import nft, proc

RESTORE_TIMEOUT = 600     # seconds: a cold restore of 1000 ports' chains takes over a minute on a loaded machine
# Lines per transaction when a long plan is split (see transactions): iptables-nft 1.8.9 spends time in the square
# of the chains one transaction adds (5000 ports' filter table: 7.2 s in one, 2.5 s in chunks of 100 ports).
CHUNK = 2000

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
    # owned chain -> how many of its last rules must stay last: the order of the others does not matter (each
    # matches packets no other one does), so new ones go on top with a plain `-I chain` and old ones keep their place
    free: dict[str, int] = field(default_factory=dict)


def _binaries(ipv: int) -> tuple[str, str]:
    return ("iptables-save", "iptables-restore") if ipv == 4 else ("ip6tables-save", "ip6tables-restore")


def save(table: str, netns: str | None = None, ipv: int = 4, counters: bool = False) -> str:
    argv = [_binaries(ipv)[0], "-t", table] + (["-c"] if counters else [])
    return proc.output(argv, netns=netns)


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


def _edits(chain: str, cur: list[str], want: list[str]) -> list[str] | None:
    """Rule-number deletes and inserts that turn one chain's rules into want, or None when rewriting the chain is
    no longer than that (so adding one port to a 2000-rule jump chain writes 2 lines, not 2001)."""
    n, i, j = min(len(cur), len(want)), 0, 0
    while i < n and cur[i] == want[i]:
        i += 1
    while j < n - i and cur[-1 - j] == want[-1 - j]:
        j += 1
    old, new = cur[i:len(cur) - j], want[i:len(want) - j]
    if len(old) + len(new) > len(want):
        return None
    ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes() if old and new else \
        [("replace", 0, len(old), 0, len(new))]
    lines: list[str] = []
    for tag, a1, a2, b1, b2 in reversed(ops):      # from the end: rule numbers before a1 stay valid
        if tag == "equal":
            continue
        lines += [f"-D {chain} {k}" for k in range(i + a2, i + a1, -1)]
        lines += [f"-I {chain} {i + a1 + 1 + k} {r}" for k, r in enumerate(new[b1:b2])]
    return lines if len(lines) <= len(want) else None


def _free_edits(chain: str, cur: list[str], want: list[str], tail: int) -> tuple[list[str], list[str]] | None:
    """Deletes by rule number and head inserts (`-I chain rule`: no number, so iptables-nft need not fetch the
    table's rules to find a position, half the cost of a one-port add at 1000 ports) that turn an order-free chain
    into want, and the rules it then holds; None when its fixed tail differs or rewriting it is shorter."""
    cur_h, want_h = cur[:len(cur) - tail], want[:len(want) - tail]
    have, need = set(cur_h), set(want_h)
    if cur[len(cur) - tail:] != want[len(want) - tail:] or len(have) < len(cur_h) or len(need) < len(want_h):
        return None                       # a changed tail, or a rule twice: written in order instead
    gone = [k + 1 for k, rule in enumerate(cur_h) if rule not in need]
    added = [rule for rule in want_h if rule not in have]
    kept = [rule for rule in cur_h if rule in need]
    lines = [f"-D {chain} {k}" for k in reversed(gone)] + [f"-I {chain} {r}" for r in reversed(added)]
    if len(lines) > len(want):
        return None
    return lines, added + kept + want[len(want) - tail:]


def plan(current: dict[str, list[str]], want: TableState, prefix: str) -> list[str]:
    """The iptables-restore lines (without *table/COMMIT) that turn current into want; [] when equal. A changed
    chain is edited rule by rule when that is shorter than flushing and refilling it."""
    lines: list[str] = []
    owned_now = {c for c in current if c.startswith(prefix)}
    new = [c for c in want.chains if c not in current]
    lines += [f":{c} - [0:0]" for c in new]
    for chain, rules in want.chains.items():
        cur = current.get(chain)
        free = _free_edits(chain, cur, rules, want.free[chain]) if cur and chain in want.free else None
        if free is not None:
            lines += free[0]
            continue
        if cur != rules:
            edits = _edits(chain, cur, rules) if cur else None
            if edits is not None:
                lines += edits
                continue
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


def after(current: dict[str, list[str]], want: TableState, prefix: str) -> dict[str, list[str]]:
    """What the table holds once `plan(current, want, prefix)` is applied (a caller may keep it instead of reading
    iptables-save again)."""
    out = {c: r for c, r in current.items() if not c.startswith(prefix)}
    for chain in BUILTIN.get(want.table, ()):
        if chain in out or want.jumps.get(chain):
            rest = [r for r in out.get(chain, []) if not _mentions(r, prefix)]
            out[chain] = list(want.jumps.get(chain, [])) + rest
    out.update(want.chains)
    for chain, tail in want.free.items():
        free = _free_edits(chain, current[chain], want.chains[chain], tail) if current.get(chain) else None
        if free is not None:
            out[chain] = free[1]
    return out


def save_all(tables: list[tuple[str, int]], netns: str | None = None) -> list[str]:
    """iptables-save of several (table, ip version) at once, concurrently (each takes ~0.1 s at 1000 ports)."""
    with ThreadPoolExecutor(max_workers=len(tables) or 1) as pool:
        return list(pool.map(lambda t: save(t[0], netns, t[1]), tables))


def restore(table: str, lines: list[str], netns: str | None = None, ipv: int = 4) -> None:
    """Apply plan lines to one table in one `iptables-restore --noflush` (nothing to do when lines is empty)."""
    if lines:
        batch = "\n".join([f"*{table}", *lines, "COMMIT", ""])
        proc.run([_binaries(ipv)[1], "--noflush"], netns=netns, input=batch)


def _target(line: str, new: set[str]) -> list[str]:
    words = line.split()
    return [words[k + 1] for k, w in enumerate(words[:-1]) if w in ("-j", "-g") and words[k + 1] in new]


def transactions(lines: list[str], limit: int = CHUNK) -> list[list[str]]:
    """Plan lines as consecutive transactions of about limit lines. Only new chains' lines are split up (never one
    chain's run of lines), each chain declared in the first transaction that names it; everything that touches a
    chain that was already there goes into the last one. Nothing reaches a new chain before that last, atomic
    transaction, so the ruleset still goes from the old state to the new one in one step."""
    if len(lines) <= limit:
        return [lines] if lines else []
    new = {line[1:].split()[0] for line in lines if line.startswith(":")}
    chunks: list[list[str]] = [[]]
    last: list[str] = []
    for line in lines:
        if line.startswith(":"):
            continue
        chain = line.split(" ", 2)[1]
        if chain not in new:
            last.append(line)
        elif len(chunks[-1]) >= limit and chunks[-1][-1].split(" ", 2)[1] != chain:
            chunks.append([line])
        else:
            chunks[-1].append(line)
    out, declared = [], set()
    for chunk in [c for c in chunks if c] + [last]:
        named = [c for line in chunk for c in [line.split(" ", 2)[1], *_target(line, new)]]
        if chunk is last:
            named = sorted(new) + named
        decl = [c for c in dict.fromkeys(named) if c in new and c not in declared]
        declared.update(decl)
        if decl or chunk:
            out.append([f":{c} - [0:0]" for c in decl] + chunk)
    return out


def restore_all(batches: list[tuple[str, int, list[str]]], netns: str | None = None) -> None:
    """restore for several (table, ip version, lines): the tables of one ip version in one `iptables-restore
    --noflush` (one process, one cache read of the ruleset; iptables-nft still commits each table as its own
    transaction, and a long plan as several, see transactions), the two versions concurrently."""
    by_ipv: dict[int, list[str]] = {}
    commits = 0
    for table, ipv, lines in batches:
        for tx in transactions(lines):
            by_ipv.setdefault(ipv, []).extend([f"*{table}", *tx, "COMMIT"])
            commits += 1

    def one(ipv: int) -> None:
        proc.run([_binaries(ipv)[1], "--noflush"], netns=netns, input="\n".join(by_ipv[ipv]) + "\n",
                 timeout=RESTORE_TIMEOUT)

    def write() -> None:
        with ThreadPoolExecutor(max_workers=len(by_ipv) or 1) as pool:
            for _ in pool.map(one, sorted(by_ipv)):
                pass
    if by_ipv:
        nft.own(netns, write, commits=commits)


def apply(want: TableState, prefix: str, netns: str | None = None, ipv: int = 4,
          current_text: str | None = None) -> list[str]:
    """Make the table match `want` for chains starting with prefix; returns the lines applied ([] = no change)."""
    current = parse(current_text if current_text is not None else save(want.table, netns, ipv))
    lines = plan(current, want, prefix)
    restore(want.table, lines, netns, ipv)
    return lines


def remove_all(table: str, prefix: str, netns: str | None = None, ipv: int = 4) -> list[str]:
    """Delete every chain and jump owned under prefix in a table."""
    return apply(TableState(table), prefix, netns=netns, ipv=ipv)
