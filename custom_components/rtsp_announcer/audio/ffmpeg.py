"""ffmpeg command lines: the RTSP publisher and the one-shot media decoder.

Everything is an argument list; nothing ever goes through a shell, so a URL
with `;`, `$()` or backticks is only ever a string to ffmpeg.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from enum import StrEnum
from typing import Final

from .exceptions import DecodeError
from .models import StreamSettings, VideoSettings
from .options import NETWORK_TIMEOUT, Codec
from .url import redact_url

PROGRESS_PERIOD = 0.5

# What each kind of media source may open: ffmpeg checks every nested open (an HLS
# playlist's segments and keys, a redirect's new connection) against the input's
# whitelist. A remote source never reaches a local file, a local file never reaches
# the network, piped audio reaches nothing else. `tcp` and `tls` carry http and
# https; `crypto` decrypts AES-128 HLS segments (whose URLs are checked in turn).
REMOTE_PROTOCOLS: Final = "http,https,tcp,tls,crypto"
LOCAL_PROTOCOLS: Final = "file"
PIPE_PROTOCOLS: Final = "pipe"
# Seconds ffmpeg may wait for one network read, write or connection of a remote
# source before it gives up (its `-rw_timeout`, in microseconds, also passed on by
# the HLS demuxer to every segment): the stream's option unless it says otherwise.
DEFAULT_NETWORK_TIMEOUT: Final = NETWORK_TIMEOUT.default

# A protocol prefix as ffmpeg finds one: scheme characters then ":", or the
# "subfile,<options>:<url>" form it also accepts.
_SCHEME: Final = re.compile(r"([A-Za-z0-9+.-]+):|(subfile),.*:", re.DOTALL)


class SourceKind(StrEnum):
    """Where a media item comes from, which decides what ffmpeg may open."""

    LOCAL = "local"
    REMOTE = "remote"
    PIPE = "pipe"


def source_kind(source: str | None) -> SourceKind:
    """Return the kind of a decoder source: None is piped audio.

    A path (absolute, relative or a ``file:`` URL) is local; an ``http``/``https``
    URL is remote.

    Raises:
        DecodeError: The source names another protocol (``ftp:``, ``concat:``,
            ``data:``, ``pipe:``...), which ffmpeg would otherwise open.
    """
    if source is None:
        return SourceKind.PIPE
    match = _SCHEME.match(source)
    if match is None and source != "-":  # ffmpeg reads "-" as "pipe:"
        return SourceKind.LOCAL
    if match is not None:
        scheme = (match.group(1) or match.group(2)).lower()
        if scheme == "file":
            return SourceKind.LOCAL
        if scheme in ("http", "https") and source[match.end(1) :].startswith("://"):
            return SourceKind.REMOTE
    msg = f"unsupported media source: {redact_url(source)}"
    raise DecodeError(msg)


# G.711 is defined at 8 kHz and that is what cameras and IP speakers accept.
_G711_RATE = "8000"


def _codec_args(codec: Codec) -> list[str]:
    if codec is Codec.AAC:
        return ["-c:a", "aac", "-b:a", "64k"]
    if codec is Codec.OPUS:
        # 20 ms Opus frames: low latency and what WebRTC/go2rtc readers expect.
        return ["-c:a", "libopus", "-b:a", "48k", "-application", "lowdelay",
                "-frame_duration", "20"]  # fmt: skip
    return ["-c:a", codec.value, "-ar", _G711_RATE]


async def _ask(
    binary: str, *args: str, stdout: int
) -> asyncio.subprocess.Process | None:
    """Start ffmpeg for a question, with no input and no log; None if it cannot."""
    try:
        return await asyncio.create_subprocess_exec(
            binary,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None


async def binary_runs(binary: str) -> bool:
    """Whether the ffmpeg binary can be started at all."""
    process = await _ask(binary, "-version", stdout=asyncio.subprocess.DEVNULL)
    return process is not None and await process.wait() == 0


# What `binary -h long` printed, per binary: asked once per process.
_HELP: dict[str, str] = {}
HELP_TIMEOUT = 10.0


async def knows_option(binary: str, option: str) -> bool:
    """Whether ffmpeg lists `-option` in its help (asked once per binary).

    Anything that goes wrong (no such binary, no answer in time) counts as no.
    """
    text = _HELP.get(binary)
    if text is None:
        process = await _ask(
            binary, "-hide_banner", "-h", "long", stdout=asyncio.subprocess.PIPE
        )
        if process is None:
            # Not remembered: ffmpeg may be installed before the next try.
            return False
        text = ""
        try:
            async with asyncio.timeout(HELP_TIMEOUT):
                out, _ = await process.communicate()
            text = out.decode(errors="replace")
        except TimeoutError:
            pass
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        _HELP[binary] = text
    return re.search(rf"(^|\s)-{re.escape(option)}\s", text, re.MULTILINE) is not None


def _video_input_args(video: VideoSettings, video_spec: str) -> list[str]:
    # Raw frames paced by the same clock as the audio: their timestamps are
    # their index over the frame rate, as the audio's are its sample count over
    # the sample rate, so both tracks share one time line from the first byte.
    return [
        "-probesize", "32", "-analyzeduration", "0", "-fflags", "nobuffer",
        "-f", "rawvideo", "-pix_fmt", "yuv420p",
        "-video_size", f"{video.width}x{video.height}",
        "-framerate", str(video.fps),
        "-i", video_spec,
    ]  # fmt: skip


def _video_codec_args(video: VideoSettings) -> list[str]:
    # Baseline H.264 without B-frames: what every reader decodes, and no frame
    # waits for a later one. A still picture costs next to nothing to encode:
    # repeated frames are all skipped macroblocks.
    return [
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-profile:v", "baseline", "-pix_fmt", "yuv420p",
        "-g", str(video.gop), "-keyint_min", str(video.gop),
        "-sc_threshold", "0", "-bf", "0", "-crf", "28",
    ]  # fmt: skip


def publisher_args(
    binary: str,
    settings: StreamSettings,
    input_spec: str,
    video_spec: str | None = None,
    *,
    no_read_burst: bool = False,
) -> list[str]:
    """Return the argument list of a publisher reading raw PCM from `input_spec`.

    With video settings and `video_spec`, raw yuv420p frames are read from
    `video_spec` as a second input and published as an H.264 track of the same
    RTSP session; without, the publisher is audio only.

    `no_read_burst` turns off the read-ahead that ffmpeg 6.1 and later allow
    at the real-time rate (`-readrate_initial_burst`, half a second by default,
    which would let the idle blocks through in bursts); older ffmpeg has no
    such option and reads no further ahead than real time anyway.
    """
    video = settings.video if video_spec is not None else None
    if video is None or video_spec is None:
        video_in: list[str] = []
        streams = ["-vn"]
    else:
        video_in = _video_input_args(video, video_spec)
        streams = ["-map", "0:a", "-map", "1:v", *_video_codec_args(video)]
    return [
        binary,
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "level+info",
        # Progress blocks on stdout: the proof that publishing started and the
        # heartbeat of a publisher that is still moving.
        "-progress",
        "pipe:1",
        "-stats_period",
        str(PROGRESS_PERIOD),
        # The input format is known: probing it only delays the start by ~1 s.
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-fflags",
        "nobuffer",
        # Read the input no faster than real time: the clock writes silence
        # ahead in blocks while idle, and readers get it a frame at a time.
        "-re",
        *(["-readrate_initial_burst", "0"] if no_read_burst else []),
        "-f",
        "s16le",
        "-ar",
        str(settings.sample_rate),
        "-ac",
        "1",
        "-i",
        input_spec,
        *video_in,
        *streams,
        *_codec_args(settings.codec),
        # ffmpeg's default 0.7 s mux delay packs idle audio into bursts.
        "-muxdelay",
        "0",
        "-f",
        "rtsp",
        "-rtsp_transport",
        settings.rtsp_transport.value,
        settings.url,
    ]


def decoder_args(
    binary: str,
    source: str | None,
    sample_rate: int,
    *,
    network_timeout: float = DEFAULT_NETWORK_TIMEOUT,
) -> list[str]:
    """Return the argument list that decodes to s16le mono on stdout.

    `source` is a path or an http(s) URL; None reads encoded audio from stdin.
    Each kind gets only the protocols it needs (see `source_kind`); a remote
    source also gets ffmpeg's network timeout, no automatic reconnection, and
    exits with an error status when its input fails midway.

    Raises:
        DecodeError: `source` names a protocol other than file, http or https.
    """
    kind = source_kind(source)
    protocols = {
        SourceKind.LOCAL: LOCAL_PROTOCOLS,
        SourceKind.REMOTE: REMOTE_PROTOCOLS,
        SourceKind.PIPE: PIPE_PROTOCOLS,
    }[kind]
    input_options: list[str] = []
    if kind is SourceKind.REMOTE:
        input_options = [
            "-rw_timeout",
            str(max(1, round(network_timeout * 1_000_000))),
            # The default, said out loud: a reconnecting client waits up to two
            # minutes between attempts; a failure must fail.
            "-reconnect",
            "0",
            # A read error ends the input like its end would (exit status 0):
            # a body cut off by the network timeout would pass for a whole one.
            "-xerror",
        ]
    elif kind is SourceKind.PIPE:
        # Another TTS engine's audio, still being written: with ffmpeg's default
        # probing nothing comes out before ~5 s of input or its end, which holds
        # back a reply spoken sentence by sentence. The container's own header
        # (WAV, an MP3 frame, Ogg) says all the decoder needs.
        input_options = ["-probesize", "32", "-analyzeduration", "0"]
    return [
        binary,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        protocols,
        *input_options,
        "-i",
        "pipe:0" if source is None else source,
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "pipe:1",
    ]
