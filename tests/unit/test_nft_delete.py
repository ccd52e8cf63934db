"""lib.nft_delete: which script lines become raw netlink deletions, in what order, and their element keys."""
from __future__ import annotations

import struct

from neutrino.lib import nft_delete


def _keys(text: str) -> list[tuple[bytes, bool]]:
    """(key bytes, interval end) of each kernel element of one element as lib.nft writes it."""
    out = []
    for elem in nft_delete._element(text):
        key = elem[4 + 4 + 4:]                       # LIST_ELEM hdr, SET_ELEM_KEY hdr, DATA_VALUE hdr
        length = struct.unpack_from("=H", elem, 8)[0] - 4
        out.append((key[:length], elem.endswith(struct.pack("=HH", 8, 3) + struct.pack(">L", 1))))
    return out


def test_element_keys():
    assert _keys('"tapaaaaaaaa-aa"') == [(b"tapaaaaaaaa-aa\0\0", False)]         # IFNAMSIZ, zero padded
    assert _keys("720896") == [(struct.pack("=L", 720896), False)]             # a mark: host byte order
    assert _keys("10.0.0.5/32") == [(bytes([10, 0, 0, 5]), False), (bytes([10, 0, 0, 6]), True)]
    assert _keys("10.9.0.0/16") == [(bytes([10, 9, 0, 0]), False), (bytes([10, 10, 0, 0]), True)]
    assert _keys("10.0.0.1-10.0.0.3") == [(bytes([10, 0, 0, 1]), False), (bytes([10, 0, 0, 4]), True)]
    assert _keys("255.255.255.0/24") == [(bytes([255, 255, 255, 0]), False)]    # no end past the last address
    assert _keys("fe80::1/128") == [(bytes.fromhex("fe80" + "00" * 13 + "01"), False),
                                    (bytes.fromhex("fe80" + "00" * 13 + "02"), True)]
    assert nft_delete._element('"a-name-longer-than-ifnamsiz"') is None
    assert nft_delete._element("nd-router-advert") is None


def test_split_orders_deletions_around_what_nft_does():
    script = ["add chain inet t ix { drop; }",
              "delete element inet t to_port { 65536, 131072 }",
              "flush chain inet t ia", "add chain inet t ia { return; }",           # a refill: stays with nft
              "flush chain inet t ib", "flush chain inet t sb", "delete chain inet t ib", "delete chain inet t sb",
              "delete set inet t NIPv4x", "delete map bridge t m", "delete table inet t-3",
              "delete element inet t icmp { nd-router-advert }"]                    # not encodable: nft does it
    first, text, last = nft_delete.split(script)
    assert text == ["add chain inet t ix { drop; }", "flush chain inet t ia", "add chain inet t ia { return; }",
                    "delete element inet t icmp { nd-router-advert }"]
    assert [typ & 0xff for typ, _ in first] == [14]                                  # DELSETELEM
    assert [typ & 0xff for typ, _ in last] == [8, 8, 5, 5, 11, 11, 2]        # rules, chains, set, map, table
    assert all(typ >> 8 == nft_delete.NFNL_SUBSYS_NFTABLES for typ, _ in first + last)
    assert [body[0] for _, body in last] == [1, 1, 1, 1, 1, 7, 1]                     # inet, bridge families


def test_plan_removes_what_names_a_chain_before_the_chain():
    """A stale chain is emptied, then the stale sets and maps go (a verdict map's elements name chains), then the
    chain: the kernel refuses to delete anything still named (EBUSY), and these deletions are sent as one batch."""
    from neutrino.lib import nft
    old = nft.Table("inet", "neutrino")
    old.sets["to_port"] = nft.Set("type mark : verdict;", {"65536": "jump i1"})
    old.sets["grp"] = nft.Set("type ipv4_addr; flags interval;", {"10.0.0.5/32": None})
    old.chains["forward"] = nft.Chain(["meta mark vmap @to_port"], "type filter hook forward priority 0;")
    old.chains["i1"] = nft.Chain(["ip saddr @grp return", "drop"])
    script = nft.plan(nft.state(old), nft.Table("inet", "neutrino"))
    assert script == ["flush chain inet neutrino forward", "flush chain inet neutrino i1",
                      "delete set inet neutrino grp", "delete map inet neutrino to_port",
                      "delete chain inet neutrino forward", "delete chain inet neutrino i1"]
    first, text, last = nft_delete.split(script)
    assert not first and not text and len(last) == 6
