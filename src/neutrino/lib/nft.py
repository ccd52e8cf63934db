"""nftables tables owned by neutrino, changed with one atomic `nft -f` per change, chain by chain.

A caller describes whole tables (chains with their rules, sets and maps with their elements). `plan` compares
them with what the kernel has (see `read`) and writes one script that creates what is missing, flushes
and refills only the chains whose rules differ, adds and deletes only the set/map elements that differ, and
deletes what is no longer wanted. To compare chains without depending on how nft re-prints a rule, the last rule
of every chain carries a comment `h:<digest of the chain's wanted rules>`; a chain whose digest or rule count
differs is rewritten. Elements are compared in nft syntax (see `element`). `state` says what `read` would give back
after a plan is applied, so a caller may keep that instead of reading the tables again.

nft runs in this process, through libnftables (what the `nft` program is a front end of), in a thread that entered
the namespace (lib.nsthread: it stays there between calls): no `ip netns exec ... nft` processes (10-30 ms a
call), no thread started per call (5-25 ms on a loaded host). What stays is nft's own cache: before a
batch, nft 1.0.6 lists what its commands need, and for `add rule`/`add element`/`delete ...` that is every chain and
set of the namespace (~2 us a chain; 30,000 chains at 5000 ports). `plan` writes adds in forms that need only the
table list (see there). The kernel still checks a table for loops (every chain reachable from its base chains) on
every commit that adds a rule or a verdict-map jump to it: ~12 ms per 1000 ports of one firewall table here, and
only the tables the commit touched (a small table beside a big one: 0.4 ms), which is why the firewall shards.
"""
from __future__ import annotations

import ctypes
import hashlib
import ipaddress
import json
import os
import re
import socket
import struct
import threading
from dataclasses import dataclass, field

from neutrino.errors import KernelError
from neutrino.lib import nft_delete, nsthread

_COMMENT = re.compile(r'comment "([^"]*)"$')
_SET_REF = re.compile(r"@([A-Za-z_][\w.-]*)")
JSON, TERSE = 1 << 4, 1 << 11          # libnftables output flags (`nft -j`, `nft -t`)
_cli_lock = threading.Lock()           # one command at a time (libnftables does not say it is thread-safe)
_lib: ctypes.CDLL | None = None


def _libnftables() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError as e:
            raise KernelError(f"libnftables (the library of the nft program) is not installed: {e}") from e
        ptr, text = ctypes.c_void_p, ctypes.c_char_p
        for fn, res, args in (("nft_ctx_new", ptr, [ctypes.c_uint32]), ("nft_ctx_free", None, [ptr]),
                              ("nft_ctx_buffer_output", ctypes.c_int, [ptr]),
                              ("nft_ctx_buffer_error", ctypes.c_int, [ptr]),
                              ("nft_ctx_output_set_flags", None, [ptr, ctypes.c_uint]),
                              ("nft_ctx_get_output_buffer", text, [ptr]), ("nft_ctx_get_error_buffer", text, [ptr]),
                              ("nft_run_cmd_from_buffer", ctypes.c_int, [ptr, text])):
            getattr(lib, fn).restype, getattr(lib, fn).argtypes = res, args
        _lib = lib
    return _lib


