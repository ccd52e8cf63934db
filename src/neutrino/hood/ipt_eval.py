"""An evaluator for the iptables rules neutrino writes, run over `iptables-save -c` text: which rule decides a packet.

It knows the matches and targets of the seed's chains (addresses, interfaces with `+`, protocols and ports, icmp
types, state/conntrack, physdev, mac, ipset, comment, mark/connmark; ACCEPT/DROP/REJECT/RETURN, jumps and gotos,
DNAT/SNAT/REDIRECT/MASQUERADE, CT/LOG/MARK/CONNMARK which do not end the walk; `marked` applies MARK/CONNMARK).
A rule using anything else is never taken and is reported in `Result.unknown`, so a trace says where it could not
be sure instead of guessing.
"""
from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field, replace

from neutrino.agent.firewall.ports import proto_number

TERMINAL = {"ACCEPT", "DROP", "REJECT"}
NAT = {"DNAT", "SNAT", "REDIRECT", "MASQUERADE"}
NONTERMINAL = {"CT", "LOG", "MARK", "CONNMARK", "NOTRACK", "CHECKSUM", "TRACE"}
ICMP_NAMES = {"echo-reply": "0", "destination-unreachable": "3", "echo-request": "8", "time-exceeded": "11"}
# options that take no argument
FLAGS = {"--physdev-is-bridged", "--physdev-is-in", "--physdev-is-out", "--notrack", "--random", "--persistent",
         "--syn"}


@dataclass
class Rule:
    chain: str
    index: int                  # 1-based position in its chain
    text: str                   # as iptables-save printed it (without counters)
    packets: int = 0
    bytes: int = 0
    matches: list[tuple[bool, str, list[str]]] = field(default_factory=list)   # (negated, option, args)
    target: str | None = None
    goto: bool = False
    target_opts: dict[str, str] = field(default_factory=dict)

    @property
    def line(self) -> str:
        return f"-A {self.chain} {self.text}"


@dataclass
class Table:
    name: str
    policies: dict[str, str] = field(default_factory=dict)     # chain -> policy ('-' for user chains)
    chains: dict[str, list[Rule]] = field(default_factory=dict)


def _parse_rule(chain: str, index: int, text: str, packets: int, nbytes: int) -> Rule:
    rule = Rule(chain, index, text, packets, nbytes)
    toks = shlex.split(text)
    i, neg, module = 0, False, ""
    while i < len(toks):
        t = toks[i]
        if t == "!":
            neg = True
            i += 1
            continue
        if t in ("-j", "-g"):
            rule.target, rule.goto = toks[i + 1], t == "-g"
            i += 2
            while i < len(toks) and toks[i].startswith("--"):
                if toks[i] in FLAGS or i + 1 >= len(toks) or toks[i + 1].startswith("--"):
                    rule.target_opts[toks[i]] = ""
                    i += 1
                else:
                    rule.target_opts[toks[i]] = toks[i + 1]
                    i += 2
            continue
        if t == "-m":
            module = toks[i + 1]    # implied by its options, except mark and connmark which share --mark
            i += 2
            continue
        if t == "--mark" and module == "connmark":
            t = "--connmark"
        args = []
        i += 1
        if t not in FLAGS:
            # --match-set takes two words; everything else one (or none for flags)
            n = 2 if t == "--match-set" else 1
            args, i = toks[i:i + n], i + n
        rule.matches.append((neg, t, args))
        neg = False
    return rule


def parse(text: str) -> dict[str, Table]:
    """`iptables-save [-c]` text (one or more tables) -> table name -> Table."""
    tables: dict[str, Table] = {}
    cur: Table | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            cur = tables.setdefault(line[1:], Table(line[1:]))
        elif cur is None or not line or line.startswith("#") or line == "COMMIT":
            continue
        elif line.startswith(":"):
            name, policy = line[1:].split()[:2]
            cur.policies[name] = policy
            cur.chains.setdefault(name, [])
        else:
            packets = nbytes = 0
            if line.startswith("["):
                counters, _, line = line.partition("] ")
                packets, nbytes = (int(x) for x in counters[1:].split(":"))
            if line.startswith("-A "):
                chain, _, rest = line[3:].partition(" ")
                rules = cur.chains.setdefault(chain, [])
                rules.append(_parse_rule(chain, len(rules) + 1, rest, packets, nbytes))
    return tables


@dataclass
class Packet:
    """The first packet of a flow as one iptables hook sees it."""
    src: str
    dst: str
    proto: str = "icmp"               # tcp | udp | icmp | a number
    sport: int | None = None
    dport: int | None = None
    icmp_type: int = 8
    icmp_code: int = 0
    iif: str | None = None            # -i (on a bridge with br_netfilter: the bridge)
    oif: str | None = None
    physdev_in: str | None = None
    physdev_out: str | None = None
    mac_src: str | None = None
    ctstate: frozenset[str] = frozenset({"NEW"})
    mark: int = 0                     # the packet's fwmark (address scope marks in routers)
    connmark: int = 0                 # its connection's mark


@dataclass
class Result:
    verdict: str                                         # ACCEPT | DROP | REJECT | DNAT | SNAT | REDIRECT | ...
    rule: Rule | None = None                             # the rule that decided (None: the chain policy)
    path: list[Rule] = field(default_factory=list)       # every rule taken, in order (jumps included)
    nat: dict[str, str] = field(default_factory=dict)    # target options of the deciding NAT rule
    effects: list[Rule] = field(default_factory=list)    # non-terminal targets taken (CT --notrack, ...)
    unknown: list[str] = field(default_factory=list)     # options this evaluator does not know

    @property
    def decided_by(self) -> str:
        return self.rule.line if self.rule else f"policy {self.verdict}"


