"""A guest's stand-in for sshd: every TCP connection on port 22 gets an SSH version banner, so "ssh reachable"
can be checked end to end (security group, router, floating IP) without a real SSH server in each guest.

Run inside the guest namespace as `python -m neutrino.instances.banner INSTANCE_DIR` (the directory only marks the
process as this instance's, for its pid-file check).
"""
from __future__ import annotations

import socket

BANNER = b"SSH-2.0-neutrino\r\n"
PORT = 22


def serve(port: int = PORT) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        while True:
            conn, _ = s.accept()
            with conn:
                try:
                    conn.sendall(BANNER)
                except OSError:
                    pass


if __name__ == "__main__":
    serve()
