"""Typed settings and figures of the audio core."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

BYTES_PER_SAMPLE = 2  # s16le mono

# What a stream may be set to; the options flow offers exactly these.
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
FRAME_MS_RANGE = (10, 60)
LEAD_MS_RANGE = (20, 500)
IDLE_BLOCK_MS_RANGE = (0, 500)
DEFAULT_SAMPLE_RATE = 24000
DEFAULT_FRAME_MS = 20
DEFAULT_LEAD_MS = 60
DEFAULT_IDLE_BLOCK_MS = 100


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


DEFAULT_CODEC = Codec.AAC
DEFAULT_PCM_TRANSPORT = PcmTransport.SOCKET
DEFAULT_RTSP_TRANSPORT = RtspTransport.TCP


class PublisherState(StrEnum):
    """Life cycle of the supervised ffmpeg process."""

    STOPPED = "stopped"
    STARTING = "starting"
    PUBLISHING = "publishing"
    BACKOFF = "backoff"


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoSettings:
    """The optional H.264 track: the call-number screen."""

    width: int = 1280
    height: int = 720
    fps: int = 5

    @property
    def frame_bytes(self) -> int:
        """Bytes of one raw yuv420p frame."""
        return self.width * self.height * 3 // 2

    @property
    def gop(self) -> int:
        """Frames between keyframes: a reader that joins sees a picture in 1 s."""
        return self.fps


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSettings:
    """Everything that shapes one stream: its URL and how it is encoded and fed."""

    url: str
    codec: Codec = DEFAULT_CODEC
    pcm_transport: PcmTransport = DEFAULT_PCM_TRANSPORT
    sample_rate: int = DEFAULT_SAMPLE_RATE
    rtsp_transport: RtspTransport = DEFAULT_RTSP_TRANSPORT
    frame_ms: int = DEFAULT_FRAME_MS
    lead_ms: int = DEFAULT_LEAD_MS
    # Silence written per wake-up while nothing is queued (0: frame by frame).
    idle_block_ms: int = DEFAULT_IDLE_BLOCK_MS
    # None: audio only, exactly as without the screen.
    video: VideoSettings | None = None

    @property
    def frame_samples(self) -> int:
        """Samples in one clock frame."""
        return self.sample_rate * self.frame_ms // 1000

    @property
    def lead_samples(self) -> int:
        """Samples the clock keeps written ahead of real time."""
        return self.sample_rate * self.lead_ms // 1000


@dataclass(slots=True)
class ClockStats:
    """Running figures of a clock, for diagnostics and benchmarks."""

    frames_written: int = 0
    frames_dropped: int = 0
    frames_offline: int = 0
    frames_late: int = 0
    underruns: int = 0
    samples_skipped: int = 0
    ticks: int = 0
    max_tick_lag: float = 0.0
    errors: int = 0

    @property
    def frames_total(self) -> int:
        """Every frame the clock produced, delivered or not."""
        return self.frames_written + self.frames_dropped + self.frames_offline
