"""Typed settings and figures of the audio core."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .options import (
    CODEC,
    FRAME_MS,
    IDLE_BLOCK_MS,
    LEAD_MS,
    PCM_TRANSPORT,
    RTSP_TRANSPORT,
    SAMPLE_RATE,
    VIDEO_FPS,
    Codec,
    PcmTransport,
    RtspTransport,
)

BYTES_PER_SAMPLE = 2  # s16le mono


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
    fps: int = VIDEO_FPS.default

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
    codec: Codec = CODEC.default
    pcm_transport: PcmTransport = PCM_TRANSPORT.default
    sample_rate: int = SAMPLE_RATE.default
    rtsp_transport: RtspTransport = RTSP_TRANSPORT.default
    frame_ms: int = FRAME_MS.default
    lead_ms: int = LEAD_MS.default
    idle_block_ms: int = IDLE_BLOCK_MS.default
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
