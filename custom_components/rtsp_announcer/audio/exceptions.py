"""Errors raised by the audio core."""

from __future__ import annotations


class AnnouncerError(Exception):
    """Base class of every error the audio core raises."""


class InvalidUrlError(AnnouncerError):
    """The RTSP URL cannot be used (scheme, host or port)."""


class FfmpegNotFoundError(AnnouncerError):
    """The ffmpeg binary is missing or cannot be started."""


class TransportError(AnnouncerError):
    """The PCM transport to ffmpeg could not be set up."""


class QueueFullError(AnnouncerError):
    """The stream's playback queue is at its limit."""


class DecodeError(AnnouncerError):
    """A media item could not be decoded into PCM."""


class StreamStoppedError(AnnouncerError):
    """The stream was stopped before the item could be played."""
