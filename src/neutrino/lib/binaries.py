"""Files from Debian's packages for a VM image: a .deb unpacked without installing it (dpkg-deb -x: no maintainer
scripts, nothing on the host changes) and the shared libraries a dynamically linked program needs (ldd)."""
from __future__ import annotations

import os
import re

from neutrino.lib import proc

_LDD_PATH = re.compile(r"(/\S+)")


def extract_deb(deb: str, dest: str) -> str:
    """Unpack a .deb's files under dest; dest."""
    os.makedirs(dest, exist_ok=True)
    proc.run(["dpkg-deb", "-x", deb, dest], timeout=300)
    return dest


def shared_libraries(binary: str) -> list[str]:
    """Absolute paths of every shared object the program loads, the dynamic loader included ([] when static)."""
    found = []
    for line in proc.run(["ldd", binary], check=False).stdout.splitlines():
        m = _LDD_PATH.search(line.split("=>")[-1])
        if m and os.path.exists(m.group(1)):
            found.append(m.group(1))
    return found
