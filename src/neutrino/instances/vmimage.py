"""The VM image, built locally from Debian's packages: the kernel (vmlinuz) of the linux-image .deb that
scripts/setup.sh downloads (unpacked, never installed), and an initramfs holding busybox and dropbear with their
shared libraries (Debian's busybox or busybox-static, whichever is installed), the virtio NIC modules with their dependencies (insmod order, from each module's .modinfo: no depmod),
the udhcpc event script the namespace guests use, and the boot script vm_init.sh.

Built once per set of inputs into IMAGE_CACHE/<hash>/ (kernel .deb, busybox, dropbear, the scripts); a change to
any input makes a new image, an unchanged set reuses the cached one.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import shutil
import struct
from dataclasses import dataclass
from importlib import resources

from neutrino.errors import NeutrinoError
from neutrino.lib import binaries

IMAGE_CACHE = os.environ.get("NEUTRINO_VM_CACHE", "/var/cache/neutrino/vm")
KERNEL_DEBS = os.path.join(os.path.dirname(IMAGE_CACHE), "kernel")
BUSYBOX = "/bin/busybox"
DROPBEAR = "/usr/sbin/dropbear"
MODULES = ("virtio_pci", "virtio_net")          # the NIC: PCI transport + net driver (+ their dependencies)
FORMAT = "1"                                     # bump when the image layout changes


class ImageError(NeutrinoError):
    """The VM image cannot be built (a Debian package is missing)."""
    code = 400


@dataclass
class Image:
    kernel: str
    initrd: str


# --- initramfs (newc cpio) ----------------------------------------------------------------------------------------

class Cpio:
    """A newc cpio archive in memory, every entry owned by root: the format the kernel unpacks as initramfs."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 0

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        self.ino += 1
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
        self.buf.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0")
        self._pad()
        self.buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def dir(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, 0o040000 | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def close(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


# --- kernel modules -----------------------------------------------------------------------------------------------

def modinfo(path: str) -> dict[str, str]:
    """The key=value strings of a module's .modinfo ELF section (64-bit little-endian .ko)."""
    with open(path, "rb") as f:
        elf = f.read()
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise ImageError(f"{path} is not a 64-bit ELF module")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)
        return name, offset, size

    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, offset, size = section(i)
        if elf[stroff + name:elf.index(b"\0", stroff + name)] == b".modinfo":
            pairs = (s.decode(errors="replace").partition("=") for s in elf[offset:offset + size].split(b"\0") if s)
            return {k: v for k, _, v in pairs}
    return {}


def load_order(wanted: tuple[str, ...], paths: dict[str, str]) -> list[str]:
    """Module names in an order insmod accepts (each after its dependencies); paths maps a name to its .ko."""
    order: list[str] = []

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in seen:
            raise ImageError(f"module dependency cycle: {' -> '.join(seen + (name,))}")
        if name not in paths:
            raise ImageError(f"module {name} not in the kernel package")
        for dep in filter(None, modinfo(paths[name]).get("depends", "").split(",")):
            visit(dep.replace("-", "_"), seen + (name,))
        order.append(name)

    for name in wanted:
        visit(name, ())
    return order


def _module_paths(modroot: str) -> dict[str, str]:
    return {os.path.basename(p)[:-3].replace("-", "_"): p
            for p in glob.glob(os.path.join(modroot, "kernel", "**", "*.ko"), recursive=True)}


# --- the image ----------------------------------------------------------------------------------------------------

def kernel_deb() -> str:
    found = sorted(glob.glob(os.path.join(KERNEL_DEBS, "linux-image-*.deb")))
    if not found:
        raise ImageError(f"no linux-image .deb in {KERNEL_DEBS}: run scripts/setup.sh")
    return found[-1]


def kernel_release() -> str:
    """The guest kernel's `uname -r` (linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb: 6.1.0-57-amd64)."""
    return os.path.basename(kernel_deb()).split("_")[0].removeprefix("linux-image-")


def _script(name: str) -> bytes:
    return resources.files("neutrino.instances").joinpath(name).read_bytes()


def _inputs_key(deb: str) -> str:
    h = hashlib.sha256(FORMAT.encode())
    for path in (deb, BUSYBOX, DROPBEAR):
        if not os.path.exists(path):
            raise ImageError(f"{path} is missing: run scripts/setup.sh")
        st = os.stat(path)
        h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    for name in ("vm_init.sh", "udhcpc.sh"):
        h.update(_script(name))
    return h.hexdigest()[:16]


def _initramfs(modroot: str) -> bytes:
    cpio = Cpio()
    made = {"bin", "sbin", "dev", "etc", "lib", "lib/modules", "lib64", "proc", "sys", "run", "tmp", "var",
            "var/log", "usr", "usr/bin", "usr/sbin", "etc/dropbear"}
    for d in sorted(made):
        cpio.dir(d)
    cpio.dir("root", 0o700)
    cpio.chardev("dev/console", 5, 1)
    with open(BUSYBOX, "rb") as f:
        cpio.file("bin/busybox", f.read(), 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.symlink("init", "bin/busybox")                       # busybox init reads /etc/inittab
    cpio.file("etc/inittab", b"::sysinit:/etc/rcS\n::shutdown:/bin/umount -a -r\n")
    cpio.file("etc/rcS", _script("vm_init.sh"), 0o755)
    cpio.file("etc/udhcpc.sh", _script("udhcpc.sh"), 0o755)
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o600)
    cpio.file("etc/group", b"root:x:0:\n")
    cpio.file("etc/shells", b"/bin/sh\n")
    with open(DROPBEAR, "rb") as f:
        cpio.file("usr/sbin/dropbear", f.read(), 0o755)
    for lib in sorted(set(binaries.shared_libraries(DROPBEAR) + binaries.shared_libraries(BUSYBOX))):
        for parent in _parents(lib.lstrip("/")):
            if parent not in made:
                cpio.dir(parent)
                made.add(parent)
        with open(lib, "rb") as f:
            cpio.file(lib.lstrip("/"), f.read(), 0o755)
    paths = _module_paths(modroot)
    order = load_order(MODULES, paths)
    for name in order:
        with open(paths[name], "rb") as f:
            cpio.file(f"lib/modules/{name}.ko", f.read())
    cpio.file("etc/modules", "".join(f"{n}.ko\n" for n in order).encode())
    return gzip.compress(cpio.close(), compresslevel=1, mtime=0)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def ensure_image() -> Image:
    """The cached image for the current inputs, built first when there is none."""
    deb = kernel_deb()
    out = os.path.join(IMAGE_CACHE, _inputs_key(deb))
    image = Image(kernel=os.path.join(out, "vmlinuz"), initrd=os.path.join(out, "initrd.gz"))
    if os.path.exists(image.initrd):
        return image
    tmp = out + f".tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    root = binaries.extract_deb(deb, os.path.join(tmp, "deb"))
    (modroot,) = glob.glob(os.path.join(root, "lib", "modules", "*"))
    (vmlinuz,) = glob.glob(os.path.join(root, "boot", "vmlinuz-*"))
    shutil.copyfile(vmlinuz, os.path.join(tmp, "vmlinuz"))
    with open(os.path.join(tmp, "initrd.gz"), "wb") as f:
        f.write(_initramfs(modroot))
    shutil.rmtree(os.path.join(tmp, "deb"))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return image
