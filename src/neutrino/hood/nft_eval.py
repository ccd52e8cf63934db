"""An evaluator for the nftables rules neutrino writes, run over `nft -j list ruleset`: which rule decides a packet.

The nft counterpart of ipt_eval: it walks a base chain of a table with jumps, gotos, returns and verdict maps, and
knows the expressions of neutrino's tables (firewall/nft_rules.py, l2/antispoof.py): meta mark/iifname/oifname/
nfproto/l4proto, ct state, ip/ip6/tcp/udp/icmp/ether/arp payload fields, named sets and maps, `&`/`|` on marks, and
the statements mark set, ct zone set, notrack, counter. A rule using anything else is never taken and is reported
in `Result.unknown`, so a trace says where it could not be sure instead of guessing. The packet is ipt_eval's
Packet (IPv4 or ARP); in the bridge family iifname/oifname are the bridge ports (physdev_in/out), in the inet
family (br_netfilter) the bridge itself (iif/oif).
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field, replace

from neutrino.hood.ipt_eval import Packet

TERMINAL = {"accept", "drop", "reject"}
VERDICTS = TERMINAL | {"return", "jump", "goto", "continue"}
ICMP_TYPES = {"echo-reply": 0, "destination-unreachable": 3, "echo-request": 8, "time-exceeded": 11}
PROTO = {"icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58}
ETHER = {"icmp": "ip", "tcp": "ip", "udp": "ip", "arp": "arp"}


class Unknown(Exception):
    """An expression this evaluator does not know."""


@dataclass
class Rule:
    family: str
    table: str
    chain: str
    index: int                  # 1-based position in its chain
    handle: int
    expr: list[dict]
    comment: str | None = None

    @property
    def text(self) -> str:
        return render(self.expr)

    @property
    def line(self) -> str:
        return f"{self.family} {self.table} {self.chain}: {self.text}"


@dataclass
class Ruleset:
    chains: dict[tuple[str, str, str], list[Rule]] = field(default_factory=dict)
    policies: dict[tuple[str, str, str], str] = field(default_factory=dict)   # base chains only
    sets: dict[tuple[str, str, str], list] = field(default_factory=dict)      # elements ([key, value] for maps)

    def table(self, family: str, table: str) -> dict[str, list[Rule]]:
        return {c: rules for (f, t, c), rules in self.chains.items() if (f, t) == (family, table)}


def parse(objects: list[dict] | str) -> Ruleset:
    """`nft -j list ruleset` (its JSON text or its `nftables` list) -> Ruleset."""
    if isinstance(objects, str):
        objects = json.loads(objects or '{"nftables": []}')["nftables"] if objects.strip() else []
    rs = Ruleset()
    for o in objects:
        if "chain" in o:
            c = o["chain"]
            rs.chains.setdefault((c["family"], c["table"], c["name"]), [])
            if "hook" in c:
                rs.policies[(c["family"], c["table"], c["name"])] = c.get("policy", "accept")
        elif "rule" in o:
            r = o["rule"]
            rules = rs.chains.setdefault((r["family"], r["table"], r["chain"]), [])
            rules.append(Rule(r["family"], r["table"], r["chain"], len(rules) + 1, r.get("handle", 0), r["expr"],
                              r.get("comment")))
        elif "set" in o or "map" in o:
            s = o.get("set") or o.get("map")
            rs.sets[(s["family"], s["table"], s["name"])] = list(s.get("elem", []))
    return rs


@dataclass
class Result:
    verdict: str                                       # accept | drop | reject (a base chain's policy when None)
    packet: Packet                                     # after the statements taken (mark set, notrack)
    rule: Rule | None = None
    path: list[Rule] = field(default_factory=list)     # every rule taken, in order (jumps included)
    unknown: list[str] = field(default_factory=list)

    @property
    def decided_by(self) -> str:
        return self.rule.line if self.rule else f"policy {self.verdict}"


# --- expressions --------------------------------------------------------------------------------------------------

def _meta(key: str, pkt: Packet, family: str):
    if key == "mark":
        return pkt.mark
    if key in ("iifname", "oifname"):
        if family == "bridge":
            return pkt.physdev_in if key == "iifname" else pkt.physdev_out
        return pkt.iif if key == "iifname" else pkt.oif
    if key == "nfproto":
        return None if pkt.proto == "arp" else "ipv4"
    if key == "l4proto":
        return None if pkt.proto == "arp" else PROTO.get(pkt.proto, pkt.proto)
    raise Unknown(f"meta {key}")


def _payload(p: dict, pkt: Packet):
    proto, fld = p.get("protocol"), p.get("field")
    if proto is None:
        raise Unknown(f"raw payload @{p.get('base')},{p.get('offset')},{p.get('len')}")
    if proto == "ether":
        if fld == "saddr":
            return pkt.mac_src
        if fld == "type":
            return ETHER.get(pkt.proto, "ip")
    if proto == "ip":
        if pkt.proto == "arp":
            return None
        if fld in ("saddr", "daddr"):
            return ipaddress.ip_address(pkt.src if fld == "saddr" else pkt.dst)
        if fld == "protocol":
            return PROTO.get(pkt.proto)
    if proto in ("ip6", "icmpv6"):
        return None                                   # traces are IPv4
    if proto in ("tcp", "udp", "th") and fld in ("sport", "dport"):
        if pkt.proto not in ("tcp", "udp") or proto not in (pkt.proto, "th"):
            return None
        return pkt.sport if fld == "sport" else pkt.dport
    if proto == "icmp" and fld in ("type", "code"):
        if pkt.proto != "icmp":
            return None
        return pkt.icmp_type if fld == "type" else pkt.icmp_code
    if proto == "arp":
        if pkt.proto != "arp":
            return None
        if fld == "saddr ip":
            return ipaddress.ip_address(pkt.src)
        if fld == "daddr ip":
            return ipaddress.ip_address(pkt.dst)
        if fld == "saddr ether":
            return pkt.mac_src
    raise Unknown(f"{proto} {fld}")


def value(e, pkt: Packet, family: str, rs: Ruleset, table: str):
    """The value an expression has for the packet; None when the packet has no such field (the match fails)."""
    if isinstance(e, (int, str)):
        return e
    if not isinstance(e, dict):
        raise Unknown(json.dumps(e))
    if "meta" in e:
        return _meta(e["meta"]["key"], pkt, family)
    if "payload" in e:
        return _payload(e["payload"], pkt)
    if "ct" in e:
        if e["ct"]["key"] == "state":
            return {s.lower() for s in pkt.ctstate}
        raise Unknown(f"ct {e['ct']['key']}")
    for op in ("&", "|", "^"):
        if op in e:
            a, b = (value(x, pkt, family, rs, table) for x in e[op])
            if a is None or b is None:
                return None
            return a & b if op == "&" else a | b if op == "|" else a ^ b
    if "map" in e:
        key = value(e["map"]["key"], pkt, family, rs, table)
        hit = _lookup(rs, family, table, e["map"]["data"], key)
        return None if hit is None else hit[1]
    raise Unknown(json.dumps(e))


def _element_matches(elem, v) -> bool:
    if isinstance(elem, dict) and "elem" in elem:
        elem = elem["elem"]["val"]
    if isinstance(elem, dict) and "prefix" in elem:
        return isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and v in ipaddress.ip_network(
            f"{elem['prefix']['addr']}/{elem['prefix']['len']}", strict=False)
    if isinstance(elem, dict) and "range" in elem:
        lo, hi = elem["range"]
        if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            lo, hi = ipaddress.ip_address(lo), ipaddress.ip_address(hi)
            return lo.version == v.version and lo <= v <= hi
        return isinstance(v, int) and lo <= v <= hi
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        try:
            return v == ipaddress.ip_address(elem)
        except ValueError:
            return False
    if isinstance(v, set):
        return elem in v
    if isinstance(v, str) and isinstance(elem, str):
        return v.lower() == elem.lower()
    if isinstance(v, int) and isinstance(elem, str):
        return ICMP_TYPES.get(elem, PROTO.get(elem)) == v
    return v == elem


def _lookup(rs: Ruleset, family: str, table: str, ref: str, key):
    """The [key, value] element of a named map (or the key of a named set) that `key` falls in, else None."""
    name = ref[1:] if isinstance(ref, str) and ref.startswith("@") else ref
    if (family, table, name) not in rs.sets:
        raise Unknown(f"set {ref}")
    if key is None:
        return None
    for el in rs.sets[(family, table, name)]:
        k, v = (el[0], el[1]) if isinstance(el, list) else (el, None)
        if _element_matches(k, key):
            return [k, v]
    return None


def _match(m: dict, pkt: Packet, family: str, rs: Ruleset, table: str) -> bool:
    left = value(m["left"], pkt, family, rs, table)
    if left is None:
        return False
    right, op = m["right"], m["op"]
    if isinstance(right, str) and right.startswith("@"):
        hit = _lookup(rs, family, table, right, left) is not None
    elif isinstance(right, dict) and "set" in right:
        hit = any(_element_matches(x, left) for x in right["set"])
    elif isinstance(right, list):
        hit = any(_element_matches(x, left) for x in right)
    else:
        hit = _element_matches(right, left)
    if op in ("==", "in"):
        return hit
    if op == "!=":
        return not hit
    raise Unknown(f"operator {op}")


# --- walking the chains -------------------------------------------------------------------------------------------

RETURN = "return"


def evaluate(rs: Ruleset, family: str, table: str, chain: str, pkt: Packet) -> Result:
    """Walk a packet through a base chain: the verdict, the rule that gave it and the packet after the walk."""
    res = Result(rs.policies.get((family, table, chain), "accept"), pkt)

    def verdict(v: dict, rule: Rule, depth: int):
        """What a verdict statement does: (rule, terminal verdict), RETURN, or None to go on with the next rule."""
        for t in TERMINAL:
            if t in v:
                return rule, t
        if "return" in v:
            return RETURN
        for kind in ("jump", "goto"):
            if kind in v:
                got = walk(v[kind]["target"], depth + 1)
                return RETURN if got is None and kind == "goto" else got
        if "continue" in v:
            return None
        raise Unknown(json.dumps(v))

    def took(rule: Rule) -> None:
        if not res.path or res.path[-1] is not rule:
            res.path.append(rule)

    def run(rule: Rule, depth: int):
        """One rule: None when it does not match or falls through, else what its verdict does."""
        for stmt in rule.expr:
            if "match" in stmt:
                if not _match(stmt["match"], res.packet, family, rs, table):
                    return None
            elif "mangle" in stmt:
                key = stmt["mangle"]["key"]
                new = value(stmt["mangle"]["value"], res.packet, family, rs, table)
                if new is None:                     # a map lookup without that key: the rule stops here
                    return None
                if key == {"meta": {"key": "mark"}}:
                    res.packet = replace(res.packet, mark=int(new))
                elif key != {"ct": {"key": "zone"}}:
                    raise Unknown(f"set {json.dumps(key)}")
                took(rule)
            elif "notrack" in stmt:
                res.packet = replace(res.packet, ctstate=frozenset({"UNTRACKED"}))
                took(rule)
            elif "counter" in stmt or "log" in stmt:
                continue
            elif "vmap" in stmt:
                key = value(stmt["vmap"]["key"], res.packet, family, rs, table)
                hit = _lookup(rs, family, table, stmt["vmap"]["data"], key)
                if hit is None:
                    return None
                took(rule)
                return verdict(hit[1], rule, depth)
            elif VERDICTS & stmt.keys():
                took(rule)
                return verdict(stmt, rule, depth)
            else:
                raise Unknown(json.dumps(stmt))
        return None

    def walk(name: str, depth: int):
        """(deciding rule, verdict), or None when the chain ran out or returned."""
        if depth > 64:
            raise ValueError(f"chain loop at {name}")
        for rule in rs.chains.get((family, table, name), []):
            try:
                got = run(rule, depth)
            except Unknown as e:
                res.unknown.append(f"{rule.line}: {e}")
                continue
            if got == RETURN:
                return None
            if got is not None:
                return got
        return None

    decided = walk(chain, 0)
    if decided is not None:
        res.rule, res.verdict = decided
    return res


# --- rendering ----------------------------------------------------------------------------------------------------

def _r(e) -> str:
    if isinstance(e, (int, str)):
        return str(e)
    if isinstance(e, list):
        return "{ " + ", ".join(_r(x) for x in e) + " }"
    if not isinstance(e, dict):
        return json.dumps(e)
    if "meta" in e:
        return f"meta {e['meta']['key']}"
    if "payload" in e:
        p = e["payload"]
        return f"{p['protocol']} {p['field']}" if "protocol" in p else f"@{p['base']},{p['offset']},{p['len']}"
    if "ct" in e:
        return f"ct {e['ct']['key']}"
    if "prefix" in e:
        return f"{e['prefix']['addr']}/{e['prefix']['len']}"
    if "range" in e:
        return "-".join(_r(x) for x in e["range"])
    if "set" in e:
        return _r(e["set"])
    for op in ("&", "|", "^"):
        if op in e:
            return f" {op} ".join(_r(x) for x in e[op])
    if "map" in e:
        return f"{_r(e['map']['key'])} map {e['map']['data']}"
    for k in ("jump", "goto"):
        if k in e:
            return f"{k} {e[k]['target']}"
    return json.dumps(e)


def render(expr: list[dict]) -> str:
    """A rule's statements in (roughly) nft's own syntax, for reports."""
    out = []
    for s in expr:
        if "match" in s:
            m = s["match"]
            op = "" if m["op"] in ("==", "in") else f"{m['op']} "
            out.append(f"{_r(m['left'])} {op}{_r(m['right'])}")
        elif "mangle" in s:
            out.append(f"{_r(s['mangle']['key'])} set {_r(s['mangle']['value'])}")
        elif "vmap" in s:
            out.append(f"{_r(s['vmap']['key'])} vmap {s['vmap']['data']}")
        elif len(s) == 1 and next(iter(s.values())) is None:
            out.append(next(iter(s)))
        else:
            out.append(_r(s))
    return " ".join(out)
