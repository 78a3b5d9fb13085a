"""Real RTSP servers and readers for end-to-end tests, driven from asyncio.

Three tools, all real processes (no mocks), one module each (listener.py, relay.py,
reader.py; ports.py, children.py and receiver.py hold what they share; peers.py
has scripted asyncio RTSP servers for protocol answers no real server gives):

* `ListenReceiver`: an RTSP server for one publisher at a time, built on ffmpeg's
  listen mode. It decodes what it receives to s16le mono PCM and records it. ffmpeg's
  listener exits when its publisher goes away, so the receiver starts a new listener on
  the same port at once and behaves like a server that stays up.
* `RelayServer`: rtsp-server-perl, a relay: publishers ANNOUNCE/RECORD on the source
  port (UDP transport only), readers PLAY on the client port.
* `Reader`: an ffmpeg RTSP client that records what a server plays, like
  `ListenReceiver` records what it is sent.

Everything is asyncio (`asyncio.create_subprocess_exec`, argument lists, no shell).
Every child is reaped on `stop()`/`__aexit__`, on cancellation and on errors
(SIGTERM, a grace period, then SIGKILL), and no task outlives `stop()`. Where
`setpriv` exists (util-linux), children also get SIGKILL when the test process dies,
so a killed test run leaves no listener or relay behind.

Ports are chosen without Python sockets (the Home Assistant test plugin disables them):
`free_port()` picks a random port below the kernel's ephemeral range and checks
/proc/net/{tcp,udp}{,6}; readiness is observed in /proc as well (a LISTEN socket whose
inode belongs to the child). No test needs the `socket_enabled` fixture.

Measured on this machine (Debian 12, ffmpeg 5.1, 2 cores; ranges over many runs):

* ffmpeg listener: `start()` returns 0.1-0.3 s after spawn. When its publisher dies
  (SIGKILL) the old listener ends 10-20 ms later and the new one listens 0.09-0.23 s
  after the death (0.5 s with both cores busy); a new publisher's audio arrives
  0.3-0.5 s after the death, its own start-up included (`ready_times`,
  `Session.ended_at`). The port is re-bound at once, also right after the server
  side closed a connection. While the listener restarts, and while a publisher is
  connected, another publisher gets "Connection refused" (ffmpeg closes the listening
  socket once it has accepted one connection).
* A TCP publisher whose ListenReceiver is stopped exits 0.05-0.10 s after `stop()`
  begins, status 1, after "av_interleaved_write_frame(): Broken pipe". A publisher
  whose input is idle (nothing written to its stdin) notices only at its next write.
* rtsp-server-perl accepts connections 0.2-0.6 s after spawn (Perl and Moose start-up;
  0.9 s with a second test run in parallel, 1.8 s with both cores busy);
  `RelayServer.start()` waits for both ports. Stopped with SIGTERM it exits at once,
  the kernel frees its TCP and UDP ports, and a UDP publisher exits ~50 ms later
  (status 1, "Broken pipe" on its RTSP connection).
* The relay keeps a mount until the publisher sends TEARDOWN. A publisher killed with
  SIGKILL never does, so the mount stays and the next ANNOUNCE to the same path is
  answered "403 Forbidden" until the relay restarts. See `RelayServer` for details.
* ffmpeg ends on a first SIGTERM only between packets: blocked on a network input
  that sends nothing, or on an idle stdin pipe, it keeps waiting. Two SIGTERMs end
  a network read; an idle stdin needs EOF (close it) or SIGKILL. Children here get
  SIGTERM, SIGTERM again, then SIGKILL.
"""

from .children import dies_with_parent, end_process, s16le_mono
from .listener import ListenReceiver
from .ports import (
    HOST,
    free_port,
    free_port_block,
    is_listening,
    ports_in_use,
    tcp_port_state,
)
from .reader import Reader
from .receiver import DEFAULT_PATH, DEFAULT_RATE, Session
from .relay import RelayServer

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_RATE",
    "HOST",
    "ListenReceiver",
    "Reader",
    "RelayServer",
    "Session",
    "dies_with_parent",
    "end_process",
    "free_port",
    "free_port_block",
    "is_listening",
    "ports_in_use",
    "s16le_mono",
    "tcp_port_state",
]
