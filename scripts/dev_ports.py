"""Whether something listens on a TCP port of 127.0.0.1 (scripts/develop).

    python scripts/dev_ports.py PORT

Exits 0 if the port is busy, 1 if it is free.
"""

from __future__ import annotations

import socket
import sys


def port_busy(port: int) -> bool:
    """Bind like the servers do (SO_REUSEADDR).

    Fails only if something listens there, on 127.0.0.1 or on all addresses.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


if __name__ == "__main__":
    sys.exit(0 if port_busy(int(sys.argv[1])) else 1)
