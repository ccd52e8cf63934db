"""The OpenSSH client side of VM access: a key pair made once (ssh-keygen) and the argv of one non-interactive
command run on a guest by key, with no host-key prompts (every lab VM makes a fresh host key at boot)."""
from __future__ import annotations

import os

from neutrino.lib import proc

OPTIONS = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5")


def ensure_key(path: str) -> str:
    """An ed25519 key pair at path (private) and path.pub, made when missing; the public key's text."""
    if not os.path.exists(path + ".pub"):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        for stale in (path, path + ".pub"):
            if os.path.exists(stale):
                os.unlink(stale)
        proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "neutrino-lab", "-f", path])
    with open(path + ".pub") as f:
        return f.read().strip()


def argv(key: str, address: str, command: list[str], user: str = "root") -> list[str]:
    """ssh as user@address with key, running command (empty: an interactive login)."""
    return ["ssh", "-i", key, *OPTIONS, f"{user}@{address}", *command]