def _iface(pattern: str, name: str | None) -> bool:
    if name is None:
        return False
    return name.startswith(pattern[:-1]) if pattern.endswith("+") else name == pattern


def _in_net(addr: str, cidr: str) -> bool:
    return ipaddress.ip_address(addr) in ipaddress.ip_network(cidr, strict=False)


def _port_in(port: int | None, spec: str) -> bool:
    if port is None:
        return False
    lo, _, hi = spec.partition(":")
    return int(lo or 0) <= port <= int(hi or lo or 65535)


def _icmp(pkt: Packet, spec: str) -> bool:
    if spec == "any":
        return True
    spec = ICMP_NAMES.get(spec, spec)
    t, _, code = spec.partition("/")
    return pkt.icmp_type == int(t) and (not code or pkt.icmp_code == int(code))


def _proto(pkt: Packet) -> int | None:
    return proto_number(pkt.proto, "IPv4")


def _match(opt: str, args: list[str], pkt: Packet, ipsets: dict[str, list[str]]) -> bool | None:
    """Whether one (non-negated) match holds; None when the option is unknown."""
    a = args[0] if args else ""
    if opt in ("-s", "--source"):
        return _in_net(pkt.src, a)
    if opt in ("-d", "--destination"):
        return _in_net(pkt.dst, a)
    if opt in ("-i", "--in-interface"):
        return _iface(a, pkt.iif)
    if opt in ("-o", "--out-interface"):
        return _iface(a, pkt.oif)
    if opt in ("-p", "--protocol"):
        return a == "all" or proto_number(a, "IPv4") == _proto(pkt)
    if opt in ("--dport", "--destination-port"):
        return _port_in(pkt.dport, a)
    if opt in ("--sport", "--source-port"):
        return _port_in(pkt.sport, a)
    if opt == "--icmp-type":
        return _proto(pkt) == 1 and _icmp(pkt, a)
    if opt in ("--state", "--ctstate"):
        return bool(set(a.split(",")) & pkt.ctstate)
    if opt == "--physdev-in":
        return _iface(a, pkt.physdev_in)
    if opt == "--physdev-out":
        return _iface(a, pkt.physdev_out)
    if opt == "--physdev-is-bridged":
        return pkt.physdev_in is not None and pkt.physdev_out is not None
    if opt == "--physdev-is-in":
        return pkt.physdev_in is not None
    if opt == "--physdev-is-out":
        return pkt.physdev_out is not None
    if opt == "--mac-source":
        return pkt.mac_src is not None and pkt.mac_src.lower() == a.lower()
    if opt == "--match-set":
        addr = pkt.src if args[1].split(",")[0] == "src" else pkt.dst
        return any(_in_net(addr, m) for m in ipsets.get(a, []))
    if opt == "--comment":
        return True
    if opt in ("--mark", "--connmark"):
        value, _, mask = a.partition("/")
        have = pkt.mark if opt == "--mark" else pkt.connmark
        return have & int(mask or "0xffffffff", 16) == int(value, 16)
    return None


def marked(pkt: Packet, effects: list[Rule]) -> Packet:
    """The packet after the MARK/CONNMARK effects of a walk (set-xmark, save-mark, restore-mark), in order."""
    for rule in effects:
        opts = rule.target_opts
        if rule.target == "MARK" and "--set-xmark" in opts:
            value, _, mask = opts["--set-xmark"].partition("/")
            pkt = replace(pkt, mark=(pkt.mark & ~int(mask or "0xffffffff", 16)) ^ int(value, 16))
        elif rule.target == "CONNMARK":
            mask = int(opts.get("--nfmask", "0xffffffff"), 16)
            if "--save-mark" in opts:
                pkt = replace(pkt, connmark=(pkt.connmark & ~mask) | (pkt.mark & mask))
            elif "--restore-mark" in opts:
                pkt = replace(pkt, mark=(pkt.mark & ~mask) | (pkt.connmark & mask))
    return pkt


def _rule_matches(rule: Rule, pkt: Packet, ipsets: dict[str, list[str]], unknown: list[str]) -> bool:
    for neg, opt, args in rule.matches:
        hit = _match(opt, args, pkt, ipsets)
        if hit is None:
            unknown.append(f"{rule.line}: {opt}")
            return False
        if hit == neg:
            return False
    return True


def evaluate(table: Table, chain: str, pkt: Packet, ipsets: dict[str, list[str]] | None = None) -> Result:
    """Walk a packet through a built-in chain of a table: the verdict and the rule that gave it."""
    ipsets = ipsets or {}
    res = Result("ACCEPT")

    def walk(name: str, depth: int) -> Rule | str | None:
        """A terminal Rule, 'RETURN-builtin', or None when the chain ran out (or RETURNed)."""
        if depth > 64:
            raise ValueError(f"chain loop at {name}")
        for rule in table.chains.get(name, []):
            if not _rule_matches(rule, pkt, ipsets, res.unknown):
                continue
            target = rule.target
            if target is None:
                continue
            res.path.append(rule)
            if target in TERMINAL or target in NAT:
                return rule
            if target == "RETURN":
                return None
            if target in NONTERMINAL:
                res.effects.append(rule)
                continue
            if target in table.chains:
                got = walk(target, depth + 1)
                if got is not None or rule.goto:
                    return got
                continue
            res.unknown.append(f"{rule.line}: target {target}")
        return None

    decided = walk(chain, 0)
    if isinstance(decided, Rule):
        res.rule, res.verdict, res.nat = decided, decided.target, dict(decided.target_opts)
    else:
        res.verdict = table.policies.get(chain, "ACCEPT")
    return res