class _Thread:
    """A libnftables context and a netfilter netlink socket of one thread, in its namespace, kept while the thread
    lives (lib.nsthread keeps one per namespace): closing a netfilter socket after a commit that deleted anything
    waits for the kernel to free what was deleted (nft_rcv_nl_event flushes that work: an RCU grace period, 8-16
    ms here), which made every nft call cost that much, a one-port change at 10 ports included."""

    def __init__(self):
        self.lib = _libnftables()
        self.ctx = self.lib.nft_ctx_new(0)
        self.lib.nft_ctx_buffer_output(self.ctx)
        self.lib.nft_ctx_buffer_error(self.ctx)
        self._sock: socket.socket | None = None

    def sock(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)      # NETLINK_NETFILTER
        return self._sock

    def drop_sock(self) -> None:
        """After an error: the socket may hold answers nobody read."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __del__(self):
        self.lib.nft_ctx_free(self.ctx)
        self.drop_sock()


_local = threading.local()


def _here() -> _Thread:
    t = getattr(_local, "nft", None)
    if t is None:
        t = _local.nft = _Thread()
    return t


def _cli(text: str, flags: int = 0) -> tuple[int, str, str]:
    """`nft` on text in the calling thread's namespace: (0 on success, output, error output)."""
    here = _here()
    lib, ctx = here.lib, here.ctx
    with _cli_lock:
        lib.nft_ctx_output_set_flags(ctx, flags)
        rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
        return rc, (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(), \
            (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()


def _delete(messages: list) -> None:
    """lib.nft_delete.send on this thread's socket (dropped after an error)."""
    here = _here()
    try:
        nft_delete.send(here.sock(), messages)
    except BaseException:
        here.drop_sock()
        raise


def _in_ns(netns: str | None, fn, *args):
    """fn(*args) inside network namespace ns (a thread that stays there between calls; None: this thread)."""
    return nsthread.run(netns, fn, *args)


@dataclass
class Chain:
    rules: list[str]
    base: str | None = None          # e.g. "type filter hook forward priority 0; policy accept;"
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    _held: tuple[int, str | None] | None = field(default=None, init=False, repr=False, compare=False)

    def digest(self) -> str:
        """Identity of the rules (computed once: a chain is not changed after it is made)."""
        if self._digest is None:
            self._digest = "h:" + hashlib.sha1("\n".join([self.base or "", *self.rules]).encode()).hexdigest()[:16]
        return self._digest

    def held(self) -> tuple[int, str | None]:
        """What `read` gives back for this chain once written: (rule count, digest comment of its last rule)."""
        if self._held is None:
            self._held = (len(self.rules), self.digest() if self.rules else None)
        return self._held


@dataclass
class Set:
    decl: str                        # e.g. "type ipv4_addr; flags interval;" or "type ifname : mark;"
    elements: dict[str, str | None] = field(default_factory=dict)   # key -> value (None for plain sets)


@dataclass
class Table:
    family: str
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, Set] = field(default_factory=dict)


@dataclass
class Current:
    chains: dict[str, tuple[int, str | None]]           # name -> (rule count, digest comment of last rule)
    sets: dict[str, dict[str, str | None]]              # name -> elements in nft syntax
    maps: set[str] = field(default_factory=set)         # which of `sets` are maps
    made: dict[str, Chain] | None = field(default=None, compare=False)   # by `state`: the chains written


def _atom(value, typ: str) -> str:
    """One JSON element component in the nft syntax neutrino writes."""
    if isinstance(value, dict):
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "range" in value:
            return "-".join(_atom(v, typ) for v in value["range"])
        for verdict in ("jump", "goto"):
            if verdict in value:
                return f"{verdict} {value[verdict]['target']}"
        if "elem" in value:
            return _atom(value["elem"]["val"], typ)
        raise KernelError(f"unexpected nft element {value}")
    if typ == "ifname":
        return f'"{value}"'
    if typ in ("ipv4_addr", "ipv6_addr"):
        return str(ipaddress.ip_network(value))
    return str(value)


def element(value, types: list[str]) -> str:
    if isinstance(value, dict) and "concat" in value:
        return " . ".join(_atom(v, t) for v, t in zip(value["concat"], types))
    if isinstance(value, dict) and "elem" in value:
        return element(value["elem"]["val"], types)
    return _atom(value, types[0])


def parse(objects: list[dict]) -> Current:
    """`nft -j list table` objects -> Current."""
    chains: dict[str, list] = {}
    sets: dict[str, dict[str, str | None]] = {}
    maps: set[str] = set()
    for obj in objects:
        if "chain" in obj:
            chains.setdefault(obj["chain"]["name"], [0, None])
        elif "rule" in obj:
            c = chains.setdefault(obj["rule"]["chain"], [0, None])
            c[0] += 1
            c[1] = obj["rule"].get("comment")
        elif "set" in obj or "map" in obj:
            s = obj.get("set") or obj["map"]
            types = s["type"] if isinstance(s["type"], list) else [s["type"]]
            vtype = s.get("map")
            elems: dict[str, str | None] = {}
            for e in s.get("elem", []):
                if "map" in obj:
                    elems[element(e[0], types)] = _atom(e[1], vtype)
                else:
                    elems[element(e, types)] = None
            sets[s["name"]] = elems
            if "map" in obj:
                maps.add(s["name"])
    return Current({k: (v[0], v[1]) for k, v in chains.items()}, sets, maps)


def parse_chains(text: str) -> dict[str, tuple[int, str | None]]:
    """`nft -t list table` text -> chain -> (rule count, comment of its last rule)."""
    chains: dict[str, list] = {}
    cur = None
    for line in text.splitlines():
        s = line.strip()
        if s.endswith("{"):
            words = s.split()
            cur = chains.setdefault(words[1], [0, None]) if words[0] == "chain" else None
        elif s == "}":
            cur = None
        elif cur is not None and s and not (s.startswith("type ") and " hook " in s):
            cur[0] += 1
            m = _COMMENT.search(s)
            cur[1] = m.group(1) if m else None
    return {k: (v[0], v[1]) for k, v in chains.items()}


def read(family: str, name: str, netns: str | None = None) -> Current | None:
    """What the kernel has in a table; None when the table does not exist."""
    return read_tables(family, [name], netns)[name]


def read_tables(family: str, tables: list[str], netns: str | None = None) -> dict[str, Current | None]:
    """What the kernel has in each of a family's tables (None: no such table). Chains come from the terse text
    listing of each table and sets from one JSON set/map listing of the family: a full JSON listing costs ~5x
    more at 1000 ports."""
    def listings() -> tuple[list[tuple[int, str, str]], list[str]]:
        texts = [_cli(f"list table {family} {name}", TERSE) for name in tables]
        found = any(rc == 0 for rc, _, _ in texts)
        return texts, [_cli(f"list {kind} {family}", JSON)[1] for kind in ("sets", "maps")] if found else []
    texts, sets = _in_ns(netns, listings)
    by_table: dict[str, list[dict]] = {}
    for out in sets:
        for o in json.loads(out)["nftables"]:
            s = o.get("set") or o.get("map")
            if s is not None:
                by_table.setdefault(s["table"], []).append(o)
    got: dict[str, Current | None] = {}
    for name, (rc, text, err) in zip(tables, texts):
        if rc != 0:
            if "No such file" not in err:
                raise KernelError(f"nft list table {family} {name}: {err.strip()}", returncode=rc, stderr=err)
            got[name] = None
            continue
        cur = got[name] = parse(by_table.get(name, []))
        cur.chains = parse_chains(text)
    return got


def shard(stem: str, k: int) -> str:
    """Table k of a set of shard tables `<stem>-<k>` (the firewall's and the anti-spoof's: see their modules)."""
    return f"{stem}-{k}"


def is_shard(stem: str, table: str) -> bool:
    return table.startswith(stem + "-") and table[len(stem) + 1:].isdigit()


def table_names(family: str, netns: str | None = None) -> list[str]:
    """The names of a family's tables in a namespace ([] when the namespace is gone)."""
    if netns is not None and not os.path.exists(f"/run/netns/{netns}"):
        return []
    rc, out, err = _in_ns(netns, _cli, f"list tables {family}")
    if rc != 0:
        raise KernelError(f"nft list tables {family}: {err.strip()}", returncode=rc, stderr=err)
    return [line.split()[2] for line in out.splitlines() if line.startswith("table ")]


def _elems(kind_map: bool, items: dict[str, str | None]) -> str:
    return ", ".join(f"{k} : {v}" if kind_map else k for k, v in sorted(items.items()))


def plan(now: Current | None, want: Table, diffs: dict | None = None) -> list[str]:
    """The nft script lines that turn `now` into `want` ([] when equal).

    Written for nft's cache (see the module docstring): `add rule`, `add element`, `delete element` and `delete
    chain` make nft 1.0.6 dump every chain of the namespace first (30,000 at 5000 ports, ~60 ms), while `flush
    chain`, `add chain T C { rules }` and `add set T S { decl; elements = {...}; }` only list the tables. So
    chains are (re)filled through their `add chain` block and elements added through their set's declaration;
    a set a written rule names is declared first (nft checks a rule's `@set` against the sets it knows). Only a
    removal (`delete ...`) goes as raw netlink (see `run`).

    A set whose elements are the very object `now` holds is unchanged (firewall shards share one Set per remote
    group); `diffs`, shared by the plans of one change, computes the difference of two element dicts once."""
    t = f"{want.family} {want.name}"
    first, dels, rules, adds, last = [], [], [], [], []
    if now is None:
        first.append(f"add table {t}")
        now = Current({}, {})
    for name, s in want.sets.items():
        kind = "map" if _is_map(s) else "set"
        cur = now.sets.get(name, {})
        if name in now.sets and (cur is s.elements or cur == s.elements):    # the common case, compared in C
            continue
        key = (id(cur), id(s.elements))
        hit = diffs.get(key) if diffs is not None else None
        if hit is None:                                    # set operations on the items: in C
            hit = (dict(cur.items() - s.elements.items()), dict(s.elements.items() - cur.items()), cur, s.elements)
            if diffs is not None:
                diffs[key] = hit                           # (the dicts held too: their ids stay theirs)
        gone, new = hit[0], hit[1]
        if name not in now.sets:
            first.append(f"add {kind} {t} {name} {{ {s.decl} }}")
        if gone:
            dels.append(f"delete element {t} {name} {{ {', '.join(sorted(gone))} }}")
        if new:
            adds.append(f"add {kind} {t} {name} {{ {s.decl} elements = {{ {_elems(kind == 'map', new)} }}; }}")
    chains = now.chains
    same = now.made is not None and now.made == want.chains      # the same Chain objects: compared in C
    for name, c in () if same else want.chains.items():
        cur = chains.get(name)
        if cur == c.held():
            continue
        digest = c.digest()
        if cur is None:         # declared ahead of every block: a rule may jump to a chain written after it
            first.append(f"add chain {t} {name}" + (f" {{ {c.base} }}" if c.base else ""))
        else:
            rules.append(f"flush chain {t} {name}")
        if not c.rules:
            continue
        body = [c.base.rstrip("; ")] if c.base else []
        body += [r + (f' comment "{digest}"' if i == len(c.rules) - 1 else "") for i, r in enumerate(c.rules)]
        rules.append(f"add chain {t} {name} {{ {'; '.join(body)}; }}")
    stale_chains = [] if same else sorted(set(now.chains) - set(want.chains))
    # emptied first (their rules name sets and chains), then the sets and maps (a verdict map's elements name
    # chains), then the chains: each goes when nothing names it any more
    last += [f"flush chain {t} {c}" for c in stale_chains]
    for name in sorted(set(now.sets) - set(want.sets)):
        last.append(f"delete {'map' if name in now.maps else 'set'} {t} {name}")
    last += [f"delete chain {t} {c}" for c in stale_chains]
    if not (first or dels or rules or adds or last):
        return []
    refs = set(_SET_REF.findall("\n".join(rules)))
    declared = [f"add {'map' if _is_map(s) else 'set'} {t} {name} {{ {s.decl} }}" for name, s in want.sets.items()
                if name in now.sets and name in refs]
    return first + declared + dels + rules + adds + last


def state(table: Table, before: Current | None = None) -> Current:
    """What `read` gives back once `plan(before, table)` is applied (a caller may keep it instead of reading
    again); the chains of `before` are kept when they were made of the same chains."""
    same = before is not None and before.made is not None and before.made == table.chains
    return Current(before.chains if same else {n: c.held() for n, c in table.chains.items()},
                   {n: s.elements for n, s in table.sets.items()},         # shared: a Table is not changed later
                   {n for n, s in table.sets.items() if _is_map(s)}, table.chains)


def _is_map(s: Set) -> bool:
    return ":" in s.decl.split(";")[0]


_own: dict[str | None, dict[int, int]] = {}     # ns -> {generation after a commit of ours: the one before it}


def run(script: list[str], netns: str | None = None) -> int:
    """Apply a script: its deletions as raw netlink transactions (lib.nft_delete: nft would list the whole
    ruleset first) around one `nft -f` transaction of the rest; without the rest, all deletions in one. A
    generation moved by exactly the transactions made is this process's own (see `own`). Returns what
    `generation` answers right after (read in the same visit to the namespace)."""
    if not script:
        return generation(netns)
    first, text, last = nft_delete.split(script)
    if not text:
        first, last = first + last, []
    batches = bool(first) + bool(text) + bool(last)

    def commit() -> tuple[int, int, int, str]:
        before = _generation()
        _delete(first)
        rc, err = 0, ""
        if text:
            rc, _, err = _cli("\n".join(text) + "\n")
        if rc == 0:
            _delete(last)
        return before, _generation(), rc, err
    before, after, rc, err = _in_ns(netns, commit)
    if rc != 0:
        raise KernelError(f"nft -f in {netns or 'own ns'}: {err.strip()}", returncode=rc, stderr=err)
    _owned(netns, before, after, batches)
    return _own.get(netns, {}).get(after, after)


def own(netns: str | None, write, commits: int = 1) -> None:
    """Run `write`, a change of this process to the namespace's ruleset in `commits` transactions. When the
    generation moved by exactly that much (nobody else committed meanwhile), `generation` keeps answering the one
    before: each of this process's drivers owns its own tables, so a sibling's write (the L2 anti-spoof table, the
    firewall's tables) must not make the others read theirs back. A change by anyone else still shows."""
    before = _raw_generation(netns)
    write()
    _owned(netns, before, _raw_generation(netns), commits)


def _owned(netns: str | None, before: int, after: int, commits: int) -> None:
    if after == before + commits:
        seen = _own.setdefault(netns, {})
        seen[after] = seen.get(before, before)
        if len(seen) > 1024:
            del seen[next(iter(seen))]


def apply(tables: list[Table], netns: str | None = None) -> list[str]:
    """Make the kernel hold these tables, all in one atomic `nft -f`; returns the script ([] = no change)."""
    script = []
    for want in tables:
        script += plan(read(want.family, want.name, netns), want)
    run(script, netns)
    return script


def _generation() -> int:
    """NFT_MSG_GETGEN on the calling thread's netfilter netlink socket (its namespace's) -> NFTA_GEN_ID."""
    here = _here()
    try:
        sock = here.sock()
        sock.send(struct.pack("=LHHLLBBH", 20, (10 << 8) | 16, 1, 1, 0, 0, 0, 0))   # NFNL_SUBSYS_NFTABLES, GETGEN
        data = sock.recv(65536)
    except OSError:
        here.drop_sock()
        raise
    length, typ = struct.unpack_from("=LH", data)
    off = 20
    while typ != 2 and off + 4 <= length:                                  # 2 = NLMSG_ERROR
        alen, atype = struct.unpack_from("=HH", data, off)
        if atype & 0x3FFF == 1 and alen >= 8:                              # NFTA_GEN_ID, big endian
            return struct.unpack_from(">L", data, off + 4)[0]
        off += (alen + 3) & ~3
    here.drop_sock()
    raise KernelError("nftables generation: no answer")


def generation(netns: str | None = None) -> int:
    """The nftables ruleset generation of a namespace (~0.2 ms), not counting this process's own commits (see
    `own`). The kernel bumps it on every committed change, by anyone, iptables-nft included; an unchanged number
    means nobody else changed any table since."""
    raw = _raw_generation(netns)
    return _own.get(netns, {}).get(raw, raw)


def _raw_generation(netns: str | None) -> int:
    try:
        return _in_ns(netns, _generation)
    except KernelError:
        raise
    except Exception as e:                      # noqa: BLE001 - a socket error, as a kernel error
        raise KernelError(f"nftables generation in {netns or 'own ns'}: {e}", errno=e.errno) from e


def delete_table(family: str, name: str, netns: str | None = None) -> None:
    if netns is not None and not os.path.exists(f"/run/netns/{netns}"):
        return                                  # the namespace took its tables with it
    rc, _, err = _in_ns(netns, _cli, f"delete table {family} {name}")
    if rc != 0 and "No such file" not in err:
        raise KernelError(f"nft delete table {family} {name}: {err.strip()}", returncode=rc, stderr=err)
