"""ffmpeg command lines: the RTSP publisher and the one-shot media decoder.

Everything is an argument list; nothing ever goes through a shell, so a URL
with `;`, `$()` or backticks is only ever a string to ffmpeg.
"""

from __future__ import annotations

from .models import Codec, StreamSettings

PROGRESS_PERIOD = 0.5
# Protocols a decoded media item may use: local files and HTTP(S) served by
# Home Assistant or a media server; nothing that opens devices or runs programs.
DECODE_PROTOCOLS = "file,http,https,tcp,tls,crypto,data"

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


def publisher_args(binary: str, settings: StreamSettings, input_spec: str) -> list[str]:
    """Return the argument list of a publisher reading raw PCM from `input_spec`."""
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
        "-f",
        "s16le",
        "-ar",
        str(settings.sample_rate),
        "-ac",
        "1",
        "-i",
        input_spec,
        "-vn",
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


def decoder_args(binary: str, source: str | None, sample_rate: int) -> list[str]:
    """Return the argument list that decodes to s16le mono on stdout.

    `source` is a path or URL; None reads encoded audio from stdin.
    """
    protocols = DECODE_PROTOCOLS if source is not None else "pipe"
    return [
        binary,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        protocols,
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
