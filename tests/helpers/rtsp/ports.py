"""Free local ports and socket states, read from /proc without a Python socket.

The Home Assistant test plugin disables Python sockets: `free_port()` picks a random
port below the kernel's ephemeral range and checks /proc/net/{tcp,udp}{,6};
readiness is observed in /proc as well (a LISTEN socket whose inode belongs to the
child). No test needs the `socket_enabled` fixture.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Final

HOST: Final = "127.0.0.1"
TCP_LISTEN: Final = "0A"
TCP_ESTABLISHED: Final = "01"
# Ports handed out below the ephemeral range, so that no outgoing connection of any
# process can take them between the choice and the bind; 20000-20999 is where
# rtsp-server-perl puts its RTP sockets by default.
_PORT_FLOOR: Final = 10000
_AVOID: Final = range(20000, 21000)

_handed_out: set[int] = set()


def _proc_net(kind: str) -> list[tuple[int, str, int]]:
    """Return (local port, state, inode) for every socket in /proc/net/KIND{,6}."""
    entries: list[tuple[int, str, int]] = []
    for name in (kind, f"{kind}6"):
        try:
            text = Path("/proc/net", name).read_text(encoding="ascii")
        except OSError:
            continue
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            entries.append((port, fields[3], int(fields[9])))
    return entries


def ports_in_use() -> set[int]:
    """Return every local TCP or UDP port that has a socket in any state."""
    return {port for kind in ("tcp", "udp") for port, _, _ in _proc_net(kind)}


def _candidate_range() -> range:
    try:
        low, high = (
            int(v)
            for v in Path("/proc/sys/net/ipv4/ip_local_port_range")
            .read_text(encoding="ascii")
            .split()
        )
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - _PORT_FLOOR >= 2000:
        return range(_PORT_FLOOR, low)
    return range(high + 1, 65536)


def free_port_block(count: int = 1) -> int:
    """Return the first of `count` consecutive ports free for both TCP and UDP.

    Needs no Python socket, so it works under the Home Assistant test plugin without
    the `socket_enabled` fixture: it picks at random below the kernel's ephemeral port
    range and checks /proc/net. Another process may still take the port before it is
    bound; the users in this module detect that and pick again.

    Args:
        count: how many consecutive ports must be free.

    Returns:
        The first port of the block; the block is not handed out again by this process.

    Raises:
        RuntimeError: if no free block was found.
    """
    candidates = _candidate_range()
    span = len(candidates) - count
    for _ in range(200):
        first = candidates.start + secrets.randbelow(span)
        block = range(first, first + count)
        if any(p in _AVOID or p in _handed_out for p in block):
            continue
        if ports_in_use().isdisjoint(block):
            if len(_handed_out) > 5000:
                _handed_out.clear()
            _handed_out.update(block)
            return first
    msg = f"no block of {count} free ports in {candidates}"
    raise RuntimeError(msg)


def free_port() -> int:
    """Return a free local port (TCP and UDP) without opening a Python socket.

    Returns:
        A port number below the ephemeral range, not handed out before by this process.
    """
    return free_port_block(1)


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def tcp_port_state(port: int, pid: int | None = None) -> set[str]:
    """Return the TCP states (hex, as in /proc/net/tcp) of sockets on a local port.

    Args:
        port: the local port.
        pid: only count sockets owned by this process.

    Returns:
        A set such as {"0A"} (LISTEN) or {"01"} (ESTABLISHED); empty if none.
    """
    entries = [(state, inode) for p, state, inode in _proc_net("tcp") if p == port]
    if pid is not None:
        owned = _socket_inodes(pid)
        entries = [(state, inode) for state, inode in entries if inode in owned]
    return {state for state, _ in entries}


def is_listening(port: int, pid: int | None = None) -> bool:
    """Return whether a TCP socket listens on the local port (owned by `pid`).

    Args:
        port: the local port.
        pid: only count a listening socket owned by this process.
    """
    return TCP_LISTEN in tcp_port_state(port, pid)
