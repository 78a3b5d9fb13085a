"""Every option of a stream, defined once: its key, its default, its choices or range.

The options flow builds its fields from these, the actions check a call against
them, and the stream and the screen read their settings with them, so a name,
a default or a range is never written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Option[T]:
    """An option as the config entry stores it: under `key`, `default` when unset."""

    key: str
    default: T

    def read(self, options: Mapping[str, Any]) -> Any:
        """What the options hold for this one, or its default where they hold none.

        Any: a stored value is whatever the entry was saved with.
        """
        return options.get(self.key, self.default)


@dataclass(frozen=True, slots=True)
class Choice[T](Option[T]):
    """An option that takes one of a fixed set of values."""

    choices: tuple[T, ...]


@dataclass(frozen=True, slots=True)
class Bounded[T: (int, float)](Option[T]):
    """A number between two bounds, both included."""

    range: tuple[T, T]


class Codec(StrEnum):
    """Encoders ffmpeg may publish with."""

    AAC = "aac"
    OPUS = "libopus"
    PCM_MULAW = "pcm_mulaw"
    PCM_ALAW = "pcm_alaw"


class PcmTransport(StrEnum):
    """How PCM travels from the event loop to ffmpeg."""

    SOCKET = "socket"
    FIFO = "fifo"
    PIPE = "pipe"


class RtspTransport(StrEnum):
    """Lower transport of the RTSP session."""

    TCP = "tcp"
    UDP = "udp"


# How the stream is encoded and fed (`StreamSettings`).
CODEC: Final = Choice("codec", Codec.AAC, tuple(Codec))
PCM_TRANSPORT: Final = Choice("pcm_transport", PcmTransport.SOCKET, tuple(PcmTransport))
SAMPLE_RATE: Final = Choice(
    "sample_rate", 24000, (8000, 16000, 22050, 24000, 44100, 48000)
)
RTSP_TRANSPORT: Final = Choice(
    "rtsp_transport", RtspTransport.TCP, tuple(RtspTransport)
)
FRAME_MS: Final = Bounded("frame_ms", 20, (10, 60))
LEAD_MS: Final = Bounded("lead_ms", 60, (20, 500))
# Silence written per wake-up while nothing is queued (0: frame by frame).
IDLE_BLOCK_MS: Final = Bounded("idle_block_ms", 100, (0, 500))

# Voices. No engine is the default: the stream's local voice, or the first
# other TTS entity without espeak-ng; no language or voice, the engine's own.
VOICE_ENGINE: Final = Option[str | None]("voice_engine", None)
VOICE_LANGUAGE: Final = Option[str | None]("voice_language", None)
VOICE: Final = Option[str | None]("voice", None)
FALLBACK_ENGINE: Final = Option[str | None]("fallback_engine", None)
# Seconds a TTS entity may take to its first audio before the fallback speaks.
FIRST_AUDIO_TIMEOUT: Final = Bounded("first_audio_timeout", 5.0, (0.5, 30.0))

# Time limits, in seconds: all the waiting for one announcement's audio source,
# one network read or connection of a media URL, and how long an announcement
# may wait in the queue before it expires.
SOURCE_TIMEOUT: Final = Bounded("source_timeout", 300.0, (1.0, 3600.0))
NETWORK_TIMEOUT: Final = Bounded("network_timeout", 5.0, (1.0, 60.0))
MAX_QUEUE_AGE: Final = Bounded("max_queue_age", 120.0, (1.0, 3600.0))

# Announcement defaults of a stream; a call overrides each.
PREANNOUNCE: Final = Option("preannounce", default=True)
# A shipped sound's name or a media id.
PREANNOUNCE_SOUND: Final = Option("preannounce_sound", "chime")
# Seconds of silence before an announcement's first sound.
LEAD_IN: Final = Bounded("lead_in", 0.0, (0.0, 5.0))
# Gain in dB applied to every announcement of the stream.
GAIN_DB: Final = Bounded("gain_db", 0.0, (-30.0, 12.0))
REPEAT: Final = Bounded("repeat", 1, (1, 10))
# Seconds of silence between two repetitions (a call's only).
REPEAT_GAP: Final = Bounded("repeat_gap", 1.0, (0.0, 60.0))

# The call-number screen: an H.264 track in the same RTSP session, off by default.
VIDEO: Final = Option("video", default=False)
VIDEO_RESOLUTION: Final = Choice(
    "video_resolution", "1280x720", ("640x360", "1280x720", "1920x1080")
)
VIDEO_FPS: Final = Bounded("video_fps", 5, (1, 10))
VIDEO_BACKGROUND: Final = Option("video_background", (0, 0, 0))
VIDEO_BACKGROUND_IMAGE: Final = Option[str | None]("video_background_image", None)
VIDEO_BACKGROUND_ENTITY: Final = Option[str | None]("video_background_entity", None)
VIDEO_TEXT_COLOR: Final = Option("video_text_color", (255, 255, 255))
# Height of the current text, in percent of the picture's height.
VIDEO_TEXT_SIZE: Final = Bounded("video_text_size", 30, (5, 80))
VIDEO_HISTORY: Final = Bounded("video_history", 3, (0, 10))
VIDEO_READER_URL: Final = Option[str | None]("video_reader_url", None)
