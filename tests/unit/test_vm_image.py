"""The VM image's pure parts: the newc cpio the kernel unpacks, module dependencies read from .modinfo, insmod
order, and QEMU's command line (one NIC on the tap, no other network)."""
from __future__ import annotations

import struct

import pytest

from neutrino.instances import vmimage
from neutrino.lib import qemu


def parse_newc(data: bytes) -> list[tuple[str, int, bytes, int, int]]:
    """(name, mode, data, rdevmajor, rdevminor) of each entry, read back as the kernel does."""
    out, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos:pos + filesize]
        pos = (pos + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out.append((name, f[1], body, f[9], f[10]))


def test_cpio_entries_round_trip_with_alignment():
    c = vmimage.Cpio()
    c.dir("etc")
    c.file("etc/rcS", b"#!/bin/sh\necho hi\n", 0o755)
    c.symlink("init", "bin/busybox")
    c.chardev("dev/console", 5, 1)
    data = c.close()
    assert len(data) % 4 == 0
    assert parse_newc(data) == [("etc", 0o040755, b"", 0, 0), ("etc/rcS", 0o100755, b"#!/bin/sh\necho hi\n", 0, 0),
                                ("init", 0o120777, b"bin/busybox", 0, 0), ("dev/console", 0o020600, b"", 5, 1)]


def fake_module(path, info: dict[str, str]) -> str:
    """A minimal ELF64 with a .modinfo section holding info (what modinfo() reads from a real .ko)."""
    modinfo = b"".join(f"{k}={v}".encode() + b"\0" for k, v in info.items())
    shstr = b"\0.modinfo\0.shstrtab\0"
    body_off = 64
    mod_off, str_off = body_off, body_off + len(modinfo)
    sh_off = (str_off + len(shstr) + 7) & ~7
    header = bytearray(64)
    header[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", header, 0x28, sh_off)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 2)
    sections = [bytes(64),
                struct.pack("<IIQQQQ", 1, 1, 0, 0, mod_off, len(modinfo)).ljust(64, b"\0"),
                struct.pack("<IIQQQQ", 10, 3, 0, 0, str_off, len(shstr)).ljust(64, b"\0")]
    blob = bytes(header) + modinfo + shstr
    blob = blob.ljust(sh_off, b"\0") + b"".join(sections)
    path.write_bytes(blob)
    return str(path)


def test_modinfo_reads_depends_from_the_elf_section(tmp_path):
    p = fake_module(tmp_path / "virtio_net.ko", {"license": "GPL", "depends": "net_failover,virtio", "name": "x"})
    assert vmimage.modinfo(p)["depends"] == "net_failover,virtio"


def test_load_order_puts_every_dependency_first(tmp_path):
    deps = {"virtio_net": "net_failover,virtio,virtio_ring", "net_failover": "failover", "failover": "",
            "virtio": "", "virtio_ring": "", "virtio_pci": "virtio_pci-modern-dev,virtio,virtio_ring",
            "virtio_pci_modern_dev": ""}
    paths = {n: fake_module(tmp_path / f"{n}.ko", {"depends": d}) for n, d in deps.items()}
    order = vmimage.load_order(("virtio_pci", "virtio_net"), paths)
    assert sorted(order) == sorted(deps)
    for name, d in deps.items():
        for dep in filter(None, d.replace("-", "_").split(",")):
            assert order.index(dep) < order.index(name)


def test_load_order_names_a_missing_module_and_a_cycle(tmp_path):
    paths = {"a": fake_module(tmp_path / "a.ko", {"depends": "b"}), "b": fake_module(tmp_path / "b.ko",
                                                                                       {"depends": "a"})}
    with pytest.raises(vmimage.ImageError, match="cycle"):
        vmimage.load_order(("a",), paths)
    with pytest.raises(vmimage.ImageError, match="not in the kernel package"):
        vmimage.load_order(("c",), paths)


def test_qemu_has_one_nic_on_the_tap_and_no_other_network():
    args = qemu.argv("/k", "/i.gz", "tap1234", "fa:16:3e:00:00:01", "/s/console.log", "tcg", "vm1")
    joined = " ".join(args)
    assert "-nodefaults" in args and "-no-user-config" in args
    assert args.count("-netdev") == 1 and "tap,id=net0,ifname=tap1234,script=no,downscript=no" in args
    assert "virtio-net-pci,netdev=net0,mac=fa:16:3e:00:00:01" in args
    assert "-nic" not in args and "-net" not in args and "user," not in joined and "hostfwd" not in joined
    assert "file:/s/console.log" in args and "q35,accel=tcg" in args
