"""ipsets owned by neutrino (remote security group members), changed with one `ipset restore` per change.

A set whose members change is rebuilt under a temporary name and swapped in, so the iptables rules that match it
are never touched and never see a half-filled set. Sets are `hash:net` (members may be CIDRs, e.g. address pairs).
"""
from __future__ import annotations

import functools
import ipaddress

from neutrino.lib import proc

SWAP_SUFFIX = "-n"


def _norm(member: str) -> str:
    """A member as a canonical CIDR (`ipset save` prints hosts bare). A bare IPv4 address is printed canonically
    already; the rest is cached, since the same members come back every sync (parsing 1000 of them with ipaddress
    took 17 ms of a one-port add at 1000 ports)."""
    if "/" not in member and ":" not in member:
        return member + "/32"
    return _norm_slow(member)


@functools.lru_cache(maxsize=1 << 16)
def _norm_slow(member: str) -> str:
    return str(ipaddress.ip_network(member, strict=False))


def parse(text: str, prefix: str) -> dict[str, tuple[str, set[str]]]:
    """`ipset save` text -> name -> (family, members as CIDRs), for sets whose name starts with prefix."""
    sets: dict[str, tuple[str, set[str]]] = {}
    for line in text.splitlines():
        w = line.split()
        if len(w) >= 3 and w[0] == "create" and w[1].startswith(prefix):
            fam = w[w.index("family") + 1] if "family" in w else "inet"
            sets[w[1]] = (fam, set())
        elif len(w) >= 3 and w[0] == "add" and w[1] in sets:
            sets[w[1]][1].add(_norm(w[2]))
    return sets


def current(prefix: str, netns: str | None = None) -> dict[str, tuple[str, set[str]]]:
    return parse(proc.output(["ipset", "save"], netns=netns), prefix)


def plan(now: dict[str, tuple[str, set[str]]], want: dict[str, tuple[str, set[str]]]) -> list[str]:
    """`ipset restore` lines that create new sets and rebuild+swap changed ones (stale sets are left alone:
    they may still be referenced until iptables is updated; see destroy)."""
    lines = []
    for name, (fam, members) in sorted(want.items()):
        if _same(now.get(name), fam, members):
            continue
        members = {_norm(m) for m in members}
        target = name + SWAP_SUFFIX if name in now else name
        lines += [f"create {target} hash:net family {fam}", f"flush {target}"]
        lines += [f"add {target} {m}" for m in sorted(members)]
        if target != name:
            lines += [f"swap {target} {name}", f"destroy {target}"]
    return lines


def _same(cur: tuple[str, set[str]] | None, fam: str, members: set[str]) -> bool:
    """Whether a set (as `parse` gives it) holds these members; normalises only when the plain comparison fails."""
    if cur is None or cur[0] != fam:
        return False
    return cur[1] == members or cur[1] == {_norm(m) for m in members}


def restore(lines: list[str], netns: str | None = None) -> None:
    if lines:
        proc.run(["ipset", "restore", "-exist"], netns=netns, input="\n".join(lines) + "\n")


def destroy(names: list[str], netns: str | None = None) -> None:
    """Destroy sets no rule references any more; one that is already gone is success."""
    if names:
        restore([f"destroy {n}" for n in names], netns)
